//go:build chaos

package chaos

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/internal/sim"
)

// TestChaosThrottleAndRevokedToken forces 429s on the tenant, first without a Retry-After,
// then with one, and then revokes the tenant's token (401) for a while mid-run:
//
//   - 429s: every forced 429 is retried (nothing lost, nothing dead-lettered) and after a
//     429 with Retry-After no request reaches the API before it passed;
//   - 401: nothing is committed while it lasts (once what was written before it is), /readyz
//     answers 503 from the first 401 until the token works again, the log says so once a
//     minute (not once a request), requests only probe (no storm), and after the token is
//     restored everything is written and committed. While it is revoked a second process
//     joins the group and leaves again: the rebalances revoke partitions whose requests were
//     refused, and the tenant still probes from what is pending and recovers (the tenant owns
//     the probe, not a request).
func TestChaosThrottleAndRevokedToken(t *testing.T) {
	t.Parallel()
	const (
		events      = 6_000
		ids         = 400
		concurrency = 8
		forced      = 40 // 429s without Retry-After
		forcedRA    = 8  // 429s with Retry-After
		retryAfter  = 3  // seconds
		probe       = 15 * time.Second
	)
	revoke := scaled(t, 70*time.Second) // long enough for two of the once-a-minute lines
	e := NewEnv(t, "throttle", EnvOptions{})
	w := NewWorkload(7, events, ids)
	cfg := e.WriteConfig("throttle", ConfigOptions{Concurrency: concurrency})
	p := e.StartConnector(cfg)
	patch := func(fp sim.FaultPatch) {
		t.Helper()
		if _, err := e.Sim.PatchFaults(fp); err != nil {
			t.Fatalf("patching faults: %v", err)
		}
	}
	waitForced := func() {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for len(e.Sim.FaultStatus().Force429) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the forced 429s were not all used within a minute: %v", e.Sim.FaultStatus().Force429)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	produce := func(quarter int) { // events of one quarter of the workload
		t.Helper()
		if err := e.Produce(w, quarter*events/4, (quarter+1)*events/4); err != nil {
			t.Fatal(err)
		}
	}

	// 1. 429s without Retry-After.
	patch(sim.FaultPatch{Force429: &sim.Force429{Tenant: simTenant, Count: forced}})
	produce(0)
	waitForced()
	e.WaitCommitted(e.Group, e.Topic, 2*time.Minute)

	// 2. 429s with Retry-After: after each, nothing reaches the API before it passed (a
	// request already on its way when the 429 was answered aside: hence the 0.5 s grace).
	from := e.Sim.Stats().JournalLastSeq // Journal(from) is what came after
	patch(sim.FaultPatch{Force429: &sim.Force429{Tenant: simTenant, Count: forcedRA, RetryAfter: retryAfter}})
	produce(1)
	waitForced()
	e.WaitCommitted(e.Group, e.Topic, 2*time.Minute)
	journal := e.Sim.Journal(from)
	var n429, early int
	for i, en := range journal {
		if en.Status != http.StatusTooManyRequests {
			continue
		}
		n429++
		for _, later := range journal[i+1:] {
			d := later.Time.Sub(en.Time)
			if d > time.Duration(retryAfter)*time.Second-500*time.Millisecond {
				break
			}
			if d > 500*time.Millisecond {
				early++
				t.Errorf("a request (%d, status %d) reached the API %s after a 429 with Retry-After: %ds", later.Seq, later.Status, d.Round(time.Millisecond), retryAfter)
			}
		}
	}
	if n429 != forcedRA {
		t.Errorf("the journal holds %d 429s with Retry-After, want %d", n429, forcedRA)
	}

	// 3. The token is revoked.
	from = e.Sim.Stats().JournalLastSeq
	revoked := time.Now()
	patch(sim.FaultPatch{Revoke: simTenant})
	produce(2)
	var (
		notReadyAt        time.Time
		readyAgainDuring  int
		settled           = revoked.Add(3 * time.Second) // what was written before is committed by then
		committedSettled  int64
		committedMovedMax int64
	)
	var (
		joiner     *Proc
		joinerLeft bool
		joinerDone = make(chan int, 1)
	)
	for time.Since(revoked) < revoke {
		switch {
		case joiner == nil && time.Since(revoked) > revoke/4:
			joiner = e.StartConnector(cfg) // a rebalance: some of p's partitions move to it
		case joiner != nil && !joinerLeft && time.Since(revoked) > revoke/2:
			joinerLeft = true // and back to p when it leaves
			go func(j *Proc) { code, _ := j.Term(30 * time.Second); joinerDone <- code }(joiner)
		}
		code, body, err := p.get("/readyz")
		switch {
		case err != nil:
			t.Errorf("/readyz: %v", err)
		case code == http.StatusServiceUnavailable && strings.Contains(body, "refuses"):
			if notReadyAt.IsZero() {
				notReadyAt = time.Now()
			}
		case !notReadyAt.IsZero():
			readyAgainDuring++
			t.Errorf("/readyz answered %d %s while the token is revoked", code, strings.TrimSpace(body))
		}
		if time.Now().After(settled) {
			c := e.CommittedTotal()
			if committedSettled == 0 {
				committedSettled = c
			}
			committedMovedMax = max(committedMovedMax, c-committedSettled)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !joinerLeft {
		t.Fatalf("the revoke of %s was too short for the joining process", revoke)
	}
	if code := <-joinerDone; code != 0 {
		t.Errorf("the process that joined during the revoke exited with %d after SIGTERM", code)
	}
	if notReadyAt.IsZero() {
		t.Errorf("/readyz never said not ready during %s of a revoked token", revoke)
	} else if d := notReadyAt.Sub(revoked); d > 10*time.Second {
		t.Errorf("/readyz said not ready only %s after the token was revoked", d.Round(time.Millisecond))
	}
	if committedMovedMax != 0 {
		t.Errorf("the group committed %d more offsets while the token was revoked", committedMovedMax)
	}
	var n401, writes int
	for _, en := range e.Sim.Journal(from) {
		switch en.Status {
		case http.StatusUnauthorized:
			n401++
		case http.StatusOK:
			writes++
		}
	}
	if writes != 0 {
		t.Errorf("%d writes succeeded with a revoked token", writes)
	}
	// The requests in flight when the token was revoked, then one probe every 15 s for each
	// of the two processes' lifetimes: no storm.
	if bound := 2*concurrency + 3*(int(revoke/probe)+1); n401 > bound || n401 == 0 {
		t.Errorf("%d requests got a 401 in %s; want 1 to %d (%d in flight, then one probe each %s per process)", n401, revoke, bound, concurrency, probe)
	}
	patch(sim.FaultPatch{Restore: simTenant})
	restored := time.Now()
	var readyAgain time.Duration
	for {
		if code, _, err := p.get("/readyz"); err == nil && code == http.StatusOK {
			readyAgain = time.Since(restored)
			break
		}
		if time.Since(restored) > 2*probe {
			t.Fatalf("/readyz not ready %s after the token was restored", 2*probe)
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.WaitRecovered(committedSettled, time.Minute)
	recovered := time.Since(restored)

	// The log: one clear line a minute, and no line per request.
	var refuseLines, lines401 int
	for _, l := range p.LogLines() {
		if l.Time.Before(revoked) || l.Time.After(restored) {
			continue
		}
		if strings.HasPrefix(l.Msg, "tenant refuses the action token") && l.Level == "error" {
			refuseLines++
		}
		if strings.Contains(l.raw, "401") {
			lines401++
		}
	}
	if want := int(revoke/time.Minute) + 1; refuseLines < 1 || refuseLines > want {
		t.Errorf("%d 'tenant refuses the action token' lines in %s; want 1 to %d (one a minute)", refuseLines, revoke, want)
	}
	if lines401 != refuseLines {
		t.Errorf("%d log lines mention 401 during the revoke, %d of them the once-a-minute line: a line per request?", lines401, refuseLines)
	}

	// 4. The rest, with the token working.
	produce(3)
	r := e.Verify(w, VerifyOptions{})
	if code, took := p.Term(30 * time.Second); code != 0 {
		t.Errorf("the connector exited with %d after SIGTERM (%s)", code, took)
	}
	e.Report(r, fmt.Sprintf("forced_429=%d forced_429_retry_after=%d early_after_retry_after=%d revoked=%s probes_401=%d refuse_log_lines=%d ready_again=%s recover=%s",
		forced, forcedRA, early, revoke, n401, refuseLines, readyAgain.Round(100*time.Millisecond), recovered.Round(100*time.Millisecond)))
}
