//go:build chaos

package chaos

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestChaosCrash streams 50,000 events while the only connector is SIGKILLed at 10 random
// moments and restarted each time: nothing may be lost, duplicates are counted.
func TestChaosCrash(t *testing.T) {
	const (
		events = 50_000
		ids    = 3_000
		stream = 80 * time.Second // the producer spreads the events over this, longer than the kills take
	)
	// CHAOS_KILLS lowers the number of kills: CI's KIP-848 pass uses 3, since under that
	// protocol each kill waits the broker's 45 s consumer-group session timeout.
	kills := 10
	if n, err := strconv.Atoi(os.Getenv("CHAOS_KILLS")); err == nil && n > 0 && n < kills {
		kills = n
	}
	e := NewEnv(t, "crash", EnvOptions{})
	w := NewWorkload(1, events, ids)
	cfg := e.WriteConfig("crash", ConfigOptions{})
	p := e.StartConnector(cfg)
	produced := e.ProduceOver(w, stream)
	rng := rand.New(rand.NewPCG(2, 3))

	var recoverMax, recoverSum time.Duration
	for k := range kills {
		// A random moment 0.3-2.5 s after the previous recovery (a SIGKILLed member holds
		// its partitions until its 6 s session expires, so a cycle takes about 8 s).
		time.Sleep(time.Duration(300+rng.IntN(2200)) * time.Millisecond)
		p.Kill()
		before := e.CommittedTotal() // read after the kill: the dead process commits nothing more
		if code := p.cmd.ProcessState.ExitCode(); code != -1 {
			t.Fatalf("kill %d: %s exited with %d before the kill", k+1, p.Name, code)
		}
		killed := time.Now()
		p = e.StartConnector(cfg)
		// Recovered: the group commits past where it was when the process died.
		e.WaitRecovered(before, time.Minute)
		rec := time.Since(killed)
		recoverSum += rec
		recoverMax = max(recoverMax, rec)
		t.Logf("kill %d: %s; committed again %s after the kill", k+1, p.Name, rec.Round(10*time.Millisecond))
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	r := e.Verify(w, VerifyOptions{Timeout: 3 * time.Minute})
	if code, took := p.Term(30 * time.Second); code != 0 {
		t.Errorf("the last connector exited with %d after SIGTERM (%s)", code, took)
	}
	e.Report(r, fmt.Sprintf("kills=%d recover_max=%s recover_avg=%s", kills,
		recoverMax.Round(100*time.Millisecond), (recoverSum/time.Duration(kills)).Round(100*time.Millisecond)))
}
