package connector

import (
	"cmp"
	"container/heap"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/internal/api"
	"github.com/augment-connector/augment-connector/internal/pacer"
)

// recordSink is what a tenant needs from the connector: to hear that a record's contribution
// was carried, and to dead-letter a record that can never be written.
type recordSink interface {
	// contributionDone is called once per contribution carried by a successful request, or
	// dead-lettered.
	contributionDone(r *rec)
	// uncharge releases n bytes r counted against the pending bound: its contribution was
	// superseded on arrival.
	uncharge(r *rec, n int64)
	// deadLetter writes r to the dead-letter topic and returns once it is acknowledged. It
	// returns an error only when ctx ends or no dead-letter topic is configured.
	deadLetter(ctx context.Context, r *rec, pipeline string, class deadLetterClass, msg string) error
}

// contribution is what one record asks of one identifier: its variables, in pipeline order.
type contribution struct {
	rec      *rec
	pipeline string
	vars     []api.Variable
	sent     int       // variables already carried, when a contribution is split across requests
	at       time.Time // when it was queued (or the contribution it superseded was)
	// riders are the records of earlier contributions this one superseded on arrival: they
	// are done (or dead-lettered) with it. folded counts their variables, for the metric.
	riders []*rec
	folded int
}

// supersedeScan is how many of an identifier's latest pending contributions a new one is
// compared with on arrival.
const supersedeScan = 8

// supersede removes from it.pending the contributions that c makes redundant, and makes their
// records ride on c. An earlier contribution is redundant when c sets every name it sets (so
// at fold time c's values would win anyway), comes from the same partition (so a revocation
// drops both or neither) and pipeline (named in dead letters), is not carried by the request
// in flight and was not partly sent. A backlog of updates to one identifier then holds one
// contribution and a list of records instead of a contribution and its variables per record:
// this is what lets a large backlog coalesce within the pending bound. The fold is unchanged
// except for the order of names in a request, which the API ignores. The caller holds t.mu.
func (t *tenant) supersede(it *ident, c *contribution) {
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
		t.sink.uncharge(old.rec, contributionCost(old.vars))
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

// contributionCost is what a queued contribution of vars is counted in the pending bound: the
// contribution, its place in its identifier's queue and a share of the identifier's state, and
// its variables (measured with the benchmarks' heap profiles).
func contributionCost(vars []api.Variable) int64 {
	n := int64(256)
	for i := range vars {
		n += 80 + int64(len(vars[i].Value))
	}
	return n
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

// ident is one identifier's queue. Its pending list keeps contributions in arrival (partition)
// order; while a request is in flight, the first inflight.n entries are the ones it carries.
// Folding happens only when a request is built, so coalescing, done-tracking and revocation
// stay simple (docs/DESIGN.md, "The path of a record").
type ident struct {
	id       string
	pending  []*contribution
	inflight *request
	heapIdx  int // index in the tenant's ready heap; -1 when not in it
	fresh    bool
	lingers  bool // in the tenant's lingering queue (see enqueueLocked)
	// refused counts the 401, 403 and 3xx answers to this identifier's requests since it was
	// last written, the first at firstRefused: probes go to the least refused identifier, and
	// a 403 that persists for it while others are written dead-letters it (see send).
	refused      int
	firstRefused time.Time
}

// request is one write to the API: a folded prefix of an identifier's pending contributions.
type request struct {
	id      *ident
	fresh   bool // for an interaction never written by us
	probe   bool // the one request a blocked tenant sends per probe interval
	carried []carried
	vars    []api.Variable
	body    []byte
	parts   map[*partition]struct{}

	stopRetry atomic.Bool        // set on revoke: finish the attempt on the wire, start no other
	cancel    context.CancelFunc // aborts even the attempt on the wire
	done      chan struct{}      // closed when the request has finished, whatever its outcome
}

type carried struct {
	c    *contribution
	upto int // c.sent after success
}

// tenant coalesces and sends one tenant's writes: per identifier one request in flight at
// most, the budget kept by its budget (a pacer), concurrency bounded, the oldest (and brand-new
// interactions first) served first.
type tenant struct {
	name   string
	opts   TenantOptions
	client *apiClient
	budget budget
	sink   recordSink
	// metrics may be nil.
	metrics *Metrics
	log     *zap.Logger
	now     func() time.Time
	maxVars int
	linger  time.Duration
	// probeInterval is how often a blocked tenant sends a probe.
	probeInterval time.Duration

	mu       sync.Mutex
	idents   map[string]*ident
	ready    readyHeap
	inflight int
	reqs     map[*request]struct{}
	// blocked: a 401, 403 or redirect was answered. The tenant then sends one probe per
	// probeInterval, built like any request from whatever is pending (none when nothing is),
	// until an answer shows the token and endpoint accepted. The tenant owns the probe, not a
	// request, so revoking the partitions of the requests that were refused cannot leave it
	// blocked with nobody probing.
	blocked      bool
	blockReason  string    // what the last refusal said: a status and message, never the token
	probing      bool      // the probe is in flight
	nextProbe    time.Time // no probe before this
	lastOK       time.Time // the last 2xx: a 403 that persists while others succeed is the interaction's
	lastBlockLog time.Time
	gone         map[string]time.Time // identifiers whose 404 window expired: 404s dead-letter at once
	written      *recentSet           // identifiers written before, so new interactions go first

	// lingering holds, in arrival order, the identifiers whose oldest contribution has waited
	// less than the linger; they move to the ready heap as it passes. Apart from the heap, so
	// a lingering identifier at the top (a brand-new interaction goes first) cannot hold back
	// the others that are ready.
	lingering []*ident

	wake chan struct{} // capacity 1
	wg   sync.WaitGroup
}

// goneMemory is how long an identifier whose 404 window expired stays known as gone.
const goneMemory = 10 * time.Minute

func newTenant(name string, opts TenantOptions, sink recordSink, log *zap.Logger, now func() time.Time, maxVars int, linger time.Duration) (*tenant, error) {
	opts.defaults()
	c, err := newAPIClient(opts)
	if err != nil {
		return nil, err
	}
	if maxVars <= 0 || maxVars > api.MaxVariablesPerRequest {
		maxVars = api.MaxVariablesPerRequest
	}
	p := pacer.New(opts.RequestsPerMinute, now)
	p.SetSpread(true) // spend the window as it comes back, so a backlog coalesces (see pacer.Pacer)
	return &tenant{
		name:    name,
		opts:    opts,
		client:  c,
		budget:  p,
		sink:    sink,
		log:     log.With(zap.String("tenant", name)),
		now:     now,
		maxVars: maxVars,
		linger:  linger,
		idents:  make(map[string]*ident),
		reqs:    make(map[*request]struct{}),
		gone:    make(map[string]time.Time),
		written: newRecentSet(100_000),
		wake:    make(chan struct{}, 1),

		probeInterval: opts.BlockedProbeInterval,
	}, nil
}

func (t *tenant) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// add queues a record's contribution to identifier id.
func (t *tenant) add(id string, c *contribution) {
	t.mu.Lock()
	it := t.idents[id]
	if it == nil {
		it = &ident{id: id, heapIdx: -1, fresh: !t.written.has(id)}
		t.idents[id] = it
		if it.fresh {
			t.budget.NoteFresh(c.at)
		}
	}
	t.supersede(it, c)
	it.pending = append(it.pending, c)
	wasReady := it.heapIdx >= 0 || it.lingers
	if it.inflight == nil && !wasReady {
		t.enqueueLocked(it, t.now())
	}
	t.mu.Unlock()
	if !wasReady {
		t.signal()
	}
}

// blockedNow reports whether the tenant is refusing our token.
func (t *tenant) blockedNow() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.blocked
}

// run dispatches requests until ctx ends, then waits for the requests it started.
// Requests are sent under sendCtx, which the connector cancels only after its shutdown
// grace period, so in-flight writes can finish when polling stops.
func (t *tenant) run(ctx, sendCtx context.Context) {
	defer t.wg.Wait()
	for {
		it, wait := t.nextReady()
		if it == nil {
			var tm *time.Timer
			var timer <-chan time.Time
			if wait > 0 {
				tm = time.NewTimer(wait)
				timer = tm.C
			}
			select {
			case <-ctx.Done():
			case <-t.wake:
			case <-timer:
			}
			if tm != nil {
				tm.Stop()
			}
			if ctx.Err() != nil {
				return
			}
			continue
		}
		// Reserve the budget first and build the request only then, so everything that
		// arrived while waiting for the budget is folded into it.
		waitStart := time.Now()
		if err := t.budget.WaitFor(ctx, t.nextIsFresh, t.wake); err != nil {
			return
		}
		t.metrics.recordBudgetWait(t.name, time.Since(waitStart))
		req := t.build()
		if req == nil {
			t.budget.Finish(false, t.now()) // revoked or drained while waiting
			continue
		}
		rctx, cancel := context.WithCancel(sendCtx)
		req.cancel = cancel
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer cancel()
			t.send(rctx, req)
		}()
	}
}

// enqueueLocked queues an identifier that has pending contributions and nothing in flight:
// in the ready heap, or with a linger, in the lingering queue until its oldest contribution
// has waited that long. The caller holds t.mu.
func (t *tenant) enqueueLocked(it *ident, now time.Time) {
	if t.linger > 0 && now.Sub(it.pending[0].at) < t.linger {
		it.lingers = true
		t.lingering = append(t.lingering, it)
		return
	}
	heap.Push(&t.ready, it)
}

// promoteLocked moves the identifiers whose linger has passed from the lingering queue to the
// ready heap, and returns how long until the next one's does (0: none lingers). The queue is
// in arrival order and the linger is the same for all, so it stops at the first still
// lingering. The caller holds t.mu.
func (t *tenant) promoteLocked(now time.Time) time.Duration {
	for len(t.lingering) > 0 {
		it := t.lingering[0]
		if it.lingers && len(it.pending) > 0 {
			if w := it.pending[0].at.Add(t.linger).Sub(now); w > 0 {
				return w
			}
		}
		t.lingering[0] = nil
		t.lingering = t.lingering[1:]
		if !it.lingers {
			continue // dropped by a revoke
		}
		it.lingers = false
		if len(it.pending) == 0 {
			if it.inflight == nil {
				delete(t.idents, it.id)
			}
			continue
		}
		heap.Push(&t.ready, it)
	}
	t.lingering = nil // let the backing array go
	return 0
}

// nextIsFresh reports whether the request the dispatcher would build next is for a brand-new
// interaction, which may use the budget held back from updates.
func (t *tenant) nextIsFresh() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ready.Len() > 0 && t.ready[0].fresh
}

// nextReady reports whether a request could be built now: an identifier is ready, a
// concurrency slot is free and the tenant is not blocked. With a linger, an identifier is
// ready only once its oldest contribution has waited that long; wait says how long until the
// first lingering one is, when none is ready.
func (t *tenant) nextReady() (*ident, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	wait := t.promoteLocked(now)
	if t.inflight >= t.opts.Concurrency {
		return nil, 0
	}
	if t.ready.Len() == 0 {
		return nil, wait
	}
	if t.blocked {
		if t.probing {
			return nil, 0 // its finish signals
		}
		if d := t.nextProbe.Sub(now); d > 0 {
			if wait == 0 || d < wait {
				wait = d
			}
			return nil, wait
		}
	}
	return t.ready[0], 0
}

// probeCandidateLocked returns the heap index of the identifier a probe should carry: the one
// refused least often (so a 403 that belongs to one interaction cannot hold every probe), the
// most urgent among those. It scans the heap, which is cheap at one probe per probe interval.
// The caller holds t.mu.
func (t *tenant) probeCandidateLocked() int {
	best := 0
	for i := 1; i < len(t.ready); i++ {
		a, b := t.ready[i], t.ready[best]
		if a.refused < b.refused || (a.refused == b.refused && t.ready.Less(i, best)) {
			best = i
		}
	}
	return best
}

// build pops the most urgent identifier and folds a prefix of its contributions into one
// request of at most maxVars variables: the last value of each name wins, in first-seen order.
func (t *tenant) build() *request {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inflight >= t.opts.Concurrency {
		return nil
	}
	now := t.now()
	probe := t.blocked
	if probe && (t.probing || now.Before(t.nextProbe)) {
		return nil
	}
	for t.ready.Len() > 0 {
		var it *ident
		if probe {
			it = heap.Remove(&t.ready, t.probeCandidateLocked()).(*ident)
		} else {
			it = heap.Pop(&t.ready).(*ident)
		}
		// Contributions of a partition revoked since they were queued are never sent.
		it.pending = dropRevoked(it.pending)
		if len(it.pending) == 0 || it.inflight != nil {
			if len(it.pending) == 0 && it.inflight == nil {
				delete(t.idents, it.id)
			}
			continue
		}
		req := &request{id: it, fresh: it.fresh, probe: probe, parts: make(map[*partition]struct{}), done: make(chan struct{})}
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
			if len(index)+fresh > t.maxVars {
				if len(req.carried) > 0 {
					break
				}
				// One contribution with more variables than a request may carry: send it in
				// consecutive requests, in order.
				upto = c.sent + t.maxVars
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
			if upto < len(c.vars) {
				break
			}
		}
		total := 0
		for _, cr := range req.carried {
			total += cr.upto - cr.c.sent + cr.c.folded
		}
		t.metrics.recordRequest(t.name, len(req.vars), total-len(req.vars))
		req.body = api.AppendRequest(make([]byte, 0, 64+len(req.vars)*96), req.vars, t.opts.DataForm)
		it.inflight = req
		t.inflight++
		t.reqs[req] = struct{}{}
		if probe {
			t.probing = true
			t.nextProbe = now.Add(t.probeInterval)
		}
		return req
	}
	return nil
}

// blockedProbeInterval is how often a blocked tenant probes.
const blockedProbeInterval = 15 * time.Second

// forbiddenProbes is how many 403s one identifier gets, while other identifiers of the tenant
// are written, before its records are dead-lettered (class forbidden).
const forbiddenProbes = 3

// notFoundMaxWait caps the wait between retries of a 404, so a call that registers late is
// written soon after it does.
const notFoundMaxWait = 2 * time.Second

func (t *tenant) newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = retryMaxInterval
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.MaxElapsedTime = t.opts.MaxRetryElapsed // 0: never stop
	b.Reset()
	return b
}

// setBlocked blocks the tenant after a refusal (401, 403 or a redirect): nothing is sent but
// one probe per probeInterval, and one error line a minute says why.
func (t *tenant) setBlocked(res attemptResult) {
	t.mu.Lock()
	now := t.now()
	if !t.blocked {
		t.blocked = true
		t.nextProbe = now.Add(t.probeInterval)
	}
	what := "refuses the action token"
	if res.redirect != "" {
		what = "has its writes redirected"
	}
	t.blockReason = what + " (" + res.message + ")"
	logIt := now.Sub(t.lastBlockLog) >= time.Minute
	if logIt {
		t.lastBlockLog = now
	}
	t.mu.Unlock()
	if !logIt {
		return
	}
	t.log.Error("tenant "+what+": writes for this tenant are paused and nothing is committed past them; probing every "+t.probeInterval.String(),
		zap.Int("status", res.status), zap.String("error", res.message))
}

// accepted records an answer that shows the API took our token and endpoint (ok: a 2xx): a
// blocked tenant resumes.
func (t *tenant) accepted(ok bool) {
	t.mu.Lock()
	was := t.blocked
	t.blocked = false
	t.blockReason = ""
	if ok {
		t.lastOK = t.now()
	}
	t.mu.Unlock()
	if was {
		t.log.Info("tenant accepts the action token again: writes resume")
		t.signal()
	}
}

// noteRefused counts a refusal of one of it's requests, and reports how many there were since
// it was last written and whether another identifier was written since the first.
func (t *tenant) noteRefused(it *ident) (n int, othersWritten bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if it.refused == 0 {
		it.firstRefused = t.now()
	}
	it.refused++
	return it.refused, t.lastOK.After(it.firstRefused)
}

// blockedReason reports whether the tenant is blocked, and what the last refusal said.
func (t *tenant) blockedReason() (bool, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.blocked, t.blockReason
}

// reloadToken reads the action token again before a probe, when it came from a file. The log
// line says whether it changed, never what it is.
func (t *tenant) reloadToken() {
	if t.opts.ReloadToken == nil {
		return
	}
	tok, err := t.opts.ReloadToken()
	if err != nil {
		t.log.Warn("re-reading the action token before a probe failed; probing with the token in use", zap.Error(err))
		return
	}
	changed := t.client.setToken(tok)
	t.log.Info("re-read the action token before a probe", zap.Bool("changed", changed))
}

func (t *tenant) isGone(id string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.gone[id]
	return ok && now.Sub(at) < goneMemory
}

func (t *tenant) markGone(id string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.gone) > 10_000 {
		for k, at := range t.gone {
			if now.Sub(at) >= goneMemory {
				delete(t.gone, k)
			}
		}
	}
	t.gone[id] = now
}

// deadLetter sends every record the request carried to the dead-letter topic, then completes
// the request as carried: those records are done once their dead letters are acknowledged.
func (t *tenant) deadLetter(ctx context.Context, req *request, class deadLetterClass, msg string) {
	seen := make(map[*rec]bool, len(req.carried))
	for _, cr := range req.carried {
		// The records superseded on arrival (their values would have been in this request)
		// first, in offset order, so a replay of the dead letters ends with the latest values.
		recs := append(slices.Clone(cr.c.riders), cr.c.rec)
		slices.SortFunc(recs, func(a, b *rec) int { return cmp.Compare(a.kr.Offset, b.kr.Offset) })
		for _, r := range recs {
			if seen[r] || r.part.isRevoked() {
				continue
			}
			seen[r] = true
			if err := t.sink.deadLetter(ctx, r, cr.c.pipeline, class, msg); err != nil {
				t.finish(req, false)
				return
			}
		}
	}
	t.finish(req, true)
}

// finish ends a request. carriedOK says its contributions were carried (written or
// dead-lettered); otherwise they stay pending, except those of revoked partitions.
func (t *tenant) finish(req *request, carriedOK bool) {
	it := req.id
	var completed []*rec
	t.mu.Lock()
	delete(t.reqs, req)
	t.inflight--
	it.inflight = nil
	if req.probe {
		t.probing = false
		if next := t.now().Add(t.probeInterval); next.After(t.nextProbe) {
			t.nextProbe = next
		}
	}
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
		t.written.add(it.id)
		it.fresh = false
		it.refused = 0
	}
	it.pending = dropRevoked(it.pending)
	if len(it.pending) > 0 {
		t.enqueueLocked(it, t.now())
	} else if it.heapIdx < 0 && !it.lingers {
		delete(t.idents, it.id)
	}
	t.mu.Unlock()
	now := time.Now()
	for _, r := range completed {
		t.metrics.recordWritten(t.name, r.kr.Timestamp, now)
		t.sink.contributionDone(r)
	}
	t.signal()
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

// revoke removes the pending contributions of the given partitions, stops the retries of the
// in-flight requests that carry any of them, and waits up to grace for the attempts already on
// the wire; those still running then are cancelled. The partitions must already be marked
// revoked. When revoke returns nothing of theirs is sent any more.
func (t *tenant) revoke(parts map[*partition]struct{}, grace time.Duration) {
	var waits []*request
	t.mu.Lock()
	for id, it := range t.idents {
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
				heap.Remove(&t.ready, it.heapIdx)
			}
			it.lingers = false // promoteLocked skips it
			delete(t.idents, id)
		case it.heapIdx >= 0:
			heap.Fix(&t.ready, it.heapIdx) // its oldest contribution may have changed
		}
	}
	t.mu.Unlock()
	if len(waits) == 0 {
		return
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	for _, req := range waits {
		select {
		case <-req.done:
		case <-deadline.C:
			for _, r := range waits {
				r.cancel()
			}
			for _, r := range waits {
				<-r.done
			}
			return
		}
	}
}

// pendingIdentifiers reports how many identifiers have something queued or in flight.
func (t *tenant) pendingIdentifiers() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.idents)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// readyHeap orders ready identifiers: a brand-new interaction first (the IVR needs its first
// variables within a second), then the one whose oldest pending contribution waited longest.
type readyHeap []*ident

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
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
