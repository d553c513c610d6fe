//go:build chaos

package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestChaosRebalance streams events to a group of 3 connectors while, every couple of seconds,
// an instance is added or one is removed, with SIGTERM or SIGKILL: nothing may be lost, no
// committed offset may pass what was written or go back (a commit after a revoke), and each
// process lifetime writes every identifier in partition order.
func TestChaosRebalance(t *testing.T) {
	const (
		events = 30_000
		ids    = 2_000
		stream = 40 * time.Second
		every  = 2500 * time.Millisecond
	)
	e := NewEnv(t, "rebalance", EnvOptions{})
	w := NewWorkload(11, events, ids)
	cfgOpts := ConfigOptions{ShutdownTimeout: 10 * time.Second}
	cfg := e.WriteConfig("rebalance", cfgOpts)
	var live []*Proc
	for range 3 {
		live = append(live, e.StartConnector(cfg))
	}
	produced := e.ProduceOver(w, stream)
	rng := rand.New(rand.NewPCG(12, 13))
	var added, termed, killed int
	var termMax time.Duration
	deadline := time.Now().Add(stream)
	for time.Now().Before(deadline) {
		time.Sleep(every)
		add := len(live) < 2 || (len(live) < 5 && rng.IntN(2) == 0)
		if add {
			live = append(live, e.StartConnector(cfg))
			added++
			continue
		}
		i := rng.IntN(len(live))
		p := live[i]
		live = slices.Delete(live, i, i+1)
		if rng.IntN(2) == 0 {
			p.Kill()
			killed++
			continue
		}
		code, took := p.Term(cfgOpts.ShutdownTimeout + 10*time.Second)
		termed++
		termMax = max(termMax, took)
		if code != 0 {
			t.Errorf("%s exited with %d after SIGTERM (%s); log tail:\n%s", p.Name, code, took, tail(p.LogPath))
		}
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	r := e.Verify(w, VerifyOptions{Timeout: 3 * time.Minute})
	for _, p := range live {
		if code, took := p.Term(cfgOpts.ShutdownTimeout + 10*time.Second); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM (%s)", p.Name, code, took)
		}
	}
	e.Report(r, fmt.Sprintf("instances=%d added=%d sigterm=%d sigkill=%d term_max=%s",
		len(e.Procs()), added, termed, killed, termMax.Round(100*time.Millisecond)))
}
