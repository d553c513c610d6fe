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
	Name      string
	Topics    []string
	Tenant    string
	Decoder   Decoder
	Transform Transformer
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

	decode *schemas.RetryingDecoder // Decoder, retrying what IsTransientDecodeError accepts
}

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

	Logger *zap.Logger
	// Metrics, when set, are updated as the connector works (see NewMetrics and Collector).
	Metrics *Metrics
	// Now is the connector's one clock, default time.Now: every time it reads comes from it
	// (the pacers' windows, linger, probes, the 404 window, lookup retries, the shutdown
	// drain's deadline, liveness, Retry-After dates, the durations in metrics). Waits use the
	// runtime's timers, so a test that moves Now should run in a testing/synctest bubble,
	// where both move together.
	Now func() time.Time
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

// Connector runs the pipelines. Create it with New and run it once with Run.
type Connector struct {
	// Set by New (client by Run, before the group is joined) and read-only after.
	opts    Options
	log     *zap.Logger
	byTopic map[string]*Pipeline
	topics  []string // consumed: the pipelines' topics, or the replayed dead-letter topic
	replay  bool
	tenants map[string]*tenant
	client  *kgo.Client

	partsMu sync.Mutex                       // guards parts (not the partitions' own state)
	parts   map[string]map[int32]*partWorker // the partitions assigned now, and their workers

	commits *committer // commits the watermarks: on a timer, on revoke, at shutdown

	flow    *flow // pending records and bytes, and when fetching pauses
	metrics *Metrics

	// Health: set as the connector starts, runs and stops.
	connected    atomic.Bool
	assignedOnce atomic.Bool
	groupClient  atomic.Pointer[kgo.Client] // for Health, which runs on other goroutines
	stopping     atomic.Bool
	lastLoop     atomic.Int64 // unix nanos of the poll loop's last turn

	stats counters

	workers *workerEnv // what every partition worker shares
	source  *sourceReader

	fatalOnce sync.Once
	fatalErr  error         // written once under fatalOnce, read after fatal is closed
	fatal     chan struct{} // closed by fail: the connector stops with fatalErr

	// workCtx is the partition workers' context (it ends after the shutdown drain): set by Run
	// before the group is joined, read by assigned, which starts the workers.
	workCtx context.Context

	// partitionCounts reads the partition count of each topic for the budget shares
	// (listPartitionCounts; a test may slow it down). It is called with no lock held.
	partitionCounts func(ctx context.Context, cl *kgo.Client, topics []string) (map[string]int, error)

	dead *deadLetters // the one writer of dead letters
}

// partWorker is an assigned partition and the goroutine that decodes and transforms its
// records in order.
type partWorker struct {
	p      *partition
	cancel context.CancelFunc
	done   chan struct{}
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
		parts:   make(map[string]map[int32]*partWorker),
		fatal:   make(chan struct{}),
		metrics: opts.Metrics,

		partitionCounts: listPartitionCounts,
	}
	if len(opts.Pipelines) == 0 {
		return nil, errors.New("no pipelines")
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
		owned:     c.ownedPartitions,
		flow:      c.flow,
		log:       c.log,
		metrics:   c.metrics,
		committed: &c.stats.committed,
		now:       opts.Now,
	}
	for name, to := range opts.Tenants {
		t, err := newTenant(name, to, c, opts.Logger.Named("sink"), opts.Now, opts.MaxVariables, opts.Linger)
		if err != nil {
			return nil, fmt.Errorf("tenant %q: %w", name, err)
		}
		t.metrics = opts.Metrics
		c.tenants[name] = t
	}
	c.source = &sourceReader{kafkaOpts: opts.KafkaOpts, timeout: opts.SourceReadTimeout, log: c.log}
	c.workers = &workerEnv{
		byTopic: c.byTopic,
		replay:  c.replay,
		tables:  opts.Tables,
		tenants: c.tenants,
		flow:    c.flow,
		dead:    c.dead,
		source:  c.source,
		stats:   &c.stats,
		metrics: c.metrics,
		log:     c.log,
		now:     opts.Now,
	}
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
	c.workCtx = workCtx
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
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
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
	stopAll := func() {
		cancelDispatch()
		cancelSend()
		cancelWork()
		bg.Wait()
		for _, t := range c.tenants {
			t.client.close()
		}
	}

	pollErr := c.pollLoop(ctx)
	if pollErr != nil {
		stopAll()
		// Commit what is done before the failure: it was written, so a restart need not
		// write it again.
		commitCtx, cancelCommit := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_ = c.commits.all(commitCtx, client)
		cancelCommit()
		return pollErr
	}

	// Graceful shutdown: no more fetching; let what was fetched finish.
	c.stopping.Store(true)
	c.log.Info("shutting down: finishing pending work", zap.Int64("pending_records", c.flow.pending()),
		zap.Duration("timeout", c.opts.ShutdownTimeout))
	drained := c.drain(c.opts.ShutdownTimeout)
	stopAll()
	commitCtx, cancelCommit := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	commitErr := c.commits.all(commitCtx, client)
	cancelCommit()
	// Close leaves the group; our revoke callback runs and commits nothing new.
	client.Close()
	closed = true
	if !drained {
		c.log.Warn("shutdown timeout reached with records pending; they are not committed and will be redelivered",
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

// Fetch sizes. kgo buffers a fetch response per broker ahead of the polls, outside the pending
// bound; with its defaults (50 MiB a fetch, 1 MiB of compressed data a partition, several
// times that decompressed) that can exceed what the bound allows for. These keep what is
// fetched ahead to a few polls' worth. (A broker still returns at least one whole producer
// batch a partition, whatever the limits: kfake in the benchmarks does.) The application's
// kafka.fetchMaxBytes (default the same 1 MiB), passed in KafkaOpts, overrides the first.
const (
	fetchMaxBytes          = 1 << 20
	fetchMaxPartitionBytes = 256 << 10
)

// maxPoll bounds one poll, so handing records to workers stays well inside the rebalance
// timeout.
const maxPoll = 10_000

// pollTurn bounds one wait for records, so the poll loop's liveness shows when idle.
const pollTurn = 10 * time.Second

func (c *Connector) pollLoop(ctx context.Context) error {
	// A fatal error ends a poll that is waiting for records.
	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.fatal:
			cancel()
		case <-pollCtx.Done():
		}
	}()
	paused := false
	for {
		c.lastLoop.Store(c.opts.Now().UnixNano())
		select {
		case <-c.fatal:
			return c.fatalErr
		default:
		}
		if paused {
			if !c.waitBelowLowWater(ctx) {
				return nil
			}
			c.client.ResumeFetchTopics(c.flow.resumable(c.topics)...)
			paused = false
			c.flow.paused.Store(false)
		}
		// A bounded poll keeps the loop turning (and /healthz honest) on an idle replica;
		// while a tenant's topics are paused, a short one notices soon that they may resume.
		turn := pollTurn
		if c.pauseTenants() {
			turn = tenantPauseTurn
		}
		turnCtx, endTurn := context.WithTimeout(pollCtx, turn)
		fetches := c.client.PollRecords(turnCtx, c.flow.pollRoom(maxPoll))
		endTurn()
		if fetches.IsClientClosed() {
			return nil
		}
		if pollCtx.Err() != nil {
			c.client.AllowRebalance()
			select {
			case <-c.fatal:
				return c.fatalErr
			default:
				return nil
			}
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			c.log.Warn("fetch error", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
		})
		c.dispatch(fetches)
		c.pauseTenants()
		if c.flow.pauseAll(c.unprocessed()) {
			c.client.PauseFetchTopics(c.topics...)
			paused = true
			c.flow.paused.Store(true)
		}
		c.client.AllowRebalance()
	}
}

// maxUnprocessed bounds the records fetched and not yet decoded and transformed, as a second
// reason to pause fetching: fetching far ahead of the workers buys nothing, and a record only
// becomes cheap once processed (when a later record for the same identifier supersedes its
// values, it costs only recOverhead), which is what lets the pending bound hold a large
// backlog while it coalesces.
const maxUnprocessed = 2 * maxPoll

// unprocessed counts the records queued for the partition workers.
func (c *Connector) unprocessed() int {
	c.partsMu.Lock()
	defer c.partsMu.Unlock()
	n := 0
	for _, ps := range c.parts {
		for _, w := range ps {
			n += w.p.queue.len()
		}
	}
	return n
}

// tenantPauseTurn bounds a poll while some tenant's topics are paused.
const tenantPauseTurn = 100 * time.Millisecond

// pauseTenants pauses and resumes the topics of the tenants whose records hold their share of
// maxPendingBytes (see flow.pauseTenants). It reports whether any tenant's topics are paused.
func (c *Connector) pauseTenants() bool {
	return c.flow.pauseTenants(func(tf *tenantFlow, bytes int64) {
		c.client.PauseFetchTopics(tf.topics...)
		c.log.Info("fetching paused for a tenant's topics: its pending records reached its share of maxPendingBytes",
			zap.String("tenant", tf.name), zap.Strings("topics", tf.topics), zap.Int64("pending_bytes", bytes))
	}, func(tf *tenantFlow) {
		c.client.ResumeFetchTopics(tf.topics...)
	})
}

// waitBelowLowWater waits until pending work falls to three quarters of its bounds, so
// fetching resumes in steps instead of flapping. It returns false if ctx ends first.
func (c *Connector) waitBelowLowWater(ctx context.Context) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		c.lastLoop.Store(c.opts.Now().UnixNano())
		if c.flow.belowLowWater(c.unprocessed()) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-c.fatal:
			return false
		case <-t.C:
		}
	}
}

// dispatch registers each fetched record with its partition's tracker, in offset order, and
// hands it to the partition's worker.
func (c *Connector) dispatch(fetches kgo.Fetches) {
	fetches.EachPartition(func(ftp kgo.FetchTopicPartition) {
		c.partsMu.Lock()
		w := c.parts[ftp.Topic][ftp.Partition]
		c.partsMu.Unlock()
		if w == nil {
			return // revoked between the fetch and now: the next owner reads them
		}
		w.p.setHighWatermark(ftp.HighWatermark)
		if len(ftp.Records) == 0 {
			return
		}
		batch := make([]*rec, 0, len(ftp.Records))
		var bytes int64
		owner := c.flow.owner(ftp.Topic)
		for _, kr := range ftp.Records {
			if kr.Attrs.IsControl() {
				// A transaction marker: nothing to write, but its offset must be committed
				// past, in order, once the records before it are done.
				r := &rec{kr: &kgo.Record{Topic: kr.Topic, Partition: kr.Partition, Offset: kr.Offset, LeaderEpoch: kr.LeaderEpoch, Attrs: kr.Attrs}, part: w.p}
				w.p.add(r)
				w.p.markDone(r)
				continue
			}
			r := &rec{kr: detach(kr), part: w.p, owner: owner}
			r.size.Store(int64(len(kr.Key)+len(kr.Value)) + recOverhead)
			bytes += r.size.Load()
			batch = append(batch, r)
			w.p.add(r)
		}
		if len(batch) == 0 {
			return
		}
		c.flow.admit(owner, len(batch), bytes)
		c.stats.consumed.Add(int64(len(batch)))
		c.metrics.recordConsumed(c.consumedLabel(ftp.Topic), len(batch))
		w.p.queue.push(batch)
	})
}

// detach copies a fetched record out of the fetch: kgo's records alias the decompressed batch
// and sit in one slice per batch, so a single record kept pending (until its identifier is
// written) kept its whole batch alive, tens of thousands of records when producers batch
// large (measured: 20 MB of record slices and 15 MB of decompressed batches live in the
// throughput benchmark even with 10,000 records pending). The copy keeps what the connector
// reads later, the key, value and headers (a dead letter carries the original bytes) and
// where the record came from, in one allocation for the bytes.
func detach(kr *kgo.Record) *kgo.Record {
	n := len(kr.Key) + len(kr.Value)
	for _, h := range kr.Headers {
		n += len(h.Key) + len(h.Value)
	}
	buf := make([]byte, 0, n)
	take := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(buf)
		buf = append(buf, b...)
		return buf[start:len(buf):len(buf)]
	}
	out := &kgo.Record{
		Key:           take(kr.Key),
		Value:         take(kr.Value),
		Timestamp:     kr.Timestamp,
		Topic:         kr.Topic,
		Partition:     kr.Partition,
		Attrs:         kr.Attrs,
		ProducerEpoch: kr.ProducerEpoch,
		ProducerID:    kr.ProducerID,
		LeaderEpoch:   kr.LeaderEpoch,
		Offset:        kr.Offset,
	}
	if len(kr.Headers) > 0 {
		out.Headers = make([]kgo.RecordHeader, len(kr.Headers))
		for i, h := range kr.Headers {
			out.Headers[i] = kgo.RecordHeader{Key: string(take([]byte(h.Key))), Value: take(h.Value)}
		}
	}
	return out
}

// recOverhead is what a pending record costs beyond its key and value: the kgo.Record, our
// rec and the references to it, so maxPendingBytes bounds memory rather than payload. Its
// contributions are charged while they are queued (process charges contributionCost), so a record whose
// contribution was superseded on arrival costs only this.
const recOverhead = 320

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

func (c *Connector) assigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	c.partsMu.Lock()
	for topic, ps := range assigned {
		if c.parts[topic] == nil {
			c.parts[topic] = make(map[int32]*partWorker)
		}
		for _, id := range ps {
			if c.parts[topic][id] != nil {
				continue
			}
			wctx, cancel := context.WithCancel(c.workCtx)
			w := &partWorker{p: newPartition(topic, id), cancel: cancel, done: make(chan struct{})}
			c.parts[topic][id] = w
			wk := newWorker(c.workers, w.p)
			go func() {
				defer close(w.done)
				wk.run(wctx)
			}()
		}
	}
	c.partsMu.Unlock()
	c.assignedOnce.Store(true)
	c.log.Info("partitions assigned", zap.Any("partitions", assigned))
	c.updateShares(ctx, cl)
}

// metadataTimeout bounds the metadata request that reads the partition counts for the budget
// shares.
const metadataTimeout = 5 * time.Second

// listPartitionCounts reads how many partitions each of topics has, with one metadata request
// (up to metadataTimeout). Topics whose metadata came back with an error are left out.
func listPartitionCounts(ctx context.Context, cl *kgo.Client, topics []string) (map[string]int, error) {
	mctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	details, err := kadm.NewClient(cl).ListTopics(mctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	counts := make(map[string]int, len(details))
	for topic, d := range details {
		if d.Err == nil {
			counts[topic] = len(d.Partitions)
		}
	}
	return counts, nil
}

// updateShares sets each tenant's share of its budget to this replica's share of the tenant's
// partitions, so replicas in one group together stay within the tenant's limit. It reads the
// partition counts (a network call of up to metadataTimeout) before it takes partsMu, and is
// called with no lock held: a slow metadata answer must not stall the commit loop, the
// metrics scrape or dispatch, which all take partsMu.
func (c *Connector) updateShares(ctx context.Context, cl *kgo.Client) {
	if ctx.Err() != nil || c.replay {
		return // the client is closing; a replay keeps the whole budget of its config
	}
	counts, err := c.partitionCounts(ctx, cl, c.topics)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("reading partition counts for the budget shares failed; keeping the current shares", zap.Error(err))
		return
	}
	total := make(map[string]int)
	owned := make(map[string]int)
	c.partsMu.Lock()
	for topic, pl := range c.byTopic {
		if n, ok := counts[topic]; ok {
			total[pl.Tenant] += n
		}
		owned[pl.Tenant] += len(c.parts[topic])
	}
	c.partsMu.Unlock()
	for name, t := range c.tenants {
		if total[name] == 0 {
			continue
		}
		share := float64(owned[name]) / float64(total[name])
		t.budget.SetShare(share)
		c.log.Info("budget share", zap.String("tenant", name), zap.Int("partitions", owned[name]),
			zap.Int("of", total[name]), zap.Int("requests_per_minute", t.budget.Limit()))
	}
}

// revoked is called before partitions move to another member. It stops their workers, stops
// sending their records, waits briefly for their requests on the wire, commits their
// watermarks and forgets them. When it returns, nothing of theirs is sent or committed again.
func (c *Connector) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	c.release(ctx, cl, revoked, true)
}

// lost is called when partitions were lost (the session expired): another member may own
// them already, so nothing is committed for them.
func (c *Connector) lost(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	c.release(ctx, cl, lost, false)
}

func (c *Connector) release(ctx context.Context, cl *kgo.Client, which map[string][]int32, commit bool) {
	var ws []*partWorker
	c.partsMu.Lock()
	for topic, ps := range which {
		for _, id := range ps {
			if w := c.parts[topic][id]; w != nil {
				ws = append(ws, w)
				delete(c.parts[topic], id)
			}
		}
	}
	c.partsMu.Unlock()
	if len(ws) == 0 {
		return
	}
	// 1. No new contributions: stop the workers.
	set := make(map[*partition]struct{}, len(ws))
	for _, w := range ws {
		w.p.queue.close()
		w.cancel()
		<-w.done
		w.p.revokedFlag.Store(true) // from here nothing of theirs is sent
		set[w.p] = struct{}{}
	}
	// 2. Drop their pending contributions; let requests on the wire finish (briefly).
	grace := c.opts.RevokeGrace
	if !commit {
		grace = 0
	}
	for _, t := range c.tenants {
		t.revoke(set, grace)
	}
	// 3. Commit what is done, under the commit lock, marking them revoked in the same step so
	// no commit decided earlier can land after this returns.
	ps := make([]*partition, len(ws))
	for i, w := range ws {
		ps[i] = w.p
	}
	if err := c.commits.release(ctx, cl, ps, commit); err != nil {
		// The partitions' next owner reads again from their last commit: redelivery, which is
		// allowed, but an operator should see why. commits_total{result="error"} counts it.
		c.log.Warn("committing the revoked partitions failed; their records after the last commit will be redelivered to the next owner",
			zap.Any("partitions", which), zap.Error(err))
	}
	c.log.Info("partitions released", zap.Bool("committed", commit), zap.Any("partitions", which))
	c.updateShares(ctx, cl)
}

// consumedLabel is the pipeline label of records consumed from topic.
func (c *Connector) consumedLabel(topic string) string {
	if c.replay {
		return "replay"
	}
	return c.byTopic[topic].Name
}

// uncharge implements recordSink.
func (c *Connector) uncharge(r *rec, n int64) { c.flow.charge(r, -n) }

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

// ownedPartitions returns the partitions assigned to this member now.
func (c *Connector) ownedPartitions() map[string]map[int32]*partition {
	c.partsMu.Lock()
	defer c.partsMu.Unlock()
	out := make(map[string]map[int32]*partition, len(c.parts))
	for topic, ps := range c.parts {
		m := make(map[int32]*partition, len(ps))
		for id, w := range ps {
			m[id] = w.p
		}
		out[topic] = m
	}
	return out
}

// Collector returns a Prometheus collector of the connector's gauges: pending records and
// bytes, paused fetching, each tenant's budget in use, limit and blocked state, and consumer
// lag per assigned partition.
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
	last := c.lastLoop.Load()
	alive = last == 0 || c.opts.Now().Sub(time.Unix(0, last)) < time.Minute
	if t := c.opts.Tables; t != nil {
		if loading := t.Loading(); loading != "" {
			why = append(why, loading)
		}
	}
	if !c.connected.Load() {
		why = append(why, "not connected to Kafka yet")
	}
	if !c.assignedOnce.Load() && !c.joined() {
		why = append(why, "not in the consumer group yet (no partitions assigned, no generation)")
	}
	if c.stopping.Load() {
		why = append(why, "shutting down")
	}
	if ok, tenants := c.Ready(); !ok {
		why = append(why, tenants...)
	}
	if !alive {
		why = append(why, "the poll loop has not turned for a minute")
	}
	return alive, len(why) == 0, why
}
