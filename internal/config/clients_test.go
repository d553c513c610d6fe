package config

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sr"
)

// writeCert writes a self-signed certificate and its key as PEM files in dir.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test-ca"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IsCA:         true,
		KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKafkaOpts(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	writeFile(t, filepath.Join(dir, "pw"), "kafka-pw\n")
	data := strings.Replace(base, "  brokers: [localhost:9092]", `  brokers: [k1:9092, k2:9093]
  clientId: my-client
  startOffset: latest
  fetchMaxBytes: 200MiB
  sessionTimeout: 20s
  heartbeatInterval: 2s
  tls: {enabled: true, caFile: `+certFile+`, certFile: `+certFile+`, keyFile: `+keyFile+`, serverName: kafka.internal}
  sasl: {mechanism: SCRAM-SHA-512, username: u, passwordFile: `+filepath.Join(dir, "pw")+`}`, 1)
	cfg, cl := kafkaClient(t, data)

	got := []any{
		cl.OptValue(kgo.SeedBrokers), cl.OptValue(kgo.ClientID), cl.OptValue(kgo.FetchMaxBytes),
		cl.OptValue(kgo.BrokerMaxReadBytes), cl.OptValue(kgo.FetchMaxWait), cl.OptValue(kgo.SessionTimeout),
		cl.OptValue(kgo.RebalanceTimeout), cl.OptValue(kgo.HeartbeatInterval), cl.OptValue(kgo.DialTimeout),
	}
	want := []any{
		[]string{"k1:9092", "k2:9093"}, "my-client", int32(200 << 20),
		int32(200 << 20), 500 * time.Millisecond, 20 * time.Second,
		60 * time.Second, 2 * time.Second, 10 * time.Second,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("options (-want +got):\n%s", diff)
	}
	tc, _ := cl.OptValue(kgo.DialTLSConfig).(*tls.Config)
	if tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "kafka.internal" || tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS config = %+v", tc)
	}
	mechs, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism)
	if len(mechs) != 1 || mechs[0].Name() != "SCRAM-SHA-512" {
		t.Errorf("SASL mechanisms = %v", mechs)
	}
	if got := string(cfg.Kafka.SASL.Password); got != "kafka-pw" {
		t.Errorf("password read from file = %q", got)
	}
	if got, want := cfg.Kafka.ResetOffset().String(), kgo.NewOffset().AtEnd().String(); got != want {
		t.Errorf("ResetOffset = %s, want %s", got, want)
	}
}

// kafkaClient parses data and builds a kgo client (not connected) from its KafkaOpts, closed
// when the test ends, so the options can be read back with OptValue.
func kafkaClient(t *testing.T, data string) (*Config, *kgo.Client) {
	t.Helper()
	cfg, err := parse(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cfg.KafkaOpts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cfg, cl
}

func TestKafkaOptsPlainDefaults(t *testing.T) {
	cfg, cl := kafkaClient(t, base)
	if tc := cl.OptValue(kgo.DialTLSConfig).(*tls.Config); tc != nil {
		t.Errorf("TLS enabled without kafka.tls.enabled: %+v", tc)
	}
	if m := cl.OptValue(kgo.SASL).([]sasl.Mechanism); len(m) != 0 {
		t.Errorf("SASL without a mechanism: %v", m)
	}
	if got, want := cfg.Kafka.ResetOffset().String(), kgo.NewOffset().AtStart().String(); got != want {
		t.Errorf("ResetOffset = %s, want %s", got, want)
	}
}

func TestRegistryOpts(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pw"), "reg-pw\n")
	writeFile(t, filepath.Join(dir, "bearer"), "reg-bearer")
	tests := []struct {
		name, auth, want string
	}{
		{"basic", "  basicAuth: {username: reg-user, passwordFile: " + filepath.Join(dir, "pw") + "}",
			"Basic " + base64.StdEncoding.EncodeToString([]byte("reg-user:reg-pw"))},
		{"bearer", "  bearerTokenFile: " + filepath.Join(dir, "bearer"), "Bearer reg-bearer"},
		{"none", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotAuth, gotPath string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotAuth, gotPath = r.Header.Get("Authorization"), r.URL.Path
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`["a-value"]`))
			}))
			defer srv.Close()
			data := strings.Replace(base, "  urls: [http://localhost:8081]", "  urls: ["+srv.URL+"]\n  allowInsecureHTTP: true\n"+tt.auth, 1)
			cfg, err := parse(data, nil)
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
			subjects, err := cl.Subjects(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]any{[]string{"a-value"}, "/subjects", tt.want}, []any{subjects, gotPath, gotAuth}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if cfg.SchemaRegistry.URLs[0] != srv.URL {
				t.Errorf("URLs changed to %v", cfg.SchemaRegistry.URLs)
			}
		})
	}
}

// The tenant's TLS config trusts caFile, which is how the connector reaches the simulator.
func TestHTTPTLSConfig(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted attempt logs a handshake error
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))

	get := func(t *testing.T, extra string) error {
		t.Helper()
		data := strings.Replace(base, "    cluster: vcc-na12", "    baseURL: "+srv.URL+"/\n"+extra, 1)
		cfg, err := parse(data, nil)
		if err != nil {
			t.Fatal(err)
		}
		tn := cfg.Tenants["main"]
		if tn.BaseURL() != srv.URL {
			t.Errorf("BaseURL() = %q, want %q", tn.BaseURL(), srv.URL)
		}
		tc, err := tn.HTTPTLSConfig()
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{TLSClientConfig: tc}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(tn.BaseURL() + "/api/v1/interaction/data/x")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(t, "    caFile: "+caFile); err != nil {
		t.Errorf("with caFile: %v", err)
	}
	if err := get(t, ""); err == nil {
		t.Errorf("without caFile the test server's certificate was trusted")
	}
}

func TestBaseURL(t *testing.T) {
	for _, tt := range []struct {
		tenant TenantConfig
		want   string
	}{
		{TenantConfig{Cluster: "vcc-na12"}, "https://vcc-na12.8x8.com"},
		{TenantConfig{URL: "https://127.0.0.1:8443/"}, "https://127.0.0.1:8443"},
		{TenantConfig{URL: "https://proxy.internal/8x8"}, "https://proxy.internal/8x8"},
	} {
		if got := tt.tenant.BaseURL(); got != tt.want {
			t.Errorf("BaseURL() = %q, want %q", got, tt.want)
		}
	}
}

func TestTLSFileErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, _ := writeCert(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	writeFile(t, notPEM, "not a certificate")
	data := strings.NewReplacer(
		"  brokers: [localhost:9092]", "  brokers: [localhost:9092]\n  tls: {enabled: true, certFile: "+certFile+", keyFile: "+notPEM+"}",
		"    token: s3cr3t-token", "    token: s3cr3t-token\n    caFile: "+notPEM,
		"  urls: [http://localhost:8081]", "  urls: [http://localhost:8081]\n  tls: {caFile: "+dir+"}",
	).Replace(base)
	_, err := parse(data, nil)
	want := []string{
		`test.yaml:3: kafka.tls.certFile: loading key pair: tls: failed to find any PEM data in key input`,
		`test.yaml:6: schemaRegistry.tls.caFile: reading file: ` + dir + ` is not a regular file`,
		`test.yaml:12: tenants.main.caFile: ` + notPEM + ` holds no PEM certificate`,
	}
	if diff := cmp.Diff(want, errLines(t, err)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The SASL password of passwordFile is read at each authentication: after the file is
// rewritten, the next authentication sends the new password and the change is reported once,
// by file name; a file that cannot be read keeps the last good password.
func TestSASLPasswordFileReread(t *testing.T) {
	for _, mech := range []string{SASLPlain, SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "kafka-pw")
			writeFile(t, file, "old-pw\n")
			data := strings.Replace(base, "  brokers: [localhost:9092]",
				"  brokers: [localhost:9092]\n  sasl: {mechanism: "+mech+", username: u, allowPlaintext: true, passwordFile: "+file+"}", 1)
			cfg, err := parse(data, nil)
			if err != nil {
				t.Fatal(err)
			}
			var changes []string
			s := &cfg.Kafka.SASL
			a := &rereadSecret{file: s.PasswordFile, val: s.Password, onChange: func(f string) { changes = append(changes, f) }}
			steps := []struct {
				write   string // "" leaves the file; "-" removes it
				want    string
				changes int
			}{
				{want: "old-pw"},
				{write: "new-pw\n", want: "new-pw", changes: 1},
				{want: "new-pw", changes: 1},
				{write: "-", want: "new-pw", changes: 1},
				{write: "newer-pw", want: "newer-pw", changes: 2},
			}
			for i, st := range steps {
				switch st.write {
				case "":
				case "-":
					if err := os.Remove(file); err != nil {
						t.Fatal(err)
					}
				default:
					writeFile(t, file, st.write)
				}
				if got := string(a.get()); got != st.want || len(changes) != st.changes {
					t.Errorf("step %d: password %q, %d changes; want %q, %d", i, got, len(changes), st.want, st.changes)
				}
			}
			for _, c := range changes {
				if c != file {
					t.Errorf("change reported as %q, want the file name", c)
				}
			}
		})
	}
	// And through the mechanism kgo is given: PLAIN's first message carries the password.
	dir := t.TempDir()
	file := filepath.Join(dir, "kafka-pw")
	writeFile(t, file, "old-pw")
	s := &SASLConfig{Mechanism: SASLPlain, Username: "u", Password: "old-pw", PasswordFile: file}
	m, err := s.mechanism(nil)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, file, "new-pw")
	_, first, err := m.Authenticate(context.Background(), "broker:9092")
	if err != nil {
		t.Fatal(err)
	}
	if want := "\x00u\x00new-pw"; string(first) != want {
		t.Errorf("PLAIN sends %q, want %q", first, want)
	}
}

// The registry's passwordFile and bearerTokenFile are read before each request: after the file
// is rewritten, the next request carries the new secret and the change is reported once.
func TestRegistrySecretFileReread(t *testing.T) {
	basic := func(pw string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte("reg-user:"+pw)) }
	tests := []struct {
		name, key, old, new, wantOld, wantNew string
	}{
		{"basic", "  basicAuth: {username: reg-user, passwordFile: %s}", "pw-1\n", "pw-2\n", basic("pw-1"), basic("pw-2")},
		{"bearer", "  bearerTokenFile: %s", "tok-1", "tok-2", "Bearer tok-1", "Bearer tok-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "secret")
			writeFile(t, file, tt.old)
			var gotAuth string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotAuth = r.Header.Get("Authorization")
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`[]`))
			}))
			defer srv.Close()
			data := strings.Replace(base, "  urls: [http://localhost:8081]", "  urls: ["+srv.URL+"]\n  allowInsecureHTTP: true\n"+fmt.Sprintf(tt.key, file), 1)
			cfg, err := parse(data, nil)
			if err != nil {
				t.Fatal(err)
			}
			var changes []string
			opts, err := cfg.RegistryOptsNotify(func(f string) { changes = append(changes, f) })
			if err != nil {
				t.Fatal(err)
			}
			cl, err := sr.NewClient(opts...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Subjects(context.Background()); err != nil {
				t.Fatal(err)
			}
			if gotAuth != tt.wantOld || len(changes) != 0 {
				t.Errorf("before the rewrite: %q, %d changes; want %q, 0", gotAuth, len(changes), tt.wantOld)
			}
			writeFile(t, file, tt.new)
			if _, err := cl.Subjects(context.Background()); err != nil {
				t.Fatal(err)
			}
			if gotAuth != tt.wantNew || !slices.Equal(changes, []string{file}) {
				t.Errorf("after the rewrite: %q, changes %q; want %q, [%s]", gotAuth, changes, tt.wantNew, file)
			}
		})
	}
}
