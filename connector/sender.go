package connector

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
)

// The sender of a request is three steps, as Prometheus's remote-write
// sendWriteRequestWithBackoff separates them: one attempt (attempt), what the answer tells the
// tenant (observe), and what to do next (decide, a pure function of the answer and the
// request's history), in a short loop (send).

// actionKind is what a request's sender does after an attempt.
type actionKind int

const (
	actDone       actionKind = iota // the request is carried: its records are done
	actRetry                        // wait, then make another attempt
	actBlock                        // block the tenant; the request's contributions go back to pending
	actDeadLetter                   // dead-letter the records the request carried
	actDefer                        // a 404 within the grace: back to pending, tried again after wait at the lowest priority
)

func (k actionKind) String() string {
	switch k {
	case actDone:
		return "done"
	case actRetry:
		return "retry"
	case actBlock:
		return "block"
	case actDefer:
		return "defer"
	default:
		return "dead-letter"
	}
}

// action is decide's answer.
type action struct {
	kind  actionKind
	wait  time.Duration   // actRetry, actDefer: how long to wait first (0: at once, the budget permitting)
	class deadLetterClass // actDeadLetter
	msg   string          // actDeadLetter: the dead letter's message
}

// decideInput is what decide needs to know about an attempt and the request's history.
type decideInput struct {
	res attemptResult
	now time.Time
	// 404s: how old the request's newest data is, the not-found grace, how many 404s the
	// identifier had before this one since it was last written, and when it was found gone
	// after the request's data changed (zero: it was not).
	age           time.Duration
	grace         time.Duration
	notFoundTries int
	goneAt        time.Time
	// Refusals (401, 403, 3xx): how many this identifier had since it was last written,
	// this one included, and whether another identifier was written since the first.
	refused       int
	othersWritten bool
	probeInterval time.Duration
	// next draws the request's next backoff (backoff.Stop once its elapsed limit passed).
	// decide calls it at most once, and only for an outcome that backs off.
	next func() time.Duration
}

// retryMaxInterval caps the backoff between attempts of one request.
const retryMaxInterval = 30 * time.Second

// decide says what follows an attempt (docs/DESIGN.md, "Failure classes"). It is pure but for
// drawing the next backoff from in.next.
func decide(in decideInput) action {
	res := in.res
	switch res.outcome {
	case outcomeDone:
		return action{kind: actDone}
	case outcomePermanent:
		return action{kind: actDeadLetter, class: classAPIRejected, msg: res.message}
	case outcomeBlocked:
		if res.status == http.StatusForbidden && in.othersWritten {
			// Others are written since this identifier's first refusal: the token is fine and
			// the 403 is this interaction's. Retry it on its own, and after a few probes
			// dead-letter it instead of blocking the tenant for good.
			if in.refused >= forbiddenProbes {
				return action{kind: actDeadLetter, class: classForbidden,
					msg: fmt.Sprintf("%s (refused %d times while other interactions were written)", res.message, in.refused)}
			}
			return action{kind: actRetry, wait: in.probeInterval}
		}
		return action{kind: actBlock}
	case outcomeNotFound:
		// Decided by the age of the record's data, not by a wall-clock window: a record
		// younger than the grace may be ahead of its call's registration and is tried again
		// a few times within it; an older one's 404 is final at once (README, "Dead letters").
		if !in.goneAt.IsZero() {
			return action{kind: actDeadLetter, class: classNotFound, msg: res.message + "; " + goneMessage(in.goneAt)}
		}
		wait, ok := notFoundRetry(in.age, in.grace)
		if !ok {
			return action{kind: actDeadLetter, class: classNotFound,
				msg: fmt.Sprintf("%s (%d attempts; the record's data was %s old, the not-found grace is %s)",
					res.message, in.notFoundTries+1, in.age.Round(time.Second), in.grace)}
		}
		return action{kind: actDefer, wait: wait}
	case outcomeThrottled:
		if res.retryAfter > 0 {
			return action{kind: actRetry} // the budget holds every attempt until Retry-After passed
		}
		return action{kind: actRetry, wait: nextOr(in.next, retryMaxInterval)}
	default: // outcomeTransient
		wait := in.next()
		if wait == backoff.Stop {
			return action{kind: actDeadLetter, class: classRetriesExhausted, msg: res.message}
		}
		return action{kind: actRetry, wait: max(wait, res.retryAfter)}
	}
}

// nextOr returns the next backoff, or fallback once the backoff has stopped (its elapsed
// limit only ends retries of transient errors) or when it is longer.
func nextOr(next func() time.Duration, fallback time.Duration) time.Duration {
	d := next()
	if d == backoff.Stop || d > fallback {
		return fallback
	}
	return d
}

// send makes attempts until the request is done, dead-lettered or abandoned. first is the
// reservation of its first attempt, taken by the dispatcher.
func (t *tenant) send(ctx context.Context, req *request, first reservation) {
	defer close(req.done)
	if req.probe {
		t.reloadToken()
	}
	bo := t.newBackoff()
	for n := 0; ; n++ {
		if n > 0 && (req.stopRetry.Load() || t.isLeaving()) {
			t.finish(req, false)
			return
		}
		var rsv reservation
		if n == 0 {
			rsv = first
		}
		res, ok := t.attempt(ctx, req, n, rsv)
		if !ok {
			t.finish(req, false) // abandoned: shutdown or revoke
			return
		}
		in := t.observe(req, res)
		in.next = bo.NextBackOff
		act := decide(in)
		switch act.kind {
		case actDone:
			t.finish(req, true)
			return
		case actDeadLetter:
			if act.class == classNotFound {
				t.gone.mark(req.id.id, in.now)
			}
			t.deadLetter(ctx, req, act.class, act.msg)
			return
		case actDefer:
			t.deferNotFound(req, in.now.Add(act.wait))
			return
		case actBlock:
			t.setBlocked(res)
			t.finish(req, false) // back to pending; the tenant probes from there
			return
		}
		if res.outcome != outcomeBlocked && n%10 == 0 {
			t.log.Warn("write failed, retrying", zap.String("identifier", req.id.id),
				zap.Stringer("class", res.outcome), zap.Int("status", res.status),
				zap.String("error", res.message), zap.Int("attempt", n+1), zap.Duration("backoff", act.wait))
		}
		if act.wait > 0 && !t.sleepUnlessLeaving(ctx, act.wait) {
			t.finish(req, false)
			return
		}
	}
}

// attempt makes attempt n of req: it reserves the budget (rsv, the first attempt's, was
// reserved by the dispatcher), begins the reservation (one that expired is returned and
// taken again), posts within the reservation's timeout and ends it as the answer says:
// answered, uncertain (no answer, but the request may have left) or unused (it never left).
// ok is false when ctx ended first, or the tenant is leaving before the attempt began.
func (t *tenant) attempt(ctx context.Context, req *request, n int, rsv reservation) (_ attemptResult, ok bool) {
	fresh := req.fresh
	var timeout time.Duration
	for {
		if rsv == nil {
			waitStart := t.now()
			r, err := t.reserve(ctx, func() bool { return fresh })
			if err != nil {
				return attemptResult{}, false
			}
			waitEnd := t.now()
			t.metrics.recordBudgetWait(t.name, waitEnd.Sub(waitStart))
			t.traceBudgetWait(req, waitStart, waitEnd)
			rsv = r
		}
		if ctx.Err() != nil {
			rsv.End(useUnused, t.now())
			return attemptResult{}, false
		}
		var begun bool
		if timeout, begun = rsv.Begin(); begun {
			break
		}
		rsv.End(useUnused, t.now()) // expired before it was used: reserve again
		rsv = nil
	}
	sent := t.now()
	sp := t.startAttempt(req, n, sent)
	res := t.client.postWithin(ctx, req.id.id, req.body, timeout)
	// The attempt's reservation ends now: for the pacer it counts from now on, a time never
	// earlier than the API's arrival time (see pacer.Pacer).
	answered := t.now()
	endAttempt(sp, res, answered)
	rsv.End(res.use(), answered)
	t.metrics.recordAttempt(t.name, res.status, answered.Sub(sent))
	if ctx.Err() != nil {
		return res, false
	}
	if res.retryAfterCapped {
		t.log.Warn("the API asked to retry after more than the cap; waiting the cap instead",
			zap.Int("status", res.status), zap.Duration("cap", maxRetryAfter))
	}
	return res, true
}

// reserve is budget.Reserve for a retry: it also gives up when the tenant starts leaving.
func (t *tenant) reserve(ctx context.Context, fresh func() bool) (reservation, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-t.leaving:
			cancel()
		case <-ctx.Done():
		}
	}()
	return t.budget.Reserve(ctx, fresh, nil)
}

// sleepUnlessLeaving waits d, unless ctx ends or the tenant starts leaving first.
func (t *tenant) sleepUnlessLeaving(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.leaving:
		return false
	case <-tm.C:
		return true
	}
}

// observe applies what an answer tells the tenant (its token is accepted, the budget is
// throttled, the identifier was refused) and returns decide's input.
func (t *tenant) observe(req *request, res attemptResult) decideInput {
	in := decideInput{res: res, grace: t.opts.NotFoundGrace, probeInterval: t.probeInterval}
	switch res.outcome {
	case outcomeDone:
		if res.unconfirmed {
			t.metrics.recordUnconfirmed(t.name)
		}
		t.accepted(true)
	case outcomePermanent:
		t.accepted(false)
	case outcomeBlocked:
		in.refused, in.othersWritten = t.noteRefused(req.id)
	case outcomeNotFound:
		t.accepted(false) // the API authenticated us to say so
	case outcomeThrottled:
		t.budget.Throttled(res.retryAfter)
	}
	in.now = t.now()
	if res.outcome == outcomeNotFound {
		in.age = in.now.Sub(req.dataAt)
		in.notFoundTries = t.co.notFoundCount(req.id)
		in.goneAt, _ = t.gone.covers(req.id.id, req.dataAt, in.now)
	}
	return in
}
