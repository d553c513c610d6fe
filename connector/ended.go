package connector

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds what keeps the budget off calls that are over (README, "Dead letters";
// docs/DESIGN.md, "Failure classes"): the memory of identifiers found gone, the age of a
// record's data, and the schedule of 404 retries within the not-found grace.

// goneMemory is how long an identifier whose 404 was final stays known as gone.
const goneMemory = 10 * time.Minute

// goneMaxEntries bounds the memory of gone identifiers; past it, expired entries are dropped
// and, if that is not enough, arbitrary ones down to half: forgetting one costs one request.
const goneMaxEntries = 100_000

// goneSet remembers the identifiers whose 404 was final, and when, so that the records about
// them that were produced before that moment go nowhere near the API: the worker checks each
// record on arrival, the coalescer each contribution when a request is built. A record
// produced after the moment is not covered: it gets a request of its own, under the
// not-found policy. It has its own lock, taken last (after the tenant's and the coalescer's).
type goneSet struct {
	// n mirrors len(at), so the record path (every identifier of every record, every
	// contribution a request carries) takes no lock while nothing was ever found gone.
	n  atomic.Int64
	mu sync.Mutex
	at map[string]time.Time
}

func newGoneSet() *goneSet { return &goneSet{at: make(map[string]time.Time)} }

// covers reports whether id was found gone (within goneMemory of now) after dataAt, the time
// of a record's data: then the record is about a call that is over. It returns when.
func (g *goneSet) covers(id string, dataAt, now time.Time) (time.Time, bool) {
	if g.n.Load() == 0 {
		return time.Time{}, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.at[id]
	if !ok || now.Sub(at) >= goneMemory || !dataAt.Before(at) {
		return time.Time{}, false
	}
	return at, true
}

// mark records that id's 404 was final at now.
func (g *goneSet) mark(id string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.at) >= goneMaxEntries {
		for k, at := range g.at {
			if now.Sub(at) >= goneMemory {
				delete(g.at, k)
			}
		}
		for k := range g.at {
			if len(g.at) <= goneMaxEntries/2 {
				break
			}
			delete(g.at, k)
		}
	}
	g.at[id] = now
	g.n.Store(int64(len(g.at)))
}

// len reports how many identifiers are remembered, expired or not (tests).
func (g *goneSet) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.at)
}

// dataTime is when a record's data changed: the pipeline's recordTime expression when it gave
// one, else the record's Kafka timestamp, else now (a record without a timestamp is as fresh
// as it can be).
func dataTime(fromExpr, kafka, now time.Time) time.Time {
	switch {
	case !fromExpr.IsZero():
		return fromExpr
	case !kafka.IsZero() && kafka.UnixMilli() > 0:
		return kafka
	default:
		return now
	}
}

// notFoundMinStep is the shortest wait between two attempts of a request answered 404 within
// the grace: a call registers a moment after its CRM change, so the first retry comes soon.
const notFoundMinStep = 2 * time.Second

// notFoundRetry says when a request answered 404 is tried again, from age, how old its
// newest data is, and the grace: the next attempt comes when the data is twice as old (at
// least notFoundMinStep later), and the last when it is grace old. A record 404ed at once is
// tried about six times (at ages 0, 2, 4, 8, 16 s and the grace of 30 s), one half the grace
// old twice, one older than the grace once: the 404 of an old record is final (ok false).
func notFoundRetry(age, grace time.Duration) (wait time.Duration, ok bool) {
	if age >= grace {
		return 0, false
	}
	next := max(2*age, age+notFoundMinStep)
	if next > grace {
		next = grace
	}
	return next - age, true
}

// staleMessage is a stale record's dead-letter message. It gives durations only.
func staleMessage(age, limit time.Duration) string {
	return fmt.Sprintf("the record's data was %s old when its request was built, older than maxRecordAge %s: not sent",
		age.Round(time.Second), limit)
}

// goneMessage is the dead-letter message of a record about an identifier found gone.
func goneMessage(at time.Time) string {
	return "the API answered 404 for this interaction at " + at.UTC().Format(time.RFC3339) +
		" and the record's data is older than that: not sent"
}
