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

// ReasonReplayFilter is the skip reason of a dead letter replay's filters left out.
const ReasonReplayFilter = "replay filter"

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

// checkLookupMiss refuses a policy transform does not define (transform.Compile is the
// authority on it; this guards callers that build a Pipeline by hand).
func checkLookupMiss(pl *Pipeline) error {
	switch pl.OnLookupMiss {
	case "", transform.LookupMissSkip, transform.LookupMissRetry, transform.LookupMissDeadLetter:
		return nil
	}
	return fmt.Errorf("pipeline %q: onLookupMiss must be %s, %s or %s, got %q", pl.Name, transform.LookupMissSkip, transform.LookupMissRetry, transform.LookupMissDeadLetter, pl.OnLookupMiss)
}
