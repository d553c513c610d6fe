package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/pkg/sr"
)

// kgoMaxReadBytes is kgo's default BrokerMaxReadBytes, which FetchMaxBytes must not exceed.
const kgoMaxReadBytes = 100 * MiB

// KafkaOpts builds the franz-go client options for brokers, client id, TLS, SASL, fetch sizes,
// isolation level and group timers. The consumer group, topics, start offset and callbacks are
// the caller's.
func (c *Config) KafkaOpts() ([]kgo.Opt, error) {
	return c.KafkaOptsNotify(nil)
}

// KafkaOptsNotify is KafkaOpts that calls onPasswordChange(file) when a SASL secret read again
// from its file (kafka.sasl.passwordFile, tokenFile, oauth.clientSecretFile, the aws key files)
// differs from the one used before, so the caller can log the rotation (without the secret).
// Password, token and key files are read on every authentication: a rotated Kubernetes Secret
// is used from the next connection on, without a restart.
func (c *Config) KafkaOptsNotify(onPasswordChange func(file string)) ([]kgo.Opt, error) {
	k := &c.Kafka
	opts := []kgo.Opt{
		kgo.SeedBrokers(slices.Clone(k.Brokers)...),
		kgo.ClientID(k.ClientID),
		kgo.FetchMaxBytes(int32(k.FetchMaxBytes)),
		kgo.FetchMaxWait(k.FetchMaxWait),
		kgo.SessionTimeout(k.SessionTimeout),
		kgo.RebalanceTimeout(k.RebalanceTimeout),
		kgo.HeartbeatInterval(k.HeartbeatInterval),
		kgo.DialTimeout(k.DialTimeout),
	}
	if k.IsolationLevel != ReadUncommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	if k.GroupProtocol == GroupProtocolConsumer {
		// KIP-848: the broker's uniform assignor, as the default cooperative-sticky
		// balancer asks for. kgo falls back to the classic protocol on a broker without it.
		opts = append(opts, kgo.ServerSideBalancer())
	}
	if k.FetchMaxBytes > kgoMaxReadBytes {
		opts = append(opts, kgo.BrokerMaxReadBytes(int32(k.FetchMaxBytes)))
	}
	if k.TLS.Enabled {
		tc, key, err := k.TLS.build(readSmallFile)
		if err != nil {
			return nil, fmt.Errorf("building kafka TLS config: %s: %w", key, err)
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	m, err := k.SASL.mechanism(onPasswordChange)
	if err != nil {
		return nil, err
	}
	if m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func (s *SASLConfig) mechanism(onChange func(string)) (sasl.Mechanism, error) {
	user, pw := s.Username, &rereadSecret{file: s.PasswordFile, val: s.Password, onChange: onChange}
	switch s.Mechanism {
	case SASLOAuthBearer:
		return s.oauthBearer(onChange)
	case SASLAWSMSKIAM:
		return s.mskIAM(onChange)
	case SASLPlain:
		return plain.Plain(func(context.Context) (plain.Auth, error) {
			return plain.Auth{User: user, Pass: string(pw.get())}, nil
		}), nil
	case SASLScramSHA256:
		return scram.Sha256(func(context.Context) (scram.Auth, error) {
			return scram.Auth{User: user, Pass: string(pw.get())}, nil
		}), nil
	case SASLScramSHA512:
		return scram.Sha512(func(context.Context) (scram.Auth, error) {
			return scram.Auth{User: user, Pass: string(pw.get())}, nil
		}), nil
	}
	return nil, nil
}

// rereadSecret is a secret read again from its file each time it is used (a few bytes: cheaper
// than the handshake or request it feeds), so that a rotated Kubernetes Secret is picked up
// without a restart. A file that cannot be read keeps the last good value: a Secret being
// rewritten must not turn into an empty password, and a wrong one fails loudly anyway.
type rereadSecret struct {
	file     string // "" means val never changes
	onChange func(file string)

	mu  sync.Mutex
	val Secret
}

func (r *rereadSecret) get() Secret {
	if r.file == "" {
		return r.val
	}
	v, err := ReadSecretFile(r.file)
	r.mu.Lock()
	changed := err == nil && v != r.val
	if changed {
		r.val = v
	}
	val := r.val
	r.mu.Unlock()
	if changed && r.onChange != nil {
		r.onChange(r.file)
	}
	return val
}

// ResetOffset is where a new consumer group starts, for kgo.ConsumeResetOffset.
func (k *KafkaConfig) ResetOffset() kgo.Offset {
	if k.StartOffset == StartLatest {
		return kgo.NewOffset().AtEnd()
	}
	return kgo.NewOffset().AtStart()
}

// RegistryOpts builds the franz-go schema registry client options: URLs, authentication and TLS.
func (c *Config) RegistryOpts() ([]sr.ClientOpt, error) {
	return c.RegistryOptsNotify(nil)
}

// RegistryOptsNotify is RegistryOpts that calls onSecretChange(file) when the password or token
// read again from schemaRegistry.basicAuth.passwordFile or bearerTokenFile (or the client
// secret from oauth.clientSecretFile, read before each token request) differs from the one
// used before. The file is read before every registry request (they are rare: schemas are
// cached by id), so a rotated secret is used from the next request on.
func (c *Config) RegistryOptsNotify(onSecretChange func(file string)) ([]sr.ClientOpt, error) {
	r := &c.SchemaRegistry
	// sr.URLs rewrites its argument in place; give it a copy.
	opts := []sr.ClientOpt{sr.URLs(slices.Clone(r.URLs)...)}
	switch {
	case r.BasicAuth.Username != "" && r.BasicAuth.PasswordFile != "":
		user, pw := r.BasicAuth.Username, &rereadSecret{file: r.BasicAuth.PasswordFile, val: r.BasicAuth.Password, onChange: onSecretChange}
		opts = append(opts, sr.PreReq(func(req *http.Request) error {
			req.SetBasicAuth(user, string(pw.get()))
			return nil
		}))
	case r.BasicAuth.Username != "":
		opts = append(opts, sr.BasicAuth(r.BasicAuth.Username, string(r.BasicAuth.Password)))
	case r.BearerTokenFile != "":
		tok := &rereadSecret{file: r.BearerTokenFile, val: r.BearerToken, onChange: onSecretChange}
		opts = append(opts, sr.PreReq(func(req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+string(tok.get()))
			return nil
		}))
	case r.BearerToken != "":
		opts = append(opts, sr.BearerToken(string(r.BearerToken)))
	case r.OAuth.isSet():
		// A bearer token from the client-credentials flow on each request, fetched again
		// shortly before it expires; the registry's own TLS settings stay those below.
		ts, err := r.OAuth.TokenSource(onSecretChange)
		if err != nil {
			return nil, fmt.Errorf("schemaRegistry.oauth: %w", err)
		}
		opts = append(opts, sr.PreReq(func(req *http.Request) error {
			t, err := ts.Token()
			if err != nil {
				return fmt.Errorf("schemaRegistry.oauth: %w", err)
			}
			req.Header.Set("Authorization", "Bearer "+t.AccessToken)
			return nil
		}))
	}
	if r.TLS.isSet() {
		tc, key, err := r.TLS.build(readSmallFile)
		if err != nil {
			return nil, fmt.Errorf("building schema registry TLS config: %s: %w", key, err)
		}
		opts = append(opts, sr.DialTLSConfig(tc))
	}
	return opts, nil
}

// HTTPTLSConfig is the TLS configuration of the tenant's HTTP client: TLS 1.2 or later, trusting
// the system roots, or only caFile's certificates when it is set (a private or simulated
// endpoint).
func (t *TenantConfig) HTTPTLSConfig() (*tls.Config, error) {
	tc, _, err := (&TLSConfig{CAFile: t.CAFile}).build(readSmallFile)
	if err != nil {
		return nil, fmt.Errorf("building tenant %s TLS config: caFile: %w", t.Name, err)
	}
	return tc, nil
}

// build loads the files of t. On failure key names the key whose file is at fault. Errors name
// files, never their content.
// ClientTLSConfig is the trace exporter's TLS configuration (tracing.tls), nil when no key
// of it is set (the system roots).
func (t *TracingConfig) ClientTLSConfig() (*tls.Config, error) {
	if !t.TLS.isSet() {
		return nil, nil
	}
	tc, key, err := t.TLS.build(readSmallFile)
	if err != nil {
		return nil, fmt.Errorf("tracing.tls.%s: %w", key, err)
	}
	return tc, nil
}

func (t *TLSConfig) build(read func(string) ([]byte, error)) (tc *tls.Config, key string, err error) {
	tc = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, and the caller warns
	}
	if t.CAFile != "" {
		pem, err := read(t.CAFile)
		if err != nil {
			return nil, "caFile", fmt.Errorf("reading file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "caFile", fmt.Errorf("%s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		if t.CertFile == "" || t.KeyFile == "" {
			return nil, "certFile", errors.New("certFile and keyFile must be set together")
		}
		certPEM, err := read(t.CertFile)
		if err != nil {
			return nil, "certFile", fmt.Errorf("reading file: %w", err)
		}
		keyPEM, err := read(t.KeyFile)
		if err != nil {
			return nil, "keyFile", fmt.Errorf("reading file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, "certFile", fmt.Errorf("loading key pair: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, key, nil
}
