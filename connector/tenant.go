package connector

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/trace"
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
	// contributionSkipped counts r's contribution as skipped for reason (it was not sent: its
	// call is over) and completes it as contributionDone does.
	contributionSkipped(r *rec, pipeline, reason string)
}

// contribution is what one record asks of one identifier: its variables, in pipeline order.
type contribution struct {
	rec      *rec
	pipeline string
	vars     []api.Variable
	sent     int       // variables already carried, when a contribution is split across requests
	at       time.Time // when it was queued (or the contribution it superseded was)
	// dataAt is when the record's data changed (see dataTime): its age decides the stale and
	// not-found policies. maxAge and onStale are its pipeline's MaxRecordAge and OnStale.
	dataAt  time.Time
	maxAge  time.Duration
	onStale string
	// oldestAt is the oldest dataAt of its record and its riders: the freshness gauge reads it
	// (see coalescer.oldestPending), so a contribution updated again and again while its
	// tenant cannot write does not look fresh while its oldest record waits.
	oldestAt time.Time
	// riders are the records of earlier contributions this one superseded on arrival: they
	// are done (or dead-lettered) with it. folded counts their variables, for the metric.
	riders []*rec
	folded int
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

// request is one write to the API: a folded prefix of an identifier's pending contributions.
type request struct {
	id    *ident
	fresh bool // for an interaction never written by us (and not being retried after a 404)
	// dataAt is the newest dataAt of the contributions carried: the request's age, which the
	// not-found policy reads, is counted from it.
	dataAt  time.Time
	probe   bool // the one request a blocked tenant sends per probe interval
	carried []carried
	vars    []api.Variable
	body    []byte
	parts   map[*partition]struct{}
	trace   *reqTrace // nil unless traced (see tracing.go)

	stopRetry atomic.Bool        // set on revoke: finish the attempt on the wire, start no other
	cancel    context.CancelFunc // aborts even the attempt on the wire
	done      chan struct{}      // closed when the request has finished, whatever its outcome
}

type carried struct {
	c    *contribution
	upto int // c.sent after success
}

// tenant dispatches and sends one tenant's writes: per identifier one request in flight at
// most (its coalescer holds what is pending), the budget kept by its budget (a pacer),
// concurrency bounded, the oldest (and brand-new interactions first) served first.
type tenant struct {
	name   string
	opts   TenantOptions
	client *apiClient
	budget budget
	sink   recordSink
	co     *coalescer // pending contributions; its lock comes after mu
	// metrics may be nil.
	metrics *Metrics
	log     *zap.Logger
	now     func() time.Time
	// probeInterval is how often a blocked tenant sends a probe.
	probeInterval time.Duration
	tracer        trace.Tracer // nil: tracing off

	mu       sync.Mutex // guards the fields below
	inflight int
	// reserving counts the reservations runParallel waits for (a shared budget's).
	reserving int
	reqs      map[*request]struct{}
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
	// gone remembers the identifiers whose 404 was final (it has its own lock): the worker
	// and the coalescer leave out the records about them without a request.
	gone *goneSet

	wake chan struct{} // capacity 1
	// slots is runParallel's concurrency: a reserver whose claim was granted takes a slot
	// before it builds its request and gives it back when the request has finished, so
	// claims are asked for while requests are on the wire (see runParallel).
	slots chan struct{}
	wg    sync.WaitGroup

	// leaving is closed by leave, when a member of a shared budget shuts down: nothing more is
	// reserved, no retry is made, only the attempts on the wire finish (see leave).
	leaving   chan struct{}
	leaveOnce sync.Once
}

func newTenant(name string, opts TenantOptions, sink recordSink, log *zap.Logger, now func() time.Time, maxVars int, linger time.Duration) (*tenant, error) {
	opts.defaults()
	c, err := newAPIClient(opts)
	if err != nil {
		return nil, err
	}
	c.now = now
	if maxVars <= 0 || maxVars > api.MaxVariablesPerRequest {
		maxVars = api.MaxVariablesPerRequest
	}
	p := pacer.New(opts.RequestsPerMinute, now)
	p.SetSpread(true) // spend the window as it comes back, so a backlog coalesces (see pacer.Pacer)
	t := &tenant{
		name:    name,
		opts:    opts,
		client:  c,
		budget:  newPacerBudget(p, opts.RequestTimeout),
		sink:    sink,
		log:     log.With(zap.String("tenant", name)),
		now:     now,
		reqs:    make(map[*request]struct{}),
		gone:    newGoneSet(),
		wake:    make(chan struct{}, 1),
		slots:   make(chan struct{}, opts.Concurrency),
		leaving: make(chan struct{}),

		probeInterval: opts.BlockedProbeInterval,
	}
	// The budget may be replaced (by a ledger's) before the tenant runs: ask it then.
	t.co = newCoalescer(linger, maxVars, opts.DataForm, t.gone, sink.uncharge, func(at time.Time) { t.budget.NoteFresh(at) })
	// A new identifier is brand-new (first in line, and may use the budget held back for
	// first writes) only while its data is younger than the grace a call may take to appear.
	t.co.freshFor = opts.NotFoundGrace
	return t, nil
}

// leave makes the tenant stop reserving: a member of a shared budget (coordination kafka)
// that shuts down finishes the attempts on the wire and leaves the rest of its backlog to
// its partitions' next owners, which take from the same budget. Retries waiting for their
// backoff or for the budget are abandoned (their records stay uncommitted). The dispatcher
// stops when its context is cancelled.
func (t *tenant) leave() {
	t.leaveOnce.Do(func() { close(t.leaving) })
}

func (t *tenant) isLeaving() bool {
	select {
	case <-t.leaving:
		return true
	default:
		return false
	}
}

func (t *tenant) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// add queues a record's contribution to identifier id.
func (t *tenant) add(id string, c *contribution) {
	if t.co.add(id, c, t.now()) {
		t.signal()
	}
}

// nextReady reports whether a request could be built now: an identifier is ready, a
// concurrency slot is free and the tenant is not blocked. With a linger, an identifier is
// ready only once its oldest contribution has waited that long; wait says how long until the
// first lingering one is, when none is ready.
func (t *tenant) nextReady() (ready bool, wait time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	ready, wait = t.co.peek(now)
	if t.inflight >= t.opts.Concurrency {
		return false, 0
	}
	if !ready {
		return false, wait
	}
	if t.blocked {
		if t.probing {
			return false, 0 // its finish signals
		}
		if d := t.nextProbe.Sub(now); d > 0 {
			if wait == 0 || d < wait {
				wait = d
			}
			return false, wait
		}
	}
	return true, 0
}

// build takes the next request from the coalescer, when a concurrency slot is free and the
// tenant is not blocked (or it is time for the blocked tenant's probe). What the coalescer
// left out because its call is over is completed (skipped or dead-lettered, under ctx) after
// the tenant's lock is released.
func (t *tenant) build(ctx context.Context) *request {
	req, drops := t.buildLocked()
	if len(drops) > 0 {
		t.completeDropped(ctx, drops)
	}
	return req
}

func (t *tenant) buildLocked() (*request, []dropped) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inflight >= t.opts.Concurrency {
		return nil, nil
	}
	now := t.now()
	probe := t.blocked
	if probe && (t.probing || now.Before(t.nextProbe)) {
		return nil, nil
	}
	req, superseded, drops := t.co.take(probe, now)
	if req == nil {
		return nil, drops
	}
	t.metrics.recordRequest(t.name, len(req.vars), superseded)
	t.inflight++
	t.reqs[req] = struct{}{}
	if probe {
		t.probing = true
		t.nextProbe = now.Add(t.probeInterval)
	}
	return req, drops
}

// completeDropped completes the contributions take left out because their call is over: a
// stale one as its pipeline's onStale says, one about an identifier found gone as the tenant's
// onGone says. Skips complete at once; dead letters are written on a goroutine of the tenant's
// (the dispatcher must not wait for Kafka), under ctx: if one fails (ctx ended) its record
// stays pending and is never committed past.
func (t *tenant) completeDropped(ctx context.Context, drops []dropped) {
	type letter struct {
		r        *rec
		pipeline string
		class    deadLetterClass
		msg      string
	}
	var letters []letter
	for _, d := range drops {
		recs := append(slices.Clone(d.c.riders), d.c.rec)
		slices.SortFunc(recs, func(a, b *rec) int { return cmp.Compare(a.kr.Offset, b.kr.Offset) })
		stale := d.goneAt.IsZero()
		switch {
		case stale && d.c.onStale == OnStaleDeadLetter:
			for _, r := range recs {
				letters = append(letters, letter{r, d.c.pipeline, classStale, staleMessage(d.age, d.c.maxAge)})
			}
		case !stale && t.opts.OnGone == OnGoneDeadLetter:
			for _, r := range recs {
				letters = append(letters, letter{r, d.c.pipeline, classNotFound, goneMessage(d.goneAt)})
			}
		default:
			reason := ReasonStale
			if !stale {
				reason = ReasonGone
			}
			for _, r := range recs {
				t.sink.contributionSkipped(r, d.c.pipeline, reason)
			}
		}
	}
	if len(letters) == 0 {
		return
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for _, l := range letters {
			if !l.r.part.isRevoked() {
				if err := t.sink.deadLetter(ctx, l.r, l.pipeline, l.class, l.msg); err != nil {
					return
				}
			}
			t.sink.contributionDone(l.r)
		}
	}()
}

// finish ends a request. carriedOK says its contributions were carried (written or
// dead-lettered); otherwise they stay pending, except those of revoked partitions.
func (t *tenant) finish(req *request, carriedOK bool) {
	t.end(req, func(now time.Time) []*rec { return t.co.finish(req, carriedOK, now) })
}

// deferNotFound ends a request answered 404 within the not-found grace: its contributions
// stay pending, and its identifier waits until retryAt at the lowest priority.
func (t *tenant) deferNotFound(req *request, retryAt time.Time) {
	t.end(req, func(now time.Time) []*rec { return t.co.deferNotFound(req, retryAt, now) })
}

// end ends a request, with finish telling the coalescer how (it is called with t.mu held).
func (t *tenant) end(req *request, finish func(now time.Time) []*rec) {
	t.mu.Lock()
	delete(t.reqs, req)
	t.inflight--
	if req.probe {
		t.probing = false
		if next := t.now().Add(t.probeInterval); next.After(t.nextProbe) {
			t.nextProbe = next
		}
	}
	completed := finish(t.now())
	t.mu.Unlock()
	now := t.now()
	for _, r := range completed {
		t.metrics.recordWritten(t.name, r.kr.Timestamp, now)
		t.sink.contributionDone(r)
	}
	t.signal()
}

// noteRefused counts a refusal of one of its requests, and reports how many there were since
// it was last written and whether another identifier was written since the first.
func (t *tenant) noteRefused(it *ident) (n int, othersWritten bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, first := t.co.noteRefused(it, t.now())
	return n, t.lastOK.After(first)
}

// revoke removes the pending contributions of the given partitions, stops the retries of the
// in-flight requests that carry any of them, and waits up to grace for the attempts already on
// the wire; those still running then are cancelled. The partitions must already be marked
// revoked. When revoke returns nothing of theirs is sent any more.
func (t *tenant) revoke(parts map[*partition]struct{}, grace time.Duration) {
	waits := t.co.revoke(parts)
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
func (t *tenant) pendingIdentifiers() int { return t.co.len() }

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
	if par := t.budget.Parallel(); par > 1 {
		t.runParallel(ctx, sendCtx, par)
		return
	}
	for {
		ready, wait := t.nextReady()
		if !ready {
			if !t.sleep(ctx, wait) {
				return
			}
			continue
		}
		// Reserve the budget first and build the request only then, so everything that
		// arrived while waiting for the budget is folded into it.
		waitStart := t.now()
		rsv, err := t.budget.Reserve(ctx, t.co.nextIsFresh, t.wake)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// Only a shared budget fails otherwise (the ledger's member is not running): wait
			// and ask again, rather than leave the tenant without a dispatcher.
			t.log.Warn("reserving the budget failed; trying again in a second", zap.Error(err))
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		waitEnd := t.now()
		t.metrics.recordBudgetWait(t.name, waitEnd.Sub(waitStart))
		if t.isLeaving() {
			rsv.End(useUnused, t.now())
			return
		}
		req := t.build(sendCtx)
		if req == nil {
			rsv.End(useUnused, t.now()) // revoked or drained while waiting
			continue
		}
		t.traceRequest(req, waitStart, waitEnd)
		rctx, cancel := context.WithCancel(sendCtx)
		req.cancel = cancel
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer cancel()
			t.send(rctx, req, rsv)
		}()
	}
}

// sleep waits until the tenant is woken, wait passes (0: no timeout) or ctx ends; it reports
// whether ctx is still alive.
func (t *tenant) sleep(ctx context.Context, wait time.Duration) bool {
	var timer <-chan time.Time
	if wait > 0 {
		tm := time.NewTimer(wait)
		defer tm.Stop()
		timer = tm.C
	}
	select {
	case <-ctx.Done():
	case <-t.wake:
	case <-timer:
	}
	return ctx.Err() == nil
}

// runParallel is run for a budget that takes a while to answer (the ledger): it keeps up to
// par reservations waiting at once, one per ready interaction. Reservations run ahead of the
// requests on the wire and are not bounded by the concurrency: a reserver whose claim is
// granted then waits (up to slotWait) for one of the concurrency's slots, builds its request
// only then (so what arrived meanwhile is folded in) and sends it. Had at most concurrency
// reservations been asked for at once, a tenant's throughput would be bounded by
// concurrency / the ledger's grant round trip (about 53 requests a second at concurrency 8
// on kfake, BENCHMARKS.md "Issue 14") instead of par / that round trip and concurrency / the
// API's latency. A reservation that finds nothing left to build, or no slot in time, is
// ended unused, which frees it at once.
func (t *tenant) runParallel(ctx, sendCtx context.Context, par int) {
	for {
		n, wait := t.reservable(par)
		if n == 0 {
			if !t.sleep(ctx, wait) {
				return
			}
			continue
		}
		t.wg.Add(n)
		for range n {
			go func() {
				defer t.wg.Done()
				t.reserveAndSend(ctx, sendCtx)
			}()
		}
	}
}

// reservable counts how many more reservations runParallel may wait for now, and counts them
// as waiting: no more than par in all, than the concurrency left, or than the identifiers
// ready; one at a time while the tenant is blocked (its probe). When it is none, wait says
// how long until the first lingering identifier is ready (0: until woken).
func (t *tenant) reservable(par int) (n int, wait time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	ready, wait := t.co.readyCount(now)
	n = min(par-t.reserving, ready-t.reserving)
	if t.blocked {
		switch {
		case t.probing || t.reserving > 0:
			return 0, 0 // its finish signals
		case now.Before(t.nextProbe):
			d := t.nextProbe.Sub(now)
			if wait == 0 || d < wait {
				wait = d
			}
			return 0, wait
		}
		n = min(n, 1)
	}
	if n <= 0 {
		return 0, wait
	}
	t.reserving += n
	return n, 0
}

// slotWait bounds how long a granted reservation waits for a concurrency slot before it is
// ended unused (a claim is valid for a couple of seconds; another replica may use it).
const slotWait = time.Second

// reserveAndSend is one reserver of runParallel: it waits for a reservation and a concurrency
// slot, builds the next request and sends it. It counts as reserving until it has built its
// request (or given up), so the dispatcher does not start another reserver for the same
// ready identifier meanwhile.
func (t *tenant) reserveAndSend(ctx, sendCtx context.Context) {
	waitStart := t.now()
	rsv, err := t.budget.Reserve(ctx, t.co.nextIsFresh, nil)
	reserved := true
	doneReserving := func() {
		if reserved {
			reserved = false
			t.mu.Lock()
			t.reserving--
			t.mu.Unlock()
		}
	}
	defer t.signal() // the dispatcher may start another
	defer doneReserving()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		t.log.Warn("reserving the budget failed; trying again in a second", zap.Error(err))
		sleepCtx(ctx, time.Second)
		return
	}
	waitEnd := t.now()
	t.metrics.recordBudgetWait(t.name, waitEnd.Sub(waitStart))
	if t.isLeaving() {
		rsv.End(useUnused, t.now())
		return
	}
	if !t.takeSlot(ctx) {
		rsv.End(useUnused, t.now()) // every slot stayed busy: free the claim for others
		return
	}
	defer func() { <-t.slots }()
	req := t.build(sendCtx)
	doneReserving()
	if req == nil {
		rsv.End(useUnused, t.now()) // revoked, drained or taken by another reserver
		return
	}
	t.traceRequest(req, waitStart, waitEnd)
	rctx, cancel := context.WithCancel(sendCtx)
	req.cancel = cancel
	defer cancel()
	t.send(rctx, req, rsv)
}

// takeSlot takes one of runParallel's concurrency slots, waiting up to slotWait; false when
// none freed in time, ctx ended or the tenant started leaving.
func (t *tenant) takeSlot(ctx context.Context) bool {
	select {
	case t.slots <- struct{}{}:
		return true
	default:
	}
	tm := time.NewTimer(slotWait)
	defer tm.Stop()
	select {
	case t.slots <- struct{}{}:
		return true
	case <-ctx.Done():
	case <-t.leaving:
	case <-tm.C:
	}
	return false
}

// blockedProbeInterval is how often a blocked tenant probes.
const blockedProbeInterval = 15 * time.Second

// forbiddenProbes is how many 403s one identifier gets, while other identifiers of the tenant
// are written, before its records are dead-lettered (class forbidden).
const forbiddenProbes = 3

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
