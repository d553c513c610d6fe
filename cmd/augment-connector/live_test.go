package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/augment-connector/augment-connector/internal/sim"
	"github.com/augment-connector/augment-connector/internal/sim/simtest"
)

// liveEnv is a kfake (or KAFKA_BROKERS) cluster, a fake schema registry and the simulator, for
// check --live.
type liveEnv struct {
	seeds            []string
	srv              *sim.Server
	simURL, ca       string
	registry         string
	calls, customers string // topics
	dlq              string
	dir              string
}

func newLiveEnv(t *testing.T) *liveEnv {
	t.Helper()
	e := &liveEnv{seeds: kafkatest.Brokers(t), dir: t.TempDir()}
	e.calls = kafkatest.UniqueName(t, "calls")
	e.customers = kafkatest.UniqueName(t, "customers")
	e.dlq = kafkatest.UniqueName(t, "dlq")
	kafkatest.CreateTopic(t, e.seeds, e.calls, 3)
	kafkatest.CreateTopic(t, e.seeds, e.customers, 2)
	kafkatest.CreateTopic(t, e.seeds, e.dlq, 1)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	if _, _, err := reg.RegisterSchema(e.customers+"-value", sr.Schema{Schema: `{"type":"record","name":"C","fields":[{"name":"id","type":"long"}]}`}); err != nil {
		t.Fatal(err)
	}
	e.registry = reg.URL()
	e.srv, e.simURL = simtest.Start(t, sim.Config{Tenants: []sim.Tenant{{ID: "acme", Token: "live-token"}}})
	e.ca = filepath.Join(e.dir, "ca.pem")
	if err := os.WriteFile(e.ca, e.srv.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *liveEnv) config(t *testing.T, edit func(string) string) string {
	t.Helper()
	cfg := fmt.Sprintf(`kafka:
  brokers: [%s]
  groupId: live-check
schemaRegistry:
  urls: [%s]
tenants:
  main:
    baseURL: %s
    caFile: %s
    tenantId: acme
    token: live-token
pipelines:
  - name: calls
    topics: [%s]
    tenant: main
    decode: {format: json}
    identifier: after.id
    variables:
      - {name: _tier, value: after.tier}
  - name: customers
    topics: [%s]
    tenant: main
    identifier: after.id
    variables:
      - {name: _tier2, value: after.tier}
deadLetter:
  topic: %s
`, strings.Join(e.seeds, ", "), e.registry, e.simURL, e.ca, e.calls, e.customers, e.dlq)
	if edit != nil {
		cfg = edit(cfg)
	}
	path := filepath.Join(t.TempDir(), "live.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckLive runs check --live once against a healthy environment and once with each
// fault, checking each line says ok or FAIL with the setting to look at, and the exit code.
func TestCheckLive(t *testing.T) {
	e := newLiveEnv(t)
	t.Run("healthy", func(t *testing.T) {
		before := e.srv.Stats().Total
		var out, errb bytes.Buffer
		if code := run([]string{"check", "--config", e.config(t, nil), "--live"}, &out, &errb); code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
		}
		for _, want := range []string{
			"ok   kafka: ",
			"ok   topic " + e.calls + ": 3 partitions",
			"ok   topic " + e.customers + ": 2 partitions",
			"ok   group live-check: no members; lag 0 records over 5 partitions",
			"ok   dead-letter topic " + e.dlq + ": exists and accepts a write",
			"ok   schema registry: answers",
			"ok   subject " + e.customers + "-value: found",
			"ok   tenant main: token accepted (a GET of an interaction that cannot exist answered 404; it spent one request of the budget)",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q\n%s", want, out.String())
			}
		}
		if strings.Contains(out.String(), "FAIL") || strings.Contains(out.String(), "live-token") {
			t.Errorf("output:\n%s", out.String())
		}
		if n := e.srv.Stats().Total - before; n != 1 {
			t.Errorf("the API received %d requests, want exactly 1 (the token check)", n)
		}
	})
	faults := []struct {
		name string
		edit func(string) string
		want string
	}{
		{"missing topic", func(c string) string {
			return strings.Replace(c, "topics: ["+e.calls+"]", "topics: [no-such-topic]", 1)
		},
			"FAIL topic no-such-topic: does not exist (pipelines[0].topics[0])"},
		{"refused token", func(c string) string { return strings.Replace(c, "token: live-token", "token: wrong-token", 1) },
			"FAIL tenant main: the token is refused: "},
		{"registry down", func(c string) string { return strings.Replace(c, e.registry, "http://127.0.0.1:1", 1) },
			"FAIL schema registry: http://127.0.0.1:1 does not answer: "},
		{"subject missing", func(c string) string {
			return strings.Replace(c, "topics: ["+e.calls+"]\n    tenant: main\n    decode: {format: json}", "topics: ["+e.calls+"]\n    tenant: main", 1)
		}, "FAIL subject " + e.calls + "-value: not found"},
		{"brokers unreachable", func(c string) string {
			return strings.Replace(c, "brokers: ["+strings.Join(e.seeds, ", ")+"]", "brokers: [127.0.0.1:1]", 1)
		},
			"FAIL kafka: the brokers 127.0.0.1:1 do not answer: "},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"check", "--config", e.config(t, f.edit), "--live"}, &out, &errb)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), f.want) {
				t.Errorf("output lacks %q\n%s", f.want, out.String())
			}
			if !strings.Contains(errb.String(), "live check(s) failed") {
				t.Errorf("stderr: %s", errb.String())
			}
			if strings.Contains(out.String()+errb.String(), "wrong-token") {
				t.Error("the token was printed")
			}
		})
	}
}
