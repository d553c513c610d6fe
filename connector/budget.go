package connector

import (
	"context"
	"sync"
	"time"

	"github.com/augment-connector/augment-connector/internal/pacer"
)

// budget is a tenant's rate budget as its dispatcher and senders use it. Two implementations:
// pacerBudget (coordination local: a sliding-window log of this replica's share, package
// pacer) and ledgerBudget (coordination kafka: one budget for the whole cluster, kept in the
// budget ledger, package ledger). Every attempt holds a reservation of its own, taken before
// the request is sent and ended once its answer (or failure) is in: the API counts every
// authenticated request, whatever its outcome.
type budget interface {
	// Reserve blocks until one attempt is allowed and returns its reservation, which the
	// caller must End exactly once. fresh (nil: true) says whether the request is for a
	// brand-new interaction, which may use the slots held back from updates; it is asked
	// again at every wake-up. wake (may be nil) ends a wait early to ask again. If ctx ends
	// first, Reserve holds nothing and returns ctx's error.
	Reserve(ctx context.Context, fresh func() bool, wake <-chan struct{}) (reservation, error)
	// Throttled records a 429 answer and its Retry-After (0: none).
	Throttled(retryAfter time.Duration)
	// NoteFresh records that a brand-new interaction started waiting at at.
	NoteFresh(at time.Time)
	// SetShare sets this replica's fraction of the tenant's budget (its share of the tenant's
	// partitions). A cluster-wide budget ignores it.
	SetShare(share float64)
	// Limit reports the attempts allowed per window now, InUse those in the current window
	// (this replica's, or the cluster's for a cluster-wide budget).
	Limit() int
	InUse() int
	// Parallel is how many reservations the dispatcher may wait for at once. A local budget
	// answers at once (1: reserve, build, repeat); a reservation from the ledger takes a
	// round trip through Kafka, so waiting for one at a time would cap a tenant at one
	// request per round trip whatever its budget.
	Parallel() int
}

// reservation is one attempt's hold on the budget.
type reservation interface {
	// Begin is called just before the request is written. ok false: the reservation expired
	// before it was used; the caller Ends it as useUnused and reserves again. Otherwise
	// timeout caps the attempt: it must be abandoned by then.
	Begin() (timeout time.Duration, ok bool)
	// End reports how the reservation was used, at at (when the answer arrived or the attempt
	// failed). Only the first End counts.
	End(how use, at time.Time)
}

// use is how a reservation was used.
type use int

const (
	// useUnused: the request was never written (not begun, or it failed before a connection
	// carried any of it).
	useUnused use = iota
	// useAnswered: a response arrived, whatever its status: the API has seen the attempt.
	useAnswered
	// useUncertain: no response arrived (a timeout, a network error, a cancel) after the
	// request may have been written: the API may still see it.
	useUncertain
)

func (u use) String() string {
	switch u {
	case useAnswered:
		return "answered"
	case useUncertain:
		return "uncertain"
	default:
		return "unused"
	}
}

// pacerBudget is the local budget (coordination local): *pacer.Pacer behind the reservation
// interface, with exactly the pacer's behaviour. A reservation is always usable and takes
// the tenant's own request timeout; an attempt that went out (answered or uncertain) counts
// from its end, one never sent frees its slot at once.
type pacerBudget struct {
	p       *pacer.Pacer
	timeout time.Duration // the tenant's request timeout
}

func newPacerBudget(p *pacer.Pacer, timeout time.Duration) *pacerBudget {
	return &pacerBudget{p: p, timeout: timeout}
}

func (b *pacerBudget) Reserve(ctx context.Context, fresh func() bool, wake <-chan struct{}) (reservation, error) {
	if err := b.p.WaitFor(ctx, fresh, wake); err != nil {
		return nil, err
	}
	return &pacerReservation{b: b}, nil
}

func (b *pacerBudget) Throttled(retryAfter time.Duration) { b.p.Throttled(retryAfter) }
func (b *pacerBudget) NoteFresh(at time.Time)             { b.p.NoteFresh(at) }
func (b *pacerBudget) SetShare(share float64)             { b.p.SetShare(share) }
func (b *pacerBudget) Limit() int                         { return b.p.Limit() }
func (b *pacerBudget) InUse() int                         { return b.p.InUse() }

// Parallel is 1: the pacer answers at once, and the dispatcher keeps its one-at-a-time order.
func (b *pacerBudget) Parallel() int { return 1 }

// pacerReservation is one slot of the pacer's window.
type pacerReservation struct {
	b    *pacerBudget
	once sync.Once
}

func (r *pacerReservation) Begin() (time.Duration, bool) { return r.b.timeout, true }

func (r *pacerReservation) End(how use, at time.Time) {
	r.once.Do(func() { r.b.p.Finish(how != useUnused, at) })
}
