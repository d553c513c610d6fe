package connector

import (
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/go-cmp/cmp"
)

// TestDecide covers every outcome class of client.go and each way decide can go for it.
func TestDecide(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	const window = 30 * time.Second
	const probe = 15 * time.Second
	fixed := func(d time.Duration) func() time.Duration { return func() time.Duration { return d } }
	for _, tc := range []struct {
		name string
		in   decideInput
		want action
		// draws is how many backoffs decide may draw (0 or 1).
		draws int
	}{
		{name: "2xx done", in: decideInput{res: attemptResult{outcome: outcomeDone, status: 200}},
			want: action{kind: actDone}},
		{name: "2xx unconfirmed is still done", in: decideInput{res: attemptResult{outcome: outcomeDone, status: 204, unconfirmed: true}},
			want: action{kind: actDone}},
		{name: "400 dead-letters as api_rejected", in: decideInput{res: attemptResult{outcome: outcomePermanent, status: 400, message: "HTTP 400: bad"}},
			want: action{kind: actDeadLetter, class: classAPIRejected, msg: "HTTP 400: bad"}},
		{name: "401 blocks the tenant", in: decideInput{res: attemptResult{outcome: outcomeBlocked, status: 401}, refused: 1, othersWritten: true},
			want: action{kind: actBlock}},
		{name: "redirect blocks the tenant", in: decideInput{res: attemptResult{outcome: outcomeBlocked, status: 302, redirect: "HTTP 302"}, refused: 5, othersWritten: true},
			want: action{kind: actBlock}},
		{name: "403 with nobody else written blocks the tenant", in: decideInput{res: attemptResult{outcome: outcomeBlocked, status: 403}, refused: 5},
			want: action{kind: actBlock}},
		{name: "403 while others are written retries after a probe interval", in: decideInput{res: attemptResult{outcome: outcomeBlocked, status: 403}, refused: forbiddenProbes - 1, othersWritten: true, probeInterval: probe},
			want: action{kind: actRetry, wait: probe}},
		{name: "403 while others are written, refused enough: forbidden", in: decideInput{res: attemptResult{outcome: outcomeBlocked, status: 403, message: "HTTP 403: no"}, refused: forbiddenProbes, othersWritten: true, probeInterval: probe},
			want: action{kind: actDeadLetter, class: classForbidden, msg: "HTTP 403: no (refused 3 times while other interactions were written)"}},
		{name: "404 of a record just produced is deferred by the minimum step", in: decideInput{res: attemptResult{outcome: outcomeNotFound, status: 404}, now: now, age: 100 * time.Millisecond, grace: window},
			want: action{kind: actDefer, wait: notFoundMinStep}},
		{name: "404 of a record 8s old is deferred until it is twice as old", in: decideInput{res: attemptResult{outcome: outcomeNotFound, status: 404}, now: now, age: 8 * time.Second, grace: window, notFoundTries: 3},
			want: action{kind: actDefer, wait: 8 * time.Second}},
		{name: "404 of a record 20s old is deferred until the grace, not past it", in: decideInput{res: attemptResult{outcome: outcomeNotFound, status: 404}, now: now, age: 20 * time.Second, grace: window},
			want: action{kind: actDefer, wait: 10 * time.Second}},
		{name: "404 at the grace is final: not_found", in: decideInput{res: attemptResult{outcome: outcomeNotFound, status: 404, message: "HTTP 404: unknown"}, now: now, age: window, grace: window, notFoundTries: 5},
			want: action{kind: actDeadLetter, class: classNotFound, msg: "HTTP 404: unknown (6 attempts; the record's data was 30s old, the not-found grace is 30s)"}},
		{name: "404 of a record two hours old is final after one attempt", in: decideInput{res: attemptResult{outcome: outcomeNotFound, status: 404, message: "HTTP 404: unknown"}, now: now, age: 2 * time.Hour, grace: window},
			want: action{kind: actDeadLetter, class: classNotFound, msg: "HTTP 404: unknown (1 attempts; the record's data was 2h0m0s old, the not-found grace is 30s)"}},
		{name: "404 of an identifier found gone after the data changed is final at once", in: decideInput{res: attemptResult{outcome: outcomeNotFound, status: 404, message: "HTTP 404: unknown"}, now: now, age: time.Second, grace: window, goneAt: now.Add(-time.Second)},
			want: action{kind: actDeadLetter, class: classNotFound, msg: "HTTP 404: unknown; " + goneMessage(now.Add(-time.Second))}},
		{name: "429 with Retry-After retries at once (the budget waits)", in: decideInput{res: attemptResult{outcome: outcomeThrottled, status: 429, retryAfter: 5 * time.Second}},
			want: action{kind: actRetry}},
		{name: "429 without Retry-After backs off", in: decideInput{res: attemptResult{outcome: outcomeThrottled, status: 429}, next: fixed(2 * time.Second)},
			want: action{kind: actRetry, wait: 2 * time.Second}, draws: 1},
		{name: "429 after the backoff stopped waits the cap", in: decideInput{res: attemptResult{outcome: outcomeThrottled, status: 429}, next: fixed(backoff.Stop)},
			want: action{kind: actRetry, wait: retryMaxInterval}, draws: 1},
		{name: "5xx backs off", in: decideInput{res: attemptResult{outcome: outcomeTransient, status: 503}, next: fixed(400 * time.Millisecond)},
			want: action{kind: actRetry, wait: 400 * time.Millisecond}, draws: 1},
		{name: "5xx waits a longer Retry-After", in: decideInput{res: attemptResult{outcome: outcomeTransient, status: 503, retryAfter: 7 * time.Second}, next: fixed(400 * time.Millisecond)},
			want: action{kind: actRetry, wait: 7 * time.Second}, draws: 1},
		{name: "connection error after maxRetryElapsed: retries_exhausted", in: decideInput{res: attemptResult{outcome: outcomeTransient, message: "connection refused"}, next: fixed(backoff.Stop)},
			want: action{kind: actDeadLetter, class: classRetriesExhausted, msg: "connection refused"}, draws: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			draws := 0
			in := tc.in
			next := in.next
			in.next = func() time.Duration {
				draws++
				if next == nil {
					t.Fatalf("decide drew a backoff for %v", in.res.outcome)
				}
				return next()
			}
			got := decide(in)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(action{})); diff != "" {
				t.Errorf("decide (-want +got):\n%s", diff)
			}
			if draws != tc.draws {
				t.Errorf("decide drew %d backoffs, want %d", draws, tc.draws)
			}
		})
	}
}
