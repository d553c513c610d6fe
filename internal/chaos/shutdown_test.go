//go:build chaos

package chaos

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/internal/sim"
)

// TestChaosGracefulShutdown sends SIGTERM to a connector (budget ledger) in the middle of a
// backlog, against an API that takes 10-40 ms a request: it must exit 0 within seconds, not
// drain its backlog, with exactly what it wrote committed (no written record left uncommitted
// behind the watermark, nothing committed that was not written). Then a second connector
// (coordination local, which drains on SIGTERM) gets two SIGTERMs in a row: it exits at once
// (code 1), and still nothing unwritten is committed. A last one (ledger) finishes.
func TestChaosGracefulShutdown(t *testing.T) {
	const (
		events  = 60_000 // 40,000 for the first connector, 20,000 more for the second
		first   = 40_000
		ids     = 4_000
		timeout = 15 * time.Second
	)
	e := NewEnv(t, "shutdown", EnvOptions{Sim: sim.Config{Faults: sim.Faults{Latency: 10 * time.Millisecond, LatencyJitter: 30 * time.Millisecond}}})
	w := NewWorkload(21, events, ids)
	if err := e.Produce(w, 0, first); err != nil {
		t.Fatal(err)
	}
	cfg := e.WriteConfig("shutdown", ConfigOptions{ShutdownTimeout: timeout, MaxPendingRecords: 3000, Concurrency: 16})

	// 1. One SIGTERM mid-run.
	p := e.StartConnector(cfg)
	e.WaitRecovered(first/10, 2*time.Minute)
	code, took := p.Term(timeout + 15*time.Second)
	if code != 0 {
		t.Errorf("%s exited with %d after SIGTERM; log tail:\n%s", p.Name, code, tail(p.LogPath))
	}
	if took > timeout {
		t.Errorf("%s took %s to exit after SIGTERM, more than shutdownTimeout %s", p.Name, took, timeout)
	}
	if log, _ := os.ReadFile(p.LogPath); strings.Contains(string(log), "shutdown timeout reached") {
		t.Errorf("%s did not finish its pending work within shutdownTimeout", p.Name)
	}
	committed, err := e.Committed(e.Group, e.Topic)
	if err != nil {
		t.Fatal(err)
	}
	written := e.writtenPrefix(w, first)
	// With the budget ledger a SIGTERM finishes only the attempts on the wire, commits and
	// leaves (the next owner sends the backlog from the same budget): out within seconds,
	// having committed exactly what was written.
	if took > 5*time.Second {
		t.Errorf("%s took %s to exit after SIGTERM; with the budget ledger it leaves its backlog and exits within seconds", p.Name, took)
	}

	for p := range e.Partitions {
		if committed[p] != written[p] {
			t.Errorf("partition %d: committed %d after the graceful shutdown, but the written records end at %d", p, committed[p], written[p])
		}
	}
	t.Logf("SIGTERM: exit %d after %s; committed %d of %d records, every one written and every written one committed",
		code, took.Round(10*time.Millisecond), total(committed), first)
	if total(committed) == first {
		t.Logf("note: the first connector had fetched the whole backlog before the SIGTERM")
	}

	// 2. Two SIGTERMs: out at once, nothing unwritten committed. With the budget ledger a
	// SIGTERM does not drain the backlog (it finishes what is on the wire, commits and
	// leaves: part 1 exits in milliseconds), so there is no drain for the second signal to
	// cut short; this part runs with coordination local, whose shutdown drains for up to
	// shutdownTimeout. (Processes never overlap here, and the simulator enforces no limit.)
	if err := e.Produce(w, first, events); err != nil {
		t.Fatal(err)
	}
	local := e.WriteConfig("shutdown-local", ConfigOptions{ShutdownTimeout: timeout, MaxPendingRecords: 3000, Concurrency: 16, Coordination: "local"})
	p = e.StartConnector(local)
	e.WaitRecovered(total(committed), time.Minute)
	p.Scrape()
	_ = p.cmd.Process.Signal(os.Interrupt)
	time.Sleep(200 * time.Millisecond)
	sent := time.Now()
	_ = p.cmd.Process.Signal(os.Interrupt)
	if code := p.Wait(5 * time.Second); code != 1 {
		t.Errorf("after a second signal %s exited with %d, want 1", p.Name, code)
	}
	second := time.Since(sent)
	committed, err = e.Committed(e.Group, e.Topic)
	if err != nil {
		t.Fatal(err)
	}
	written = e.writtenPrefix(w, events)
	for p := range e.Partitions {
		if committed[p] > written[p] {
			t.Errorf("partition %d: committed %d after the second signal, but the written records end at %d", p, committed[p], written[p])
		}
	}

	// 3. A last connector finishes the backlog.
	p = e.StartConnector(cfg)
	r := e.Verify(w, VerifyOptions{Timeout: 3 * time.Minute})
	if t.Failed() {
		t.Logf("%s log tail:\n%s", p.Name, tail(p.LogPath))
	}
	if code, took := p.Term(timeout + 15*time.Second); code != 0 {
		t.Errorf("%s exited with %d after SIGTERM (%s)", p.Name, code, took)
	}
	e.Report(r, fmt.Sprintf("sigterm_exit=%s second_signal_exit=%s shutdown_timeout=%s",
		took.Round(10*time.Millisecond), second.Round(10*time.Millisecond), timeout))
}

// writtenPrefix returns, per partition of the input topic, the offset of the first of the
// first n events (those produced) that has not been written (its identifier has no successful write carrying its _seq or a later
// one), by the simulator's journal now: the highest offset a correct connector may commit.
func (e *Env) writtenPrefix(w *Workload, n int) map[int32]int64 {
	maxW := make(map[string]int)
	for _, en := range e.Sim.Journal(0) {
		if en.Method != "POST" || en.Status != 200 {
			continue
		}
		for _, v := range en.Variables {
			if v.Name == "_seq" {
				if s, err := strconv.Atoi(v.Value); err == nil && s > maxW[en.Identifier] {
					maxW[en.Identifier] = s
				}
			}
		}
	}
	byPart := make(map[int32][]*Event)
	for i := range w.Events[:n] {
		ev := &w.Events[i]
		byPart[ev.Partition] = append(byPart[ev.Partition], ev)
	}
	out := make(map[int32]int64)
	for p, evs := range byPart {
		slices.SortFunc(evs, func(a, b *Event) int { return int(a.Offset - b.Offset) })
		out[p] = evs[len(evs)-1].Offset + 1
		for _, ev := range evs {
			if maxW[ev.ID] < ev.Seq {
				out[p] = ev.Offset
				break
			}
		}
	}
	return out
}
