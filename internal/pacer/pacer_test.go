package pacer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"
)

// fakeClock is a manual clock for the pacer's pure logic.
type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time          { return f.t }
func (f *fakeClock) advance(d time.Duration) { f.t = f.t.Add(d) }

// acquire reserves an attempt at the clock's time and finishes it at once, as an attempt
// answered instantly; it returns TryAcquire's wait.
func acquire(p *Pacer, clk *fakeClock) time.Duration {
	w := p.TryAcquire(clk.now())
	if w == 0 {
		p.Finish(true, clk.now())
	}
	return w
}

func TestPacerAllowsLimitPerRollingWindow(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p := New(100, clk.now)
	for i := 0; i < 100; i++ {
		if w := acquire(p, clk); w != 0 {
			t.Fatalf("attempt %d refused (wait %v) within budget", i+1, w)
		}
		clk.advance(100 * time.Millisecond)
	}
	// 10 s after the first attempt: the 101st must wait until the first leaves the window.
	w := acquire(p, clk)
	if want := 50 * time.Second; w != want {
		t.Fatalf("101st attempt: wait %v, want %v", w, want)
	}
	clk.advance(w)
	if w := acquire(p, clk); w != 0 {
		t.Fatalf("after the oldest left the window: wait %v, want 0", w)
	}
	if got := p.InUse(); got != 100 {
		t.Fatalf("InUse = %d, want 100", got)
	}
}

// TestPacerNeverExceedsLimitInAnyWindow drives random arrival patterns and checks, over the
// log of granted attempts, that no 60-second window (at any offset) holds more than the limit:
// invariant 4 of docs/DESIGN.md ("Invariants").
func TestPacerNeverExceedsLimitInAnyWindow(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		limit := 1 + rng.IntN(120)
		clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
		p := New(limit, clk.now)
		var granted []time.Time
		for i := 0; i < 5000; i++ {
			if acquire(p, clk) == 0 {
				granted = append(granted, clk.now())
			}
			// Bursts and gaps: mostly tiny steps, sometimes long pauses.
			switch rng.IntN(10) {
			case 0:
				clk.advance(time.Duration(rng.IntN(90)) * time.Second)
			default:
				clk.advance(time.Duration(rng.IntN(300)) * time.Millisecond)
			}
		}
		// Sliding check: for each granted attempt, count attempts in [t, t+60s).
		j := 0
		for i := range granted {
			for j < len(granted) && granted[j].Sub(granted[i]) < Window {
				j++
			}
			if n := j - i; n > limit {
				t.Fatalf("seed %d: %d attempts in the 60 s window starting %v, limit %d", seed, n, granted[i], limit)
			}
		}
		if len(granted) < limit {
			t.Fatalf("seed %d: only %d attempts granted; the pacer wastes budget", seed, len(granted))
		}
	}
}

func TestPacerShareAndThrottle(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p := New(100, clk.now)
	p.SetShare(1.0 / 3)
	if got := p.Limit(); got != 33 {
		t.Fatalf("limit with a third of the partitions = %d, want 33", got)
	}
	p.SetShare(0.001)
	if got := p.Limit(); got != 1 {
		t.Fatalf("limit with a tiny share = %d, want at least 1", got)
	}
	p.SetShare(1)
	p.Throttled(0)
	if got := p.Limit(); got != 50 {
		t.Fatalf("limit after a 429 = %d, want 50", got)
	}
	p.Throttled(7 * time.Second)
	if got := p.Limit(); got != 25 {
		t.Fatalf("limit after two 429s = %d, want 25", got)
	}
	if w := acquire(p, clk); w != 7*time.Second {
		t.Fatalf("wait right after Retry-After 7s = %v, want 7s", w)
	}
	clk.advance(7 * time.Second)
	if w := acquire(p, clk); w != 0 {
		t.Fatalf("after Retry-After passed: wait %v", w)
	}
	clk.advance(throttleCooldown)
	if got := p.Limit(); got != 100 {
		t.Fatalf("limit after the cool-down = %d, want 100 again", got)
	}
}

func TestPacerWaitBlocksUntilSlotAndHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(2, time.Now)
		ctx := context.Background()
		start := time.Now()
		for i := 0; i < 2; i++ {
			if err := p.Wait(ctx); err != nil {
				t.Fatal(err)
			}
			p.Finish(true, time.Now())
		}
		if err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		p.Finish(true, time.Now())
		if got := time.Since(start); got != Window {
			t.Fatalf("third attempt of a 2/min budget waited %v, want %v", got, Window)
		}
		// Fill the window again (the first two attempts left it at the 60 s mark).
		if err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		p.Finish(true, time.Now())
		if got := time.Since(start); got != Window {
			t.Fatalf("fourth attempt waited until %v, want %v", got, Window)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := p.Wait(cctx); err != context.DeadlineExceeded {
			t.Fatalf("Wait with an expiring context = %v, want DeadlineExceeded", err)
		}
		// The cancelled wait recorded nothing.
		if got := p.InUse(); got != 2 {
			t.Fatalf("InUse after a cancelled wait = %d, want 2", got)
		}
	})
}

// TestPacerCountsFromFinish: an attempt occupies its slot from its reservation until a window
// after it finished, so a slow attempt cannot let the next one arrive at the API less than a
// window after it did (the API counts a request when it arrives, between the two).
func TestPacerCountsFromFinish(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p := New(2, clk.now)
	if w := p.TryAcquire(clk.now()); w != 0 {
		t.Fatalf("first reservation refused: %v", w)
	}
	if w := p.TryAcquire(clk.now()); w != 0 {
		t.Fatalf("second reservation refused: %v", w)
	}
	if w := p.TryAcquire(clk.now()); w != WaitForFinish {
		t.Fatalf("with both slots on the wire: wait %v, want WaitForFinish", w)
	}
	clk.advance(3 * time.Second) // the first attempt takes 3 s
	p.Finish(true, clk.now())
	p.Finish(false, clk.now()) // the second was never sent: its slot frees at once
	if w := acquire(p, clk); w != 0 {
		t.Fatalf("after an unsent reservation was released: wait %v", w)
	}
	clk.advance(57 * time.Second) // a window after the first was reserved, not after it finished
	if w := p.TryAcquire(clk.now()); w != 3*time.Second {
		t.Fatalf("a window after the slow attempt's reservation: wait %v, want 3s more", w)
	}
	if got := p.InUse(); got != 2 {
		t.Fatalf("InUse = %d, want 2", got)
	}
}

// TestPacerWaitWakesOnFinish: a waiter blocked because every slot is on the wire wakes when one
// finishes unsent.
func TestPacerWaitWakesOnFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := New(1, time.Now)
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() { got <- p.Wait(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("Wait returned %v while the only slot was on the wire", err)
		default:
		}
		p.Finish(false, time.Now())
		if err := <-got; err != nil {
			t.Fatal(err)
		}
	})
}

// TestPacerLogGrows: a huge budget allocates a small log up front, which grows as the window
// fills, keeping the order that the waits are computed from.
func TestPacerLogGrows(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p := New(100_000_000, clk.now)
	if len(p.log) != initialLogSize {
		t.Fatalf("initial log of %d entries, want %d", len(p.log), initialLogSize)
	}
	small := New(3000, clk.now)
	for i := 0; i < 3000; i++ {
		if w := acquire(small, clk); w != 0 {
			t.Fatalf("attempt %d refused: %v", i+1, w)
		}
		clk.advance(10 * time.Millisecond)
	}
	if len(small.log) != 3000 {
		t.Fatalf("log grew to %d, want 3000", len(small.log))
	}
	// 30 s after the first: the 3001st waits until the first leaves the window.
	if w := small.TryAcquire(clk.now()); w != 30*time.Second {
		t.Fatalf("3001st attempt: wait %v, want 30s", w)
	}
}

// TestPacerHoldsBackForNewInteractions: while brand-new interactions arrive, updates may not
// take the last slots of the window (at most a fifth); new interactions may; without new
// interactions nothing is held back.
func TestPacerHoldsBackForNewInteractions(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p := New(100, clk.now)
	take := func(fresh bool) int { return takeAll(p, clk, fresh) }
	if n := take(false); n != 100 {
		t.Fatalf("updates with no new interactions took %d slots, want all 100", n)
	}
	clk.advance(Window)
	for i := 0; i < 7; i++ {
		p.NoteFresh(clk.now())
	}
	if n := take(false); n != 93 {
		t.Fatalf("updates with 7 new interactions in the window took %d slots, want 93", n)
	}
	if n := take(true); n != 7 {
		t.Fatalf("new interactions then took %d slots, want the 7 held back", n)
	}
	clk.advance(Window)
	for i := 0; i < 500; i++ {
		p.NoteFresh(clk.now())
	}
	if n := take(false); n != 80 {
		t.Fatalf("updates with 500 new interactions took %d slots, want 80 (a fifth held back at most)", n)
	}
	clk.advance(Window + time.Second)
	if n := take(false); n != 100 {
		t.Fatalf("a window after the new interactions, updates took %d slots, want 100", n)
	}
}

// TestPacerSpreads: with spreading on, a burst of a tenth of the limit goes at once, then
// attempts come at the rate the window gives them back (limit per window, evenly); a quiet
// spell refills the bucket up to the burst, never more; an unsent attempt gives its token
// back; and the window's log still caps every rolling window.
func TestPacerSpreads(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p := New(600, clk.now) // 10 a second, a burst of 60
	p.SetSpread(true)
	n := 0
	for acquire(p, clk) == 0 {
		n++
	}
	if n != 60 {
		t.Fatalf("burst of %d attempts at once, want 60 (a tenth of the limit)", n)
	}
	if w := p.TryAcquire(clk.now()); w != 100*time.Millisecond {
		t.Fatalf("after the burst: wait %v, want 100ms (one attempt at 10 a second)", w)
	}
	// 10 s at the bucket's pace: 100 more, evenly.
	for i := 0; i < 100; i++ {
		clk.advance(100 * time.Millisecond)
		if w := acquire(p, clk); w != 0 {
			t.Fatalf("paced attempt %d refused: wait %v", i+1, w)
		}
		if w := p.TryAcquire(clk.now()); w == 0 {
			t.Fatalf("paced attempt %d: a second attempt in the same instant was allowed", i+1)
		}
	}
	// An unsent reservation returns its token.
	clk.advance(100 * time.Millisecond)
	if w := p.TryAcquire(clk.now()); w != 0 {
		t.Fatalf("after 100ms: wait %v", w)
	}
	p.Finish(false, clk.now())
	if w := acquire(p, clk); w != 0 {
		t.Fatalf("the token of an unsent attempt was not given back: wait %v", w)
	}
	// A long quiet spell refills only up to the burst.
	clk.advance(10 * time.Minute)
	n = 0
	for acquire(p, clk) == 0 {
		n++
	}
	if n != 60 {
		t.Fatalf("after a quiet spell: %d at once, want the burst of 60", n)
	}
}

// TestPacerSpreadNeverExceedsWindow: spreading draws from a bucket and the window's log at
// once; whatever the bucket holds, no rolling window gets more than the limit, and a tenant
// that asks all the time gets the whole limit in every window (none wasted).
func TestPacerSpreadNeverExceedsWindow(t *testing.T) {
	for _, limit := range []int{1, 7, 100, 6000} {
		clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
		p := New(limit, clk.now)
		p.SetSpread(true)
		var granted []time.Time
		end := clk.now().Add(5 * Window)
		for clk.now().Before(end) {
			w := acquire(p, clk)
			if w == 0 {
				granted = append(granted, clk.now())
				continue
			}
			if w == WaitForFinish {
				t.Fatalf("limit %d: WaitForFinish with nothing on the wire", limit)
			}
			clk.advance(w)
		}
		j := 0
		for i := range granted {
			for j < len(granted) && granted[j].Sub(granted[i]) < Window {
				j++
			}
			if n := j - i; n > limit {
				t.Fatalf("limit %d: %d attempts in the window from %v", limit, n, granted[i])
			}
		}
		// Always asking: at least the limit in each full minute from the start.
		for m := 0; m < 4; m++ {
			from := granted[0].Add(time.Duration(m) * Window)
			n := 0
			for _, g := range granted {
				if !g.Before(from) && g.Before(from.Add(Window)) {
					n++
				}
			}
			if n < limit*98/100 {
				t.Fatalf("limit %d: minute %d used %d, want at least 98%% of the limit", limit, m+1, n)
			}
		}
	}
}

// TestPacerSpreadHoldsBackOneToken: with spreading on and brand-new interactions arriving,
// updates leave the bucket's last token (and the window's last slot) to them; without new
// interactions they take everything.
func TestPacerSpreadHoldsBackOneToken(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p := New(600, clk.now) // a bucket of 60, 10 a second
	p.SetSpread(true)
	take := func(fresh bool) int { return takeAll(p, clk, fresh) }
	if n := take(false); n != 60 {
		t.Fatalf("updates with no new interactions took %d tokens, want all 60", n)
	}
	clk.advance(10 * time.Second) // the bucket refills
	p.NoteFresh(clk.now())
	if n := take(false); n != 59 {
		t.Fatalf("updates while new interactions arrive took %d tokens, want 59 (one held back)", n)
	}
	if w := p.TryAcquireFor(clk.now(), false); w != 100*time.Millisecond {
		t.Fatalf("an update then waits %v, want 100ms (until the next token)", w)
	}
	if n := take(true); n != 1 {
		t.Fatalf("a new interaction then took %d tokens, want the 1 held back", n)
	}
	// Paced: tokens come back one at a time; an update waits for two, a new call for one.
	clk.advance(100 * time.Millisecond)
	if w := p.TryAcquireFor(clk.now(), false); w == 0 {
		t.Fatal("an update took the only token while new interactions arrive")
	}
	if w := p.TryAcquireFor(clk.now(), true); w != 0 {
		t.Fatalf("a new interaction waits %v for the token held back", w)
	}
	p.Finish(true, clk.now())
	// A window later, with no new interactions since, nothing is held back.
	clk.advance(Window + time.Second)
	if n := take(false); n != 60 {
		t.Fatalf("a window after the last new interaction, updates took %d tokens, want 60", n)
	}
}

// TestPacerSpreadWindowHoldBack: the window slots held back from updates are as many as
// brand-new interactions arrived in the last window without spreading, in the last freshSpan
// seconds with it, at most a fifth of the limit either way.
func TestPacerSpreadWindowHoldBack(t *testing.T) {
	for _, tc := range []struct {
		spread bool
		fresh  int
		ago    time.Duration
		want   int
	}{
		{spread: false, fresh: 7, ago: 0, want: 7},
		{spread: false, fresh: 7, ago: 30 * time.Second, want: 7},
		{spread: false, fresh: 500, ago: 0, want: 20},
		{spread: true, fresh: 7, ago: 0, want: 7},
		{spread: true, fresh: 7, ago: 9 * time.Second, want: 7},
		{spread: true, fresh: 7, ago: 30 * time.Second, want: 0},
		{spread: true, fresh: 500, ago: 0, want: 20},
	} {
		t.Run(fmt.Sprintf("spread=%t/fresh=%d/ago=%s", tc.spread, tc.fresh, tc.ago), func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			p := New(100, clk.now)
			p.SetSpread(tc.spread)
			for i := 0; i < tc.fresh; i++ {
				p.NoteFresh(clk.now())
			}
			clk.advance(tc.ago)
			p.mu.Lock()
			got := p.reserveLocked(clk.now(), 100)
			p.mu.Unlock()
			if got != tc.want {
				t.Fatalf("held back %d slots, want %d", got, tc.want)
			}
		})
	}
}

// takeAll acquires and finishes attempts at clk's time until the pacer refuses one, and
// returns how many it allowed.
func takeAll(p *Pacer, clk *fakeClock, fresh bool) int {
	n := 0
	for p.TryAcquireFor(clk.now(), fresh) == 0 {
		p.Finish(true, clk.now())
		n++
	}
	return n
}
