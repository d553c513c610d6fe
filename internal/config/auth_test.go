package config

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sr"
)

// withKafka adds lines (a kafka.sasl block, kafka.tls) to the kafka section of base.
func withKafka(lines string) string {
	return strings.Replace(base, "  brokers: [localhost:9092]", "  brokers: [localhost:9092]\n"+lines, 1)
}

// TestBrokenAuthConfigs: every mistake in the OAUTHBEARER, AWS_MSK_IAM and registry OAuth
// settings is reported at its key and line.
func TestBrokenAuthConfigs(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	writeFile(t, tok, "a-token\n")
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "\n")
	secret := filepath.Join(dir, "secret")
	writeFile(t, secret, "client-secret")
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"OAUTHBEARER without a token source",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: OAUTHBEARER\n"),
			[]string{`test.yaml:5: kafka.sasl.mechanism: OAUTHBEARER needs a token source: tokenFile (a token kept up to date by something else) or oauth (the client-credentials flow)`}},
		{"OAUTHBEARER with both token sources",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: OAUTHBEARER\n    tokenFile: " + tok + "\n    oauth: {tokenURL: https://idp/token, clientId: c, clientSecretFile: " + secret + "}\n"),
			[]string{`test.yaml:6: kafka.sasl.tokenFile: set only one token source: tokenFile or oauth`}},
		{"OAUTHBEARER without TLS",
			withKafka("  sasl:\n    mechanism: OAUTHBEARER\n    tokenFile: " + tok + "\n"),
			[]string{`test.yaml:4: kafka.sasl.mechanism: OAUTHBEARER without kafka.tls sends the token unencrypted; enable kafka.tls or set kafka.sasl.allowPlaintext: true to allow it`}},
		{"OAUTHBEARER token file empty",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: OAUTHBEARER\n    tokenFile: " + empty + "\n"),
			[]string{`test.yaml:6: kafka.sasl.tokenFile: file ` + empty + ` is empty`}},
		{"OAUTHBEARER token file missing",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: OAUTHBEARER\n    tokenFile: /nonexistent/token\n"),
			[]string{`test.yaml:6: kafka.sasl.tokenFile: reading file: stat /nonexistent/token: no such file or directory`}},
		{"oauth without tokenURL, clientId and secret",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: OAUTHBEARER\n    oauth:\n      scope: [kafka]\n"),
			[]string{
				`test.yaml:6: kafka.sasl.oauth.tokenURL: is required with oauth (the token endpoint, https://...)`,
				`test.yaml:6: kafka.sasl.oauth.clientId: is required with oauth`,
				`test.yaml:6: kafka.sasl.oauth.clientSecret: one of clientSecret or clientSecretFile is required`,
			}},
		{"oauth tokenURL over http, with credentials, not a URL",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: OAUTHBEARER\n    oauth:\n      tokenURL: http://idp/token\n      clientId: c\n      clientSecret: s\n      scope: [\"a b\"]\n"),
			[]string{
				`test.yaml:7: kafka.sasl.oauth.tokenURL: uses http://, which sends the client secret unencrypted; set kafka.sasl.oauth.allowInsecureHTTP: true to allow it`,
				`test.yaml:10: kafka.sasl.oauth.scope[0]: must be one scope without spaces or quotes, got "a b"`,
			}},
		{"oauth tokenURL with user info",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: OAUTHBEARER\n    oauth: {tokenURL: 'https://u:p@idp/token', clientId: c, clientSecretFile: " + secret + "}\n"),
			[]string{`test.yaml:6: kafka.sasl.oauth.tokenURL: must not contain credentials; use clientId and clientSecretFile`}},
		{"oauth with both secrets and a bad CA",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: OAUTHBEARER\n    oauth:\n      tokenURL: https://idp/token\n      clientId: c\n      clientSecret: s\n      clientSecretFile: " + secret + "\n      tls: {caFile: " + tok + "}\n"),
			[]string{
				`test.yaml:10: kafka.sasl.oauth.clientSecretFile: set only one of clientSecret and clientSecretFile`,
				`test.yaml:11: kafka.sasl.oauth.tls.caFile: ` + tok + ` holds no PEM certificate`,
			}},
		{"OAUTHBEARER with a username",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: OAUTHBEARER\n    username: u\n    tokenFile: " + tok + "\n"),
			[]string{`test.yaml:6: kafka.sasl.username: is only used with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, not OAUTHBEARER`}},
		{"OAUTHBEARER extensions malformed, extensions with SCRAM",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: OAUTHBEARER\n    tokenFile: " + tok + "\n    extensions:\n      auth: x\n      logical-cluster: y\n      ok: \"a\\x01b\"\n"),
			[]string{
				`test.yaml:8: kafka.sasl.extensions.auth: an extension name must be letters only, and not auth (RFC 7628)`,
				`test.yaml:9: kafka.sasl.extensions.logical-cluster: an extension name must be letters only, and not auth (RFC 7628)`,
				`test.yaml:10: kafka.sasl.extensions.ok: an extension value must hold no control characters`,
			}},
		{"extensions with SCRAM",
			withKafka("  sasl:\n    mechanism: SCRAM-SHA-256\n    username: u\n    password: p\n    extensions: {logicalCluster: lkc-1}\n"),
			[]string{`test.yaml:7: kafka.sasl.extensions: is only used with mechanism OAUTHBEARER, not SCRAM-SHA-256`}},
		{"token without a mechanism",
			withKafka("  sasl:\n    tokenFile: " + tok + "\n"),
			[]string{`test.yaml:3: kafka.sasl.mechanism: is required when a token, oauth or extensions are set (OAUTHBEARER)`}},
		{"aws without a mechanism",
			withKafka("  sasl:\n    aws: {region: eu-west-1}\n"),
			[]string{`test.yaml:3: kafka.sasl.mechanism: is required when aws is set (AWS_MSK_IAM)`}},
		{"SCRAM with a token file and aws",
			withKafka("  sasl:\n    mechanism: SCRAM-SHA-512\n    username: u\n    password: p\n    tokenFile: " + tok + "\n    aws: {region: eu-west-1}\n"),
			[]string{
				`test.yaml:7: kafka.sasl.tokenFile: is only used with mechanism OAUTHBEARER, not SCRAM-SHA-512`,
				`test.yaml:8: kafka.sasl.aws: is only used with mechanism AWS_MSK_IAM, not SCRAM-SHA-512`,
			}},
		{"AWS_MSK_IAM without region",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: AWS_MSK_IAM\n"),
			[]string{`test.yaml:4: kafka.sasl.aws.region: is required with AWS_MSK_IAM (the cluster's region, like eu-west-1)`}},
		{"AWS_MSK_IAM without TLS",
			withKafka("  sasl:\n    mechanism: AWS_MSK_IAM\n    allowPlaintext: true\n    aws: {region: eu-west-1}\n"),
			[]string{
				`test.yaml:4: kafka.sasl.mechanism: AWS_MSK_IAM requires kafka.tls.enabled: true (MSK serves IAM only over TLS, port 9098)`,
				`test.yaml:5: kafka.sasl.allowPlaintext: is not allowed with AWS_MSK_IAM, which requires TLS`,
			}},
		{"AWS_MSK_IAM region malformed",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: AWS_MSK_IAM\n    aws:\n      region: Ireland\n"),
			[]string{`test.yaml:7: kafka.sasl.aws.region: must be an AWS region like eu-west-1, got "Ireland"`}},
		{"AWS_MSK_IAM secret key file without the key id",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: AWS_MSK_IAM\n    aws:\n      region: eu-west-1\n      secretAccessKeyFile: " + secret + "\n"),
			[]string{`test.yaml:6: kafka.sasl.aws.accessKeyIdFile: is required when secretAccessKeyFile is set`}},
		{"AWS_MSK_IAM session token alone",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: AWS_MSK_IAM\n    aws:\n      region: eu-west-1\n      sessionTokenFile: " + secret + "\n"),
			[]string{`test.yaml:8: kafka.sasl.aws.sessionTokenFile: is only used with accessKeyIdFile and secretAccessKeyFile`}},
		{"AWS_MSK_IAM key file empty",
			withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: AWS_MSK_IAM\n    aws:\n      region: eu-west-1\n      accessKeyIdFile: " + empty + "\n      secretAccessKeyFile: " + secret + "\n"),
			[]string{`test.yaml:8: kafka.sasl.aws.accessKeyIdFile: file ` + empty + ` is empty`}},
		{"registry with basicAuth and oauth",
			strings.Replace(base, "  urls: [http://localhost:8081]", "  urls: [https://registry:8081]\n  basicAuth: {username: u, password: p}\n  oauth: {tokenURL: https://idp/token, clientId: c, clientSecretFile: "+secret+"}", 1),
			[]string{`test.yaml:6: schemaRegistry.oauth: set only one of basicAuth and oauth`}},
		{"registry with a bearer token and oauth",
			strings.Replace(base, "  urls: [http://localhost:8081]", "  urls: [https://registry:8081]\n  bearerToken: t\n  oauth: {tokenURL: https://idp/token, clientId: c, clientSecretFile: "+secret+"}", 1),
			[]string{`test.yaml:6: schemaRegistry.oauth: set only one of bearerToken and oauth`}},
		{"registry oauth incomplete, registry over http",
			strings.Replace(base, "  urls: [http://localhost:8081]", "  urls: [http://localhost:8081]\n  oauth:\n    clientId: c", 1),
			[]string{
				`test.yaml:4: schemaRegistry.urls[0]: uses http://, which sends the registry credentials unencrypted; set schemaRegistry.allowInsecureHTTP: true to allow it`,
				`test.yaml:5: schemaRegistry.oauth.tokenURL: is required with oauth (the token endpoint, https://...)`,
				`test.yaml:5: schemaRegistry.oauth.clientSecret: one of clientSecret or clientSecretFile is required`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(tt.data, nil)
			if cfg != nil {
				t.Errorf("got a config with errors")
			}
			if diff := cmp.Diff(tt.want, errLines(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nconfig:\n%s", diff, tt.data)
			}
		})
	}
}

// TestAuthWarnings: plaintext OAUTHBEARER and an unverified or http:// token endpoint load, and
// are warned about.
func TestAuthWarnings(t *testing.T) {
	data := withKafka("  sasl:\n    mechanism: OAUTHBEARER\n    allowPlaintext: true\n    oauth:\n      tokenURL: http://idp/token\n      allowInsecureHTTP: true\n      clientId: c\n      clientSecret: s\n      tls: {insecureSkipVerify: true}\n")
	data = strings.Replace(data, "  urls: [http://localhost:8081]", "  urls: [https://localhost:8081]\n  oauth: {tokenURL: https://idp/token, clientId: c, clientSecret: s, tls: {insecureSkipVerify: true}}", 1)
	cfg, err := parse(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range cfg.Warnings() {
		got = append(got, w.String())
	}
	want := []string{
		`test.yaml:5: kafka.sasl.allowPlaintext: SASL OAUTHBEARER without TLS: the token is sent unencrypted`,
		`test.yaml:8: kafka.sasl.oauth.allowInsecureHTTP: kafka.sasl.oauth.tokenURL uses http://: the client secret and the tokens are sent unencrypted`,
		`test.yaml:11: kafka.sasl.oauth.tls.insecureSkipVerify: the token endpoint's certificate is not verified; anyone on the path can impersonate it and read the client secret`,
		`test.yaml:15: schemaRegistry.oauth.tls.insecureSkipVerify: the token endpoint's certificate is not verified; anyone on the path can impersonate it and read the client secret`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// initialToken returns the token of an OAUTHBEARER client-first message.
func initialToken(t *testing.T, m sasl.Mechanism) string {
	t.Helper()
	_, first, err := m.Authenticate(context.Background(), "broker:9093")
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	s := string(first)
	_, after, ok := strings.Cut(s, "\x01auth=Bearer ")
	tok, _, ok2 := strings.Cut(after, "\x01")
	if !ok || !ok2 || !strings.HasPrefix(s, "n,,") {
		t.Fatalf("not an OAUTHBEARER client-first message: %q", s)
	}
	return tok
}

func saslMechanism(t *testing.T, data string) (sasl.Mechanism, *[]string) {
	t.Helper()
	cfg, err := parse(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	var mu sync.Mutex
	opts, err := cfg.KafkaOptsNotify(func(f string) { mu.Lock(); changes = append(changes, f); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	mechs, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism)
	if len(mechs) != 1 {
		t.Fatalf("SASL mechanisms = %v", mechs)
	}
	return mechs[0], &changes
}

// TestOAuthBearerTokenFile: the token file is read on each authentication.
func TestOAuthBearerTokenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	writeFile(t, file, "token-1\n")
	m, changes := saslMechanism(t, withKafka("  tls: {enabled: true}\n  sasl: {mechanism: OAUTHBEARER, tokenFile: "+file+"}\n"))
	if m.Name() != "OAUTHBEARER" {
		t.Fatalf("mechanism %s", m.Name())
	}
	if got := initialToken(t, m); got != "token-1" {
		t.Errorf("first token %q", got)
	}
	writeFile(t, file, "token-2")
	if got := initialToken(t, m); got != "token-2" || !slices.Equal(*changes, []string{file}) {
		t.Errorf("after the rewrite: token %q, changes %q", got, *changes)
	}

	// Extensions (Confluent Cloud's) follow the token, sorted.
	m, _ = saslMechanism(t, withKafka("  tls: {enabled: true}\n  sasl:\n    mechanism: OAUTHBEARER\n    tokenFile: "+file+"\n    extensions: {logicalCluster: lkc-1, identityPoolId: pool-2}\n"))
	_, first, err := m.Authenticate(context.Background(), "broker:9093")
	if err != nil {
		t.Fatal(err)
	}
	if want := "n,,\x01auth=Bearer token-2\x01identityPoolId=pool-2\x01logicalCluster=lkc-1\x01\x01"; string(first) != want {
		t.Errorf("client-first message %q, want %q", first, want)
	}
}

// tokenServer is an OAuth token endpoint (client-credentials grant) over TLS: it checks the
// client's id and secret, and issues tokens "tok-N" valid for lifetime.
type tokenServer struct {
	*httptest.Server
	caFile string

	mu       sync.Mutex
	secret   string // the client secret it accepts
	issued   int
	scopes   []string
	lifetime time.Duration
}

func newTokenServer(t *testing.T, secret string, lifetime time.Duration) *tokenServer {
	ts := &tokenServer{secret: secret, lifetime: lifetime}
	ts.Server = httptest.NewUnstartedServer(http.HandlerFunc(ts.serve))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-certificate case logs a handshake error
	ts.StartTLS()
	t.Cleanup(ts.Close)
	ts.caFile = filepath.Join(t.TempDir(), "token-ca.pem")
	writeFile(t, ts.caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})))
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost || r.URL.Path != "/token" || r.PostForm.Get("grant_type") != "client_credentials" {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != "connector" || secret != ts.secret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		// An endpoint echoing what it was sent must not get it into our errors.
		fmt.Fprintf(w, `{"error":"invalid_client","error_description":"bad secret %s"}`, secret)
		return
	}
	ts.issued++
	ts.scopes = append(ts.scopes, r.PostForm.Get("scope"))
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":%d}`, ts.issued, int(ts.lifetime.Seconds()))
}

func (ts *tokenServer) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.issued
}

// TestOAuthClientCredentials: the token comes from the endpoint over its own TLS (trusting
// only tls.caFile), is reused while valid, fetched again when it nears expiry, and the client
// secret file is read again for each token request. A refused secret does not reach the error.
func TestOAuthClientCredentials(t *testing.T) {
	ts := newTokenServer(t, "secret-1", time.Hour)
	secretFile := filepath.Join(t.TempDir(), "client-secret")
	writeFile(t, secretFile, "secret-1\n")
	m, changes := saslMechanism(t, withKafka(`  tls: {enabled: true}
  sasl:
    mechanism: OAUTHBEARER
    oauth:
      tokenURL: `+ts.URL+`/token
      clientId: connector
      clientSecretFile: `+secretFile+`
      scope: [kafka, "api://x/.default"]
      tls: {caFile: `+ts.caFile+`}
`))
	if got := initialToken(t, m); got != "tok-1" {
		t.Errorf("first token %q", got)
	}
	if got := initialToken(t, m); got != "tok-1" || ts.count() != 1 {
		t.Errorf("second authentication: token %q after %d token requests; want tok-1 reused", got, ts.count())
	}
	if want := []string{"kafka api://x/.default"}; !slices.Equal(ts.scopes, want) {
		t.Errorf("scopes asked %q, want %q", ts.scopes, want)
	}

	// Tokens that expire within oauth2's 10 s delta are fetched again at every use; the
	// rotated secret is read for the request.
	ts.mu.Lock()
	ts.lifetime, ts.secret = 5*time.Second, "secret-2"
	ts.mu.Unlock()
	writeFile(t, secretFile, "secret-2\n")
	// tok-1 is still valid for an hour: no request yet.
	if got := initialToken(t, m); got != "tok-1" {
		t.Errorf("token %q, want tok-1 while it is valid", got)
	}

	// A fresh source sees the short lifetime: each use fetches anew.
	m2, _ := saslMechanism(t, withKafka(`  tls: {enabled: true}
  sasl:
    mechanism: OAUTHBEARER
    oauth: {tokenURL: `+ts.URL+`/token, clientId: connector, clientSecretFile: `+secretFile+`, tls: {caFile: `+ts.caFile+`}}
`))
	a, b := initialToken(t, m2), initialToken(t, m2)
	if a != "tok-2" || b != "tok-3" {
		t.Errorf("tokens expiring within 10s: got %q then %q, want tok-2 then tok-3 (refreshed)", a, b)
	}
	_ = changes

	// A refused secret: the error names the endpoint and status, not the secret it echoed.
	writeFile(t, secretFile, "wrong-secret")
	m3, _ := saslMechanism(t, withKafka(`  tls: {enabled: true}
  sasl:
    mechanism: OAUTHBEARER
    oauth: {tokenURL: `+ts.URL+`/token, clientId: connector, clientSecretFile: `+secretFile+`, tls: {caFile: `+ts.caFile+`}}
`))
	_, _, err := m3.Authenticate(context.Background(), "broker:9093")
	if err == nil || strings.Contains(err.Error(), "wrong-secret") || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("refused secret: error %v; want the status and error code, never the secret", err)
	}

	// Without caFile, the endpoint's certificate is not trusted.
	m4, _ := saslMechanism(t, withKafka(`  tls: {enabled: true}
  sasl:
    mechanism: OAUTHBEARER
    oauth: {tokenURL: `+ts.URL+`/token, clientId: connector, clientSecret: secret-2}
`))
	if _, _, err := m4.Authenticate(context.Background(), "broker:9093"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted token endpoint: error %v, want a certificate error", err)
	}
}

// TestRegistryOAuth: registry requests carry the client-credentials token, refreshed when it
// nears expiry, over the registry's own TLS settings.
func TestRegistryOAuth(t *testing.T) {
	ts := newTokenServer(t, "reg-secret", 5*time.Second) // within the 10 s delta: fetched per request
	var mu sync.Mutex
	var auths []string
	reg := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[]`))
	}))
	defer reg.Close()
	regCA := filepath.Join(t.TempDir(), "reg-ca.pem")
	writeFile(t, regCA, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: reg.Certificate().Raw})))
	data := strings.Replace(base, "  urls: [http://localhost:8081]", `  urls: [`+reg.URL+`]
  tls: {caFile: `+regCA+`}
  oauth:
    tokenURL: `+ts.URL+`/token
    clientId: connector
    clientSecret: ${REG_SECRET}
    tls: {caFile: `+ts.caFile+`}`, 1)
	cfg, err := parse(data, map[string]string{"REG_SECRET": "reg-secret"})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cfg.RegistryOpts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := cl.Subjects(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"Bearer tok-1", "Bearer tok-2"}; !slices.Equal(auths, want) {
		t.Errorf("registry saw %q, want %q", auths, want)
	}
}

// mskHost is an MSK broker's name: the region is read from it.
const mskHost = "b-1.orders.abc123.c2.kafka.eu-west-1.amazonaws.com:9098"

// mskAuth runs m's first step against mskHost and returns the message's fields.
func mskAuth(t *testing.T, m sasl.Mechanism) map[string]string {
	t.Helper()
	_, first, err := m.Authenticate(context.Background(), mskHost)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	var msg map[string]string
	if err := json.Unmarshal(first, &msg); err != nil {
		t.Fatalf("AWS_MSK_IAM message is not a JSON object: %v", err)
	}
	return msg
}

// checkSigned checks that msg is the AWS_MSK_IAM message for creds: the fields the MSK
// broker reads, and a SigV4 query signature equal to the one the AWS SDK's own signer computes
// for the same request (GET / with Action=kafka-cluster:Connect, valid 900 s, host signed).
func checkSigned(t *testing.T, msg map[string]string, creds aws.Credentials) {
	t.Helper()
	host := strings.TrimSuffix(mskHost, ":9098")
	for k, want := range map[string]string{
		"version": "2020_10_22", "host": host, "action": "kafka-cluster:Connect",
		"x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-expires": "900", "x-amz-signedheaders": "host",
	} {
		if msg[k] != want {
			t.Errorf("%s = %q, want %q", k, msg[k], want)
		}
	}
	at, err := time.Parse("20060102T150405Z", msg["x-amz-date"])
	if err != nil {
		t.Fatalf("x-amz-date %q: %v", msg["x-amz-date"], err)
	}
	if want := creds.AccessKeyID + "/" + at.Format("20060102") + "/eu-west-1/kafka-cluster/aws4_request"; msg["x-amz-credential"] != want {
		t.Errorf("x-amz-credential = %q, want %q", msg["x-amz-credential"], want)
	}
	if msg["x-amz-security-token"] != creds.SessionToken {
		t.Errorf("x-amz-security-token = %q, want %q", msg["x-amz-security-token"], creds.SessionToken)
	}
	req, _ := http.NewRequest(http.MethodGet, "https://"+host+"/?Action=kafka-cluster%3AConnect&X-Amz-Expires=900", nil)
	const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, emptyHash, "kafka-cluster", "eu-west-1", at)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	if want := u.Query().Get("X-Amz-Signature"); msg["x-amz-signature"] != want || want == "" {
		t.Errorf("x-amz-signature = %q, the AWS SDK signer computes %q", msg["x-amz-signature"], want)
	}
	for _, v := range msg {
		if strings.Contains(v, creds.SecretAccessKey) {
			t.Errorf("the message carries the secret access key")
		}
	}
}

// isolateAWS keeps the AWS SDK's default chain from finding anything on this machine.
func isolateAWS(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

const mskIAMConfig = "  tls: {enabled: true}\n  sasl:\n    mechanism: AWS_MSK_IAM\n    aws:\n      region: eu-west-1\n"

// TestMSKIAMStaticKeyFiles: keys from files sign a message the AWS SDK's signer agrees with;
// rewritten files are used at the next authentication.
func TestMSKIAMStaticKeyFiles(t *testing.T) {
	isolateAWS(t)
	dir := t.TempDir()
	id, key, session := filepath.Join(dir, "id"), filepath.Join(dir, "key"), filepath.Join(dir, "session")
	writeFile(t, id, "AKIAFILEKEY1\n")
	writeFile(t, key, "file-secret-1\n")
	writeFile(t, session, "file-session-1\n")
	m, changes := saslMechanism(t, withKafka(mskIAMConfig+"      accessKeyIdFile: "+id+"\n      secretAccessKeyFile: "+key+"\n      sessionTokenFile: "+session+"\n"))
	if m.Name() != "AWS_MSK_IAM" {
		t.Fatalf("mechanism %s", m.Name())
	}
	checkSigned(t, mskAuth(t, m), aws.Credentials{AccessKeyID: "AKIAFILEKEY1", SecretAccessKey: "file-secret-1", SessionToken: "file-session-1"})
	writeFile(t, id, "AKIAFILEKEY2")
	writeFile(t, key, "file-secret-2")
	writeFile(t, session, "file-session-2")
	checkSigned(t, mskAuth(t, m), aws.Credentials{AccessKeyID: "AKIAFILEKEY2", SecretAccessKey: "file-secret-2", SessionToken: "file-session-2"})
	if len(*changes) != 3 {
		t.Errorf("changes reported: %q, want the three files", *changes)
	}
}

// TestMSKIAMEnvironment: without key files the AWS SDK's default chain is used, here its
// first source, the environment.
func TestMSKIAMEnvironment(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAENVKEY")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	t.Setenv("AWS_SESSION_TOKEN", "env-session")
	m, _ := saslMechanism(t, withKafka(mskIAMConfig))
	checkSigned(t, mskAuth(t, m), aws.Credentials{AccessKeyID: "AKIAENVKEY", SecretAccessKey: "env-secret", SessionToken: "env-session"})
}

// TestMSKIAMWebIdentity: IRSA's variables (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) make the
// default chain call STS AssumeRoleWithWebIdentity with the projected token, here against a
// fake STS (AWS_ENDPOINT_URL_STS); its temporary credentials sign the message and are cached
// until they near expiry.
func TestMSKIAMWebIdentity(t *testing.T) {
	isolateAWS(t)
	var mu sync.Mutex
	var calls []url.Values
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		calls = append(calls, r.PostForm)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIASTSKEY</AccessKeyId>
      <SecretAccessKey>sts-secret</SecretAccessKey>
      <SessionToken>sts-session</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>system:serviceaccount:kafka:augment-connector</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/msk-reader/session</Arn>
      <AssumedRoleId>AROAEXAMPLE:session</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	defer sts.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFile(t, tokenFile, "projected-sa-token")
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/msk-reader")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	m, _ := saslMechanism(t, withKafka(mskIAMConfig))
	creds := aws.Credentials{AccessKeyID: "ASIASTSKEY", SecretAccessKey: "sts-secret", SessionToken: "sts-session"}
	checkSigned(t, mskAuth(t, m), creds)
	checkSigned(t, mskAuth(t, m), creds)
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 {
		t.Fatalf("STS called %d times, want once (the credential cache reuses valid credentials)", len(calls))
	}
	c := calls[0]
	if c.Get("Action") != "AssumeRoleWithWebIdentity" || c.Get("RoleArn") != "arn:aws:iam::123456789012:role/msk-reader" || c.Get("WebIdentityToken") != "projected-sa-token" {
		t.Errorf("STS request: %v", c)
	}
}

// TestMSKIAMNoCredentials: with nothing in the chain, authentication fails with the SDK's
// error, before anything is sent.
func TestMSKIAMNoCredentials(t *testing.T) {
	isolateAWS(t)
	m, _ := saslMechanism(t, withKafka(mskIAMConfig))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, _, err := m.Authenticate(ctx, mskHost); err == nil || !strings.Contains(err.Error(), "kafka.sasl.aws: retrieving AWS credentials") {
		t.Errorf("Authenticate without credentials: %v", err)
	}
}

// TestJWTExpiry: a token answered without expires_in is not reused forever: a JWT's exp
// decides, and an opaque token is fetched again after noExpiryRefresh.
func TestJWTExpiry(t *testing.T) {
	exp := time.Unix(2_000_000_000, 0)
	enc := base64.RawURLEncoding
	jwt := enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + enc.EncodeToString([]byte(`{"sub":"a","exp":2000000000}`)) + "."
	for tok, want := range map[string]time.Time{
		jwt:            exp,
		"opaque-token": {},
		"a.b.c":        {},
		"x." + enc.EncodeToString([]byte(`{"exp":"soon"}`)) + ".": {},
	} {
		if got := jwtExpiry(tok); !got.Equal(want) {
			t.Errorf("jwtExpiry(%q) = %v, want %v", tok, got, want)
		}
	}

	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer"}`, jwt)
	}))
	defer srv.Close()
	o := &OAuthConfig{TokenURL: srv.URL, ClientID: "c", ClientSecret: "s", AllowInsecureHTTP: true}
	ts, err := o.TokenSource(nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Expiry.Equal(exp) {
		t.Errorf("token without expires_in expires at %v, want its exp claim %v", tok.Expiry, exp)
	}
}
