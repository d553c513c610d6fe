package connector

import (
	"container/heap"
	"sync"
	"time"

	"github.com/augment-connector/augment-connector/internal/api"
)

// coalescer holds one tenant's pending contributions: per identifier, an ordered list
// (docs/DESIGN.md, "The path of a record"), the identifiers ready to send in urgency order,
// and those still lingering. It supersedes on arrival (supersede) and folds when a request is
// built (take); it knows nothing of the budget, the concurrency or a blocked tenant, which
// are the tenant's. It is safe for concurrent use: mu guards every field below it. Lock
// order: tenant.mu, then coalescer.mu (the tenant calls it holding its own), then the
// budget's; the coalescer calls nothing that takes tenant.mu.
type coalescer struct {
	linger   time.Duration
	freshFor time.Duration // how recent a new identifier's data must be for it to be brand-new (0: any)
	maxVars  int
	dataForm bool
	// uncharge releases what a superseded contribution counted against the pending bound;
	// noteFresh tells the budget a brand-new interaction started waiting. Both are called
	// with mu held, and must not call back into the coalescer.
	uncharge  func(r *rec, n int64)
	noteFresh func(at time.Time)

	mu     sync.Mutex
	idents map[string]*ident
	ready  readyHeap
	// lingering holds, in arrival order, the identifiers whose oldest contribution has waited
	// less than the linger; they move to the ready heap as it passes. Apart from the heap, so
	// a lingering identifier at the top (a brand-new interaction goes first) cannot hold back
	// the others that are ready.
	lingering []*ident
	// deferred holds the identifiers whose request was answered 404 and waits for its next
	// attempt (ident.retryAt); they move to the ready heap, at its lowest priority, when it
	// comes. Unordered: it is short (one entry per interaction not yet registered).
	deferred []*ident
	written  *recentSet // identifiers written before, so new interactions go first
	gone     *goneSet   // identifiers whose 404 was final: their older contributions are dropped
}

// dropped is a contribution take left out of a request because its call is over: its data
// is older than its pipeline's maxRecordAge (stale), or older than the moment its identifier
// was found gone (goneAt set). The tenant completes it as its policy says.
type dropped struct {
	c      *contribution
	age    time.Duration // of its data, when take dropped it
	goneAt time.Time     // zero: stale
}

func newCoalescer(linger time.Duration, maxVars int, dataForm bool, gone *goneSet, uncharge func(*rec, int64), noteFresh func(time.Time)) *coalescer {
	return &coalescer{
		linger:    linger,
		maxVars:   maxVars,
		dataForm:  dataForm,
		uncharge:  uncharge,
		noteFresh: noteFresh,
		idents:    make(map[string]*ident),
		written:   newRecentSet(100_000),
		gone:      gone,
	}
}

// add queues a record's contribution to identifier id. It reports whether the identifier
// became ready or lingering, when the dispatcher should be woken.
func (q *coalescer) add(id string, c *contribution, now time.Time) bool {
	if c.dataAt.IsZero() {
		c.dataAt = now // no data time: as fresh as it can be (see dataTime)
	}
	if c.oldestAt.IsZero() || c.dataAt.Before(c.oldestAt) {
		c.oldestAt = c.dataAt
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	it := q.idents[id]
	if it == nil {
		// Brand-new: never written by us, and its data is recent. A record about an
		// interaction we never wrote whose data is older than freshFor is backlog (after an
		// outage most of it is about calls that are over), not a call that just started: it
		// must not take the place, or the budget held back, of the calls starting now.
		fresh := !q.written.has(id) && (q.freshFor <= 0 || now.Sub(c.dataAt) < q.freshFor)
		it = &ident{id: id, heapIdx: -1, fresh: fresh}
		q.idents[id] = it
		if it.fresh {
			q.noteFresh(c.at)
		}
	}
	q.supersedeLocked(it, c)
	it.pending = append(it.pending, c)
	wasReady := it.heapIdx >= 0 || it.lingers || it.deferred
	if it.inflight == nil && !wasReady {
		q.enqueueLocked(it, now)
	}
	return !wasReady
}

// supersedeScan is how many of an identifier's latest pending contributions a new one is
// compared with on arrival.
const supersedeScan = 8

// supersedeLocked removes from it.pending the contributions that c makes redundant, and makes their
// records ride on c. An earlier contribution is redundant when c sets every name it sets (so
// at fold time c's values would win anyway), comes from the same partition (so a revocation
// drops both or neither) and pipeline (named in dead letters), is not carried by the request
// in flight and was not partly sent. A backlog of updates to one identifier then holds one
// contribution and a list of records instead of a contribution and its variables per record:
// this is what lets a large backlog coalesce within the pending bound. The fold is unchanged
// except for the order of names in a request, which the API ignores. The caller holds q.mu.
func (q *coalescer) supersedeLocked(it *ident, c *contribution) {
	lo := 0
	if it.inflight != nil {
		lo = len(it.inflight.carried)
	}
	for i := len(it.pending) - 1; i >= lo && i >= len(it.pending)-supersedeScan; i-- {
		old := it.pending[i]
		if old.sent != 0 || old.rec.part != c.rec.part || old.pipeline != c.pipeline || !setsAll(c.vars, old.vars) {
			continue
		}
		if len(c.riders) == 0 {
			c.riders = append(old.riders, old.rec) // old is dropped: take over its list, no copy
		} else {
			c.riders = append(append(c.riders, old.rec), old.riders...)
		}
		old.riders = nil
		if old.oldestAt.Before(c.oldestAt) {
			c.oldestAt = old.oldestAt // its riders are as pending as c
		}
		q.uncharge(old.rec, contributionCost(old.vars))
		c.folded += len(old.vars) + old.folded
		// Keep the queued times in order, and the identifier's place in the ready heap
		// (ordered by its first pending contribution's time): what follows old inherits its time.
		if i+1 < len(it.pending) {
			it.pending[i+1].at = old.at
		} else {
			c.at = old.at
		}
		copy(it.pending[i:], it.pending[i+1:])
		it.pending[len(it.pending)-1] = nil
		it.pending = it.pending[:len(it.pending)-1]
	}
}

// setsAll reports whether every name in old is also in vars.
func setsAll(vars, old []api.Variable) bool {
	for i := range old {
		found := false
		for j := range vars {
			if vars[j].Name == old[i].Name {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// ident is one identifier's queue, guarded by its coalescer's mu. Its pending list keeps contributions in arrival (partition)
// order; while a request is in flight, the first inflight.n entries are the ones it carries.
// Folding happens only when a request is built, so coalescing, done-tracking and revocation
// stay simple (docs/DESIGN.md, "The path of a record").
type ident struct {
	id       string
	pending  []*contribution
	inflight *request
	heapIdx  int // index in the coalescer's ready heap; -1 when not in it
	fresh    bool
	lingers  bool // in the coalescer's lingering queue (see enqueueLocked)
	// refused counts the 401, 403 and 3xx answers to this identifier's requests since it was
	// last written, the first at firstRefused: probes go to the least refused identifier, and
	// a 403 that persists for it while others are written dead-letters it (see decide).
	refused      int
	firstRefused time.Time
	// notFound counts the 404s answered to this identifier's requests since it was last
	// written or dead-lettered. While it is not 0 the identifier is retried at the lowest
	// priority, after every brand-new interaction and every update to one that answered 200,
	// and not before retryAt (see notFoundRetry); deferred says it waits in the deferred list.
	notFound int
	retryAt  time.Time
	deferred bool
}

// enqueueLocked queues an identifier that has pending contributions and nothing in flight:
// in the ready heap, or with a linger, in the lingering queue until its oldest contribution
// has waited that long. The caller holds q.mu.
func (q *coalescer) enqueueLocked(it *ident, now time.Time) {
	if it.retryAt.After(now) {
		it.deferred = true
		q.deferred = append(q.deferred, it)
		return
	}
	if q.linger > 0 && now.Sub(it.pending[0].at) < q.linger {
		it.lingers = true
		q.lingering = append(q.lingering, it)
		return
	}
	heap.Push(&q.ready, it)
}

// promoteLocked moves the identifiers whose linger or 404 retry wait has passed to the ready
// heap, and returns how long until the next one's does (0: none waits).
// The caller holds q.mu.
func (q *coalescer) promoteLocked(now time.Time) time.Duration {
	wait := q.promoteDeferredLocked(now)
	if w := q.promoteLingeringLocked(now); w > 0 && (wait == 0 || w < wait) {
		wait = w
	}
	return wait
}

// promoteDeferredLocked moves the 404 retries whose time came to the ready heap, and returns
// how long until the next one's does (0: none waits). The caller holds q.mu.
func (q *coalescer) promoteDeferredLocked(now time.Time) time.Duration {
	var wait time.Duration
	keep := q.deferred[:0]
	for _, it := range q.deferred {
		if !it.deferred {
			continue // dropped by a revoke
		}
		if w := it.retryAt.Sub(now); w > 0 {
			keep = append(keep, it)
			if wait == 0 || w < wait {
				wait = w
			}
			continue
		}
		it.deferred = false
		if len(it.pending) == 0 {
			if it.inflight == nil {
				delete(q.idents, it.id)
			}
			continue
		}
		heap.Push(&q.ready, it)
	}
	clear(q.deferred[len(keep):])
	q.deferred = keep
	return wait
}

// promoteLingeringLocked moves the identifiers whose linger has passed from the lingering
// queue to the ready heap, and returns how long until the next one's does (0: none lingers).
// The queue is in arrival order and the linger is the same for all, so it stops at the first
// still lingering. The caller holds q.mu.
func (q *coalescer) promoteLingeringLocked(now time.Time) time.Duration {
	for len(q.lingering) > 0 {
		it := q.lingering[0]
		if it.lingers && len(it.pending) > 0 {
			if w := it.pending[0].at.Add(q.linger).Sub(now); w > 0 {
				return w
			}
		}
		q.lingering[0] = nil
		q.lingering = q.lingering[1:]
		if !it.lingers {
			continue // dropped by a revoke
		}
		it.lingers = false
		if len(it.pending) == 0 {
			if it.inflight == nil {
				delete(q.idents, it.id)
			}
			continue
		}
		heap.Push(&q.ready, it)
	}
	q.lingering = nil // let the backing array go
	return 0
}

// peek moves the identifiers whose linger passed to the ready heap and reports whether one is
// ready, and how long until the first still lingering one is (0: none lingers).
func (q *coalescer) peek(now time.Time) (ready bool, wait time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	wait = q.promoteLocked(now)
	return q.ready.Len() > 0, wait
}

// readyCount is peek with the number of identifiers ready.
func (q *coalescer) readyCount(now time.Time) (n int, wait time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	wait = q.promoteLocked(now)
	return q.ready.Len(), wait
}

// nextIsFresh reports whether the request the dispatcher would build next is for a brand-new
// interaction, which may use the budget held back from updates.
func (q *coalescer) nextIsFresh() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ready.Len() > 0 && q.ready[0].fresh && q.ready[0].notFound == 0
}

// probeCandidateLocked returns the heap index of the identifier a probe should carry: the one
// refused least often (so a 403 that belongs to one interaction cannot hold every probe), the
// most urgent among those. It scans the heap, which is cheap at one probe per probe interval.
// The caller holds q.mu.
func (q *coalescer) probeCandidateLocked() int {
	best := 0
	for i := 1; i < len(q.ready); i++ {
		a, b := q.ready[i], q.ready[best]
		if a.refused < b.refused || (a.refused == b.refused && q.ready.Less(i, best)) {
			best = i
		}
	}
	return best
}

// take pops the most urgent ready identifier (for a probe, the least refused: see
// probeCandidateLocked) and folds a prefix of its contributions into one request of at most
// maxVars variables: the last value of each name wins, in first-seen order. The request is
// the identifier's one in flight until finish. superseded counts the variable values the
// fold (and the supersedes on arrival) left out. It returns nil when no identifier is ready.
//
// Before folding, it leaves out the contributions whose call is over (dropStaleLocked): a
// request carries only what is fresh. Those are returned in drops, for the caller to complete
// (skip or dead-letter) once it released its locks; drops may be non-empty when req is nil.
func (q *coalescer) take(probe bool, now time.Time) (req *request, superseded int, drops []dropped) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.ready.Len() > 0 {
		var it *ident
		if probe {
			it = heap.Remove(&q.ready, q.probeCandidateLocked()).(*ident)
		} else {
			it = heap.Pop(&q.ready).(*ident)
		}
		// Contributions of a partition revoked since they were queued are never sent.
		it.pending = dropRevoked(it.pending)
		if it.inflight == nil {
			it.pending, drops = q.dropStaleLocked(it, now, drops)
		}
		if len(it.pending) == 0 || it.inflight != nil {
			if len(it.pending) == 0 && it.inflight == nil {
				delete(q.idents, it.id)
			}
			continue
		}
		req := &request{id: it, fresh: it.fresh && it.notFound == 0, probe: probe, parts: make(map[*partition]struct{}), done: make(chan struct{})}
		index := make(map[string]int, 8)
		for _, c := range it.pending {
			rest := c.vars[c.sent:]
			fresh := 0
			for i := range rest {
				if _, ok := index[rest[i].Name]; !ok {
					fresh++
				}
			}
			upto := len(c.vars)
			if len(index)+fresh > q.maxVars {
				if len(req.carried) > 0 {
					break
				}
				// One contribution with more variables than a request may carry: send it in
				// consecutive requests, in order.
				upto = c.sent + q.maxVars
				rest = c.vars[c.sent:upto]
			}
			for i := range rest {
				if j, ok := index[rest[i].Name]; ok {
					req.vars[j] = rest[i]
				} else {
					index[rest[i].Name] = len(req.vars)
					req.vars = append(req.vars, rest[i])
				}
			}
			req.carried = append(req.carried, carried{c: c, upto: upto})
			req.parts[c.rec.part] = struct{}{}
			if c.dataAt.After(req.dataAt) {
				req.dataAt = c.dataAt
			}
			if upto < len(c.vars) {
				break
			}
		}
		total := 0
		for _, cr := range req.carried {
			total += cr.upto - cr.c.sent + cr.c.folded
		}
		req.body = api.AppendRequest(make([]byte, 0, 64+len(req.vars)*96), req.vars, q.dataForm)
		it.inflight = req
		return req, total - len(req.vars), drops
	}
	return nil, 0, drops
}

// dropStaleLocked removes from it's pending list, keeping order, the contributions not yet
// partly sent whose data is older than their pipeline's maxRecordAge, or older than the
// moment it was found gone, and appends them to drops. The caller holds q.mu.
func (q *coalescer) dropStaleLocked(it *ident, now time.Time, drops []dropped) ([]*contribution, []dropped) {
	out := it.pending[:0]
	for _, c := range it.pending {
		if c.sent == 0 {
			age := now.Sub(c.dataAt)
			if c.maxAge > 0 && age > c.maxAge {
				drops = append(drops, dropped{c: c, age: age})
				continue
			}
			if at, gone := q.gone.covers(it.id, c.dataAt, now); gone {
				drops = append(drops, dropped{c: c, age: age, goneAt: at})
				continue
			}
		}
		out = append(out, c)
	}
	clear(it.pending[len(out):])
	return out, drops
}

// noteRefused counts a refusal of one of it's requests, and reports how many there were since
// it was last written and when the first was.
func (q *coalescer) noteRefused(it *ident, now time.Time) (n int, first time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it.refused == 0 {
		it.firstRefused = now
	}
	it.refused++
	return it.refused, it.firstRefused
}

// finish ends req, the identifier's request in flight. carriedOK says its contributions were
// carried (written or dead-lettered): they leave the list, and the records they complete are
// returned; otherwise they stay pending, except those of revoked partitions.
func (q *coalescer) finish(req *request, carriedOK bool, now time.Time) (completed []*rec) {
	q.mu.Lock()
	defer q.mu.Unlock()
	it := req.id
	it.inflight = nil
	n := len(req.carried)
	if carriedOK {
		for _, cr := range req.carried {
			cr.c.sent = cr.upto
			if cr.upto == len(cr.c.vars) {
				completed = append(completed, cr.c.rec)
				completed = append(completed, cr.c.riders...)
			}
		}
		last := req.carried[n-1]
		if last.upto < len(last.c.vars) {
			n-- // the split contribution stays at the head
		}
		it.pending = it.pending[n:]
		q.written.add(it.id)
		it.fresh = false
		it.refused = 0
		it.notFound = 0
		it.retryAt = time.Time{}
	}
	it.pending = dropRevoked(it.pending)
	if len(it.pending) > 0 {
		q.enqueueLocked(it, now)
	} else if it.heapIdx < 0 && !it.lingers {
		delete(q.idents, it.id)
	}
	return completed
}

// deferNotFound ends req, the identifier's request in flight, after a 404 within the
// not-found grace: its contributions stay pending and the identifier is tried again, at the
// lowest priority, not before retryAt.
func (q *coalescer) deferNotFound(req *request, retryAt, now time.Time) []*rec {
	q.mu.Lock()
	it := req.id
	it.notFound++
	it.retryAt = retryAt
	q.mu.Unlock()
	return q.finish(req, false, now)
}

// notFoundCount reports how many 404s it has had since it was last written or dead-lettered.
func (q *coalescer) notFoundCount(it *ident) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return it.notFound
}

// dropRevoked removes the contributions of revoked partitions, keeping order.
func dropRevoked(cs []*contribution) []*contribution {
	out := cs[:0]
	for _, c := range cs {
		if !c.rec.part.isRevoked() {
			out = append(out, c)
		}
	}
	for i := len(out); i < len(cs); i++ {
		cs[i] = nil
	}
	return out
}

// revoke removes the pending contributions of the given partitions, which must already be
// marked revoked, and stops the retries of the requests in flight that carry any of them; it
// returns those requests, for the caller to wait for.
func (q *coalescer) revoke(parts map[*partition]struct{}) []*request {
	var waits []*request
	q.mu.Lock()
	defer q.mu.Unlock()
	for id, it := range q.idents {
		if it.inflight != nil {
			for p := range it.inflight.parts {
				if _, ok := parts[p]; ok {
					it.inflight.stopRetry.Store(true)
					waits = append(waits, it.inflight)
					break
				}
			}
			k := len(it.inflight.carried)
			it.pending = append(it.pending[:k], dropRevoked(it.pending[k:])...)
			continue
		}
		it.pending = dropRevoked(it.pending)
		switch {
		case len(it.pending) == 0:
			if it.heapIdx >= 0 {
				heap.Remove(&q.ready, it.heapIdx)
			}
			it.lingers = false  // promoteLocked skips it
			it.deferred = false // likewise
			delete(q.idents, id)
		case it.heapIdx >= 0:
			heap.Fix(&q.ready, it.heapIdx) // its oldest contribution may have changed
		}
	}
	return waits
}

// len reports how many identifiers have something queued or in flight.
func (q *coalescer) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.idents)
}

// readyHeap orders ready identifiers: a brand-new interaction first (the IVR needs its first
// variables within a second), then the one whose oldest pending contribution waited longest,
// and last of all the ones being retried after a 404 (a call not registered yet, or over).
type readyHeap []*ident

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	if (h[i].notFound == 0) != (h[j].notFound == 0) {
		return h[i].notFound == 0
	}
	if h[i].fresh != h[j].fresh {
		return h[i].fresh
	}
	return h[i].pending[0].at.Before(h[j].pending[0].at)
}
func (h readyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *readyHeap) Push(x any) {
	it := x.(*ident)
	it.heapIdx = len(*h)
	*h = append(*h, it)
}
func (h *readyHeap) Pop() any {
	old := *h
	n := len(old)
	it := old[n-1]
	old[n-1] = nil
	it.heapIdx = -1
	*h = old[:n-1]
	return it
}

// recentSet remembers up to about 2×size recently added keys in two generations, so the
// memory for "identifiers written before" stays bounded however many calls go by.
type recentSet struct {
	size     int
	cur, old map[string]struct{}
}

func newRecentSet(size int) *recentSet {
	return &recentSet{size: size, cur: make(map[string]struct{}), old: make(map[string]struct{})}
}

func (s *recentSet) has(k string) bool {
	if _, ok := s.cur[k]; ok {
		return true
	}
	_, ok := s.old[k]
	return ok
}

func (s *recentSet) add(k string) {
	if len(s.cur) >= s.size {
		s.old, s.cur = s.cur, make(map[string]struct{}, s.size)
	}
	s.cur[k] = struct{}{}
}
