package kafkatest

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"testing"
	"time"
)

// EnvOAuthBrokers names the variable holding a real SASL_SSL listener that accepts OAUTHBEARER
// with Kafka's built-in unsecured JWT validator (scripts/kafka.sh writes it: the same listener
// as KAFKA_SASL_BROKERS, trusted through KAFKA_SASL_CA).
const EnvOAuthBrokers = "KAFKA_OAUTH_BROKERS"

// OAuthFromEnv returns the OAUTHBEARER listener's seeds and the path of the CA that signed it;
// ok is false when KAFKA_OAUTH_BROKERS is unset. The fake cluster has no OAUTHBEARER, so tests
// of it need the real broker: they skip, saying so, when ok is false. The test fails when the
// variable is set but KAFKA_SASL_CA is not, or the listener does not accept a connection in 10 s.
func OAuthFromEnv(t testing.TB) (seeds []string, caFile string, ok bool) {
	t.Helper()
	env := os.Getenv(EnvOAuthBrokers)
	if env == "" {
		return nil, "", false
	}
	caFile = os.Getenv(EnvSASLCA)
	if caFile == "" {
		t.Fatalf("kafkatest: %s is set, so %s must be too", EnvOAuthBrokers, EnvSASLCA)
	}
	if _, err := os.Stat(caFile); err != nil {
		t.Fatalf("kafkatest: %s: %v", EnvSASLCA, err)
	}
	seeds = splitSeeds(env)
	deadline := time.Now().Add(reachTimeout)
	for {
		c, err := net.DialTimeout("tcp", seeds[0], time.Second)
		if err == nil {
			c.Close()
			return seeds, caFile, true
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: %s=%s is unreachable (%v); start a broker (scripts/kafka.sh up) or unset %s", EnvOAuthBrokers, env, err, EnvOAuthBrokers)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// UnsecuredJWT returns an unsigned JWT (header {"alg":"none"}, empty signature) for subject
// sub, issued at iat and expiring at exp, with the scope claim when scope is set: what Kafka's
// unsecured OAUTHBEARER validator (OAuthBearerUnsecuredJws) accepts. Tests only.
func UnsecuredJWT(sub string, iat, exp time.Time, scope string) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	claims := map[string]any{"sub": sub, "iat": iat.Unix(), "exp": exp.Unix()}
	if scope != "" {
		claims["scope"] = scope
	}
	payload, _ := json.Marshal(claims)
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "."
}
