// Package pacer keeps one tenant's API requests within its budget on one replica: a
// sliding-window log of attempts (see Pacer). The connector uses it through a small interface
// of its own (connector's budget), which a cluster-wide budget ledger can implement next.
package pacer

import (
	"context"
	"sync"
	"time"
)

// Window is the API's rate-limit window: 100 requests per minute per tenant, counted over
// any rolling 60 seconds.
const Window = time.Minute

// Pacer keeps one tenant's requests within its budget: never more than limit attempts in any
// rolling window. It is a sliding-window log, not a token bucket: a bucket refilled at limit/60
// per second still lets a full bucket and a minute of refills land in one window, which the
// API answers with 429s. Every attempt counts, whatever its outcome, because the API counts
// every authenticated request.
//
// The log holds when each attempt finished (its response arrived or it failed), and attempts
// still on the wire count separately. The API counts a request when it arrives, which is after
// we reserved it and before we hear back; logging the reservation time let a new attempt, sent
// exactly a window after an old one was reserved, arrive less than a window after the old one
// arrived (measured: 1,001 requests in the simulator's rolling minute at a limit of 1,000).
// The finish time is never earlier than the API's arrival time, so a slot is reused only once
// the API's window has certainly let the old attempt go.
//
// The limit is the replica's share of the tenant's budget. A 429 that the pacing did not
// cause (another client on the same tenant) halves the share for a cool-down and then lets it
// recover, and honours Retry-After by not sending before it passes.
//
// With spreading on (SetSpread), attempts are also drawn from a bucket refilled at limit per
// window, evenly, holding at most spreadBurst of the limit: the window's budget is spent at
// the rate it comes back, not all at once. While the tenant keeps up, the bucket is full and
// a request goes at once (latency first); once it falls behind, requests wait their turn and
// everything that arrives for an identifier meanwhile folds into its next request, so it
// coalesces more the further behind it falls. Spending a whole window at once instead sends
// thousands of requests with the first of each identifier's events, and each needs a second
// request for the rest (measured on the backlog benchmark: 24,736 requests for 20,000
// identifiers).
//
// A Pacer is safe for concurrent use. Create it with New.
type Pacer struct {
	now func() time.Time

	mu        sync.Mutex    // guards every field below
	budget    int           // the tenant's configured requests per window
	share     float64       // this replica's fraction of the budget (0 < share <= 1)
	penalty   float64       // 1 normally; halved by each 429, restored after cooldown
	cooldown  time.Time     // when penalty returns to 1
	notBefore time.Time     // no attempt before this (Retry-After)
	log       []time.Time   // ring of the finish times of attempts in the window
	head      int           // index of the oldest entry in log
	count     int           // entries in log
	inflight  int           // attempts reserved and not finished
	changed   chan struct{} // closed and replaced when the limit changes

	// Brand-new interactions seen per second over the last window (ring indexed by unix
	// second), for the hold-back: see reserveLocked.
	freshCount [60]int
	freshSec   [60]int64

	spread   bool      // draw attempts from the bucket too (SetSpread)
	tokens   float64   // attempts the bucket holds at tokensAt
	tokensAt time.Time // when tokens was last brought up to date; zero: the bucket is full
}

// spreadHoldBack is how many of the bucket's tokens updates leave to brand-new interactions
// while such interactions arrive (see reserveLocked).
const spreadHoldBack = 1

// spreadBurst is the share of the limit the bucket holds: what may go at once after a quiet
// spell (a tenth of the window: 10 requests at the API's 100 a minute).
const spreadBurst = 0.1

// initialLogSize caps the log allocated up front; it grows (up to the budget) as the window
// fills, so a tenant configured with a huge budget costs memory only for what it uses.
const initialLogSize = 1024

// throttleCooldown is how long a 429 we did not cause keeps the share reduced.
const throttleCooldown = 2 * Window

// New returns a Pacer allowing budget attempts per Window (at least 1), reading the time from
// now.
func New(budget int, now func() time.Time) *Pacer {
	if budget < 1 {
		budget = 1
	}
	return &Pacer{
		now:     now,
		budget:  budget,
		share:   1,
		penalty: 1,
		log:     make([]time.Time, min(budget, initialLogSize)),
		changed: make(chan struct{}),
	}
}

// SetSpread turns spreading on or off (see Pacer).
func (p *Pacer) SetSpread(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.spread = on
	p.tokensAt = time.Time{}
}

// bucketLocked brings the bucket up to now for limit and returns its capacity.
func (p *Pacer) bucketLocked(now time.Time, limit int) float64 {
	capacity := max(1, float64(limit)*spreadBurst)
	if p.tokensAt.IsZero() {
		p.tokens = capacity
	} else if d := now.Sub(p.tokensAt); d > 0 {
		p.tokens += float64(limit) * d.Seconds() / Window.Seconds()
	}
	p.tokens = min(p.tokens, capacity)
	p.tokensAt = now
	return capacity
}

// limit is the number of attempts allowed in the window now: budget × share × penalty,
// at least 1.
func (p *Pacer) limitLocked(now time.Time) int {
	if p.penalty < 1 && !now.Before(p.cooldown) {
		p.penalty = 1
	}
	n := int(float64(p.budget) * p.share * p.penalty)
	if n < 1 {
		n = 1
	}
	return n
}

// Limit reports the current number of attempts allowed per window.
func (p *Pacer) Limit() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limitLocked(p.now())
}

// InUse reports how many attempts fall in the current window, on the wire or finished.
func (p *Pacer) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expireLocked(p.now())
	return p.count + p.inflight
}

// expireLocked drops attempts older than the window.
func (p *Pacer) expireLocked(now time.Time) {
	for p.count > 0 && !p.log[p.head].Add(Window).After(now) {
		p.head = (p.head + 1) % len(p.log)
		p.count--
	}
}

// maxHoldBack is the largest share of the window held back from updates for brand-new
// interactions.
const maxHoldBack = 0.2

// NoteFresh records that a brand-new interaction (never written by us) started waiting.
func (p *Pacer) NoteFresh(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sec := now.Unix()
	i := int(sec % 60)
	if p.freshSec[i] != sec {
		p.freshSec[i], p.freshCount[i] = sec, 0
	}
	p.freshCount[i]++
}

// reserveLocked is how many slots of the window updates may not take: as many as brand-new
// interactions arrived in the last window, at most maxHoldBack of the limit. The IVR needs a
// new call's first variables within a second; with updates free to spend the whole window, a
// call starting after the window filled would wait for it to roll. When no new interactions
// come (a backlog of updates) nothing is held back, so no budget is wasted.
//
// With spreading on, the hold-back counts the new interactions of the last freshSpan only:
// holding back a whole window's worth left updates capped below the limit by as many slots
// (measured: 824 of 1,000 requests in a minute of the budget benchmark's under-budget load,
// while updates waited 9 s), and holding back one slot let new calls wait 5 s (p99) when the
// window filled after a busy spell. The bucket also keeps one token for them
// (spreadHoldBack).
func (p *Pacer) reserveLocked(now time.Time, limit int) int {
	if limit < 5 {
		return 0
	}
	span := int64(60)
	if p.spread {
		span = freshSpan
	}
	return min(p.freshLocked(now, span), int(float64(limit)*maxHoldBack))
}

// freshSpan is how many seconds of new interactions the hold-back counts with spreading on.
const freshSpan = 10

// freshLocked counts the brand-new interactions seen in the last span seconds (at most 60).
func (p *Pacer) freshLocked(now time.Time, span int64) int {
	fresh := 0
	sec := now.Unix()
	for i := range p.freshSec {
		if d := sec - p.freshSec[i]; d >= 0 && d < span {
			fresh += p.freshCount[i]
		}
	}
	return fresh
}

// WaitForFinish is what TryAcquire returns when every slot is held by an attempt still on the
// wire: only a Finish can free one.
const WaitForFinish = time.Duration(-1)

// TryAcquire reserves an attempt at now and returns 0 if the budget allows it, or else how
// long until it may (WaitForFinish: until an attempt on the wire finishes), reserving nothing.
// Every reservation must be followed by one call of Finish.
func (p *Pacer) TryAcquire(now time.Time) time.Duration { return p.TryAcquireFor(now, true) }

// TryAcquireFor is TryAcquire for a request for a brand-new interaction (fresh), which may use
// the whole limit, or for an update, which may not use the slots held back (reserveLocked).
func (p *Pacer) TryAcquireFor(now time.Time, fresh bool) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Before(p.notBefore) {
		return p.notBefore.Sub(now)
	}
	p.expireLocked(now)
	full := p.limitLocked(now)
	limit := full
	if !fresh {
		limit -= p.reserveLocked(now, limit)
	}
	if used := p.count + p.inflight; used >= limit {
		// The (used-limit+1)th oldest finished attempt must leave the window first.
		k := used - limit
		if k >= p.count {
			return WaitForFinish
		}
		i := (p.head + k) % len(p.log)
		return p.log[i].Add(Window).Sub(now)
	}
	if p.spread {
		capacity := p.bucketLocked(now, full)
		need := 1.0
		if !fresh && capacity >= 1+spreadHoldBack && p.freshLocked(now, 60) > 0 {
			need = 1 + spreadHoldBack // the last token is for a brand-new interaction
		}
		if p.tokens < need {
			rate := float64(full) / Window.Seconds() // attempts per second
			return max(time.Millisecond, time.Duration((need-p.tokens)/rate*float64(time.Second)))
		}
		p.tokens--
	}
	p.inflight++
	return 0
}

// Finish ends a reservation. sent says the attempt went out (whatever its outcome): it stays in
// the window from at, the time it finished. An attempt never sent frees its slot at once.
func (p *Pacer) Finish(sent bool, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight--
	if !sent && p.spread {
		// An attempt never sent gives its token back.
		capacity := p.bucketLocked(at, p.limitLocked(at))
		p.tokens = min(p.tokens+1, capacity)
	}
	if sent {
		p.expireLocked(at)
		if p.count == len(p.log) {
			if len(p.log) < p.budget {
				p.growLocked()
			} else { // cannot happen while limit <= budget; keep the ring safe
				p.head = (p.head + 1) % len(p.log)
				p.count--
			}
		}
		p.log[(p.head+p.count)%len(p.log)] = at
		p.count++
	}
	p.notifyLocked()
}

// growLocked doubles the log (up to the budget), keeping its entries in order.
func (p *Pacer) growLocked() {
	grown := make([]time.Time, min(2*len(p.log), p.budget))
	for i := 0; i < p.count; i++ {
		grown[i] = p.log[(p.head+i)%len(p.log)]
	}
	p.log, p.head = grown, 0
}

// Wait blocks until an attempt is allowed and reserves it; the caller must call Finish once
// the attempt is done (or was not sent). It returns ctx's error if ctx ends first, in which
// case nothing is reserved. A change of limit or a finished attempt wakes waiters early.
func (p *Pacer) Wait(ctx context.Context) error { return p.WaitFor(ctx, nil, nil) }

// WaitFor is Wait for the request fresh reports (nil: fresh), re-asked at every wake-up, so a
// dispatcher waiting for an update's slot takes a held-back slot as soon as a brand-new
// interaction becomes its next request; wake (may be nil) ends a wait early to re-ask.
func (p *Pacer) WaitFor(ctx context.Context, fresh func() bool, wake <-chan struct{}) error {
	for {
		isFresh := fresh == nil || fresh()
		wait := p.TryAcquireFor(p.now(), isFresh)
		if wait == 0 {
			return nil
		}
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		var t *time.Timer
		var timer <-chan time.Time
		if wait > 0 {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-timer:
		case <-wake:
		}
		if t != nil {
			t.Stop()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// SetShare sets this replica's fraction of the tenant's budget, from its share of the
// tenant's assigned partitions (recomputed on every rebalance). It never goes below the
// equivalent of one request per window.
func (p *Pacer) SetShare(share float64) {
	if share > 1 || share != share {
		share = 1
	}
	if share <= 0 {
		share = 1e-9 // no partitions: the floor of one request per window applies
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.share = share
	p.notifyLocked()
}

// Throttled records a 429 answer: the share is halved for throttleCooldown (down to one
// request per window at the least), and with a Retry-After nothing is sent before it passes.
func (p *Pacer) Throttled(retryAfter time.Duration) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.penalty /= 2
	if p.penalty < 0.01 {
		p.penalty = 0.01
	}
	p.cooldown = now.Add(throttleCooldown)
	if retryAfter > 0 {
		if nb := now.Add(retryAfter); nb.After(p.notBefore) {
			p.notBefore = nb
		}
	}
	p.notifyLocked()
}

func (p *Pacer) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}
