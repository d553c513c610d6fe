package ledger

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/augment-connector/augment-connector/internal/kafkatest"
)

// The member tests run real members (real goroutines, real franz-go clients) against an
// in-process kfake cluster of 3 brokers. kfake does not apply a topic's
// message.timestamp.type itself, so the cluster's produce handler stamps the batches of the
// ledger topics as a broker with LogAppendTime does (logCluster.stamp): the member then reads
// real log append times and its check of the timestamp type is exercised, not bypassed.
// (Produce v13 names topics by id, so the stamping applies to every topic of the cluster;
// the test of a CreateTime topic uses a cluster that stamps nothing.) kfake then rewrites the
// batch's timestamps to its append time without recomputing the CRC (a kfake shortcut a
// real broker does not take), so the test clients skip the fetch CRC check; the members'
// readers inherit that from the client they are given (cl.Opts()).

// logCluster is a kfake cluster whose topics get LogAppendTime when stamp is set, or the
// real cluster of KAFKA_BROKERS (Cluster nil).
type logCluster struct {
	*kfake.Cluster
	seeds []string
}

// memberCluster is where the member tests that need no fault injection run: the real
// broker of KAFKA_BROKERS when set (where LogAppendTime and listing offsets by time are the
// broker's own), else a 3-broker kfake cluster.
func memberCluster(t *testing.T) *logCluster {
	t.Helper()
	if os.Getenv(kafkatest.EnvBrokers) != "" {
		return &logCluster{seeds: kafkatest.Brokers(t)}
	}
	return newLogCluster(t, 3)
}

func newLogCluster(t *testing.T, brokers int) *logCluster { return newCluster(t, brokers, true) }

func newCluster(t *testing.T, brokers int, stamp bool) *logCluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	lc := &logCluster{Cluster: c, seeds: c.ListenAddrs()}
	if !stamp {
		return lc
	}
	c.ControlKey(kmsg.Produce.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		pr := req.(*kmsg.ProduceRequest)
		for i := range pr.Topics {
			for j := range pr.Topics[i].Partitions {
				stampLogAppendTime(pr.Topics[i].Partitions[j].Records)
			}
		}
		return nil, nil, false // not handled: the broker appends the (stamped) batch
	})
	return lc
}

// stampLogAppendTime sets the LogAppendTime bit in each record batch's attributes and
// recomputes its CRC, as a broker's LogAppendTime topic makes every batch read back carry.
func stampLogAppendTime(b []byte) {
	table := crc32.MakeTable(crc32.Castagnoli)
	for len(b) >= 61 {
		n := 12 + int(binary.BigEndian.Uint32(b[8:12]))
		if n > len(b) {
			return
		}
		b[22] |= 0x08 // attributes (int16 at 21), timestamp type bit
		binary.BigEndian.PutUint32(b[17:21], crc32.Checksum(b[21:n], table))
		b = b[n:]
	}
}

// topic creates a ledger topic with EnsureTopic and stamps it.
func (lc *logCluster) topic(t *testing.T) string {
	t.Helper()
	name := kafkatest.UniqueName(t, "ledger")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	real := lc.Cluster == nil // a one-node test broker, most likely
	if w, err := EnsureTopic(ctx, lc.client(t), TopicOptions{Topic: name, AllowUnsafe: real}); err != nil || (len(w) > 0 && !real) {
		t.Fatalf("EnsureTopic: %v (warnings %v)", err, w)
	}
	return name
}

func (lc *logCluster) client(t *testing.T) *kgo.Client {
	t.Helper()
	return kafkatest.Client(t, lc.seeds, kgo.ProducerLinger(0), kgo.DisableFetchCRCValidation())
}

var testAccount = Account{Key: "tenant-1/api.example", Limit: 600, RequestTimeout: time.Second}

// running is a member with Run in its own goroutine.
type running struct {
	*Member
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned, with its error in err
	err    error
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("Run: %v", r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5 s of its context ending")
	}
}

func testMemberConfig(topic, id string) MemberConfig {
	return MemberConfig{Topic: topic, ID: id, MaxRequestTimeout: 2 * time.Second, Unavailable: 2 * time.Second}
}

func startMember(t *testing.T, lc *logCluster, cfg MemberConfig, accts ...Account) *running {
	t.Helper()
	m, err := NewMember(lc.client(t), cfg, zaptest.NewLogger(t).Named(cfg.ID))
	if err != nil {
		t.Fatalf("NewMember: %v", err)
	}
	for _, a := range accts {
		m.Register(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Member: m, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitReady(t *testing.T, ms ...*running) {
	t.Helper()
	for _, m := range ms {
		end := time.Now().Add(10 * time.Second)
		for m.Ready() != nil {
			if time.Now().After(end) {
				t.Fatalf("member %s not ready within 10 s: %v", m.cfg.ID, m.Ready())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// attempts counts the attempts started with claims, per member, as the API would see them.
type attempts struct {
	mu      sync.Mutex
	started []time.Time
	by      map[string]int
}

// work runs n workers on m: acquire, start, a 20 ms attempt, finish, until ctx ends.
func (at *attempts) work(ctx context.Context, wg *sync.WaitGroup, m *running, n int) {
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := m.Acquire(ctx, testAccount.Key, nil, nil)
				if err != nil {
					return
				}
				if _, ok := c.Start(); !ok {
					c.Finish(UseReturned)
					continue
				}
				at.mu.Lock()
				at.started = append(at.started, time.Now())
				at.by[m.cfg.ID]++
				at.mu.Unlock()
				time.Sleep(20 * time.Millisecond)
				c.Finish(UseFinished)
			}
		}()
	}
}

func (at *attempts) count() int {
	at.mu.Lock()
	defer at.mu.Unlock()
	return len(at.started)
}

// TestMembersShareTheBudget: three members, four callers each, demand far above the budget.
// Attempts follow the sequencer's spreading bucket (a tenth of the limit at once, then the
// limit per minute): never more, the ledger's Used never over the limit and never below
// what was started, every member served.
func TestMembersShareTheBudget(t *testing.T) {
	t.Parallel()
	lc := memberCluster(t)
	topic := lc.topic(t)
	var ms []*running
	for i := range 3 {
		ms = append(ms, startMember(t, lc, testMemberConfig(topic, "m"+strconv.Itoa(i)), testAccount))
	}
	waitReady(t, ms...)
	at := &attempts{by: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	begin := time.Now()
	for _, m := range ms {
		at.work(ctx, &wg, m, 4)
	}
	const run = 8 * time.Second
	maxUsed := 0
	for time.Since(begin) < run {
		time.Sleep(100 * time.Millisecond)
		for _, m := range ms {
			s := m.Status(testAccount.Key)
			maxUsed = max(maxUsed, s.Used)
			if s.Used > testAccount.Limit {
				t.Errorf("%s: Used %d over the limit %d", m.cfg.ID, s.Used, testAccount.Limit)
			}
		}
	}
	cancel()
	wg.Wait()
	elapsed := time.Since(begin)
	n := at.count()
	// The bucket: a tenth of the limit at once, then limit/minute (+1 for rounding).
	bound := testAccount.Limit/10 + int(float64(testAccount.Limit)*elapsed.Seconds()/60) + 1
	t.Logf("%d attempts in %s (bucket bound %d); per member %v; most Used seen %d", n, elapsed.Round(time.Millisecond), bound, at.by, maxUsed)
	if n > bound {
		t.Errorf("%d attempts in %s: more than the sequencer's bucket allows (%d)", n, elapsed, bound)
	}
	if n < bound*7/10 {
		t.Errorf("%d attempts in %s: under 70%% of what the bucket allows (%d): the budget is not flowing", n, elapsed, bound)
	}
	for _, m := range ms {
		if got := at.by[m.cfg.ID]; got*100 < n*20 {
			t.Errorf("member %s started %d of %d attempts: not served its share", m.cfg.ID, got, n)
		}
	}
	// Every attempt started is held (a finished slot for 60 s + ε after its report) in every
	// member's view: the ledger has not lost one.
	for _, m := range ms {
		waitFor(t, 2*time.Second, "Used catching up", func() bool { return m.Status(testAccount.Key).Used >= n })
		if s := m.Status(testAccount.Key); s.Used > testAccount.Limit || s.Limit != testAccount.Limit {
			t.Errorf("%s: status %+v", m.cfg.ID, s)
		}
	}
}

// seedGhost appends, as a member "ghost" of a previous run would have, a takeover into
// epoch 1 and a grant of n slots under limit, then nothing: a busy period whose slots
// members starting now must count.
func seedGhost(t *testing.T, lc *logCluster, topic string, limit, n int) {
	t.Helper()
	p := Params{Limit: limit, ClaimValidity: 2 * time.Second, RequestTimeout: 2 * time.Second, Epsilon: 250 * time.Millisecond}
	g := Record{Kind: KindGrant, Tenant: testAccount.Key, Member: "ghost", Epoch: 1, Params: &p}
	for i := range n {
		g.Slots = append(g.Slots, Slot{Epoch: 1, N: uint64(i + 1)})
	}
	var recs []*kgo.Record
	for _, r := range []Record{{Kind: KindTakeover, Member: "ghost", Epoch: 1}, g} {
		b, err := Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Value: b})
	}
	kafkatest.ProduceSync(t, lc.seeds, recs...)
}

// TestLimitBinds: the ledger already holds limit − 4 slots (a ghost's busy period); three
// members start, rebuild, see them, take over the silent ghost's epoch and get exactly the
// 4 slots left, and nothing more while the ghost's slots are held.
func TestLimitBinds(t *testing.T) {
	t.Parallel()
	lc := memberCluster(t)
	topic := lc.topic(t)
	acct := testAccount
	acct.Limit = 40
	seedGhost(t, lc, topic, acct.Limit, acct.Limit-4)
	var ms []*running
	for i := range 3 {
		ms = append(ms, startMember(t, lc, testMemberConfig(topic, "m"+strconv.Itoa(i)), acct))
	}
	waitReady(t, ms...)
	for _, m := range ms {
		if s := m.Status(acct.Key); s.Used != acct.Limit-4 {
			t.Fatalf("%s rebuilt Used %d, want the ghost's %d", m.cfg.ID, s.Used, acct.Limit-4)
		}
	}
	at := &attempts{by: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, m := range ms {
		at.work(ctx, &wg, m, 3)
	}
	waitFor(t, 8*time.Second, "the 4 slots left granted", func() bool { return at.count() >= 4 })
	time.Sleep(3 * time.Second) // takeover is done; the sequencer keeps deciding
	cancel()
	wg.Wait()
	if n := at.count(); n != 4 {
		t.Fatalf("%d attempts with %d slots left: the limit did not bind", n, 4)
	}
	epoch, who := sequencerOf(ms)
	t.Logf("attempts per member %v; sequencer epoch %d (%s)", at.by, epoch, who)
	if epoch < 2 {
		t.Fatalf("epoch %d: nobody took over the silent ghost", epoch)
	}
	for _, m := range ms {
		if s := m.Status(acct.Key); s.Used != acct.Limit {
			t.Errorf("%s: Used %d, want the limit %d", m.cfg.ID, s.Used, acct.Limit)
		}
	}
}

// sequencerOf returns the member the State shows as sequencer.
func sequencerOf(ms []*running) (uint64, string) {
	ms[0].mu.Lock()
	defer ms[0].mu.Unlock()
	return ms[0].st.Sequencer()
}

// TestSequencerTakeover: the sequencer's Run ends; the others take over within the
// silence (2 s + stagger) and claims flow again within a few seconds.
func TestSequencerTakeover(t *testing.T) {
	t.Parallel()
	lc := memberCluster(t)
	topic := lc.topic(t)
	var ms []*running
	for i := range 3 {
		ms = append(ms, startMember(t, lc, testMemberConfig(topic, "m"+strconv.Itoa(i)), testAccount))
	}
	waitReady(t, ms...)
	waitFor(t, 5*time.Second, "a sequencer", func() bool { _, who := sequencerOf(ms); return who != "" })
	epoch, who := sequencerOf(ms)
	var seqM *running
	var rest []*running
	for _, m := range ms {
		if m.cfg.ID == who {
			seqM = m
		} else {
			rest = append(rest, m)
		}
	}
	at := &attempts{by: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, m := range rest {
		at.work(ctx, &wg, m, 2)
	}
	waitFor(t, 3*time.Second, "claims before the stop", func() bool { return at.count() > 0 })
	seqM.stop(t)
	stopped := time.Now()
	before := at.count()
	waitFor(t, 8*time.Second, "claims after the sequencer stopped", func() bool { return at.count() > before+2 })
	resumed := time.Since(stopped)
	cancel()
	wg.Wait()
	e2, who2 := sequencerOf(rest)
	t.Logf("sequencer %s (epoch %d) stopped; %s took over epoch %d; claims resumed after %s", who, epoch, who2, e2, resumed.Round(time.Millisecond))
	if e2 <= epoch || who2 == who || who2 == "" {
		t.Fatalf("after the stop: epoch %d by %q (was %d by %q)", e2, who2, epoch, who)
	}
	if resumed > 5*time.Second {
		t.Errorf("claims resumed %s after the sequencer stopped, want within 5 s", resumed)
	}
}

// TestRestartRebuilds: a member busy for a while stops; a new member (a restarted process)
// rebuilds from the ledger and counts the slots its predecessor's grants still hold.
func TestRestartRebuilds(t *testing.T) {
	t.Parallel()
	lc := memberCluster(t)
	topic := lc.topic(t)
	first := startMember(t, lc, testMemberConfig(topic, "pod-a/1"), testAccount)
	waitReady(t, first)
	at := &attempts{by: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	at.work(ctx, &wg, first, 4)
	waitFor(t, 5*time.Second, "a busy period", func() bool { return at.count() >= 30 })
	cancel()
	wg.Wait()
	n := at.count()
	used := first.Status(testAccount.Key).Used
	first.stop(t)
	second := startMember(t, lc, testMemberConfig(topic, "pod-a/2"), testAccount)
	waitReady(t, second)
	s := second.Status(testAccount.Key)
	t.Logf("%d attempts; Used %d before the restart, %d right after", n, used, s.Used)
	if s.Used < n || s.Used != used {
		t.Fatalf("restarted member sees Used %d; the previous one saw %d and started %d attempts", s.Used, used, n)
	}
	if s.Limit != testAccount.Limit {
		t.Fatalf("restarted member sees limit %d, want %d", s.Limit, testAccount.Limit)
	}
}

// TestClaimExpires: a claim may be started only within ClaimValidity of the demand that
// earned it.
func TestClaimExpires(t *testing.T) {
	t.Parallel()
	lc := memberCluster(t)
	topic := lc.topic(t)
	cfg := testMemberConfig(topic, "m0")
	cfg.ClaimValidity = 400 * time.Millisecond
	m := startMember(t, lc, cfg, testAccount)
	waitReady(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c1, err := m.Acquire(ctx, testAccount.Key, nil, nil)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if timeout, ok := c1.Start(); !ok || timeout != testAccount.RequestTimeout {
		t.Fatalf("fresh claim: Start = %s, %v; want %s, true", timeout, ok, testAccount.RequestTimeout)
	}
	c1.Finish(UseFinished)
	c2, err := m.Acquire(ctx, testAccount.Key, nil, nil)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	time.Sleep(cfg.ClaimValidity)
	if _, ok := c2.Start(); ok {
		t.Fatal("claim started after its ClaimValidity")
	}
	c2.Finish(UseReturned)
	waitFor(t, 2*time.Second, "reports flushed", func() bool { return m.Status(testAccount.Key).Mine == 0 })
}

// TestReadyTopicDeleted: with the topic gone nothing is read back: Ready says so after
// Unavailable, and Acquire keeps waiting, without error, until its context ends.
func TestReadyTopicDeleted(t *testing.T) {
	t.Parallel()
	lc := memberCluster(t)
	topic := lc.topic(t)
	m := startMember(t, lc, testMemberConfig(topic, "m0"), testAccount)
	waitReady(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(lc.client(t)).DeleteTopic(ctx, topic); err != nil {
		t.Fatalf("deleting the topic: %v", err)
	}
	waitFor(t, 5*time.Second, "Ready reporting the deleted topic", func() bool { return m.Ready() != nil })
	err := m.Ready()
	t.Logf("Ready: %v", err)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ready = %v, want ErrUnavailable", err)
	}
	actx, acancel := context.WithTimeout(context.Background(), time.Second)
	defer acancel()
	if _, err := m.Acquire(actx, testAccount.Key, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with the topic deleted = %v, want the context's deadline", err)
	}
}

// TestReadyBrokerStopped: the whole cluster stops: Ready says so after Unavailable, Acquire
// waits until its context ends, and Run still returns promptly.
func TestReadyBrokerStopped(t *testing.T) {
	t.Parallel()
	lc := newLogCluster(t, 3)
	topic := lc.topic(t)
	m := startMember(t, lc, testMemberConfig(topic, "m0"), testAccount)
	waitReady(t, m)
	lc.Close()
	waitFor(t, 6*time.Second, "Ready reporting the stopped broker", func() bool { return m.Ready() != nil })
	t.Logf("Ready: %v", m.Ready())
	if err := m.Ready(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ready = %v, want ErrUnavailable", err)
	}
	actx, acancel := context.WithTimeout(context.Background(), time.Second)
	defer acancel()
	if _, err := m.Acquire(actx, testAccount.Key, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with the broker stopped = %v, want the context's deadline", err)
	}
	begin := time.Now()
	m.stop(t)
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Run took %s to return with the broker stopped", d)
	}
}

// readAll decodes every record of topic from the start.
func readAll(t *testing.T, lc *logCluster, topic string) []Record {
	t.Helper()
	cl := kafkatest.Client(t, lc.seeds, kgo.DisableFetchCRCValidation(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	end := kafkatest.EndOffsets(t, lc.seeds, topic)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []Record
	for next := int64(0); next < end; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v", topic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			if rec, err := Decode(r.Value); err == nil {
				out = append(out, rec)
			}
		})
	}
	return out
}

// TestShutdownReturnsUnused: a member whose Run ends returns the claim a caller holds but
// has not started, withdraws its demand, fails its waiters; afterwards Start, Finish and
// Acquire are safe no-ops or errors.
func TestShutdownReturnsUnused(t *testing.T) {
	t.Parallel()
	lc := memberCluster(t)
	topic := lc.topic(t)
	m := startMember(t, lc, testMemberConfig(topic, "m0"), testAccount)
	waitReady(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unused, err := m.Acquire(ctx, testAccount.Key, nil, nil)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	// A caller still waiting when Run ends gets ErrStopped.
	var waitErr atomic.Value
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// The budget's bucket is spent only by the first claim; this one waits on demand.
		for {
			c, err := m.Acquire(ctx, testAccount.Key, nil, nil)
			if err != nil {
				waitErr.Store(err)
				return
			}
			c.Finish(UseReturned)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	m.stop(t)
	wg.Wait()
	if err, _ := waitErr.Load().(error); !errors.Is(err, ErrStopped) {
		t.Errorf("a waiter at shutdown got %v, want ErrStopped", err)
	}
	if _, ok := unused.Start(); ok {
		t.Error("a claim returned at shutdown could still be started")
	}
	unused.Finish(UseFinished) // a no-op: must not block or panic
	if _, err := m.Acquire(ctx, testAccount.Key, nil, nil); !errors.Is(err, ErrStopped) {
		t.Errorf("Acquire after Run returned = %v, want ErrStopped", err)
	}
	st := NewState()
	var returned, withdrawn bool
	for i, r := range readAll(t, lc, topic) {
		st.Apply(r, int64(i), int64(i))
		if r.Kind == KindReport && r.Member == "m0" && r.Use == UseReturned {
			for _, s := range r.Slots {
				returned = returned || s == unused.Slot()
			}
		}
		if r.Kind == KindDemand && r.Member == "m0" {
			withdrawn = r.Want == 0
		}
	}
	if !returned {
		t.Errorf("slot %v never reported returned", unused.Slot())
	}
	if !withdrawn {
		t.Error("the member's last demand is not a withdrawal")
	}
}

// TestRunRefusesProducerTimestamps: a topic without LogAppendTime stops Run at once.
func TestRunRefusesProducerTimestamps(t *testing.T) {
	t.Parallel()
	lc := newCluster(t, 1, false)
	topic := kafkatest.UniqueName(t, "ledger")
	kafkatest.CreateTopic(t, lc.seeds, topic, 1) // not stamped: CreateTime
	m, err := NewMember(lc.client(t), testMemberConfig(topic, "m0"), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Run(ctx); !errors.Is(err, ErrNotLogAppendTime) {
		t.Fatalf("Run on a CreateTime topic = %v, want ErrNotLogAppendTime", err)
	}
}

// TestProducerTimestampsAllowed: with AllowProducerTimestamps (budget.ledger.allowUnsafeTopic)
// a member runs on a topic whose records carry their producers' timestamps, as kfake's do,
// and grants flow and count as held.
func TestProducerTimestampsAllowed(t *testing.T) {
	t.Parallel()
	lc := newCluster(t, 1, false)
	topic := kafkatest.UniqueName(t, "ledger")
	kafkatest.CreateTopic(t, lc.seeds, topic, 1) // not stamped: CreateTime
	cfg := testMemberConfig(topic, "m0")
	cfg.AllowProducerTimestamps = true
	m := startMember(t, lc, cfg, testAccount)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for range 3 {
		c, err := m.Acquire(ctx, testAccount.Key, nil, nil)
		if err != nil {
			t.Fatalf("Acquire on a CreateTime topic with AllowProducerTimestamps: %v", err)
		}
		if _, ok := c.Start(); !ok {
			t.Fatal("a fresh claim cannot start")
		}
		c.Finish(UseFinished)
	}
	waitFor(t, 5*time.Second, "the finished claims held", func() bool { return m.Status(testAccount.Key).Used >= 3 })
	if err := m.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
}

func TestNewMemberRefusesUnsafeClients(t *testing.T) {
	seeds := []string{"127.0.0.1:1"}
	for _, tt := range []struct {
		name string
		opt  kgo.Opt
	}{
		{"leader acks", kgo.RequiredAcks(kgo.LeaderAck())},
		{"not idempotent", kgo.DisableIdempotentWrite()},
		{"consumer group", kgo.ConsumerGroup("g")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := []kgo.Opt{kgo.SeedBrokers(seeds...), tt.opt}
			if tt.name == "leader acks" {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if _, err := NewMember(cl, MemberConfig{ID: "m"}, nil); err == nil {
				t.Fatal("NewMember accepted the client")
			}
		})
	}
}

// TestTripwire: a 429 reported with Throttled reaches the sequencer through the ledger, and
// it grants nothing before the Retry-After has passed.
func TestTripwire(t *testing.T) {
	t.Parallel()
	lc := memberCluster(t)
	topic := lc.topic(t)
	seqM := startMember(t, lc, testMemberConfig(topic, "m0"), testAccount)
	waitReady(t, seqM)
	waitFor(t, 5*time.Second, "a sequencer", func() bool { _, who := sequencerOf([]*running{seqM}); return who == "m0" })
	other := startMember(t, lc, testMemberConfig(topic, "m1"), testAccount)
	waitReady(t, other)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	begin := time.Now()
	c, err := other.Acquire(ctx, testAccount.Key, nil, nil)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	before := time.Since(begin)
	c.Finish(UseFinished)
	const retryAfter = 1500 * time.Millisecond
	other.Throttled(testAccount.Key, retryAfter)
	thrown := time.Now()
	waitFor(t, 2*time.Second, "the tripwire read by the sequencer", func() bool {
		seqM.mu.Lock()
		defer seqM.mu.Unlock()
		return len(seqM.throttles) > 0
	})
	c, err = other.Acquire(ctx, testAccount.Key, nil, nil)
	if err != nil {
		t.Fatalf("Acquire after the 429: %v", err)
	}
	after := time.Since(thrown)
	c.Finish(UseFinished)
	t.Logf("a claim took %s before the 429, %s after it (Retry-After %s)", before.Round(time.Millisecond), after.Round(time.Millisecond), retryAfter)
	if after < retryAfter-100*time.Millisecond {
		t.Fatalf("granted %s after a 429 with Retry-After %s", after, retryAfter)
	}
}

// TestClockSkew: a member whose wall clock is ahead of the log by more than ε says so in
// Ready, publishes no demand (Acquire waits), and resumes once the clock agrees again.
func TestClockSkew(t *testing.T) {
	t.Parallel()
	lc := memberCluster(t)
	topic := lc.topic(t)
	var skew atomic.Int64
	skew.Store(int64(600 * time.Millisecond)) // > ε (250 ms)
	cfg := testMemberConfig(topic, "m0")
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	m := startMember(t, lc, cfg, testAccount)
	waitFor(t, 5*time.Second, "Ready reporting the skew", func() bool { return errors.Is(m.Ready(), ErrClockSkew) })
	t.Logf("Ready: %v", m.Ready())
	actx, acancel := context.WithTimeout(context.Background(), time.Second)
	defer acancel()
	if _, err := m.Acquire(actx, testAccount.Key, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with a skewed clock = %v, want to wait until the deadline", err)
	}
	skew.Store(0)
	waitReady(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := m.Acquire(ctx, testAccount.Key, nil, nil)
	if err != nil {
		t.Fatalf("Acquire once the clock agrees: %v", err)
	}
	c.Finish(UseReturned)
}

// TestGrantParams: the sequencer grants a tenant under the smallest limit and the largest
// timeout among the live demands and its own account, ignores stale demands and those of
// first-release members (no limit), and grants nothing without a live demand or any limit.
func TestGrantParams(t *testing.T) {
	cfg := MemberConfig{ID: "seq"}.withDefaults()
	demand := func(m string, want, limit int, timeout time.Duration) Record {
		return Record{Kind: KindDemand, Tenant: "t", Member: m, Want: want, Seen: -1, Limit: limit, Timeout: timeout}
	}
	type d struct {
		rec Record
		at  int64
	}
	tests := []struct {
		name    string
		demands []d
		own     *Account
		want    Params
		ok      bool
	}{
		{"one demand", []d{{demand("a", 2, 100, 5*time.Second), 1000}}, nil,
			Params{Limit: 100, RequestTimeout: 5 * time.Second}, true},
		{"smallest limit, largest timeout", []d{{demand("a", 2, 100, 5*time.Second), 1000}, {demand("b", 1, 60, 10*time.Second), 1000}}, nil,
			Params{Limit: 60, RequestTimeout: 10 * time.Second}, true},
		{"own account counts", []d{{demand("a", 2, 100, 5*time.Second), 1000}}, &Account{Key: "t", Limit: 30, RequestTimeout: time.Second},
			Params{Limit: 30, RequestTimeout: 5 * time.Second}, true},
		{"a withdrawn but live demand still limits", []d{{demand("a", 2, 100, time.Second), 1000}, {demand("b", 0, 50, time.Second), 1000}}, nil,
			Params{Limit: 50, RequestTimeout: time.Second}, true},
		{"stale demand ignored", []d{{demand("a", 2, 100, time.Second), 1000}, {demand("b", 3, 10, time.Second), -500}}, nil,
			Params{Limit: 100, RequestTimeout: time.Second}, true},
		{"first-release member has no opinion", []d{{demand("a", 2, 0, 0), 1000}, {demand("b", 1, 80, 0), 1000}}, nil,
			Params{Limit: 80, RequestTimeout: cfg.MaxRequestTimeout}, true},
		{"no live want", []d{{demand("a", 0, 100, time.Second), 1000}}, nil, Params{}, false},
		{"no limit known", []d{{demand("a", 2, 0, 0), 1000}}, nil, Params{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Member{cfg: cfg, st: NewState(), accounts: map[string]*account{}}
			if tt.own != nil {
				m.accounts["t"] = &account{Account: *tt.own}
			}
			for i, x := range tt.demands {
				m.st.Apply(x.rec, int64(i), x.at)
			}
			got, ok := m.grantParamsLocked("t", m.st.tenants["t"], 1000)
			if tt.ok {
				tt.want.ClaimValidity, tt.want.Epsilon = cfg.ClaimValidity, cfg.Epsilon
			}
			if ok != tt.ok || got != tt.want {
				t.Fatalf("grantParams = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
