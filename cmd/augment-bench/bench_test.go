package main

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.yaml.in/yaml/v3"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/api"
	"github.com/augment-connector/augment-connector/internal/app"
	"github.com/augment-connector/augment-connector/internal/config"
)

// BenchmarkAppendRequest measures encoding one request body as the connector does
// (api.AppendRequest into a reused buffer): 4 variables, as the bench pipeline sends, and 50,
// the most a request may carry.
func BenchmarkAppendRequest(b *testing.B) {
	for _, n := range []int{4, 50} {
		b.Run("vars="+strconv.Itoa(n), func(b *testing.B) {
			vars := make([]api.Variable, n)
			for i := range vars {
				vars[i] = api.Variable{Name: "_var" + strconv.Itoa(i), Value: "Billing inquiry #" + strconv.Itoa(i),
					IVR: true, Display: true, DisplayName: "Variable " + strconv.Itoa(i), DataType: "text"}
			}
			buf := make([]byte, 0, 64+n*96)
			b.ReportAllocs()
			for b.Loop() {
				buf = api.AppendRequest(buf[:0], vars, false)
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

func TestSchedule(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		perMinute, minutes      int
		countFactor, timeFactor float64
		wantInteractions        int
	}{
		{"under at 100", 40, 3, 1, 1, 120},
		{"over, count-scaled to 1000", 500, 1, 10, 1, 5000},
		{"under, time-scaled to 1000", 40, 2, 1, 0.1, 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plans := schedule(rand.New(rand.NewPCG(1, 2)), tc.perMinute, tc.minutes, tc.countFactor, tc.timeFactor)
			if len(plans) != tc.wantInteractions {
				t.Fatalf("got %d interactions, want %d", len(plans), tc.wantInteractions)
			}
			end := time.Duration(float64(time.Duration(tc.minutes)*time.Minute) * tc.timeFactor)
			burst := time.Duration(float64(10*time.Second) * tc.timeFactor)
			seen := map[string]bool{}
			for _, p := range plans {
				if n := len(p.events) - 1; n < 2 || n > 5 {
					t.Fatalf("%s: burst of %d events, want 2-5", p.id, n)
				}
				first := p.events[0].at
				if first < 0 || first >= end {
					t.Fatalf("%s starts at %s, outside [0, %s)", p.id, first, end)
				}
				for i, ev := range p.events {
					if i > 0 && (ev.at < p.events[i-1].at || ev.at > first+burst) {
						t.Fatalf("%s: event %d at %s, want in order and within %s of %s", p.id, i, ev.at, burst, first)
					}
					bal := wantVars(ev.r)["_accountBalance"]
					if seen[bal] {
						t.Fatalf("balance %s used twice: events must carry distinct values", bal)
					}
					seen[bal] = true
				}
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	d := durations{1 * time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0.5, 2}, {0.99, 4}, {1, 4}, {0, 1}} {
		if got := d.q(tc.q); got != tc.want {
			t.Errorf("q(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

// TestStale runs the stale scenario scaled down (a few ids, a high limit, a 1 s not-found
// grace instead of 30 s) on today's policy: every live and new call gets its final values.
func TestStale(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake, the simulator and the connector")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errs bytes.Buffer
	err := runStaleWith(ctx, staleOptions{
		ended: 4, endedRecords: 2, endedAge: 2 * time.Hour, live: 3, liveRecords: 2,
		callEvery: 200 * time.Millisecond, callsMin: time.Second, limit: 6000, timeout: 60 * time.Second, seed: 1, level: "error",
		tweak: func(o *connector.Options) {
			for name, to := range o.Tenants {
				to.NotFoundGrace = time.Second
				o.Tenants[name] = to
			}
		},
	}, &out, &errs)
	if err != nil {
		t.Fatalf("stale: %v\n%s%s", err, out.String(), errs.String())
	}
	line := out.String()
	for _, want := range []string{"scenario=stale ", " missing=0 ", " status_429=0 "} {
		if !strings.Contains(line, want) {
			t.Errorf("result lacks %q: %s", want, line)
		}
	}
	if strings.Contains(line, "live_final_s=never") || strings.Contains(line, "new_calls=0 ") {
		t.Errorf("live or new calls not written: %s", line)
	}
}

// TestStaleConfig checks the stale scenario's config: without the policy's knobs it loads and
// compiles on today's code; with them, each lands at its key, and a parser that does not know
// a knob yet refuses that key and nothing else.
func TestStaleConfig(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	env := &benchEnv{seeds: []string{"127.0.0.1:9092"}, group: "augment-bench-test", topic: "bench.flat.customers.test",
		registry: reg, simURL: "http://127.0.0.1:1", token: "tok"}
	plain := staleConfig(env, staleOptions{limit: 100}, "bench.dlq.test", "bench.active.test")
	cfg, err := config.Parse([]byte(plain), "stale.yaml")
	if err != nil {
		t.Fatalf("config without knobs: %v\n%s", err, plain)
	}
	if _, err := app.Compile(cfg); err != nil {
		t.Fatalf("compiling the config without knobs: %v\n%s", err, plain)
	}

	knobs := staleConfig(env, staleOptions{limit: 100, notFoundGrace: "45s", maxRecordAge: "10m", onStale: "deadLetter",
		requireActive: true, requireActiveExpr: "key"}, "bench.dlq.test", "bench.active.test")
	var doc struct {
		Tenants map[string]struct {
			NotFoundGrace string `yaml:"notFoundGrace"`
		} `yaml:"tenants"`
		Tables []struct {
			Name, Topic string
		} `yaml:"tables"`
		Pipelines []struct {
			MaxRecordAge  string `yaml:"maxRecordAge"`
			OnStale       string `yaml:"onStale"`
			RequireActive struct {
				Table, Expression string
			} `yaml:"requireActive"`
		} `yaml:"pipelines"`
	}
	if err := yaml.Unmarshal([]byte(knobs), &doc); err != nil {
		t.Fatalf("config with knobs: %v\n%s", err, knobs)
	}
	p := doc.Pipelines[0]
	if doc.Tenants[benchTenant].NotFoundGrace != "45s" || p.MaxRecordAge != "10m" || p.OnStale != "deadLetter" ||
		p.RequireActive.Table != activeTable || p.RequireActive.Expression != "key" ||
		len(doc.Tables) != 1 || doc.Tables[0].Name != activeTable || doc.Tables[0].Topic != "bench.active.test" {
		t.Fatalf("knobs not at their keys: %+v\n%s", doc, knobs)
	}
	// The table alone (requireActive's lines left out) is valid on today's code.
	var table []string
	for line := range strings.Lines(knobs) {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "requireActive:") || strings.HasPrefix(t, "table: "+activeTable) ||
			strings.HasPrefix(t, "expression:") || strings.HasPrefix(t, "maxRecordAge:") || strings.HasPrefix(t, "onStale:") ||
			strings.HasPrefix(t, "notFoundGrace:") {
			continue
		}
		table = append(table, line)
	}
	cfg, err = config.Parse([]byte(strings.Join(table, "")), "stale.yaml")
	if err != nil {
		t.Fatalf("config with the table, without knobs: %v\n%s", err, strings.Join(table, ""))
	}
	if _, err := app.Compile(cfg); err != nil {
		t.Fatalf("compiling the config with the table: %v", err)
	}
	if _, err := config.Parse([]byte(knobs), "stale.yaml"); err != nil {
		var errs config.Errors
		if !errors.As(err, &errs) {
			t.Fatalf("config with knobs: %v", err)
		}
		for _, e := range errs {
			where := e.Path + ": " + e.Msg
			if !strings.Contains(where, "notFoundGrace") && !strings.Contains(where, "maxRecordAge") &&
				!strings.Contains(where, "onStale") && !strings.Contains(where, "requireActive") {
				t.Errorf("config with knobs: an error beyond an unknown knob: %v", e)
			}
		}
	}
}
