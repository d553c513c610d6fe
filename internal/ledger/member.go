package ledger

// This file is the ledger's Kafka member: the real counterpart of the simulated member loop
// in sim_test.go (step, apply, publishDemand, finishAttempts, join). docs/LEDGER.md has the
// loop, its timings and why it is safe.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// MemberConfig is how one process takes part in the ledger.
type MemberConfig struct {
	// Topic is the ledger topic (one partition, LogAppendTime), shared by every deployment
	// writing to the same accounts. Default DefaultTopic.
	Topic string
	// ID identifies this process in the ledger: pod name plus a per-process random id, so a
	// restarted pod is a new member.
	ID string
	// ClaimValidity bounds how long after publishing the demand that earned a grant the
	// member may still start an attempt with it (default 2 s).
	ClaimValidity time.Duration
	// Epsilon covers steps of the broker's clock (default 250 ms).
	Epsilon time.Duration
	// MaxRequestTimeout is the largest request timeout any deployment writing to the ledger
	// uses: it bounds how far back a (re)starting member reads (RebuildFrom). Default 30 s.
	MaxRequestTimeout time.Duration
	// Unavailable is how long the ledger may be unreachable (no record read back) before
	// Ready reports it (default 10 s). Writes wait meanwhile; nothing is lost.
	Unavailable time.Duration
	// Sequencer is the sequencer's policy (DefaultSequencerConfig when zero).
	Sequencer SequencerConfig
	// Now is the clock (time.Now when nil). Durations are measured on its monotonic part.
	Now func() time.Time
	// AllowProducerTimestamps accepts ledger records stamped by their producers (CreateTime)
	// instead of the broker (LogAppendTime), for a test cluster that ignores the topic's
	// message.timestamp.type (kfake). The ledger's time is then the members' wall clocks,
	// which keeps the hold rule only when every member shares one clock (one machine): the
	// connector sets it with budget.ledger.allowUnsafeTopic, never otherwise.
	AllowProducerTimestamps bool
}

// DefaultTopic is the ledger topic's default name: not tied to a consumer group, since every
// deployment writing to the same 8x8 accounts must share it.
const DefaultTopic = "augment-connector.budget"

// Account is one tenant's budget as the member knows it. Key is the account's identity in
// the ledger (the 8x8 tenant id and API host, never a config name, so two deployments that
// name it differently share it); Limit and RequestTimeout travel with every demand, and the
// sequencer grants under the smallest limit and the largest timeout demanded.
type Account struct {
	Key            string
	Limit          int
	RequestTimeout time.Duration
}

// The member loop's timings. docs/LEDGER.md explains each number.
const (
	// tick is how often the member loop publishes demand, sequences and checks the sequencer.
	tick = 20 * time.Millisecond
	// demandRefresh is how often an unchanged, unmet demand is published again: within the
	// sequencer's DemandTTL (1 s) several times over, so one lost record loses nothing.
	demandRefresh = 150 * time.Millisecond
	// decideEvery is how often the sequencer decides every tenant with demand.
	decideEvery = 25 * time.Millisecond
	// heartbeatEvery is the sequencer's longest silence: it appends a heartbeat then.
	heartbeatEvery = 500 * time.Millisecond
	// takeoverSilence is how long the sequencer may write nothing before a member takes
	// over (plus the member's stagger, up to takeoverStagger, so members do not duel).
	takeoverSilence = 2 * time.Second
	takeoverStagger = time.Second
	// takeoverRetry is the least time between two takeovers a member appends.
	takeoverRetry = 3 * time.Second
	// reportLinger is how long Finish's reports wait to be batched into one record per use.
	reportLinger = 5 * time.Millisecond
	// maxWant caps a member's standing demand per account: slots are handed to callers
	// already waiting, so a member never holds idle reservations; the cap bounds what one
	// burst of callers can ask at once.
	maxWant = 32
	// drainWait is how long a stopping member waits for claims already started to finish,
	// so their reports end their holds early; shutdownBudget bounds the whole shutdown.
	drainWait      = 500 * time.Millisecond
	shutdownBudget = time.Second
	// clockSlack is added to ε when comparing the member's wall clock with the log time of
	// its own records: millisecond truncation on both sides.
	clockSlack = 2 * time.Millisecond
	// demandMemory is how long the member remembers when it sent a demand it has not read
	// back (a failed write is never read back).
	demandMemory = 10 * time.Second
)

// Errors the member returns or reports.
var (
	// ErrStopped is returned by Acquire once Run is returning or has returned, and by Ready.
	ErrStopped = errors.New("ledger member stopped")
	// ErrUnavailable is wrapped by Ready when no record has been read back from the ledger
	// for longer than MemberConfig.Unavailable, or while the member is still rebuilding.
	ErrUnavailable = errors.New("ledger unavailable")
	// ErrClockSkew is wrapped by Ready while the member's wall clock and the log append times
	// of its own records disagree by more than ε: it publishes no demand and uses no grant.
	ErrClockSkew = errors.New("clock disagrees with the ledger's log times")
	// ErrNotLogAppendTime is returned by Run when a ledger record carries a producer's
	// timestamp: the topic must use message.timestamp.type=LogAppendTime.
	ErrNotLogAppendTime = errors.New("ledger topic does not use LogAppendTime")
)

// Member is one process's part in the ledger: it publishes standing demand, reads grants
// back, reports use, and sequences when it holds the current epoch. Create it with
// NewMember, start Run, and take claims with Acquire.
//
// Everything the member knows is guarded by mu and changed only by Run's goroutines and the
// callers' methods, never while doing I/O: records to append are collected under the lock
// and produced after it is released.
type Member struct {
	cfg     MemberConfig
	cl      *kgo.Client
	log     *zap.Logger
	stagger time.Duration
	flush   chan struct{} // capacity 1: Finish and Throttled wake the report flusher
	ran     atomic.Bool

	mu          sync.Mutex
	phase       phase
	st          *State
	accounts    map[string]*account
	startedAt   time.Time
	rebuilt     bool  // the member has read its own hello back in the rebuild
	helloOffset int64 // the rebuild is complete once this offset is applied
	helloSent   time.Time
	lastRead    time.Time // when the latest record was read
	ltBase      int64     // ledger time: the largest log time read...
	ltAt        time.Time // ...when it was read (ledger time advances by the monotonic clock since)
	ltKnown     bool
	lag         time.Duration // produce → read back of the latest own demand or hello
	lastErr     error         // the latest produce or fetch error, for Ready
	lastErrAt   time.Time
	clockErr    error
	clockBad    atomic.Bool // clockErr != nil, for Claim.Start without the lock
	demSeq      uint64
	seq         *Sequencer
	epoch       uint64
	lastSeqSeen time.Time
	lastDecide  time.Time
	lastWrite   time.Time
	lastTry     time.Time
	throttles   []throttleNote
	reports     map[reportKey][]Slot
	outbox      []Record // throttled records waiting for the flusher
}

type phase int

const (
	phaseNew      phase = iota // Run not called yet: Acquire waits
	phaseRunning               // Run is running
	phaseDraining              // Run is returning: Acquire fails, Finish still reports
	phaseStopped               // Run returned: Finish is a no-op
)

// account is one registered tenant's demand and claims.
type account struct {
	Account
	waiters      []*waiter
	mine         map[Slot]*Claim
	demandAt     map[uint64]time.Time // own demands sent and not yet read back, by Seq
	ownDemand    time.Time            // when the latest own demand read back was sent
	hasOwnDemand bool
	lastDemand   time.Time
	lastWant     int
	lastFresh    int
}

type waiter struct {
	ch    chan *Claim // capacity 1: one claim, or nil when the member stops
	fresh atomic.Bool
}

type reportKey struct {
	tenant string
	use    Use
}

// throttleNote is a tripwire read from the ledger, kept for a sequencer taking over later.
type throttleNote struct {
	tenant     string
	retryAfter time.Duration
	at         int64
}

// maxThrottleNotes bounds the tripwires remembered for a later sequencer.
const maxThrottleNotes = 64

// NewMember returns a member writing and reading cfg.Topic through cl (a client of its own,
// with no consumer group: the member assigns itself the ledger's partition). It checks
// nothing on the broker; EnsureTopic does.
//
// cl must produce with acks=all and idempotence (kgo's defaults), so that a record read back
// is not lost and a retry appends no second copy far apart; a short producer linger
// (kgo.ProducerLinger(0) or the default 10 ms) keeps reports prompt. Run reads the ledger
// through a second client built from cl.Opts() with the ledger's partition assigned
// directly, so cl itself is never made a consumer.
func NewMember(cl *kgo.Client, cfg MemberConfig, log *zap.Logger) (*Member, error) {
	if cl == nil {
		return nil, errors.New("ledger: no Kafka client")
	}
	if cfg.ID == "" {
		return nil, errors.New("ledger: member ID is empty")
	}
	if acks, ok := cl.OptValue(kgo.RequiredAcks).(kgo.Acks); ok && acks != kgo.AllISRAcks() {
		return nil, errors.New("ledger: the client must produce with acks=all")
	}
	if off, ok := cl.OptValue(kgo.DisableIdempotentWrite).(bool); ok && off {
		return nil, errors.New("ledger: the client must produce idempotently")
	}
	if g, ok := cl.OptValue(kgo.ConsumerGroup).(string); ok && g != "" {
		return nil, fmt.Errorf("ledger: the client is in consumer group %q; give the member a client of its own", g)
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	h := fnv.New32a()
	h.Write([]byte(cfg.ID))
	return &Member{
		cfg:      cfg,
		cl:       cl,
		log:      log.With(zap.String("ledger_member", cfg.ID)),
		stagger:  time.Duration(h.Sum32()%uint32(takeoverStagger/time.Millisecond)) * time.Millisecond,
		flush:    make(chan struct{}, 1),
		st:       NewState(),
		accounts: make(map[string]*account),
		reports:  make(map[reportKey][]Slot),
	}, nil
}

func (c MemberConfig) withDefaults() MemberConfig {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.ClaimValidity <= 0 {
		c.ClaimValidity = 2 * time.Second
	}
	if c.Epsilon <= 0 {
		c.Epsilon = 250 * time.Millisecond
	}
	if c.MaxRequestTimeout <= 0 {
		c.MaxRequestTimeout = 30 * time.Second
	}
	if c.Unavailable <= 0 {
		c.Unavailable = 10 * time.Second
	}
	if c.Sequencer == (SequencerConfig{}) {
		c.Sequencer = DefaultSequencerConfig()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// rebuildParams bounds every grant's parameters: what RebuildFrom must assume.
func (c MemberConfig) rebuildParams() Params {
	return Params{Limit: 1, ClaimValidity: c.ClaimValidity, RequestTimeout: c.MaxRequestTimeout, Epsilon: c.Epsilon}
}

// Run appends the member's hello, rebuilds from the ledger, and then reads the ledger,
// publishes demand, reports use and sequences until ctx ends. On the way out it returns its
// unused grants and withdraws its demand (best effort, within a second). It owns every
// goroutine it starts and returns only when they have stopped.
//
// It starts three goroutines: the reader (applies records in log order and hands grants to
// waiters), the ticker (demand, sequencing, heartbeats, takeovers, every 20 ms) and the
// report flusher. It returns nil when ctx ends, or an error that makes the ledger unusable
// (ErrNotLogAppendTime, a topic with more than one partition).
func (m *Member) Run(ctx context.Context) error {
	if m.ran.Swap(true) {
		return errors.New("ledger: Run called twice")
	}
	m.mu.Lock()
	m.phase, m.startedAt = phaseRunning, m.cfg.Now()
	m.mu.Unlock()
	var reader *kgo.Client
	err := m.run(ctx, &reader)
	// The reader's client is closed beside the shutdown's writes: with the brokers gone
	// closing it takes about as long as the shutdown's flush, and neither waits on the other.
	var closing sync.WaitGroup
	if reader != nil {
		closing.Add(1)
		go func() {
			defer closing.Done()
			reader.Close()
		}()
	}
	m.shutdown(ctx)
	closing.Wait()
	return err
}

// run rebuilds and runs the member's goroutines until ctx ends; it leaves the reader's
// client in *reader for Run to close.
func (m *Member) run(ctx context.Context, reader **kgo.Client) error {
	from, err := m.hello(ctx)
	if err != nil || ctx.Err() != nil {
		return err
	}
	start, err := m.offsetAfter(ctx, from)
	if err != nil || ctx.Err() != nil {
		return err
	}
	cons, err := kgo.NewClient(append(m.cl.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{m.cfg.Topic: {0: kgo.NewOffset().At(start)}}))...)
	if err != nil {
		return fmt.Errorf("ledger: creating the ledger's reader: %w", err)
	}
	*reader = cons

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	goOwned := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				errOnce.Do(func() { runErr = err })
				cancel()
			}
		}()
	}
	goOwned(func(ctx context.Context) error { return m.read(ctx, cons, start) })
	goOwned(m.tick)
	goOwned(m.flushReports)
	wg.Wait()
	return runErr
}

// hello appends the member's hello, reads it back to learn its log time T, and returns
// RebuildFrom(T): the log time from which the member must read the ledger. It retries until
// ctx ends, Ready saying why meanwhile.
func (m *Member) hello(ctx context.Context) (int64, error) {
	for {
		from, err := m.tryHello(ctx)
		if err == nil || errors.Is(err, ErrNotLogAppendTime) || ctx.Err() != nil {
			return from, err
		}
		m.noteErr(err)
		m.log.Warn("ledger: appending hello", zap.Error(err))
		select {
		case <-ctx.Done():
			return 0, nil
		case <-time.After(time.Second):
		}
	}
}

func (m *Member) tryHello(ctx context.Context) (int64, error) {
	b, err := Encode(Record{Kind: KindHello, Member: m.cfg.ID})
	if err != nil {
		return 0, err
	}
	sent := m.cfg.Now()
	m.mu.Lock()
	m.helloSent = sent
	m.mu.Unlock()
	res := m.cl.ProduceSync(ctx, &kgo.Record{Topic: m.cfg.Topic, Value: b})
	r, err := res.First()
	if err != nil {
		return 0, fmt.Errorf("appending hello to %s: %w", m.cfg.Topic, err)
	}
	if r.Partition != 0 {
		return 0, fmt.Errorf("ledger: hello appended to partition %d of %s: the topic must have one partition", r.Partition, m.cfg.Topic)
	}
	// Read the hello back: its log append time is T.
	cons, err := kgo.NewClient(append(m.cl.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{m.cfg.Topic: {0: kgo.NewOffset().At(r.Offset)}}))...)
	if err != nil {
		return 0, fmt.Errorf("creating the hello's reader: %w", err)
	}
	defer cons.Close()
	rctx, cancel := context.WithTimeout(ctx, m.cfg.Unavailable)
	defer cancel()
	for {
		fs := cons.PollFetches(rctx)
		if rctx.Err() != nil {
			return 0, fmt.Errorf("reading hello back at offset %d: %w", r.Offset, rctx.Err())
		}
		var got *kgo.Record
		fs.EachRecord(func(x *kgo.Record) {
			if got == nil && x.Offset == r.Offset {
				got = x
			}
		})
		if got == nil {
			continue
		}
		if got.Attrs.TimestampType() != 1 && !m.cfg.AllowProducerTimestamps {
			return 0, fmt.Errorf("ledger: hello at offset %d of %s has a producer timestamp: %w", got.Offset, m.cfg.Topic, ErrNotLogAppendTime)
		}
		now := m.cfg.Now()
		T := got.Timestamp.UnixMilli()
		m.mu.Lock()
		m.helloOffset = got.Offset
		m.checkClockLocked(sent, T, now)
		m.lag = now.Sub(sent)
		m.mu.Unlock()
		return RebuildFrom(T, m.cfg.rebuildParams()), nil
	}
}

// offsetAfter returns the offset of the first record appended at or after log time from. If
// the broker cannot list offsets by time, it returns the log's start offset: reading from
// there is always correct (the full history agrees with any suffix from T on), only longer,
// and retention bounds it to an hour of records.
func (m *Member) offsetAfter(ctx context.Context, from int64) (int64, error) {
	adm := kadm.NewClient(m.cl)
	for {
		listed, err := adm.ListOffsetsAfterMilli(ctx, from, m.cfg.Topic)
		if err == nil {
			err = listed.Error()
		}
		if err != nil && ctx.Err() == nil {
			m.log.Warn("ledger: listing offsets by time; rebuilding from the log start", zap.Error(err))
			listed, err = adm.ListStartOffsets(ctx, m.cfg.Topic)
			if err == nil {
				err = listed.Error()
			}
		}
		if err == nil {
			if n := len(listed[m.cfg.Topic]); n != 1 {
				return 0, fmt.Errorf("ledger: topic %s has %d partitions, must have 1", m.cfg.Topic, n)
			}
			o, _ := listed.Lookup(m.cfg.Topic, 0)
			return o.Offset, nil
		}
		if ctx.Err() != nil {
			return 0, nil
		}
		m.noteErr(fmt.Errorf("listing offsets of %s: %w", m.cfg.Topic, err))
		select {
		case <-ctx.Done():
			return 0, nil
		case <-time.After(time.Second):
		}
	}
}

// read applies the ledger's records in log order from start on, hands grants to waiters,
// and returns unusable grants at once.
func (m *Member) read(ctx context.Context, cons *kgo.Client, start int64) error {
	next := start
	for {
		fs := cons.PollRecords(ctx, 1000)
		if ctx.Err() != nil {
			return nil
		}
		failed := false
		fs.EachError(func(_ string, _ int32, err error) {
			failed = true
			m.noteErr(fmt.Errorf("reading %s: %w", m.cfg.Topic, err))
		})
		now := m.cfg.Now()
		var out []Record
		var fatal error
		m.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			if fatal != nil || r.Partition != 0 || r.Offset < next {
				return
			}
			next = r.Offset + 1
			out, fatal = m.applyLocked(r, now, out)
		})
		m.mu.Unlock()
		m.produce(ctx, out)
		if fatal != nil {
			return fatal
		}
		if failed && fs.NumRecords() == 0 {
			select { // a deleted topic or a broker gone: do not spin on the errors
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// applyLocked folds one record read into the State and acts on it, as sim_test's apply does.
func (m *Member) applyLocked(r *kgo.Record, now time.Time, out []Record) ([]Record, error) {
	if r.Attrs.TimestampType() != 1 && !m.cfg.AllowProducerTimestamps {
		return out, fmt.Errorf("ledger: record at offset %d of %s has a producer timestamp: %w", r.Offset, m.cfg.Topic, ErrNotLogAppendTime)
	}
	lt := r.Timestamp.UnixMilli()
	m.lastRead = now
	if !m.ltKnown || lt > m.ledgerTimeLocked(now) {
		m.ltBase, m.ltAt, m.ltKnown = lt, now, true
	}
	rec, err := Decode(r.Value)
	if err != nil {
		_, err = m.st.ApplyEncoded(r.Value, r.Offset, lt) // counts it
		m.log.Warn("ledger: skipping record", zap.Error(err))
		return out, nil
	}
	ok := m.st.Apply(rec, r.Offset, lt)
	if !m.rebuilt && r.Offset >= m.helloOffset {
		m.rebuilt, m.lastSeqSeen = true, now
		m.log.Info("ledger: rebuilt", zap.Int64("offset", r.Offset), zap.Uint64("epoch", m.st.epoch))
	}
	epoch, who := m.st.Sequencer()
	if epoch != m.epoch {
		m.epoch, m.lastSeqSeen = epoch, now
	}
	if (rec.Kind == KindGrant && rec.Epoch == epoch) || (rec.Kind == KindTakeover && ok) {
		m.lastSeqSeen = now
	}
	switch {
	case who == m.cfg.ID && (m.seq == nil || m.seq.epoch != epoch):
		m.seq = NewSequencer(m.cfg.ID, epoch, m.cfg.Sequencer)
		m.lastWrite = now
		for _, t := range m.throttles {
			m.seq.Throttled(t.tenant, t.retryAfter, t.at)
		}
		m.log.Info("ledger: sequencing", zap.Uint64("epoch", epoch))
	case who != m.cfg.ID && m.seq != nil:
		m.log.Info("ledger: no longer sequencing", zap.Uint64("epoch", epoch), zap.String("sequencer", who))
		m.seq = nil
	}
	switch rec.Kind {
	case KindHello:
		if rec.Member == m.cfg.ID && !m.helloSent.IsZero() {
			m.checkClockLocked(m.helloSent, lt, now)
		}
	case KindDemand:
		a := m.accounts[rec.Tenant]
		if rec.Member != m.cfg.ID || a == nil {
			break
		}
		if sent, ok := a.demandAt[rec.Seq]; ok {
			a.ownDemand, a.hasOwnDemand = sent, true
			for s := range a.demandAt {
				if s <= rec.Seq {
					delete(a.demandAt, s)
				}
			}
			m.lag = now.Sub(sent)
			m.checkClockLocked(sent, lt, now)
		}
	case KindGrant:
		if ok && rec.Member == m.cfg.ID && len(rec.Slots) > 0 {
			out = m.handOutLocked(rec, now, out)
		}
	case KindThrottled:
		m.throttles = append(m.throttles, throttleNote{rec.Tenant, rec.RetryAfter, lt})
		if len(m.throttles) > maxThrottleNotes {
			m.throttles = m.throttles[1:]
		}
		if m.seq != nil {
			m.seq.Throttled(rec.Tenant, rec.RetryAfter, lt)
			m.log.Warn("ledger: tripwire: a 429 while the ledger showed budget left", zap.String("tenant", rec.Tenant),
				zap.String("from", rec.Member), zap.Duration("retry_after", rec.RetryAfter))
		}
	}
	return out, nil
}

// handOutLocked gives the slots of a grant accepted for this member to its waiters, brand-new
// interactions first, and returns the rest at once. A slot may be used only within the
// claim validity (the smaller of the grant's and ours) after the latest own demand read back
// before the grant was sent, by the monotonic clock, as sim_test's ownDemand.
func (m *Member) handOutLocked(rec Record, now time.Time, out []Record) []Record {
	a := m.accounts[rec.Tenant]
	cv := min(m.cfg.ClaimValidity, rec.Params.ClaimValidity)
	var deadline time.Time
	usable := a != nil && a.hasOwnDemand && m.clockErr == nil && m.phase == phaseRunning
	if usable {
		deadline = a.ownDemand.Add(cv)
		usable = now.Before(deadline)
	}
	var returned []Slot
	for _, sl := range rec.Slots {
		if !usable || len(a.waiters) == 0 {
			returned = append(returned, sl)
			continue
		}
		i := 0
		for j, w := range a.waiters {
			if w.fresh.Load() {
				i = j
				break
			}
		}
		w := a.waiters[i]
		a.waiters = append(a.waiters[:i], a.waiters[i+1:]...)
		timeout := rec.Params.RequestTimeout
		if a.RequestTimeout > 0 {
			timeout = min(timeout, a.RequestTimeout)
		}
		c := &Claim{m: m, key: rec.Tenant, slot: sl, deadline: deadline, timeout: timeout}
		a.mine[sl] = c
		w.ch <- c // capacity 1, and w left the queue: never blocks
	}
	if len(returned) > 0 {
		out = append(out, Record{Kind: KindReport, Tenant: rec.Tenant, Member: m.cfg.ID, Use: UseReturned, Slots: returned})
	}
	return out
}

// checkClockLocked compares the wall clock around an own record's append (sent before,
// now after) with its log time: the broker appended it in between, so a log time outside
// [sent − ε, now + ε] means the clocks disagree by more than ε.
func (m *Member) checkClockLocked(sent time.Time, logTime int64, now time.Time) {
	slack := (m.cfg.Epsilon + clockSlack).Milliseconds()
	lo, hi := sent.UnixMilli()-slack, now.UnixMilli()+slack
	switch {
	case logTime < lo || logTime > hi:
		if m.clockErr == nil {
			m.log.Warn("ledger: wall clock disagrees with the log; waiting",
				zap.Int64("log_time_ms", logTime), zap.Int64("sent_ms", sent.UnixMilli()), zap.Int64("read_ms", now.UnixMilli()))
		}
		m.clockErr = fmt.Errorf("%w: own record appended at %d ms, sent at %d ms and read at %d ms (ε %s)",
			ErrClockSkew, logTime, sent.UnixMilli(), now.UnixMilli(), m.cfg.Epsilon)
	case m.clockErr != nil:
		m.log.Info("ledger: wall clock agrees with the log again")
		m.clockErr = nil
	}
	m.clockBad.Store(m.clockErr != nil)
}

// ledgerTimeLocked is the largest log time read plus the monotonic time elapsed since it was
// read: never ahead of the broker's clock, never the local wall clock.
func (m *Member) ledgerTimeLocked(now time.Time) int64 {
	if !m.ltKnown {
		return m.st.LedgerTime()
	}
	return m.ltBase + now.Sub(m.ltAt).Milliseconds()
}

// tick runs the member loop every 20 ms: demand, sequencing, heartbeats, takeovers.
func (m *Member) tick(ctx context.Context) error {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		m.mu.Lock()
		out := m.tickLocked(m.cfg.Now())
		m.mu.Unlock()
		m.produce(ctx, out)
	}
}

func (m *Member) tickLocked(now time.Time) []Record {
	if !m.rebuilt {
		return nil
	}
	var out []Record
	if m.clockErr != nil && now.Sub(m.helloSent) >= time.Second {
		// Demand is withdrawn meanwhile; a hello now and then re-checks the clock.
		m.helloSent = now
		out = append(out, Record{Kind: KindHello, Member: m.cfg.ID})
	}
	out = m.demandLocked(now, out)
	lt := m.ledgerTimeLocked(now)
	if m.seq != nil && now.Sub(m.lastDecide) >= decideEvery {
		m.lastDecide = now
		for tenant, ts := range m.st.tenants {
			p, ok := m.grantParamsLocked(tenant, ts, lt)
			if !ok {
				continue
			}
			if recs := m.seq.Decide(m.st, tenant, p, lt); len(recs) > 0 {
				out = append(out, recs...)
				m.lastWrite = now
			}
		}
		if now.Sub(m.lastWrite) >= heartbeatEvery {
			out = append(out, m.seq.Heartbeat(m.cfg.rebuildParams()))
			m.lastWrite = now
		}
	}
	if m.seq == nil && m.phase == phaseRunning && now.Sub(m.lastTry) >= takeoverRetry &&
		(m.epoch == 0 || now.Sub(m.lastSeqSeen) > takeoverSilence+m.stagger) {
		m.lastTry = now
		m.log.Info("ledger: taking over", zap.Uint64("epoch", m.epoch+1), zap.Duration("silent", now.Sub(m.lastSeqSeen)))
		out = append(out, Record{Kind: KindTakeover, Member: m.cfg.ID, Epoch: m.epoch + 1, Previous: m.epoch})
	}
	return out
}

// demandLocked publishes each account's standing demand: the callers waiting (capped at
// maxWant), refreshed every demandRefresh while unmet, withdrawn once met, as sim_test's
// publishDemand. Nothing is demanded while the clock disagrees with the log.
func (m *Member) demandLocked(now time.Time, out []Record) []Record {
	for key, a := range m.accounts {
		want, fresh := 0, 0
		if m.clockErr == nil && m.phase == phaseRunning {
			want = min(len(a.waiters), maxWant)
			for _, w := range a.waiters {
				if fresh < want && w.fresh.Load() {
					fresh++
				}
			}
		}
		switch {
		case want == 0 && a.lastWant == 0:
			continue
		case want > 0 && want == a.lastWant && fresh == a.lastFresh && now.Sub(a.lastDemand) < demandRefresh:
			continue
		case now.Sub(a.lastDemand) < tick:
			continue
		}
		m.demSeq++
		for s, at := range a.demandAt {
			if now.Sub(at) > demandMemory {
				delete(a.demandAt, s)
			}
		}
		a.demandAt[m.demSeq] = now
		a.lastDemand, a.lastWant, a.lastFresh = now, want, fresh
		out = append(out, Record{Kind: KindDemand, Tenant: key, Member: m.cfg.ID, Want: want, Fresh: fresh,
			Seen: m.st.offset, Seq: m.demSeq, Limit: a.Limit, Timeout: a.RequestTimeout})
	}
	return out
}

// grantParamsLocked returns the parameters the sequencer grants tenant under: the smallest
// limit and the largest request timeout among the live demands and this member's own
// account, the claim validity and ε of this member's configuration. ok is false when no
// live demand wants anything or no limit is known.
func (m *Member) grantParamsLocked(tenant string, ts *tenantState, lt int64) (Params, bool) {
	live, limit, timeout := false, 0, time.Duration(0)
	note := func(l int, t time.Duration) {
		if l > 0 && (limit == 0 || l < limit) {
			limit = l
		}
		timeout = max(timeout, t)
	}
	for _, d := range ts.demands {
		if d.at < lt-m.cfg.Sequencer.DemandTTL.Milliseconds() {
			continue
		}
		live = live || d.rec.Want > 0
		note(d.rec.Limit, d.rec.Timeout)
	}
	if a := m.accounts[tenant]; a != nil {
		note(a.Limit, a.RequestTimeout)
	}
	if !live || limit == 0 {
		return Params{}, false
	}
	if timeout == 0 {
		timeout = m.cfg.MaxRequestTimeout
	}
	return Params{Limit: limit, ClaimValidity: m.cfg.ClaimValidity, RequestTimeout: timeout, Epsilon: m.cfg.Epsilon}, true
}

// flushReports appends Finish's reports, batched over reportLinger into one record per
// tenant and use, and the tripwires Throttled queued.
func (m *Member) flushReports(ctx context.Context) error {
	linger := time.NewTimer(reportLinger)
	linger.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.flush:
		}
		linger.Reset(reportLinger)
		select {
		case <-ctx.Done():
			linger.Stop()
			return nil // shutdown appends what is left
		case <-linger.C:
		}
		m.mu.Lock()
		out := m.takeReportsLocked()
		m.mu.Unlock()
		m.produce(ctx, out)
	}
}

func (m *Member) takeReportsLocked() []Record {
	out := m.outbox
	m.outbox = nil
	for k, slots := range m.reports {
		out = append(out, Record{Kind: KindReport, Tenant: k.tenant, Member: m.cfg.ID, Use: k.use, Slots: slots})
		delete(m.reports, k)
	}
	return out
}

// produce appends recs, asynchronously: a failure is noted for Ready, and what it costs is
// bounded by the protocol (a lost demand is refreshed, a lost report leaves its slot held
// until its grant's cap, a lost grant is forgotten by the sequencer after its horizon).
func (m *Member) produce(ctx context.Context, recs []Record) {
	for _, r := range recs {
		b, err := Encode(r)
		if err != nil {
			m.log.Error("ledger: encoding a record (a bug)", zap.Error(err))
			continue
		}
		m.cl.Produce(ctx, &kgo.Record{Topic: m.cfg.Topic, Key: []byte(r.Tenant), Value: b}, m.promise)
	}
}

func (m *Member) promise(_ *kgo.Record, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		m.noteErr(fmt.Errorf("appending to %s: %w", m.cfg.Topic, err))
	}
}

func (m *Member) noteErr(err error) {
	m.mu.Lock()
	m.lastErr, m.lastErrAt = err, m.cfg.Now()
	m.mu.Unlock()
}

// shutdown runs once Run's goroutines have stopped: it fails the waiters, returns the
// claims not started, waits a little for the started ones, appends the reports and the
// withdrawn demands, and flushes, within shutdownBudget.
func (m *Member) shutdown(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownBudget)
	defer cancel()
	start := m.cfg.Now()
	m.mu.Lock()
	m.phase = phaseDraining
	rebuilt := m.rebuilt
	for _, a := range m.accounts {
		for _, w := range a.waiters {
			w.ch <- nil
		}
		a.waiters = nil
		for sl, c := range a.mine {
			if c.state.CompareAndSwap(claimGranted, claimDone) {
				delete(a.mine, sl)
				m.reports[reportKey{a.Key, UseReturned}] = append(m.reports[reportKey{a.Key, UseReturned}], sl)
			}
		}
	}
	m.mu.Unlock()
	for rebuilt && m.cfg.Now().Sub(start) < drainWait && m.heldClaims() > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	m.mu.Lock()
	m.phase = phaseStopped
	var out []Record
	if rebuilt {
		out = m.takeReportsLocked()
		for key, a := range m.accounts {
			if a.lastWant > 0 {
				out = append(out, Record{Kind: KindDemand, Tenant: key, Member: m.cfg.ID, Want: 0, Seen: m.st.offset,
					Seq: m.demSeq + 1, Limit: a.Limit, Timeout: a.RequestTimeout})
				m.demSeq++
			}
		}
	}
	m.mu.Unlock()
	m.produce(ctx, out)
	if err := m.cl.Flush(ctx); err != nil {
		m.log.Warn("ledger: flushing on shutdown", zap.Error(err))
	}
}

func (m *Member) heldClaims() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, a := range m.accounts {
		n += len(a.mine)
	}
	return n
}

// Register makes acct known to the member (before or after Run starts); registering a key
// again updates its limit and timeout.
func (m *Member) Register(acct Account) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.accounts[acct.Key]; ok {
		a.Account = acct
		return
	}
	m.accounts[acct.Key] = &account{Account: acct, mine: make(map[Slot]*Claim), demandAt: make(map[uint64]time.Time)}
}

// Acquire blocks until the ledger grants this member one attempt for acct.Key and returns
// its claim. fresh reports whether the waiting request is a brand-new interaction's first
// write (asked again at each refresh of the demand); wake (may be nil) ends a wait early so
// the caller can ask fresh again. If ctx ends first, nothing is held.
//
// fresh is called on the caller's goroutine, never under the member's lock: when Acquire
// starts, every demand refresh (150 ms) and whenever wake fires (a receive; a closed wake
// counts once), and the demand then published counts the caller as brand-new or not.
//
// It waits (without error) while the ledger is unavailable; it fails with ErrStopped once
// Run is returning, and for a key never registered.
func (m *Member) Acquire(ctx context.Context, key string, fresh func() bool, wake <-chan struct{}) (*Claim, error) {
	w := &waiter{ch: make(chan *Claim, 1)}
	ask := func() {
		if fresh != nil {
			w.fresh.Store(fresh())
		}
	}
	ask() // the caller's function, never called under the member's lock
	m.mu.Lock()
	if m.phase >= phaseDraining {
		m.mu.Unlock()
		return nil, ErrStopped
	}
	a, ok := m.accounts[key]
	if !ok {
		m.mu.Unlock()
		return nil, fmt.Errorf("ledger: account %q is not registered", key)
	}
	a.waiters = append(a.waiters, w)
	m.mu.Unlock()

	refresh := time.NewTicker(demandRefresh)
	defer refresh.Stop()
	for {
		select {
		case c := <-w.ch:
			if c == nil {
				return nil, ErrStopped
			}
			return c, nil
		case <-ctx.Done():
			m.mu.Lock()
			for i, x := range a.waiters {
				if x == w {
					a.waiters = append(a.waiters[:i], a.waiters[i+1:]...)
					break
				}
			}
			m.mu.Unlock()
			select {
			case c := <-w.ch: // granted meanwhile: give it back
				if c != nil {
					c.Finish(UseReturned)
				}
			default:
			}
			return nil, ctx.Err()
		case _, open := <-wake:
			if !open {
				wake = nil // a closed channel would wake us forever
			}
			ask()
		case <-refresh.C:
			ask()
		}
	}
}

// Throttled reports a 429 for key with its Retry-After (0: none): the tripwire. The
// sequencer reduces the budget for a while and grants nothing before Retry-After passed.
// The record is appended by the report flusher, so Throttled never blocks.
func (m *Member) Throttled(key string, retryAfter time.Duration) {
	m.mu.Lock()
	if m.phase != phaseRunning || len(m.outbox) >= maxThrottleNotes {
		m.mu.Unlock()
		return
	}
	m.outbox = append(m.outbox, Record{Kind: KindThrottled, Tenant: key, Member: m.cfg.ID, RetryAfter: max(0, retryAfter)})
	m.mu.Unlock()
	m.log.Warn("ledger: 429 reported to the sequencer", zap.String("tenant", key), zap.Duration("retry_after", retryAfter))
	m.wakeFlusher()
}

func (m *Member) wakeFlusher() {
	select {
	case m.flush <- struct{}{}:
	default:
	}
}

// Ready returns nil, or why writes are waiting on the ledger (unreachable longer than
// Unavailable, topic deleted, clock disagreeing with the log by more than ε).
func (m *Member) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	cause := func() error {
		if m.lastErr != nil {
			return fmt.Errorf("%w (last error %s ago: %w)", ErrUnavailable, now.Sub(m.lastErrAt).Round(time.Millisecond), m.lastErr)
		}
		return ErrUnavailable
	}
	switch {
	case m.phase == phaseNew:
		return fmt.Errorf("ledger: member not running: %w", ErrUnavailable)
	case m.phase >= phaseDraining:
		return ErrStopped
	case !m.rebuilt:
		return fmt.Errorf("ledger: rebuilding from %s for %s: %w", m.cfg.Topic, now.Sub(m.startedAt).Round(time.Millisecond), cause())
	case now.Sub(m.lastRead) > m.cfg.Unavailable:
		return fmt.Errorf("ledger: no record read back from %s for %s: %w", m.cfg.Topic, now.Sub(m.lastRead).Round(time.Millisecond), cause())
	case m.clockErr != nil:
		return fmt.Errorf("ledger: %w", m.clockErr)
	}
	return nil
}

// Status is what the member knows of an account now.
type Status struct {
	Used    int // slots held cluster-wide at ledger time: the tenant's budget used
	Limit   int // the limit of the latest grant (0: none yet)
	Mine    int // claims this member holds (granted, not finished)
	Waiting int // callers blocked in Acquire
	// Lag is how far the member's read of the ledger is behind its latest append.
	Lag time.Duration
}

// Status reports key's state.
func (m *Member) Status(key string) Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{Lag: m.lag}
	if a, ok := m.accounts[key]; ok {
		s.Mine, s.Waiting = len(a.mine), len(a.waiters)
	}
	if !m.ltKnown {
		return s
	}
	s.Used = m.st.Held(key, m.ledgerTimeLocked(m.cfg.Now()))
	if ts, ok := m.st.tenants[key]; ok {
		s.Limit = ts.limit
	}
	return s
}

// Claim is one granted attempt: one slot. Call Start just before writing the request, then
// Finish exactly once.
type Claim struct {
	m        *Member
	key      string
	slot     Slot
	deadline time.Time // by the monotonic clock: no start after it
	timeout  time.Duration
	state    atomic.Int32
}

const (
	claimGranted int32 = iota
	claimStarted
	claimDone
)

// Start reports whether the claim may still be used (it expires ClaimValidity after the
// demand that earned it was published, by the member's monotonic clock) and, if so, the
// longest the attempt may take: the caller must abandon it by then. A claim that may not be
// used must be finished as UseReturned and a new one acquired.
//
// A claim also may not be used while the member's clock disagrees with the log, nor once
// the member stopped (it returned the claim itself then).
func (c *Claim) Start() (timeout time.Duration, ok bool) {
	if c.state.Load() == claimStarted {
		return c.timeout, true
	}
	if c.m.clockBad.Load() || !c.m.cfg.Now().Before(c.deadline) {
		return 0, false
	}
	if !c.state.CompareAndSwap(claimGranted, claimStarted) {
		return 0, false
	}
	return c.timeout, true
}

// Slot returns the ledger slot the claim uses, for log lines.
func (c *Claim) Slot() Slot { return c.slot }

// Finish reports the claim's use: UseFinished (an answer arrived), UseUncertain (timeout or
// network error after the request may have been sent) or UseReturned (never sent). The
// report is appended with a linger of about 10 ms; a second Finish does nothing, and so does
// a Finish after Run returned (the slot then stays held until its grant's cap: safe).
func (c *Claim) Finish(u Use) {
	if u < UseFinished || u > UseReturned {
		u = UseUncertain // the only safe reading of a value that says nothing final
	}
	if c.state.Swap(claimDone) == claimDone {
		return
	}
	m := c.m
	m.mu.Lock()
	if m.phase == phaseStopped {
		m.mu.Unlock()
		return
	}
	if a, ok := m.accounts[c.key]; ok {
		delete(a.mine, c.slot)
	}
	k := reportKey{c.key, u}
	m.reports[k] = append(m.reports[k], c.slot)
	m.mu.Unlock()
	m.wakeFlusher()
}

// TopicOptions are what EnsureTopic checks and creates.
type TopicOptions struct {
	Topic string
	// Replication is the replication factor to create with (default: 3, or the number of
	// brokers when fewer and AllowUnsafe).
	Replication int16
	// AllowUnsafe accepts a topic (or a cluster) that cannot keep a record read back once
	// acknowledged: fewer than 3 replicas, min.insync.replicas below 2, unclean leader
	// election. For a one-node test broker only; every accepted risk is returned as a
	// warning.
	AllowUnsafe bool
}
