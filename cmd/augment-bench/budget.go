package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augment-connector/augment-connector/internal/sim"
)

// budgetEvent is one record of the budget scenario's schedule.
type budgetEvent struct {
	at          time.Duration // from the start of producing
	interaction int
	r           row
	produced    time.Time // when it was handed to the producer (its record timestamp)
}

// interactionPlan is one interaction's events, in order: the first one, then its burst.
type interactionPlan struct {
	id     string
	events []*budgetEvent
}

// loadPerMinute is how many interactions start each minute at the real limit of 100 requests
// a minute.
var loadPerMinute = map[string]int{"under": 40, "over": 500}

// schedule builds the scenario's events. Each interaction starts at a random time within its
// minute with one event (four variables), followed by a burst of 2-5 more events over the
// next 10 s; 40% of the burst's events come 0.1-0.9 s after the previous one (the same
// variables updated within a second). Every event carries distinct values (the balance is its
// sequence number in cents), so the journal shows which request carried which event.
// countFactor multiplies the interactions a minute; timeFactor every time constant.
func schedule(rng *rand.Rand, perMinute int, minutes int, countFactor, timeFactor float64) []*interactionPlan {
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * timeFactor) }
	minute := scale(time.Minute)
	n := int(math.Round(float64(perMinute) * countFactor))
	var plans []*interactionPlan
	seq := 0
	for m := range minutes {
		for range n {
			p := &interactionPlan{id: interactionID(len(plans))}
			start := time.Duration(m)*minute + time.Duration(rng.Int64N(int64(minute)))
			at := start
			burst := 2 + rng.IntN(4)
			for j := range 1 + burst {
				if j > 0 {
					if rng.Float64() < 0.4 {
						at += scale(100*time.Millisecond + time.Duration(rng.Int64N(int64(800*time.Millisecond))))
					} else {
						at += time.Duration(rng.Int64N(int64(scale(10*time.Second) * 2 / time.Duration(burst))))
					}
					at = min(at, start+scale(10*time.Second))
				}
				seq++
				r := randomRow(rng, int64(len(plans)+1), p.id)
				r.cents = int64(seq)
				r.first = "F" + strconv.Itoa(seq)
				r.reason = reasons[seq%len(reasons)] + " #" + strconv.Itoa(seq)
				p.events = append(p.events, &budgetEvent{at: at, interaction: len(plans), r: r})
			}
			plans = append(plans, p)
		}
	}
	return plans
}

func runBudget(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("budget", flag.ContinueOnError)
	fs.SetOutput(stderr)
	load := fs.String("load", "under", "under (40 interactions a minute at the limit of 100) or over (500)")
	limit := fs.Int("limit", 100, "requests per minute, at the simulator and in the connector")
	minutes := fs.Int("minutes", 3, "minutes during which interactions start")
	scaleMode := fs.String("scale", "count", "how a limit other than 100 scales the load: count (interactions a minute × limit/100, real time: "+
		"faithful, since the 60 s windows of the API and the pacer do not scale) or time (every time constant × 100/limit)")
	seed := fs.Uint64("seed", 1, "seed of the schedule")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up waiting for the drain after this long")
	level := fs.String("log-level", "warn", "connector log level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	perMinute, ok := loadPerMinute[*load]
	if !ok {
		return fmt.Errorf("--load must be under or over, got %q", *load)
	}
	if *limit < 1 || *minutes < 1 {
		return fmt.Errorf("--limit and --minutes must be at least 1")
	}
	countFactor, timeFactor := float64(*limit)/100, 1.0
	switch *scaleMode {
	case "count":
	case "time":
		countFactor, timeFactor = 1, 100/float64(*limit)
	default:
		return fmt.Errorf("--scale must be count or time, got %q", *scaleMode)
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))
	plans := schedule(rng, perMinute, *minutes, countFactor, timeFactor)
	var evs []*budgetEvent
	for _, p := range plans {
		evs = append(evs, p.events...)
	}
	slices.SortStableFunc(evs, func(a, b *budgetEvent) int { return int(a.at - b.at) })

	env, err := newEnv(ctx, log, envOptions{rateLimit: *limit, journalSize: len(evs) + 10_000})
	if err != nil {
		return err
	}
	defer env.Close()
	rc, err := env.startConnector(ctx, connOptions{requestsPerMinute: *limit})
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = rc.Stop()
		}
	}()
	if err := waitReady(ctx, rc, 30*time.Second); err != nil {
		return err
	}
	last := evs[len(evs)-1].at
	progress(stderr, "load=%s limit=%d/min: %d interactions, %d events over %s; producing in real time", *load, *limit, len(plans), len(evs), last.Round(time.Second))

	// Produce on schedule.
	var produceErr atomic.Pointer[error]
	start := time.Now()
	for _, ev := range evs {
		if d := time.Until(start.Add(ev.at)); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		ev.produced = time.Now()
		rec := &kgo.Record{Key: []byte(plans[ev.interaction].id), Value: env.encode(ev.r), Timestamp: ev.produced}
		env.producer.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				produceErr.CompareAndSwap(nil, &err)
			}
		})
	}
	if err := env.producer.Flush(ctx); err != nil {
		return fmt.Errorf("flushing the producer: %w", err)
	}
	if p := produceErr.Load(); p != nil {
		return fmt.Errorf("producing: %w", *p)
	}
	producedAt := time.Now()
	progress(stderr, "produced; waiting for the drain")
	_, waitErr := env.waitCommitted(ctx, rc, int64(len(evs)), *timeout)
	drained := time.Since(start)
	st := rc.c.Stats()
	stopErr := rc.Stop()
	stopped = true

	res := analyzeBudget(plans, env.sim)
	stats := env.sim.Stats()
	unit := timeFactor // report model seconds
	fmt.Fprintf(stdout, "scenario=budget load=%s limit=%d minutes=%d scale=%s interactions=%d events=%d requests=%d status_429=%d non200=%d "+
		"requests_per_interaction=%.2f events_per_interaction=%.2f first_p50_s=%.2f first_p99_s=%.2f first_max_s=%.2f "+
		"last_p50_s=%.2f last_p99_s=%.2f last_max_s=%.2f full_minutes=%d min_full_minute=%d minute_counts=%s max_rolling_minute=%d "+
		"produce_s=%.0f drain_after_produce_s=%.0f final_written=%d/%d dead_lettered=%d\n",
		*load, *limit, *minutes, *scaleMode, len(plans), len(evs), res.requests, stats.ByStatus[429], stats.Total-stats.ByStatus[200],
		float64(res.requests)/float64(len(plans)), float64(len(evs))/float64(len(plans)),
		res.first.q(0.5)/unit, res.first.q(0.99)/unit, res.first.q(1)/unit,
		res.last.q(0.5)/unit, res.last.q(0.99)/unit, res.last.q(1)/unit,
		len(res.fullMinutes), minOr(res.fullMinutes, -1), joinInts(res.minuteCounts), res.maxRolling,
		producedAt.Sub(start).Seconds()/unit, drained.Seconds()-producedAt.Sub(start).Seconds(),
		res.finalOK, len(plans), st.DeadLettered)
	switch {
	case waitErr != nil:
		return waitErr
	case stopErr != nil:
		return fmt.Errorf("stopping the connector: %w", stopErr)
	case stats.ByStatus[429] > 0:
		return fmt.Errorf("%d requests answered 429", stats.ByStatus[429])
	case res.finalOK != len(plans):
		return fmt.Errorf("%d interactions do not hold their final values", len(plans)-res.finalOK)
	case res.missing > 0:
		return fmt.Errorf("%d events' values were never seen in the journal", res.missing)
	}
	return nil
}

// waitReady waits until the connector has joined its group.
func waitReady(ctx context.Context, rc *runningConnector, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, ready, _ := rc.c.Health(); ready {
			return nil
		}
		if time.Now().After(deadline) {
			_, _, why := rc.c.Health()
			return fmt.Errorf("connector not ready after %s: %s", timeout, strings.Join(why, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-rc.done:
			rc.done <- err
			return fmt.Errorf("connector stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type budgetResult struct {
	requests     int
	first, last  durations
	minuteCounts []int // requests per minute from the first request, the last one partial
	fullMinutes  []int
	maxRolling   int
	finalOK      int
	missing      int
}

// analyzeBudget reads the simulator's journal: when each interaction's first event and the
// last event of its burst were written, requests per minute, and the final state.
func analyzeBudget(plans []*interactionPlan, s *sim.Server) budgetResult {
	var res budgetResult
	journal := s.Journal(0)
	byID := make(map[string][]sim.Entry)
	var times []time.Time
	for _, e := range journal {
		times = append(times, e.Time)
		if e.Method == "POST" && e.Status == 200 {
			res.requests++
			byID[e.Identifier] = append(byID[e.Identifier], e)
		}
	}
	// written finds the first successful write at or after the event was produced that
	// carried its balance (unique per event).
	written := func(entries []sim.Entry, ev *budgetEvent) (time.Time, bool) {
		want := wantVars(ev.r)["_accountBalance"]
		for _, e := range entries {
			if e.Time.Before(ev.produced) {
				continue
			}
			for _, v := range e.Variables {
				if v.Name == "_accountBalance" && v.Value == want {
					return e.Time, true
				}
			}
		}
		return time.Time{}, false
	}
	for _, p := range plans {
		entries := byID[p.id]
		if at, ok := written(entries, p.events[0]); ok {
			res.first = append(res.first, at.Sub(p.events[0].produced))
		} else if len(entries) > 0 {
			// The first event was folded with later ones before its first write: the first
			// write still carried the interaction's first variables.
			res.first = append(res.first, entries[0].Time.Sub(p.events[0].produced))
		} else {
			res.missing++
		}
		lastEv := p.events[len(p.events)-1]
		if at, ok := written(entries, lastEv); ok {
			res.last = append(res.last, at.Sub(lastEv.produced))
		} else {
			res.missing++
		}
		if ia, ok := s.Interaction(benchTenant, p.id); ok {
			got := make(map[string]string, len(ia.Variables))
			for _, v := range ia.Variables {
				got[v.Name] = v.Value
			}
			okAll := true
			for k, v := range wantVars(lastEv.r) {
				if got[k] != v {
					okAll = false
				}
			}
			if okAll {
				res.finalOK++
			}
		}
	}
	slices.Sort(res.first)
	slices.Sort(res.last)
	if len(times) > 0 {
		slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
		t0, tEnd := times[0], times[len(times)-1]
		for _, t := range times {
			i := int(t.Sub(t0) / time.Minute)
			for len(res.minuteCounts) <= i {
				res.minuteCounts = append(res.minuteCounts, 0)
			}
			res.minuteCounts[i]++
		}
		for i, c := range res.minuteCounts {
			if !t0.Add(time.Duration(i+1) * time.Minute).After(tEnd) {
				res.fullMinutes = append(res.fullMinutes, c)
			}
		}
		j := 0
		for i := range times {
			for times[i].Sub(times[j]) >= time.Minute {
				j++
			}
			res.maxRolling = max(res.maxRolling, i-j+1)
		}
	}
	return res
}

// durations is a sorted sample of durations.
type durations []time.Duration

// q returns the q-quantile in seconds (nearest rank); NaN when empty.
func (d durations) q(q float64) float64 {
	if len(d) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(d)))) - 1
	i = min(max(i, 0), len(d)-1)
	return d[i].Seconds()
}

func minOr(xs []int, def int) int {
	if len(xs) == 0 {
		return def
	}
	return slices.Min(xs)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}
