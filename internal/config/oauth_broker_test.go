package config

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The tests below authenticate with OAUTHBEARER against the real broker of scripts/kafka.sh
// (KAFKA_OAUTH_BROKERS, which .ci/run sets from .cache/kafka/env). The in-process fake cluster
// has no OAUTHBEARER, so without the real broker they skip, saying so; the token-source wiring
// they rely on is unit-tested in auth_test.go either way.

func oauthBrokerOrSkip(t *testing.T) (seeds []string, caFile string) {
	t.Helper()
	seeds, caFile, ok := kafkatest.OAuthFromEnv(t)
	if !ok {
		t.Skipf("%s is not set: the in-process fake cluster has no OAUTHBEARER, so this test needs the real broker (scripts/kafka.sh up, then export .cache/kafka/env; .ci/run does)", kafkatest.EnvOAuthBrokers)
	}
	return seeds, caFile
}

// oauthConfig is base with the brokers, TLS trusting caFile, and sasl as given.
func oauthConfig(t *testing.T, seeds []string, caFile, sasl string) *Config {
	t.Helper()
	data := strings.Replace(base, "  brokers: [localhost:9092]",
		"  brokers: ["+strings.Join(seeds, ", ")+"]\n  tls: {enabled: true, caFile: "+caFile+"}\n"+sasl, 1)
	cfg, err := parse(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// produceConsume creates a topic, produces n records and consumes them back with a second
// client, all with opts.
func produceConsume(ctx context.Context, t *testing.T, opts []kgo.Opt, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("creating topic over OAUTHBEARER: %v", err)
	}
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing over OAUTHBEARER: %v", err)
	}
	consumer, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	got := 0
	for got < n {
		fs := consumer.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consuming over OAUTHBEARER after %d records: %v", got, err)
		}
		got += fs.NumRecords()
	}
}

// jwtServer is an OAuth token endpoint (client-credentials grant, over TLS) issuing unsecured
// JWTs valid for lifetime.
type jwtServer struct {
	*httptest.Server
	caFile   string
	lifetime time.Duration

	mu     sync.Mutex
	issued []time.Time // the expiry of each token issued
}

func newJWTServer(t *testing.T, lifetime time.Duration) *jwtServer {
	s := &jwtServer{lifetime: lifetime}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			_ = r.ParseForm()
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if r.FormValue("grant_type") != "client_credentials" || id != "augment-connector" || secret != "oauth-secret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		now := time.Now()
		exp := now.Add(s.lifetime)
		s.mu.Lock()
		s.issued = append(s.issued, exp)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": kafkatest.UnsecuredJWT("augment-connector", now, exp, r.FormValue("scope")),
			"token_type":   "Bearer",
			"expires_in":   int(s.lifetime.Seconds()),
		})
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	s.caFile = filepath.Join(t.TempDir(), "idp-ca.pem")
	writeFile(t, s.caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})))
	return s
}

func (s *jwtServer) tokens() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.issued...)
}

// TestOAuthBearerClientCredentialsRealBroker: the connector's Kafka options, built from a
// config with mechanism OAUTHBEARER and oauth, get a JWT from a token endpoint served by the
// test and authenticate with it to the real broker; the tokens live 12 s (so oauth2 fetches a
// new one after 2 s, its expiry delta being 10 s) and the broker ends sessions when their token
// expires (connections.max.reauth.ms), so producing after the first token expired needs a
// refreshed token, on re-authenticated or new connections.
func TestOAuthBearerClientCredentialsRealBroker(t *testing.T) {
	seeds, caFile := oauthBrokerOrSkip(t)
	idp := newJWTServer(t, 12*time.Second)
	secretFile := filepath.Join(t.TempDir(), "client-secret")
	writeFile(t, secretFile, "oauth-secret\n")
	cfg := oauthConfig(t, seeds, caFile, `  sasl:
    mechanism: OAUTHBEARER
    oauth:
      tokenURL: `+idp.URL+`/token
      clientId: augment-connector
      clientSecretFile: `+secretFile+`
      scope: [kafka]
      tls: {caFile: `+idp.caFile+`}
`)
	opts, err := cfg.KafkaOpts()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	topic := kafkatest.UniqueName(t, "oauth")
	produceConsume(ctx, t, opts, topic, 5)
	// A client whose connections outlive the first token: the broker ends their sessions at
	// its expiry, so they re-authenticate (or reconnect) with a refreshed one.
	longLived, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer longLived.Close()
	if err := longLived.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("before expiry")}).FirstErr(); err != nil {
		t.Fatalf("producing before the first token expired: %v", err)
	}
	first := idp.tokens()
	if len(first) == 0 {
		t.Fatal("the broker accepted the client without a token from the endpoint")
	}

	// Wait past the first token's expiry; the same options (the same token source) must go on
	// working with a refreshed token.
	if d := time.Until(first[0]) + time.Second; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	if err := longLived.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("after expiry")}).FirstErr(); err != nil {
		t.Fatalf("producing on connections opened with the expired token: %v", err)
	}
	produceConsume(ctx, t, opts, topic, 12)
	all := idp.tokens()
	if len(all) <= len(first) {
		t.Errorf("no token fetched after the first expired (%d tokens in all)", len(all))
	}
	t.Logf("%d tokens issued; the broker accepted tokens issued after the first expired", len(all))
}

// TestOAuthBearerTokenFileRealBroker: a static token from tokenFile authenticates to the real
// broker; the file is read again at every authentication, so an expired token written to it
// is refused by the broker (proving it validates the token), and a fresh one works again,
// through the same options.
func TestOAuthBearerTokenFileRealBroker(t *testing.T) {
	seeds, caFile := oauthBrokerOrSkip(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	now := time.Now()
	writeFile(t, tokenFile, kafkatest.UnsecuredJWT("augment-connector", now, now.Add(time.Hour), "")+"\n")
	cfg := oauthConfig(t, seeds, caFile, "  sasl: {mechanism: OAUTHBEARER, tokenFile: "+tokenFile+"}\n")
	opts, err := cfg.KafkaOpts()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	topic := kafkatest.UniqueName(t, "oauthfile")
	produceConsume(ctx, t, opts, topic, 3)

	writeFile(t, tokenFile, kafkatest.UnsecuredJWT("augment-connector", now.Add(-2*time.Hour), now.Add(-time.Hour), ""))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
	err = cl.Ping(pctx)
	pcancel()
	cl.Close()
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("Ping with an expired token from the file = %v, want SASL_AUTHENTICATION_FAILED", err)
	}

	writeFile(t, tokenFile, kafkatest.UnsecuredJWT("augment-connector", time.Now(), time.Now().Add(time.Hour), ""))
	produceConsume(ctx, t, opts, topic, 6)
}
