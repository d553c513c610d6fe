package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSecretMasking(t *testing.T) {
	const value = "tok-123-secret"
	s := Secret(value)
	holder := struct {
		Token Secret
		Ptr   *Secret
	}{s, &s}
	var outs []string
	for _, f := range []string{"%v", "%s", "%q", "%x", "%X", "%d", "%#v", "%+v", "%10s", "%T"} {
		outs = append(outs, fmt.Sprintf(f, s), fmt.Sprintf(f, holder))
	}
	outs = append(outs, s.String(), s.GoString(), fmt.Sprint(s), fmt.Sprintln(s))
	for _, v := range []any{s, holder} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		y, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(j), string(y))
	}
	txt, _ := s.MarshalText()
	outs = append(outs, string(txt))
	for i, out := range outs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("output %d leaks the secret: %s", i, out)
		}
	}
	if got := fmt.Sprintf("%v %q %#v", s, s, s); got != `<secret> "<secret>" "<secret>"` {
		t.Errorf("formatted = %s", got)
	}
	if got := fmt.Sprintf("[%v]", Secret("")); got != "[]" {
		t.Errorf("empty secret formatted = %s, want []", got)
	}
	if string(s) != value {
		t.Errorf("string(s) = %q", string(s))
	}
}

// A loaded config printed or marshalled whole shows no secret.
func TestConfigDumpMasksSecrets(t *testing.T) {
	data := strings.Replace(base, "  brokers: [localhost:9092]",
		"  brokers: [localhost:9092]\n  sasl: {mechanism: PLAIN, username: u, password: kafka-pw-1, allowPlaintext: true}", 1)
	cfg, err := parse(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{string(j), string(y), fmt.Sprintf("%+v %#v", cfg, cfg.Tenants["main"]), fmt.Sprintf("%#v", cfg.Kafka)} {
		for _, secret := range []string{"kafka-pw-1", "s3cr3t-token"} {
			if strings.Contains(out, secret) {
				t.Errorf("dump leaks %q: %s", secret, out)
			}
		}
	}
}

// TestErrorsNeverContainSecrets builds configs that are wrong around their secrets in every way
// the loader knows, and checks that no error text contains one.
func TestErrorsNeverContainSecrets(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("file-secret-xyz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"s3cr3t-token", "file-secret-xyz", "env-secret-abc", "kafka-pw-123", "reg-pw-456", "bearer-789", "url-pw-000", "map-secret-1"}
	configs := []string{
		// token and tokenFile both set, with a bad cluster and an env secret in a typed key.
		strings.NewReplacer(
			"    token: s3cr3t-token", "    token: s3cr3t-token\n    tokenFile: "+tokenFile+"\n    requestsPerMinute: ${LEAK}\n    concurrency: ${LEAK}",
			"cluster: vcc-na12", "cluster: Bad_Cluster",
		).Replace(base),
		// passwords next to broken mechanisms, basic auth and bearer together.
		strings.NewReplacer(
			"  brokers: [localhost:9092]", "  brokers: [localhost:9092]\n  sasl: {mechanism: KERBEROS, password: kafka-pw-123, passwordFile: /nonexistent}",
			"  urls: [http://localhost:8081]", "  urls: [http://localhost:8081]\n  basicAuth: {password: reg-pw-456}\n  bearerToken: bearer-789\n  bearerTokenFile: /nonexistent",
		).Replace(base),
		// credentials in URLs.
		strings.NewReplacer(
			"cluster: vcc-na12", "baseURL: http://user:url-pw-000@127.0.0.1:8443",
			"  urls: [http://localhost:8081]", "  urls: [http://u:url-pw-000@localhost:8081, 'http://x:url-pw-000@bad host']",
		).Replace(base),
		// a secret of the wrong shape, and an unknown key next to it.
		strings.Replace(base, "    token: s3cr3t-token", "    token: {value: map-secret-1}\n    tokne: s3cr3t-token2x", 1),
		// a secret in a file that is also given inline, an unset variable beside it.
		strings.Replace(base, "    token: s3cr3t-token", "    token: ${UNSET_TOKEN}", 1),
	}
	for i, data := range configs {
		_, err := parse(data, map[string]string{"LEAK": "env-secret-abc"})
		if err == nil {
			t.Fatalf("config %d loaded without errors", i)
		}
		msg := err.Error()
		if n := strings.Count(msg, "\n") + 1; n < 2 && i < 3 {
			t.Errorf("config %d: only %d error(s): %s", i, n, msg)
		}
		for _, s := range secrets {
			if strings.Contains(msg, s) {
				t.Errorf("config %d: errors contain %q:\n%s", i, s, msg)
			}
		}
	}
}
