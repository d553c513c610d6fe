package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/api"
	"github.com/augment-connector/augment-connector/internal/app"
	"github.com/augment-connector/augment-connector/internal/config"
	"github.com/augment-connector/augment-connector/internal/offsets"
	"github.com/augment-connector/augment-connector/internal/sim"
)

// staleOptions are the stale scenario's flags.
type staleOptions struct {
	ended, endedRecords int
	endedAge            time.Duration
	live, liveRecords   int
	callEvery           time.Duration
	callsMin            time.Duration
	callsFor            time.Duration
	limit               int
	timeout             time.Duration
	seed                uint64
	level               string
	// The policy's knobs, written into the config only when set, verbatim (the config's own
	// parser reads them), so that without them the config is valid on today's code.
	notFoundGrace, maxRecordAge, onStale string
	requireActive                        bool
	requireActiveExpr                    string

	// tweak, when set (tests), adjusts the connector's options built from the config.
	tweak func(*connector.Options)
}

// activeTable is the lookup table --require-active reads.
const activeTable = "activeInteractions"

func runStale(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o staleOptions
	fs.IntVar(&o.ended, "ended", 100, "ended interactions in the backlog (404 from the API)")
	fs.IntVar(&o.endedRecords, "ended-records", 3, "backlog records per ended interaction")
	fs.DurationVar(&o.endedAge, "ended-age", 2*time.Hour, "Kafka timestamp of the ended interactions' records: this long ago")
	fs.IntVar(&o.live, "live", 10, "live interactions in the backlog (records of the last minute)")
	fs.IntVar(&o.liveRecords, "live-records", 3, "backlog records per live interaction")
	fs.DurationVar(&o.callEvery, "call-every", 2*time.Second, "a new call starts this often while the backlog drains (0: none)")
	fs.DurationVar(&o.callsMin, "calls-min", time.Minute, "new calls keep starting at least this long, even once the backlog drained")
	fs.DurationVar(&o.callsFor, "calls-for", 0, "new calls start for exactly this long instead (the same load whatever the policy; "+
		"0: until the backlog is committed, at least --calls-min)")
	fs.IntVar(&o.limit, "limit", 100, "requests per minute, at the simulator and in the connector")
	fs.DurationVar(&o.timeout, "timeout", 12*time.Minute, "give up after this long")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the record generator")
	fs.StringVar(&o.level, "log-level", "error", "connector log level")
	fs.StringVar(&o.notFoundGrace, "not-found-grace", "", "tenants[].notFoundGrace (unset: not written)")
	fs.StringVar(&o.maxRecordAge, "max-record-age", "", "pipelines[].maxRecordAge (unset: not written)")
	fs.StringVar(&o.onStale, "on-stale", "", "pipelines[].onStale: skip | deadLetter (unset: not written)")
	fs.BoolVar(&o.requireActive, "require-active", false, "produce the activeInteractions table (live and new calls) and write "+
		"pipelines[].requireActive: {table: activeInteractions}")
	fs.StringVar(&o.requireActiveExpr, "require-active-expression", "", "requireActive.expression, with --require-active (unset: not written)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return runStaleWith(ctx, o, stdout, stderr)
}

// staleCall is one live or new interaction: its records and when the last one was produced.
type staleCall struct {
	id       string
	last     row       // its last record: the final values
	produced time.Time // new calls: when its record was handed to the producer
}

func runStaleWith(ctx context.Context, o staleOptions, stdout, stderr io.Writer) error {
	if o.ended < 0 || o.live < 0 || o.endedRecords < 1 || o.liveRecords < 1 || o.limit < 1 || o.callEvery < 0 {
		return errors.New("--ended and --live must be at least 0, --ended-records, --live-records and --limit at least 1")
	}
	log, err := newLogger(stderr, o.level)
	if err != nil {
		return err
	}
	env, err := newEnv(ctx, log, envOptions{rateLimit: o.limit, journalSize: 500_000, noAutoCreate: true})
	if err != nil {
		return err
	}
	defer env.Close()
	suffix := strings.TrimPrefix(env.group, "augment-bench-")
	dlqTopic := "bench.dlq." + suffix
	activeTopic := "bench.active." + suffix
	topics := []string{dlqTopic}
	if o.requireActive {
		topics = append(topics, activeTopic)
	}
	if err := env.createTopics(ctx, topics...); err != nil {
		return err
	}

	// The backlog: ended interactions' records from endedAge ago, oldest first as a topic
	// holds them, then the live ones' from the last minute.
	rng := rand.New(rand.NewPCG(o.seed, o.seed^0x9e3779b97f4a7c15))
	seq := 0
	nextRow := func(id string) row {
		seq++
		r := randomRow(rng, int64(seq), id)
		r.cents = int64(seq) // distinct per record: the journal tells which record a write carried
		return r
	}
	now := time.Now()
	endedIDs := make(map[string]bool, o.ended)
	var backlog []*kgo.Record
	for i := range o.ended {
		id := "ended-" + interactionID(i)
		endedIDs[id] = true
		if err := env.sim.CreateInteraction(benchTenant, api.Interaction{InteractionID: id}); err != nil {
			return err
		}
		if err := env.sim.EndInteraction(benchTenant, id); err != nil {
			return err
		}
	}
	for j := range o.endedRecords {
		for i := range o.ended {
			id := "ended-" + interactionID(i)
			ts := now.Add(-o.endedAge + time.Duration(j*o.ended+i)*time.Millisecond)
			backlog = append(backlog, &kgo.Record{Key: []byte(id), Value: env.encode(nextRow(id)), Timestamp: ts})
		}
	}
	var live []*staleCall
	var tableRows []*kgo.Record
	for i := range o.live {
		c := &staleCall{id: "live-" + interactionID(i)}
		if err := env.sim.CreateInteraction(benchTenant, api.Interaction{InteractionID: c.id}); err != nil {
			return err
		}
		tableRows = append(tableRows, activeRow(activeTopic, c.id, now.Add(-time.Minute)))
		live = append(live, c)
	}
	step := 50 * time.Second / time.Duration(max(o.live*o.liveRecords, 1))
	for j := range o.liveRecords {
		for i, c := range live {
			c.last = nextRow(c.id)
			ts := now.Add(-time.Minute + time.Duration(j*o.live+i+1)*step)
			backlog = append(backlog, &kgo.Record{Key: []byte(c.id), Value: env.encode(c.last), Timestamp: ts})
		}
	}
	if o.requireActive {
		if err := env.produceAll(ctx, tableRows); err != nil {
			return err
		}
	}
	progress(stderr, "backlog: %d ended interactions × %d records from %s ago, %d live × %d records of the last minute",
		o.ended, o.endedRecords, o.endedAge, o.live, o.liveRecords)
	if err := env.produceAll(ctx, backlog); err != nil {
		return err
	}
	backlogEnds, err := offsets.Ends(ctx, env.adm, env.topic)
	if err != nil {
		return err
	}

	cfgText := staleConfig(env, o, dlqTopic, activeTopic)
	cfg, err := config.Parse([]byte(cfgText), "stale.yaml")
	if err != nil {
		return fmt.Errorf("the scenario's config (a knob this code does not know yet?): %w\n--- config:\n%s", err, cfgText)
	}
	compiled, err := app.Compile(cfg)
	if err != nil {
		return fmt.Errorf("compiling the scenario's config: %w", err)
	}
	opts, err := compiled.Options(log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	opts.Metrics = connector.NewMetrics(reg)
	if o.tweak != nil {
		o.tweak(&opts)
	}
	c, err := connector.New(opts)
	if err != nil {
		return fmt.Errorf("creating the connector: %w", err)
	}
	simBefore := env.sim.Stats()
	start := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	rc := &runningConnector{c: c, cancel: cancel, done: make(chan error, 1), reg: reg}
	go pprof.Do(rctx, pprof.Labels("part", partConnector), func(ctx context.Context) {
		rc.done <- c.Run(ctx)
	})
	stopped := false
	defer func() {
		if !stopped {
			_ = rc.Stop()
		}
	}()
	deadline := start.Add(o.timeout)

	// New calls, one every callEvery until the backlog drained (and callsMin passed).
	var (
		mu         sync.Mutex
		newCalls   []*staleCall
		drainedAt  time.Time // when the group committed past the backlog
		callErr    error
		callsDone  = make(chan struct{})
		stopCalls  = make(chan struct{})
		stopCallsO sync.Once
	)
	go func() {
		defer close(callsDone)
		if o.callEvery <= 0 {
			return
		}
		t := time.NewTicker(o.callEvery)
		defer t.Stop()
		for i := 0; ; i++ {
			c := &staleCall{id: "new-" + interactionID(i)}
			if err := env.sim.CreateInteraction(benchTenant, api.Interaction{InteractionID: c.id}); err != nil {
				mu.Lock()
				callErr = err
				mu.Unlock()
				return
			}
			if o.requireActive {
				if err := env.producer.ProduceSync(ctx, activeRow(activeTopic, c.id, time.Now())).FirstErr(); err != nil {
					mu.Lock()
					callErr = fmt.Errorf("producing the table row: %w", err)
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			c.last = nextRow(c.id)
			c.produced = time.Now()
			rec := &kgo.Record{Key: []byte(c.id), Value: env.encode(c.last), Timestamp: c.produced}
			newCalls = append(newCalls, c)
			mu.Unlock()
			env.producer.Produce(ctx, rec, func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					callErr = fmt.Errorf("producing: %w", err)
					mu.Unlock()
				}
			})
			select {
			case <-stopCalls:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	stopNewCalls := func() {
		stopCallsO.Do(func() { close(stopCalls) })
		<-callsDone
	}
	defer stopNewCalls()

	// Wait: the backlog drained, new calls stopped, every live and new interaction holds its
	// final values and the group committed everything.
	var waitErr error
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	callsStopped := false
	nextReport := start.Add(30 * time.Second)
	for {
		if now := time.Now(); now.After(nextReport) {
			nextReport = nextReport.Add(30 * time.Second)
			ss, cs := env.sim.Stats(), c.Stats()
			mu.Lock()
			n := len(newCalls)
			mu.Unlock()
			progress(stderr, "%3.0fs: requests=%d 404=%d 429=%d done=%d dead_lettered=%d skipped=%d new_calls=%d",
				now.Sub(start).Seconds(), ss.Total-simBefore.Total, ss.ByStatus[404], ss.ByStatus[429], cs.Done, cs.DeadLettered, cs.Skipped, n)
		}
		if drainedAt.IsZero() {
			if lags, err := offsets.Lag(ctx, env.adm, env.group, env.topic); err == nil && lags.Reached(backlogEnds) {
				mu.Lock()
				drainedAt = time.Now()
				mu.Unlock()
				progress(stderr, "backlog committed after %.1fs", drainedAt.Sub(start).Seconds())
			}
		}
		callsOver := !drainedAt.IsZero() && time.Since(start) >= o.callsMin
		if o.callsFor > 0 {
			callsOver = time.Since(start) >= o.callsFor
		}
		if !callsStopped && callsOver {
			stopNewCalls()
			callsStopped = true
			if err := env.producer.Flush(ctx); err != nil {
				waitErr = fmt.Errorf("flushing the producer: %w", err)
				break
			}
			mu.Lock()
			progress(stderr, "%d new calls started; waiting for the rest", len(newCalls))
			mu.Unlock()
		}
		mu.Lock()
		err := callErr
		mu.Unlock()
		if err != nil {
			waitErr = err
			break
		}
		if callsStopped {
			all := append(slices.Clone(live), newCalls...)
			if missingFinal(env.sim, all) == 0 {
				lags, err := offsets.Lag(ctx, env.adm, env.group, env.topic)
				if committed, end, _ := lags.Totals(); err == nil && committed == end {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			waitErr = fmt.Errorf("timed out after %s", o.timeout)
			break
		}
		select {
		case <-ctx.Done():
			waitErr = ctx.Err()
		case err := <-rc.done:
			rc.done <- err
			if err == nil {
				err = errors.New("connector stopped early")
			}
			waitErr = fmt.Errorf("connector stopped: %w", err)
		case <-tick.C:
		}
		if waitErr != nil {
			break
		}
	}
	total := time.Since(start)
	if !callsStopped {
		stopNewCalls()
	}
	st := c.Stats()
	stopErr := rc.Stop()
	stopped = true

	mu.Lock()
	calls := slices.Clone(newCalls)
	drained := drainedAt
	mu.Unlock()
	res := analyzeStale(env.sim, start, endedIDs, live, calls, drained)
	stats := env.sim.Stats()
	fmt.Fprintf(stdout, "scenario=stale ended=%d ended_records=%d live=%d live_records=%d limit=%d not_found_grace=%s max_record_age=%s "+
		"on_stale=%s require_active=%t call_every=%s calls_for=%s requests=%d status_404=%d requests_per_ended=%.2f ended_404_per_ended=%.2f "+
		"backlog_committed_s=%s live_final_s=%s new_calls=%d new_during_drain=%d first_p50_s=%.2f first_p99_s=%.2f first_max_s=%.2f "+
		"first_all_p50_s=%.2f first_all_p99_s=%.2f first_all_max_s=%.2f status_429=%d missing=%d dead_lettered=%d skipped=%d total_s=%.1f\n",
		o.ended, o.endedRecords, o.live, o.liveRecords, o.limit, orDash(o.notFoundGrace), orDash(o.maxRecordAge), orDash(o.onStale), o.requireActive,
		o.callEvery, callsFor(o),
		stats.Total-simBefore.Total, stats.ByStatus[404], float64(res.endedRequests)/float64(max(o.ended, 1)),
		float64(res.ended404)/float64(max(o.ended, 1)), secondsOr(drained, start), res.liveFinal,
		len(calls), len(res.firstDuring), res.firstDuring.q(0.5), res.firstDuring.q(0.99), res.firstDuring.q(1),
		res.firstAll.q(0.5), res.firstAll.q(0.99), res.firstAll.q(1), stats.ByStatus[429], res.missing,
		st.DeadLettered, st.Skipped, total.Seconds())
	switch {
	case waitErr != nil:
		return fmt.Errorf("%w (%d live or new interactions without their final values)", waitErr, res.missing)
	case res.missing > 0:
		return fmt.Errorf("%d live or new interactions do not hold their final values", res.missing)
	case stopErr != nil:
		return fmt.Errorf("stopping the connector: %w", stopErr)
	}
	return nil
}

// activeRow is the activeInteractions table's row of a call: keyed by its interaction id.
func activeRow(topic, id string, ts time.Time) *kgo.Record {
	v, _ := json.Marshal(map[string]string{"interaction_id": id, "event": "started"})
	return &kgo.Record{Topic: topic, Key: []byte(id), Value: v, Timestamp: ts}
}

// staleConfig is the connector's config for the scenario, as `augment-connector run` would
// read it: the bench pipeline over the flat customer records, a dead-letter topic, and only
// the knobs that were set.
func staleConfig(env *benchEnv, o staleOptions, dlqTopic, activeTopic string) string {
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "kafka:\n  brokers: [%s]\n  groupId: %s\n", strings.Join(quoteAll(env.seeds), ", "), q(env.group))
	fmt.Fprintf(&b, "schemaRegistry:\n  urls: [%s]\n", q(env.registry.URL()))
	fmt.Fprintf(&b, "tenants:\n  %s:\n    baseURL: %s\n    allowInsecureHTTP: true\n    tenantId: %s\n    token: %s\n    requestsPerMinute: %d\n",
		benchTenant, q(env.simURL), q(benchTenant), q(env.token), o.limit)
	if o.notFoundGrace != "" {
		fmt.Fprintf(&b, "    notFoundGrace: %s\n", q(o.notFoundGrace))
	}
	if o.requireActive {
		fmt.Fprintf(&b, "tables:\n  - name: %s\n    topic: %s\n    decode: {format: json}\n    key: key\n    value: {interactionId: after.interaction_id}\n",
			activeTable, q(activeTopic))
	}
	fmt.Fprintf(&b, "pipelines:\n  - name: bench\n    topics: [%s]\n    tenant: %s\n    decode: {format: avro-registry, keyFormat: string}\n    identifier: after.interaction_id\n",
		q(env.topic), benchTenant)
	if o.maxRecordAge != "" {
		fmt.Fprintf(&b, "    maxRecordAge: %s\n", q(o.maxRecordAge))
	}
	if o.onStale != "" {
		fmt.Fprintf(&b, "    onStale: %s\n", q(o.onStale))
	}
	if o.requireActive {
		fmt.Fprintf(&b, "    requireActive:\n      table: %s\n", activeTable)
		if o.requireActiveExpr != "" {
			fmt.Fprintf(&b, "      expression: %s\n", q(o.requireActiveExpr))
		}
	}
	b.WriteString(`    variables:
      - {name: _customerTier, value: after.tier, ivr: true, display: true, displayName: Customer Tier}
      - {name: _accountBalance, value: "formatNumber(after.balance, 2)", ivr: true, display: true, displayName: Account Balance, dataType: currency}
      - {name: _customerName, value: 'after.first_name + " " + after.last_name', display: true, displayName: Customer Name}
      - {name: _lastContactReason, value: after.last_contact_reason, display: true, displayName: Last Contact Reason}
`)
	fmt.Fprintf(&b, "deadLetter:\n  topic: %s\n", q(dlqTopic))
	// One process, as in the other scenarios: it paces its own budget.
	b.WriteString("budget:\n  coordination: local\n")
	return b.String()
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// createTopics creates topics of one partition each (the cluster's, or kfake's).
func (e *benchEnv) createTopics(ctx context.Context, topics ...string) error {
	resp, err := e.adm.CreateTopics(ctx, 1, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("creating topics: %w", err)
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

type staleResult struct {
	endedRequests, ended404 int
	liveFinal               string // seconds after start when every live interaction held its final values
	firstDuring, firstAll   durations
	missing                 int
}

// analyzeStale reads the simulator's journal and state.
func analyzeStale(s *sim.Server, start time.Time, endedIDs map[string]bool, live, calls []*staleCall, drained time.Time) staleResult {
	var res staleResult
	byID := make(map[string][]sim.Entry)
	for _, e := range s.Journal(0) {
		if endedIDs[e.Identifier] {
			res.endedRequests++
			if e.Status == 404 {
				res.ended404++
			}
			continue
		}
		if e.Method == "POST" && e.Status == 200 {
			byID[e.Identifier] = append(byID[e.Identifier], e)
		}
	}
	// finalAt is when the call's last record's values were first written.
	finalAt := func(c *staleCall) (time.Time, bool) {
		want := wantVars(c.last)["_accountBalance"]
		for _, e := range byID[c.id] {
			for _, v := range e.Variables {
				if v.Name == "_accountBalance" && v.Value == want {
					return e.Time, true
				}
			}
		}
		return time.Time{}, false
	}
	var liveAt time.Time
	liveOK := true
	for _, c := range live {
		at, ok := finalAt(c)
		if !ok {
			liveOK = false
			continue
		}
		if at.After(liveAt) {
			liveAt = at
		}
	}
	switch {
	case len(live) == 0:
		res.liveFinal = "-"
	case !liveOK:
		res.liveFinal = "never"
	default:
		res.liveFinal = fmt.Sprintf("%.2f", liveAt.Sub(start).Seconds())
	}
	for _, c := range calls {
		if at, ok := finalAt(c); ok {
			d := at.Sub(c.produced)
			res.firstAll = append(res.firstAll, d)
			if drained.IsZero() || c.produced.Before(drained) {
				res.firstDuring = append(res.firstDuring, d)
			}
		}
	}
	slices.Sort(res.firstAll)
	slices.Sort(res.firstDuring)
	res.missing = missingFinal(s, append(slices.Clone(live), calls...))
	return res
}

// missingFinal counts the calls whose interaction does not hold their last record's values.
func missingFinal(s *sim.Server, calls []*staleCall) int {
	n := 0
	for _, c := range calls {
		ia, ok := s.Interaction(benchTenant, c.id)
		if !ok {
			n++
			continue
		}
		got := make(map[string]string, len(ia.Variables))
		for _, v := range ia.Variables {
			got[v.Name] = v.Value
		}
		for k, v := range wantVars(c.last) {
			if got[k] != v {
				n++
				break
			}
		}
	}
	return n
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// secondsOr is t's seconds after start, or "never".
func secondsOr(t, start time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmt.Sprintf("%.1f", t.Sub(start).Seconds())
}

// callsFor says how long new calls started: a fixed time, or until the backlog was committed.
func callsFor(o staleOptions) string {
	if o.callsFor > 0 {
		return o.callsFor.String()
	}
	return "drain"
}
