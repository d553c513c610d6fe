package connector

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/transform"
)

// applier is one worker's way to apply a pipeline: a *transform.Runner or the Transformer.
type applier interface {
	Apply(rec *transform.Record) (transform.Result, error)
}

// runnerMaker is implemented by *transform.Pipeline.
type runnerMaker interface {
	NewRunner() *transform.Runner
}

// deadLetterWriter writes a record that can never be written to the API to the dead-letter
// topic (*deadLetters): the worker's one seam, so its decisions are tested without a broker.
type deadLetterWriter interface {
	write(ctx context.Context, r *rec, pipeline string, class deadLetterClass, msg string) error
}

// counters are the running totals behind Stats. Each is added to by the role that decides it
// (the poller: consumed; a worker: filtered, skipped; deadLetters; the committer) and read by
// Stats and the metrics, so they are atomics.
type counters struct {
	consumed, filtered, skipped, deadLettered, done, committed atomic.Int64
}

// recordDone marks r done in its partition and, unless the partition was revoked first (the
// record then already left the pending set), releases what it held in f and counts it. Every
// way a record ends goes through here: a worker's (filtered, skipped, dead-lettered) and a
// tenant's (Connector.contributionDone).
func recordDone(r *rec, f *flow, st *counters) {
	if r.part.markDone(r) {
		f.done(r)
		st.done.Add(1)
	}
	if r.trace != nil {
		r.trace.end(r)
	}
}

// workerEnv is what every partition worker shares: read-only once New returns (the
// sourceReader's client is set by Run before the group is joined).
type workerEnv struct {
	byTopic map[string]*Pipeline                     // the pipeline of each source topic
	replay  bool                                     // records are dead letters naming their source (Options.ReplayFrom)
	filter  func([]kgo.RecordHeader, time.Time) bool // Options.ReplayFilter; nil: every one
	tables  Tables                                   // may be nil
	tenants map[string]*tenant                       // by name: where contributions are handed off
	flow    *flow
	dead    deadLetterWriter
	source  *sourceReader // re-reads a replayed dead letter whose value was omitted
	stats   *counters
	metrics *Metrics // may be nil
	log     *zap.Logger
	now     func() time.Time
	tracer  trace.Tracer // nil: tracing off
	group   string       // the consumer group, for the record spans
}

// worker decodes, transforms and hands off one partition's records, in offset order, on the
// goroutine the poller starts for the partition (run). Each record ends here (filtered,
// skipped, dead-lettered: recordDone) or leaves as one contribution per identifier, queued in
// its tenant's coalescer. A worker takes no lock of its own; it has a runner of each
// pipeline it meets, so workers never share a transform's scratch state.
type worker struct {
	*workerEnv
	p        *partition
	appliers map[*Pipeline]applier // owned by the worker's goroutine
}

func newWorker(env *workerEnv, p *partition) *worker {
	return &worker{workerEnv: env, p: p, appliers: make(map[*Pipeline]applier, 1)}
}

// run takes the partition's records from its queue and handles them in order, until the
// queue is closed (the partition is released) or ctx ends.
func (w *worker) run(ctx context.Context) {
	for {
		rs, closed := w.p.queue.take()
		for _, r := range rs {
			if ctx.Err() != nil {
				return
			}
			w.handle(ctx, r)
		}
		if closed {
			return
		}
		if len(rs) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-w.p.queue.signal:
			}
		}
	}
}

// handle finds r's pipeline (when replaying, the one of the source its headers name),
// re-reads a replayed record whose value was omitted, and processes it.
func (w *worker) handle(ctx context.Context, r *rec) {
	if w.replay && slices.ContainsFunc(r.kr.Headers, func(h kgo.RecordHeader) bool { return h.Key == HeaderCheck }) {
		w.done(r) // check --live's proof of write access: no record of any source
		return
	}
	if w.replay && w.filter != nil && !w.filter(r.kr.Headers, r.kr.Timestamp) {
		pipeline := ""
		for _, h := range r.kr.Headers {
			if h.Key == HeaderPipeline {
				pipeline = string(h.Value)
			}
		}
		w.skip(r, pipeline, ReasonReplayFilter)
		return
	}
	src, _, _ := w.sourceOf(r)
	pl := w.byTopic[src]
	if w.tracer != nil {
		startRecord(ctx, w.tracer, w.group, r, pl)
	}
	if pl == nil {
		w.deadLetter(ctx, r, "", classReplay, fmt.Sprintf("no pipeline reads the source topic %q", src))
		return
	}
	if w.replay && r.kr.Value == nil && !isTombstone(&r.kr, w.replay) {
		// The dead letter carries no value (a private pipeline's, or includeValue: false):
		// read it again from its source. Processing it as a tombstone would skip it and
		// commit: the record would be lost silently.
		if err := w.source.read(ctx, r); err != nil {
			if ctx.Err() != nil {
				return
			}
			w.deadLetter(ctx, r, pl.Name, classReplay, err.Error())
			return
		}
	}
	w.process(ctx, pl, w.applier(pl), r)
}

// applier returns the worker's applier of pl: a runner of its own when pl makes them.
func (w *worker) applier(pl *Pipeline) applier {
	ap := w.appliers[pl]
	if ap == nil {
		ap = pl.Transform
		if rm, ok := pl.Transform.(runnerMaker); ok {
			ap = rm.NewRunner()
		}
		w.appliers[pl] = ap
	}
	return ap
}

func (w *worker) process(ctx context.Context, pl *Pipeline, ap applier, r *rec) {
	notify := func(err error, wait time.Duration) {
		w.log.Warn("decoding failed for a reason a retry can fix; retrying", zap.String("pipeline", pl.Name),
			zap.String("topic", r.kr.Topic), zap.Int32("partition", r.kr.Partition), zap.Int64("offset", r.kr.Offset),
			zap.Error(err), zap.Duration("backoff", wait))
	}
	sp := r.trace.child(spanDecode)
	var key, value any = string(r.kr.Key), nil
	var err error
	if pl.decodeKey != nil {
		key, err = pl.decodeKey.DecodeNotify(ctx, r.kr.Key, notify)
	}
	if err == nil && len(r.kr.Value) > 0 {
		value, err = pl.decode.DecodeNotify(ctx, r.kr.Value, notify)
	}
	if err != nil {
		if ctx.Err() != nil {
			endChild(sp, "")
			return // abandoned: shutdown or revoke
		}
		endChild(sp, string(classDecode))
		w.deadLetter(ctx, r, pl.Name, classDecode, err.Error())
		return
	}
	endChild(sp, "")
	topic, partition, offset := w.sourceOf(r)
	tr := transform.Record{
		Topic:     topic,
		Partition: partition,
		Offset:    offset,
		Timestamp: sourceTime(&r.kr, w.replay),
		Key:       key,
		Value:     value,
	}
	if len(r.kr.Headers) > 0 {
		tr.Headers = make(map[string]string, len(r.kr.Headers))
		for _, h := range r.kr.Headers {
			if !strings.HasPrefix(h.Key, headerPrefix) {
				tr.Headers[h.Key] = string(h.Value)
			}
		}
	}
	sp = r.trace.child(spanTransform)
	res, err, ok := w.apply(ctx, pl, ap, &tr, r)
	if err != nil {
		endChild(sp, string(classTransform))
	} else {
		endChild(sp, "")
	}
	if !ok {
		return
	}
	if err != nil {
		w.releaseTables()
		w.deadLetter(ctx, r, pl.Name, classTransform, err.Error())
		return
	}
	defer w.releaseTables() // once the writes are queued: see apply
	switch res.Outcome {
	case transform.Write:
		if len(res.Identifiers) == 0 || len(res.Variables) == 0 {
			w.skip(r, pl.Name, transform.ReasonNoVariables)
			return
		}
		if r.trace != nil {
			r.trace.span.SetAttributes(attrIdentifiers.Int(len(res.Identifiers)))
		}
		if res.Inactive > 0 {
			// Some identifiers' calls are not active (requireActive): counted per identifier
			// left out; the record goes on to the others.
			w.metrics.recordSkippedN(pl.Name, transform.ReasonInactive, res.Inactive)
		}
		t := w.tenants[pl.Tenant]
		now := w.now()
		at := dataTime(res.DataTime, tr.Timestamp, now)
		if age := now.Sub(at); pl.MaxRecordAge > 0 && age > pl.MaxRecordAge {
			w.stale(ctx, pl, r, age)
			return
		}
		ids, goneAt := w.leaveOutGone(t, res.Identifiers, at, now)
		if !goneAt.IsZero() && !w.gone(ctx, t, pl, r, goneAt, len(ids) == 0) {
			return
		}
		if len(ids) == 0 {
			return
		}
		r.outstanding.Store(int32(len(ids)))
		w.flow.charge(r, int64(len(ids))*contributionCost(res.Variables))
		for _, id := range ids {
			t.add(id, &contribution{rec: r, pipeline: pl.Name, vars: res.Variables, at: now,
				dataAt: at, maxAge: pl.MaxRecordAge, onStale: pl.OnStale})
		}
	case transform.Filtered:
		w.stats.filtered.Add(1)
		w.metrics.recordFiltered(pl.Name)
		r.trace.ended(traceFiltered, "")
		w.done(r)
	default:
		w.skip(r, pl.Name, res.Reason)
	}
}

// apply applies the pipeline to tr after the tables have read tr's own partition past it (when
// a table reads the pipeline's topic), and handles a lookup miss by the pipeline's policy. ok
// is false when the record was dealt with here (skipped or dead-lettered) or ctx ended.
//
// When ok, the tables are held still until the caller, having queued the record's writes,
// calls releaseTables. With WaitPast this orders a join against the change it races: a call
// start S and a CRM update U of its customer on another topic. If S's lookup ran before the
// customers table applied U, U was applied after S's writes were queued, and U's pipeline
// (which waited for its own topic's table to pass U) found S in activeInteractions and queued
// its writes after S's; otherwise S's lookup saw U. Either way the call ends with U's values.
func (w *worker) apply(ctx context.Context, pl *Pipeline, ap applier, tr *transform.Record, r *rec) (_ transform.Result, _ error, ok bool) {
	if w.tables != nil && !w.replay {
		if err := w.tables.WaitPast(ctx, tr.Topic, tr.Partition, tr.Offset); err != nil {
			return transform.Result{}, nil, false
		}
	}
	var deadline time.Time
	wait := lookupRetryFirst
	for {
		w.holdTables()
		res, err := ap.Apply(tr)
		if err != nil || res.LookupMiss == "" {
			return res, err, true
		}
		w.releaseTables()
		switch pl.OnLookupMiss {
		case transform.LookupMissRetry:
			window := pl.LookupRetryWindow
			if window <= 0 {
				window = DefaultLookupRetryWindow
			}
			now := w.now()
			if deadline.IsZero() {
				deadline = now.Add(window)
			}
			if left := deadline.Sub(now); left > 0 {
				if !sleepCtx(ctx, min(wait, left)) {
					return res, nil, false
				}
				wait = min(2*wait, lookupRetryMax)
				continue
			}
			w.deadLetter(ctx, r, pl.Name, classLookupMiss,
				fmt.Sprintf("lookup(%q) found no row within the lookupRetryWindow of %s", res.LookupMiss, window))
		case transform.LookupMissDeadLetter:
			w.deadLetter(ctx, r, pl.Name, classLookupMiss, fmt.Sprintf("lookup(%q) found no row", res.LookupMiss))
		default:
			w.skip(r, pl.Name, ReasonLookupMiss)
		}
		return res, nil, false
	}
}

// stale ends a record whose data is older than its pipeline's maxRecordAge on arrival, as
// its onStale says: it is not sent.
func (w *worker) stale(ctx context.Context, pl *Pipeline, r *rec, age time.Duration) {
	if pl.OnStale == OnStaleDeadLetter {
		w.deadLetter(ctx, r, pl.Name, classStale, staleMessage(age, pl.MaxRecordAge))
		return
	}
	w.skip(r, pl.Name, ReasonStale)
}

// leaveOutGone returns the identifiers of ids that were not found gone after the record's
// data changed (at), and the latest moment one of the others was (zero: none was).
func (w *worker) leaveOutGone(t *tenant, ids []string, at, now time.Time) (live []string, goneAt time.Time) {
	live = ids
	for i, id := range ids {
		g, ok := t.gone.covers(id, at, now)
		if !ok {
			if len(live) < len(ids) {
				live = append(live, id)
			}
			continue
		}
		if len(live) == len(ids) {
			live = append(make([]string, 0, len(ids)-1), ids[:i]...)
		}
		if g.After(goneAt) {
			goneAt = g
		}
	}
	return live, goneAt
}

// gone handles a record some of whose identifiers were found gone after its data changed:
// no request is made for them, and the record is dead-lettered (class not_found) or, under
// onGone skip, counted as skipped when it has no other identifier (all). It reports whether
// the record goes on to its other identifiers (false: it was ended here, or ctx ended).
func (w *worker) gone(ctx context.Context, t *tenant, pl *Pipeline, r *rec, goneAt time.Time, all bool) bool {
	switch {
	case t.opts.OnGone == OnGoneDeadLetter && all:
		w.deadLetter(ctx, r, pl.Name, classNotFound, goneMessage(goneAt))
		return false
	case t.opts.OnGone == OnGoneDeadLetter:
		return w.dead.write(ctx, r, pl.Name, classNotFound, goneMessage(goneAt)) == nil
	case all:
		w.skip(r, pl.Name, ReasonGone)
		return false
	}
	return true
}

func (w *worker) holdTables() {
	if w.tables != nil {
		w.tables.Hold()
	}
}

func (w *worker) releaseTables() {
	if w.tables != nil {
		w.tables.Release()
	}
}

// deadLetter dead-letters a record that never reached a tenant and marks it done once the
// dead letter is acknowledged. When the write fails (ctx ended, or no dead-letter topic: the
// connector stops) the record stays pending and is never committed past.
func (w *worker) deadLetter(ctx context.Context, r *rec, pipeline string, class deadLetterClass, msg string) {
	if err := w.dead.write(ctx, r, pipeline, class, msg); err != nil {
		return
	}
	w.done(r)
}

func (w *worker) done(r *rec) { recordDone(r, w.flow, w.stats) }

// skip ends r as skipped for reason: counted (stats, metric, its span) and done.
func (w *worker) skip(r *rec, pipeline, reason string) {
	w.stats.skipped.Add(1)
	w.metrics.recordSkipped(pipeline, reason)
	r.trace.ended(traceSkipped, reason)
	w.done(r)
}

// sourceOf returns where r comes from as pipelines see it (see recordSource).
func (w *worker) sourceOf(r *rec) (topic string, partition int32, offset int64) {
	return recordSource(&r.kr, w.replay)
}
