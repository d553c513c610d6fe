package config

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/twmb/franz-go/pkg/sasl"
	saslaws "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// tokenTimeout bounds one request to an OAuth token endpoint.
const tokenTimeout = 30 * time.Second

// oauthBearer is the OAUTHBEARER mechanism of s: the token read again from tokenFile on every
// authentication, or one from the client-credentials flow, reused until shortly before it
// expires.
func (s *SASLConfig) oauthBearer(onChange func(string)) (sasl.Mechanism, error) {
	ext := maps.Clone(s.Extensions)
	if !s.OAuth.isSet() {
		tok := &rereadSecret{file: s.TokenFile, val: s.Token, onChange: onChange}
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			return oauth.Auth{Token: string(tok.get()), Extensions: ext}, nil
		}), nil
	}
	ts, err := s.OAuth.TokenSource(onChange)
	if err != nil {
		return nil, fmt.Errorf("kafka.sasl.oauth: %w", err)
	}
	return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
		t, err := ts.Token()
		if err != nil {
			return oauth.Auth{}, fmt.Errorf("kafka.sasl.oauth: %w", err)
		}
		return oauth.Auth{Token: t.AccessToken, Extensions: ext}, nil
	}), nil
}

// TokenSource returns the client-credentials token source of o: a token is fetched from
// TokenURL (over an HTTP client with o.TLS, never following redirects, each request bounded
// by 30 s) when none is held or the one held expires within oauth2's expiry delta (10 s), and
// reused otherwise, as oauth2.ReuseTokenSource does. A token answered without expires_in
// expires at its JWT exp claim, else after 5 minutes. clientSecretFile is read again before
// each token request; onChange(file) is called when its content changed. Errors never carry
// the secret or the token endpoint's answer, only its status and RFC 6749 error code.
func (o *OAuthConfig) TokenSource(onChange func(file string)) (oauth2.TokenSource, error) {
	tc, key, err := o.TLS.build(readSmallFile)
	if err != nil {
		return nil, fmt.Errorf("building token endpoint TLS config: tls.%s: %w", key, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	client := &http.Client{
		Transport: tr,
		Timeout:   tokenTimeout,
		// A redirected POST would carry the client secret to wherever it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	src := &clientCredentials{
		conf:   clientcredentials.Config{ClientID: o.ClientID, TokenURL: o.TokenURL, Scopes: slices.Clone(o.Scope)},
		secret: &rereadSecret{file: o.ClientSecretFile, val: o.ClientSecret, onChange: onChange},
		ctx:    context.WithValue(context.Background(), oauth2.HTTPClient, client),
	}
	return oauth2.ReuseTokenSource(nil, src), nil
}

// clientCredentials fetches a new token on every call; oauth2.ReuseTokenSource caches it.
type clientCredentials struct {
	conf   clientcredentials.Config
	secret *rereadSecret
	ctx    context.Context // carries the HTTP client; token requests are bounded by its timeout
}

func (c *clientCredentials) Token() (*oauth2.Token, error) {
	conf := c.conf
	conf.ClientSecret = string(c.secret.get())
	t, err := conf.Token(c.ctx)
	if err != nil {
		return nil, tokenError(conf.TokenURL, err)
	}
	if t.AccessToken == "" {
		return nil, fmt.Errorf("token endpoint %s answered without an access token", conf.TokenURL)
	}
	if t.Expiry.IsZero() {
		// No expires_in: oauth2 would reuse the token forever, and a broker refuses it once
		// it expires. Take a JWT's exp claim, else ask again in a few minutes.
		t.Expiry = jwtExpiry(t.AccessToken)
		if t.Expiry.IsZero() {
			t.Expiry = time.Now().Add(noExpiryRefresh)
		}
	}
	return t, nil
}

// noExpiryRefresh is how long a token whose lifetime is unknown (no expires_in, not a JWT with
// exp) is used before another is fetched.
const noExpiryRefresh = 5 * time.Minute

// jwtExpiry returns the exp claim of a JWT, or the zero time when tok is not a JWT with one.
// The token is not verified: the expiry only decides when to fetch a new one.
func jwtExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return time.Time{}
	}
	exp, err := claims.Exp.Float64()
	if err != nil || exp <= 0 || exp > math.MaxInt32*4 {
		return time.Time{}
	}
	return time.Unix(int64(exp), 0)
}

// tokenError describes a failed token request without the endpoint's answer (which might
// echo what was sent).
func tokenError(tokenURL string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := fmt.Sprintf("token endpoint %s refused the client credentials", tokenURL)
		if re.Response != nil {
			msg += ": " + re.Response.Status
		}
		if re.ErrorCode != "" {
			msg += fmt.Sprintf(" (error %q)", re.ErrorCode)
		}
		return errors.New(msg)
	}
	return fmt.Errorf("requesting a token from %s: %w", tokenURL, err)
}

// mskIAM is the AWS_MSK_IAM mechanism of s: each authentication signs with credentials from
// the key files (read again each time) or from the AWS SDK's default chain through its
// credential cache, which refreshes temporary credentials (IRSA's, a role's) before they
// expire. The signing region is the one in the broker's host name (MSK's names carry it), else
// AWS_REGION: franz-go's mechanism decides it.
func (s *SASLConfig) mskIAM(onChange func(string)) (sasl.Mechanism, error) {
	creds, err := s.AWS.credentials(onChange)
	if err != nil {
		return nil, fmt.Errorf("kafka.sasl.aws: %w", err)
	}
	return saslaws.ManagedStreamingIAM(func(ctx context.Context) (saslaws.Auth, error) {
		c, err := creds.Retrieve(ctx)
		if err != nil {
			return saslaws.Auth{}, fmt.Errorf("kafka.sasl.aws: retrieving AWS credentials: %w", err)
		}
		return saslaws.Auth{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey, SessionToken: c.SessionToken}, nil
	}), nil
}

// credentials is where a's credentials come from.
func (a *AWSConfig) credentials(onChange func(string)) (aws.CredentialsProvider, error) {
	if a.AccessKeyIDFile != "" {
		// The files were read when the config loaded; a change is one from then on.
		reread := func(file string) *rereadSecret {
			v, _ := ReadSecretFile(file)
			return &rereadSecret{file: file, val: v, onChange: onChange}
		}
		id, key := reread(a.AccessKeyIDFile), reread(a.SecretAccessKeyFile)
		var session *rereadSecret
		if a.SessionTokenFile != "" {
			session = reread(a.SessionTokenFile)
		}
		return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			c := aws.Credentials{AccessKeyID: string(id.get()), SecretAccessKey: string(key.get()), Source: "augment-connector key files"}
			if session != nil {
				c.SessionToken = string(session.get())
			}
			if c.AccessKeyID == "" || c.SecretAccessKey == "" || (session != nil && c.SessionToken == "") {
				return aws.Credentials{}, errors.New("the key files could not be read")
			}
			return c, nil
		}), nil
	}
	// LoadDefaultConfig reads the environment and the shared files now; the providers it
	// chains (web identity, SSO, container, instance metadata) are asked on the first
	// Retrieve, and its Credentials is an aws.CredentialsCache.
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(a.Region))
	if err != nil {
		return nil, fmt.Errorf("loading the AWS default configuration: %w", err)
	}
	if cfg.Credentials == nil {
		return nil, errors.New("the AWS default configuration holds no credential source")
	}
	return cfg.Credentials, nil
}
