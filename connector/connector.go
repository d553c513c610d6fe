package connector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// Decoder turns a record's value bytes into the value pipelines see (schemas.Decoder).
type Decoder interface {
	Decode(ctx context.Context, b []byte) (any, error)
}

// Transformer applies a compiled pipeline to one record (*transform.Pipeline). It must be safe
// for concurrent use: partition workers call it at once. If it also has NewRunner, as
// *transform.Pipeline does, each partition worker applies records with a runner of its own.
type Transformer interface {
	Apply(rec *transform.Record) (transform.Result, error)
}

// Pipeline is one configured pipeline, compiled.
type Pipeline struct {
	Name    string
	Topics  []string
	Tenant  string
	Decoder Decoder
	// KeyDecoder reads record keys (schemas.KeyDecoder: framed keys through the registry);
	// nil reads every key as its bytes in a string.
	KeyDecoder Decoder
	Transform  Transformer
	// OnLookupMiss is what a record whose lookup found no row does, as the compiled pipeline
	// says ((*transform.Pipeline).OnLookupMiss): transform.LookupMissSkip (the default; the
	// record is skipped), transform.LookupMissRetry (evaluated again until the row arrives or
	// LookupRetryWindow, default 30s, passes; its partition waits behind it) or
	// transform.LookupMissDeadLetter.
	OnLookupMiss      string
	LookupRetryWindow time.Duration
	// Private says a variable of the pipeline may be private (privacy: true or an
	// expression). Its dead letters carry no value, only the source coordinates and
	// augment.value.omitted: privacy, unless Options.DeadLetterPrivateValues is set; a replay
	// re-reads the record from its source.
	Private bool
	// MaxRecordAge, when positive, is how old a record's data may be (its age: now minus the
	// record's time, see transform.Result.DataTime, else its Kafka timestamp) when it is handed
	// to its tenant and again when its request is built: an older one is not sent, and is
	// handled as OnStale says. A coalesced request carries only what is still fresh.
	MaxRecordAge time.Duration
	// OnStale is OnStaleSkip (the default: skipped, reason stale) or OnStaleDeadLetter (class
	// stale, which replay leaves out unless asked).
	OnStale string

	decode    *schemas.RetryingDecoder // Decoder, retrying what IsTransientDecodeError accepts
	decodeKey *schemas.RetryingDecoder // KeyDecoder likewise; nil when KeyDecoder is
}

// What Pipeline.OnStale and TenantOptions.OnGone may be.
const (
	OnStaleSkip       = "skip"
	OnStaleDeadLetter = "deadLetter"
	OnGoneDeadLetter  = "deadLetter"
	OnGoneSkip        = "skip"
)

// Skip reasons of records that were not sent because their call is over (README, "Dead
// letters"): stale (older than MaxRecordAge), gone (their identifier answered 404 before, under
// OnGoneSkip). transform.ReasonInactive is the third: requireActive found no active call.
const (
	ReasonStale = "stale"
	ReasonGone  = "gone"
)

// Options configure a Connector. Zero values take the documented defaults.
type Options struct {
	// KafkaOpts are the client options for brokers, TLS, SASL and fetching; the connector adds
	// the group, topics, callbacks and commit handling.
	KafkaOpts []kgo.Opt
	Group     string     // consumer group id; default "augment-connector"
	Start     kgo.Offset // where a new group starts; default the earliest offset

	Pipelines []Pipeline
	Tenants   map[string]TenantOptions

	// DeadLetterTopic receives records that can never be written. Empty: such a record stops
	// the connector with an error instead of being dropped.
	DeadLetterTopic string
	// DeadLetterOmitValue leaves the original value out of dead letters (key, headers and the
	// reason headers are kept), for teams that may not copy record bodies to another topic.
	DeadLetterOmitValue bool
	// DeadLetterPrivateValues keeps the value in the dead letters of Private pipelines too
	// (deadLetter.includePrivateValues); it has no effect with DeadLetterOmitValue.
	DeadLetterPrivateValues bool
	// SourceReadTimeout bounds a replay's re-read of a record whose dead letter carries no
	// value; default 1m.
	SourceReadTimeout time.Duration
	// ReplayFrom, when set, makes the connector consume this dead-letter topic instead of the
	// pipelines' topics: each record goes through the pipeline of its augment.source.topic
	// header, as if read from there (after the config or the data was fixed). Progress is
	// committed under Group like any run; records failing again go to DeadLetterTopic, which
	// must then be another topic.
	ReplayFrom string
	// ReplayFilter, when replaying, says which dead letters to re-run (true) from their
	// headers and timestamp; the others are skipped (reason replay filter) and committed, so a
	// later replay of them needs another group. nil re-runs every one.
	ReplayFilter func(headers []kgo.RecordHeader, ts time.Time) bool
	// Tables, when set, are the lookup tables the pipelines join against: they are loaded
	// before the group is joined (not ready meanwhile) and followed while the connector runs.
	Tables Tables
	// IsTransientDecodeError tells a decode error that a retry can fix (the schema registry is
	// unreachable) from one it cannot; nil treats every decode error as permanent.
	IsTransientDecodeError func(error) bool

	ShutdownTimeout   time.Duration // default 30s
	CommitInterval    time.Duration // default 1s
	MaxPendingRecords int           // default 1,000,000
	MaxPendingBytes   int64         // default 192 MiB (counted as recOverhead and contributionCost say)
	MaxVariables      int           // per request, default and at most 50
	Linger            time.Duration // wait this long for more of a burst before a first send
	RevokeGrace       time.Duration // how long a revoke waits for requests on the wire; default 5s
	PingTimeout       time.Duration // how long the start-up check of Kafka may take; default 30s

	// Budget says how the tenants' budgets are kept: by each replica's own pacer
	// (Coordination BudgetLocal, the default of the zero value) or by the budget ledger shared
	// by the whole cluster (BudgetKafka).
	Budget BudgetOptions

	Logger *zap.Logger
	// Metrics, when set, are updated as the connector works (see NewMetrics and Collector).
	Metrics *Metrics
	// TracerProvider, when set, traces each record's journey with OpenTelemetry spans
	// (tracing.go, README "Tracing"). Nil (or a no-op provider) turns tracing off: nothing of
	// it runs then.
	TracerProvider trace.TracerProvider
	// Now is the connector's one clock, default time.Now: every time it reads comes from it
	// (the pacers' windows, linger, probes, the 404 window, lookup retries, the shutdown
	// drain's deadline, liveness, Retry-After dates, the durations in metrics). Waits use the
	// runtime's timers, so a test that moves Now should run in a testing/synctest bubble,
	// where both move together.
	Now func() time.Time

	// ledgerHooks replace the real ledger member and topic check (tests only).
	ledgerHooks *ledgerHooks
}

// What BudgetOptions.Coordination may be.
const (
	// BudgetLocal: each replica paces its own share of each tenant's budget (internal/pacer).
	// Safe only for one replica that accepts self-inflicted 429s after a restart.
	BudgetLocal = "local"
	// BudgetKafka: one budget per tenant for every replica, replay and deployment writing to
	// the same account, kept in the budget ledger topic (internal/ledger, docs/LEDGER.md).
	BudgetKafka = "kafka"
)

// BudgetOptions configure the tenants' budgets (the config's budget section).
type BudgetOptions struct {
	// Coordination is BudgetLocal ("" means it) or BudgetKafka.
	Coordination string
	// The rest applies to BudgetKafka only.
	Topic             string        // the ledger topic; default ledger.DefaultTopic
	MemberID          string        // this process in the ledger; default hostname + a random suffix
	AllowUnsafeTopic  bool          // accept a ledger topic that may lose acknowledged records (one-node test clusters)
	ClaimValidity     time.Duration // how long a grant may wait to be used; default 2s
	MaxRequestTimeout time.Duration // at least every tenant's RequestTimeout; default 30s
	UnavailableAfter  time.Duration // how long the ledger may be unreachable before not ready; default 10s
}

// Stats are running totals, for the demo's summary line, tests and metrics.
type Stats struct {
	Consumed     int64
	Filtered     int64
	Skipped      int64
	DeadLettered int64
	Done         int64 // records done, whatever the way
	Committed    int64 // commits that succeeded
}

// ErrNoDeadLetterTopic is returned by Run when a record can never be written and no
// dead-letter topic is configured: the connector stops rather than drop it.
var ErrNoDeadLetterTopic = errors.New("a record cannot be written and no dead-letter topic is configured")

// Connector runs the pipelines: it wires the roles together (the poller, the partition
// workers, the tenants, the committer, flow control, the dead letters) and runs them. Create it
// with New and run it once with Run.
type Connector struct {
	// Set by New (client by Run, before the group is joined) and read-only after.
	opts    Options
	log     *zap.Logger
	byTopic map[string]*Pipeline
	topics  []string // consumed: the pipelines' topics, or the replayed dead-letter topic
	replay  bool
	tenants map[string]*tenant
	client  *kgo.Client
	// ledger is the budget ledger's member, set by Run (BudgetKafka only; nil otherwise).
	ledger *ledgerLink

	poll    *poller      // the poll loop and the rebalance callbacks; owns the partition map
	commits *committer   // commits the watermarks: on a timer, on revoke, at shutdown
	flow    *flow        // pending records and bytes, and when fetching pauses
	dead    *deadLetters // the one writer of dead letters
	source  *sourceReader
	metrics *Metrics

	// groupLag reads the whole group's lag while this member holds the role (grouplag.go).
	groupLag *groupLag

	// Health: set as the connector starts, runs and stops.
	connected   atomic.Bool
	groupClient atomic.Pointer[kgo.Client] // for Health, which runs on other goroutines
	stopping    atomic.Bool

	stats counters

	fatalOnce sync.Once
	fatalErr  error         // written once under fatalOnce, read after fatal is closed
	fatal     chan struct{} // closed by fail: the connector stops with fatalErr
}

// New checks the options and builds the tenants' writers. It starts nothing.
func New(opts Options) (*Connector, error) {
	if opts.Group == "" {
		opts.Group = "augment-connector"
	}
	if opts.Start == (kgo.Offset{}) {
		opts.Start = kgo.NewOffset().AtStart()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = time.Second
	}
	if opts.MaxPendingRecords <= 0 {
		opts.MaxPendingRecords = 1_000_000
	}
	if opts.MaxPendingBytes <= 0 {
		opts.MaxPendingBytes = 192 << 20
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = 30 * time.Second
	}
	if opts.RevokeGrace <= 0 {
		opts.RevokeGrace = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IsTransientDecodeError == nil {
		opts.IsTransientDecodeError = func(error) bool { return false }
	}
	c := &Connector{
		opts:    opts,
		log:     opts.Logger,
		byTopic: make(map[string]*Pipeline),
		tenants: make(map[string]*tenant),
		fatal:   make(chan struct{}),
		metrics: opts.Metrics,
	}
	if len(opts.Pipelines) == 0 {
		return nil, errors.New("no pipelines")
	}
	if err := c.budgetDefaults(); err != nil {
		return nil, err
	}
	for i := range opts.Pipelines {
		pl := &opts.Pipelines[i]
		if _, ok := opts.Tenants[pl.Tenant]; !ok {
			return nil, fmt.Errorf("pipeline %q: unknown tenant %q", pl.Name, pl.Tenant)
		}
		if pl.Decoder == nil || pl.Transform == nil {
			return nil, fmt.Errorf("pipeline %q: decoder and transform are required", pl.Name)
		}
		if err := checkLookupMiss(pl); err != nil {
			return nil, err
		}
		pl.decode = schemas.Retrying(pl.Decoder, opts.IsTransientDecodeError)
		if pl.KeyDecoder != nil {
			pl.decodeKey = schemas.Retrying(pl.KeyDecoder, opts.IsTransientDecodeError)
		}
		for _, t := range pl.Topics {
			if other, dup := c.byTopic[t]; dup {
				return nil, fmt.Errorf("topic %q is read by pipelines %q and %q", t, other.Name, pl.Name)
			}
			c.byTopic[t] = pl
			c.topics = append(c.topics, t)
		}
	}
	if opts.ReplayFrom != "" {
		if opts.ReplayFrom == opts.DeadLetterTopic {
			return nil, fmt.Errorf("replaying %q: records failing again need another dead-letter topic", opts.ReplayFrom)
		}
		c.replay = true
		c.topics = []string{opts.ReplayFrom}
	}
	c.dead = &deadLetters{
		topic:         opts.DeadLetterTopic,
		omitValue:     opts.DeadLetterOmitValue,
		privateValues: opts.DeadLetterPrivateValues,
		replay:        c.replay,
		byTopic:       c.byTopic,
		fail:          c.fail,
		log:           c.log,
		metrics:       c.metrics,
		count:         &c.stats.deadLettered,
	}
	var topicTenant map[string]string
	if !c.replay {
		topicTenant = make(map[string]string, len(c.byTopic))
		for topic, pl := range c.byTopic {
			topicTenant[topic] = pl.Tenant
		}
	}
	c.flow = newFlow(opts.MaxPendingRecords, opts.MaxPendingBytes, topicTenant)
	c.commits = &committer{
		interval:  opts.CommitInterval,
		flow:      c.flow,
		log:       c.log,
		metrics:   c.metrics,
		committed: &c.stats.committed,
		now:       opts.Now,
	}
	tracer := newTracer(opts.TracerProvider)
	for name, to := range opts.Tenants {
		t, err := newTenant(name, to, c, opts.Logger.Named("sink"), opts.Now, opts.MaxVariables, opts.Linger)
		if err != nil {
			return nil, fmt.Errorf("tenant %q: %w", name, err)
		}
		t.metrics = opts.Metrics
		t.tracer = tracer
		if c.ledger != nil {
			t.budget = newLedgerBudget(c.ledger, AccountKey(t.opts.BaseURL, t.opts.TenantID), name, t.opts.RequestsPerMinute,
				t.log.Named("budget"), opts.Now)
		}
		c.tenants[name] = t
	}
	opts.Metrics.initLabels(opts.Pipelines, opts.Tenants)
	c.source = &sourceReader{kafkaOpts: opts.KafkaOpts, timeout: opts.SourceReadTimeout, log: c.log}
	c.poll = &poller{
		topics:      c.topics,
		byTopic:     c.byTopic,
		replay:      c.replay,
		tenants:     c.tenants,
		flow:        c.flow,
		commits:     c.commits,
		stats:       &c.stats,
		metrics:     c.metrics,
		log:         c.log,
		now:         opts.Now,
		revokeGrace: opts.RevokeGrace,
		shared:      c.ledger != nil,
		failed:      c.fatal,
		failure:     func() error { return c.fatalErr },
		workers: &workerEnv{
			byTopic: c.byTopic,
			replay:  c.replay,
			filter:  opts.ReplayFilter,
			tables:  opts.Tables,
			tenants: c.tenants,
			flow:    c.flow,
			dead:    c.dead,
			source:  c.source,
			stats:   &c.stats,
			metrics: c.metrics,
			log:     c.log,
			now:     opts.Now,
			tracer:  tracer,
			group:   opts.Group,
		},
		partitionCounts: listPartitionCounts,
		parts:           make(map[string]map[int32]*partWorker),
	}
	c.commits.owned = c.poll.ownedPartitions
	c.groupLag = newGroupLag(opts.Group, c.topics, opts.KafkaOpts, opts.Now, c.log.Named("grouplag"), c.poll.ownedPartitions)
	return c, nil
}

// Stats returns the running totals.
func (c *Connector) Stats() Stats {
	return Stats{
		Consumed:     c.stats.consumed.Load(),
		Filtered:     c.stats.filtered.Load(),
		Skipped:      c.stats.skipped.Load(),
		DeadLettered: c.stats.deadLettered.Load(),
		Done:         c.stats.done.Load(),
		Committed:    c.stats.committed.Load(),
	}
}

// Ready reports whether the connector should receive traffic: not blocked by any tenant.
// It returns the reasons when not.
func (c *Connector) Ready() (bool, []string) {
	var why []string
	for name, t := range c.tenants {
		if blocked, reason := t.blockedReason(); blocked {
			why = append(why, "tenant "+name+" "+reason)
		}
	}
	return len(why) == 0, why
}

func (c *Connector) fail(err error) {
	c.fatalOnce.Do(func() {
		c.fatalErr = err
		close(c.fatal)
	})
}

// Run consumes and writes until ctx is cancelled, then shuts down gracefully: it stops
// fetching, lets pending work finish for up to ShutdownTimeout, commits what is done and
// leaves the group. It returns nil after a graceful shutdown, or the error that stopped it.
func (c *Connector) Run(ctx context.Context) error {
	// Workers and sends outlive ctx by the shutdown drain; they end when these are cancelled.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	c.poll.workCtx = workCtx
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()

	// Join the group only with the lookup tables loaded: a record joined against a
	// half-loaded table would miss rows that exist.
	stopTables, loaded := c.startTables(ctx)
	defer stopTables()
	if !loaded {
		select {
		case <-c.fatal:
			return c.fatalErr
		default:
			return nil
		}
	}

	// Fetch sizes first, so KafkaOpts can override them.
	kopts := append([]kgo.Opt{kgo.FetchMaxBytes(fetchMaxBytes), kgo.FetchMaxPartitionBytes(fetchMaxPartitionBytes)}, c.opts.KafkaOpts...)
	kopts = append(kopts,
		kgo.ConsumerGroup(c.opts.Group),
		kgo.ConsumeTopics(c.topics...),
		kgo.ConsumeResetOffset(c.opts.Start),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		// Transaction markers take offsets; dropped by kgo, the last record processed would
		// stay one short of the end after every transaction, so the committed offset and the
		// lag would never reach it. Kept, dispatch marks them done at once.
		kgo.KeepControlRecords(),
		kgo.OnPartitionsAssigned(c.poll.assigned),
		kgo.OnPartitionsRevoked(c.poll.revoked),
		kgo.OnPartitionsLost(c.poll.lost),
		kgo.WithLogger(newKgoLogger(c.log.Named("kgo"))),
	)
	client, err := kgo.NewClient(kopts...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	c.client = client
	c.dead.client = client
	c.source.client = client
	c.groupClient.Store(client)
	closed := false
	defer func() {
		if !closed {
			client.Close()
		}
	}()
	pingCtx, cancelPing := context.WithTimeout(ctx, c.opts.PingTimeout)
	err = client.Ping(pingCtx)
	cancelPing()
	if err != nil {
		return fmt.Errorf("connecting to kafka: %w", err)
	}
	c.connected.Store(true)
	if c.opts.DeadLetterTopic != "" {
		if err := c.ensureTopic(ctx, c.opts.DeadLetterTopic); err != nil {
			return err
		}
	}
	// The budget ledger's member runs for as long as the tenants may send, and stops after
	// them (returning its unused grants); stopLedger is idempotent.
	stopLedger := func() {}
	if c.ledger != nil {
		if stopLedger, err = c.startLedger(ctx); err != nil {
			return err
		}
		defer stopLedger()
	}

	dispatchCtx, cancelDispatch := context.WithCancel(workCtx)
	var bg sync.WaitGroup
	for _, t := range c.tenants {
		bg.Add(1)
		go func() {
			defer bg.Done()
			t.run(dispatchCtx, sendCtx)
		}()
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		c.commits.run(dispatchCtx, client)
	}()
	stopGroupLag := c.startGroupLag(ctx, client)
	defer stopGroupLag()
	stopAll := func() {
		stopGroupLag()
		cancelDispatch()
		cancelSend()
		cancelWork()
		bg.Wait()
		for _, t := range c.tenants {
			t.client.close()
		}
	}

	pollErr := c.poll.run(ctx, client)
	if pollErr != nil {
		stopAll()
		// Commit what is done before the failure: it was written, so a restart need not
		// write it again.
		commitCtx, cancelCommit := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_ = c.commits.all(commitCtx, client)
		cancelCommit()
		return pollErr
	}

	// Graceful shutdown: no more fetching.
	c.stopping.Store(true)
	var drained bool
	if c.ledger != nil {
		// A shared budget: finish what is on the wire and leave. The backlog is the next
		// owners' to send, from the same budget: draining it here would only hold the
		// partitions for the whole timeout.
		c.log.Info("shutting down: finishing the attempts on the wire; the budget is shared, so the pending records are left to the partitions' next owners",
			zap.Int64("pending_records", c.flow.pending()), zap.Duration("timeout", c.opts.ShutdownTimeout))
		drained = c.leaveShared(cancelDispatch, &bg)
	} else {
		// Let what was fetched finish.
		c.log.Info("shutting down: finishing pending work", zap.Int64("pending_records", c.flow.pending()),
			zap.Duration("timeout", c.opts.ShutdownTimeout))
		drained = c.drain(c.opts.ShutdownTimeout)
	}
	stopAll()
	commitCtx, cancelCommit := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	commitErr := c.commits.all(commitCtx, client)
	cancelCommit()
	// Close leaves the group; our revoke callback runs and commits nothing new.
	client.Close()
	closed = true
	// The member stops after the tenants: every claim is finished, the unused ones returned.
	stopLedger()
	switch {
	case !drained && c.ledger != nil:
		c.log.Warn("shutdown timeout reached with attempts on the wire; they were cancelled, and their records are not committed and will be redelivered",
			zap.Int64("pending_records", c.flow.pending()))
	case !drained:
		c.log.Warn("shutdown timeout reached with records pending; they are not committed and will be redelivered",
			zap.Int64("pending_records", c.flow.pending()))
	case c.ledger != nil && c.flow.pending() > 0:
		c.log.Info("left the pending records to the partitions' next owners: not committed, they will be redelivered",
			zap.Int64("pending_records", c.flow.pending()))
	}
	select {
	case <-c.fatal:
		return c.fatalErr
	default:
	}
	if commitErr != nil {
		return fmt.Errorf("committing at shutdown: %w", commitErr)
	}
	return nil
}

// leaveShared is the graceful shutdown of a member of a shared budget: the tenants stop
// reserving (no dispatch, no retry), and the attempts on the wire finish, for up to
// ShutdownTimeout. It reports whether they all finished in time.
func (c *Connector) leaveShared(cancelDispatch context.CancelFunc, bg *sync.WaitGroup) bool {
	for _, t := range c.tenants {
		t.leave()
	}
	cancelDispatch()
	done := make(chan struct{})
	go func() { // ends with bg, which stopAll waits for in any case
		bg.Wait()
		close(done)
	}()
	tm := time.NewTimer(c.opts.ShutdownTimeout)
	defer tm.Stop()
	select {
	case <-done:
		return true
	case <-tm.C:
		return false
	case <-c.fatal:
		return false
	}
}

// drain waits until no record is pending, or the timeout passes.
func (c *Connector) drain(timeout time.Duration) bool {
	deadline := c.opts.Now().Add(timeout)
	for c.flow.pending() > 0 {
		if c.opts.Now().After(deadline) {
			return false
		}
		select {
		case <-c.fatal:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}

// uncharge implements recordSink.
func (c *Connector) uncharge(r *rec, n int64) { c.flow.charge(r, -n) }

// contributionSkipped implements recordSink. It counts per contribution: a record with
// several identifiers counts once for each one left out.
func (c *Connector) contributionSkipped(r *rec, pipeline, reason string) {
	c.stats.skipped.Add(1)
	c.metrics.recordSkipped(pipeline, reason)
	r.trace.ended(traceSkipped, reason)
	c.contributionDone(r)
}

// contributionDone implements recordSink.
func (c *Connector) contributionDone(r *rec) {
	if r.outstanding.Add(-1) == 0 {
		recordDone(r, c.flow, &c.stats)
	}
}

func (c *Connector) ensureTopic(ctx context.Context, topic string) error {
	adm := kadm.NewClient(c.client)
	resp, err := adm.CreateTopics(ctx, -1, -1, nil, topic)
	if err != nil {
		return fmt.Errorf("creating dead-letter topic %q: %w", topic, err)
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating dead-letter topic %q: %w", topic, r.Err)
		}
	}
	return nil
}

// Collector returns a Prometheus collector of the connector's gauges: pending records and
// bytes, paused fetching, each tenant's budget in use, limit and blocked state and the age of
// its oldest pending record, consumer lag in records and seconds per assigned partition, and
// the whole group's lag when this member is the one that reports it (grouplag.go).
func (c *Connector) Collector() prometheus.Collector { return newGaugeCollector(c) }

// joined reports whether the member completed a join of its group. A replica beyond the
// partition count is in the group with nothing assigned: it is ready, on standby.
func (c *Connector) joined() bool {
	cl := c.groupClient.Load()
	if cl == nil {
		return false
	}
	_, gen := cl.GroupMetadata()
	return gen > 0
}

// Health says whether the connector is alive (its poll loop turned within the last minute, or
// it has not started yet) and ready (connected to Kafka, partitions assigned or the group
// joined, no tenant refusing its token, not shutting down), with the reasons when it is not
// ready.
func (c *Connector) Health() (alive, ready bool, why []string) {
	last := c.poll.lastLoop.Load()
	alive = last == 0 || c.opts.Now().Sub(time.Unix(0, last)) < time.Minute
	if t := c.opts.Tables; t != nil {
		if loading := t.Loading(); loading != "" {
			why = append(why, loading)
		}
	}
	if !c.connected.Load() {
		why = append(why, "not connected to Kafka yet")
	}
	if !c.poll.assignedOnce.Load() && !c.joined() {
		why = append(why, "not in the consumer group yet (no partitions assigned, no generation)")
	}
	if c.stopping.Load() {
		why = append(why, "shutting down")
	}
	if ok, tenants := c.Ready(); !ok {
		why = append(why, tenants...)
	}
	if c.ledger != nil {
		if m := c.ledger.member(); m == nil {
			why = append(why, "the budget ledger is not running yet")
		} else if err := m.Ready(); err != nil {
			why = append(why, "budget ledger: "+err.Error()+" (writes wait; nothing is committed before it is written)")
		}
	}
	if !alive {
		why = append(why, "the poll loop has not turned for a minute")
	}
	return alive, len(why) == 0, why
}
