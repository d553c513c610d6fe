package connector

import (
	"context"
	"fmt"
	"time"

	"github.com/augment-connector/augment-connector/transform"
)

// Tables are the lookup tables the pipelines join against (*tables.Set). The connector runs
// them for as long as it runs, and consumes its group only once they caught up.
type Tables interface {
	// Run reads the tables' topics until ctx ends (returning nil) or a table fails (an error
	// that stops the connector, such as a bound exceeded).
	Run(ctx context.Context) error
	// CaughtUp is closed once the tables reached the end offsets their topics had at start-up.
	CaughtUp() <-chan struct{}
	// Loading says why the tables cannot serve lookups yet, or "" once caught up.
	Loading() string
	// WaitPast waits until the tables have read a topic's partition past offset (at once for
	// a topic no table reads).
	WaitPast(ctx context.Context, topic string, partition int32, offset int64) error
	// Hold keeps the tables still (no table record is applied) until Release; holds by
	// several goroutines may overlap.
	Hold()
	Release()
}

// ReasonLookupMiss is the skipped reason of a record whose lookup missed under transform.LookupMissSkip.
const ReasonLookupMiss = "lookup miss"

// DefaultLookupRetryWindow is how long transform.LookupMissRetry waits for a late row by default.
const DefaultLookupRetryWindow = 30 * time.Second

// Waits between evaluations of a record whose lookup missed, under transform.LookupMissRetry: short at
// first (a row late by a few milliseconds is the common case), then at most a second apart.
const (
	lookupRetryFirst = 20 * time.Millisecond
	lookupRetryMax   = time.Second
)

// startTables runs the lookup tables on a goroutine of their own and waits until they caught
// up. loaded is false when ctx ended or the connector failed first; stop ends the goroutine
// and waits for it (the caller calls it when Run returns, after the shutdown drain, so lookups
// keep working until the last record is done).
func (c *Connector) startTables(ctx context.Context) (stop func(), loaded bool) {
	t := c.opts.Tables
	if t == nil {
		return func() {}, true
	}
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := t.Run(tctx); err != nil && tctx.Err() == nil {
			c.fail(fmt.Errorf("lookup tables: %w", err))
		}
	}()
	stop = func() { cancel(); <-done }
	select {
	case <-t.CaughtUp():
		return stop, true
	case <-ctx.Done():
	case <-c.fatal:
	}
	return stop, false
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
func (c *Connector) apply(ctx context.Context, pl *Pipeline, ap applier, tr *transform.Record, r *rec) (_ transform.Result, _ error, ok bool) {
	if t := c.opts.Tables; t != nil && !c.replay {
		if err := t.WaitPast(ctx, tr.Topic, tr.Partition, tr.Offset); err != nil {
			return transform.Result{}, nil, false
		}
	}
	var deadline time.Time
	wait := lookupRetryFirst
	for {
		c.holdTables()
		res, err := ap.Apply(tr)
		if err != nil || res.LookupMiss == "" {
			return res, err, true
		}
		c.releaseTables()
		switch pl.OnLookupMiss {
		case transform.LookupMissRetry:
			window := pl.LookupRetryWindow
			if window <= 0 {
				window = DefaultLookupRetryWindow
			}
			now := c.opts.Now()
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
			c.deadLetterRecord(ctx, r, pl.Name, classLookupMiss,
				fmt.Sprintf("lookup(%q) found no row within the lookupRetryWindow of %s", res.LookupMiss, window))
		case transform.LookupMissDeadLetter:
			c.deadLetterRecord(ctx, r, pl.Name, classLookupMiss, fmt.Sprintf("lookup(%q) found no row", res.LookupMiss))
		default:
			c.stats.skipped.Add(1)
			c.metrics.recordSkipped(pl.Name, ReasonLookupMiss)
			c.recordDone(r)
		}
		return res, nil, false
	}
}

func (c *Connector) holdTables() {
	if c.opts.Tables != nil {
		c.opts.Tables.Hold()
	}
}

func (c *Connector) releaseTables() {
	if c.opts.Tables != nil {
		c.opts.Tables.Release()
	}
}

// checkLookupMiss refuses a policy transform does not define (transform.Compile is the
// authority on it; this guards callers that build a Pipeline by hand).
func checkLookupMiss(pl *Pipeline) error {
	switch pl.OnLookupMiss {
	case "", transform.LookupMissSkip, transform.LookupMissRetry, transform.LookupMissDeadLetter:
		return nil
	}
	return fmt.Errorf("pipeline %q: onLookupMiss must be %s, %s or %s, got %q", pl.Name, transform.LookupMissSkip, transform.LookupMissRetry, transform.LookupMissDeadLetter, pl.OnLookupMiss)
}
