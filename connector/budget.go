package connector

import (
	"context"
	"time"
)

// budget is a tenant's rate budget as its dispatcher and senders use it. *pacer.Pacer
// implements it for one replica (a sliding-window log of this replica's share); a budget
// ledger shared by the whole group can implement it next without the tenant changing. Every
// attempt is reserved before it is sent and finished once its answer (or failure) is in:
// the API counts every authenticated request, whatever its outcome.
type budget interface {
	// WaitFor blocks until one attempt is allowed and reserves it. fresh (nil: true) says
	// whether the request is for a brand-new interaction, which may use the slots held back
	// from updates; it is asked again at every wake-up. wake (may be nil) ends a wait early to
	// ask again. If ctx ends first, WaitFor reserves nothing and returns ctx's error.
	WaitFor(ctx context.Context, fresh func() bool, wake <-chan struct{}) error
	// Finish ends a reservation: sent says the attempt went out, and then it counts from at,
	// when its answer arrived; an attempt never sent frees its slot at once.
	Finish(sent bool, at time.Time)
	// Throttled records a 429 answer and its Retry-After (0: none).
	Throttled(retryAfter time.Duration)
	// NoteFresh records that a brand-new interaction started waiting at at.
	NoteFresh(at time.Time)
	// SetShare sets this replica's fraction of the tenant's budget (its share of the tenant's
	// partitions).
	SetShare(share float64)
	// Limit reports the attempts allowed per window now, InUse those in the current window.
	Limit() int
	InUse() int
}
