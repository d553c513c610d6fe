package connector_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/api"
	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/augment-connector/augment-connector/internal/sim"
	"github.com/augment-connector/augment-connector/internal/sim/simtest"
	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// simTenant is the tenant every integration test writes to: its id at the simulator and its
// name in the connector's options.
const simTenant = "acme"

// opTimeout bounds each helper's round trip to Kafka so a wedged cluster fails, not hangs.
const opTimeout = 30 * time.Second

// apiEnv is a simulator reached over real HTTPS with a client that trusts only its CA.
type apiEnv struct {
	srv   *sim.Server
	url   string
	token string
	tls   *tls.Config
}

// startSim starts a simulator with cfg (its tenants replaced by simTenant with a random token,
// its journal large enough to keep every request of a test) and shuts it down at cleanup.
func startSim(t *testing.T, cfg sim.Config) *apiEnv {
	t.Helper()
	token := rand.Text()
	cfg.Tenants = []sim.Tenant{{ID: simTenant, Token: token}}
	if cfg.JournalSize == 0 {
		cfg.JournalSize = 500_000
	}
	s, url := simtest.Start(t, cfg)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM()) {
		t.Fatal("simulator gave no CA certificate")
	}
	return &apiEnv{srv: s, url: url, token: token, tls: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
}

// tenantOptions reach the simulator; the budget is far above what a test sends, since the
// simulator's own limit is off.
func (e *apiEnv) tenantOptions() connector.TenantOptions {
	return connector.TenantOptions{
		BaseURL:           e.url,
		TenantID:          simTenant,
		Token:             e.token,
		RequestsPerMinute: 200_000,
		Concurrency:       16,
		TLS:               e.tls.Clone(),
	}
}

// state returns the variables (name to value) of every interaction that has any.
func (e *apiEnv) state() map[string]map[string]string {
	out := make(map[string]map[string]string)
	for _, s := range e.srv.Interactions() {
		ia, ok := e.srv.Interaction(s.Tenant, s.InteractionID)
		if !ok || len(ia.Variables) == 0 {
			continue
		}
		m := make(map[string]string, len(ia.Variables))
		for _, v := range ia.Variables {
			m[v.Name] = v.Value
		}
		out[s.InteractionID] = m
	}
	return out
}

// checkState compares the simulator's state with want, reporting the first few identifiers
// that differ rather than a diff of thousands.
func checkState(t *testing.T, what string, want, got map[string]map[string]string) {
	t.Helper()
	var ids []string
	for id := range want {
		ids = append(ids, id)
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	bad := 0
	for _, id := range ids {
		if diff := cmp.Diff(want[id], got[id]); diff != "" {
			if bad++; bad <= 5 {
				t.Errorf("%s: identifier %q (-want +got):\n%s", what, id, diff)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d identifiers differ", what, bad, len(ids))
	}
}

// written returns, per identifier, the highest _seq carried by a successful write in entries.
func written(entries []sim.Entry) map[string]int {
	out := make(map[string]int)
	for _, e := range entries {
		if e.Method != "POST" || e.Status != 200 {
			continue
		}
		if s, ok := seqOf(e.Variables); ok && s > out[e.Identifier] {
			out[e.Identifier] = s
		}
	}
	return out
}

// seqOf returns the value of _seq among vars.
func seqOf(vars []api.Variable) (int, bool) {
	for _, v := range vars {
		if v.Name == "_seq" {
			n, err := strconv.Atoi(v.Value)
			return n, err == nil
		}
	}
	return 0, false
}

// checkJournal asserts what every test's journal must show: no request with more than 50
// variables and, when ordered, that each identifier's successful writes carry strictly
// increasing _seq values (they reach the API in partition order).
func checkJournal(t *testing.T, entries []sim.Entry, ordered bool) {
	t.Helper()
	last := make(map[string]int)
	bad := 0
	for _, e := range entries {
		if len(e.Variables) > api.MaxVariablesPerRequest {
			t.Errorf("journal entry %d (%s) carries %d variables, more than %d", e.Seq, e.Identifier, len(e.Variables), api.MaxVariablesPerRequest)
		}
		if !ordered || e.Method != "POST" || e.Status != 200 {
			continue
		}
		s, ok := seqOf(e.Variables)
		if !ok {
			continue // the tail of a record split across requests
		}
		if prev, seen := last[e.Identifier]; seen && s <= prev && bad < 10 {
			bad++
			t.Errorf("identifier %q: write %d carries _seq %d after a write with _seq %d", e.Identifier, e.Seq, s, prev)
		}
		last[e.Identifier] = s
	}
}

// checkCommittedWritten asserts invariant 1 from outside: every record below a committed
// offset was written, so its identifier has a successful write carrying its _seq or a later
// one. recs[i] is evs[i] as produced. It returns how many records the check covered.
func checkCommittedWritten(t *testing.T, recs []*kgo.Record, evs []callEvent, committed map[int32]int64, journal []sim.Entry) int {
	t.Helper()
	seen := written(journal)
	var covered, missing int
	for i, rec := range recs {
		if c, ok := committed[rec.Partition]; !ok || rec.Offset >= c {
			continue
		}
		covered++
		if seen[evs[i].ID] < evs[i].Seq {
			if missing++; missing <= 10 {
				t.Errorf("record %d/%d (%s _seq %d) is below the committed offset %d, but the last write of its identifier carries _seq %d",
					rec.Partition, rec.Offset, evs[i].ID, evs[i].Seq, committed[rec.Partition], seen[evs[i].ID])
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d committed records were never written", missing, covered)
	}
	return covered
}

// wideVars is how many _wNN variables a wide event carries: more than one request may, so a
// wide record is split.
const wideVars = 60

// callEvent is one change of a call's variables, produced as JSON keyed by its identifier.
type callEvent struct {
	ID      string
	Seq     int // 1, 2, ... per identifier, in produce order
	Tier    string
	Balance string
	Wide    bool // also carries _w01.._w60
}

// callID names identifier i: every fourth is a SIP Call-ID, the rest platform ids.
func callID(i int) string {
	if i%4 == 0 {
		return fmt.Sprintf("%08x%04x@pc%02d.example.com", uint32(i)*2654435761, i, i%17)
	}
	return fmt.Sprintf("int-%05d", i)
}

// genEvents returns n events over ids identifiers, deterministic for a seed.
func genEvents(seed uint64, n, ids int) []callEvent {
	rng := mrand.New(mrand.NewPCG(seed, seed^0x5bd1e995))
	tiers := []string{"bronze", "silver", "gold", "platinum"}
	seq := make([]int, ids)
	out := make([]callEvent, n)
	for k := range out {
		i := rng.IntN(ids)
		seq[i]++
		out[k] = callEvent{
			ID:      callID(i),
			Seq:     seq[i],
			Tier:    tiers[rng.IntN(len(tiers))],
			Balance: fmt.Sprintf("%d.%02d", rng.IntN(100_000), rng.IntN(100)),
			Wide:    rng.IntN(10) == 0,
		}
	}
	return out
}

// vars are the variables the call pipeline must make of ev.
func (ev callEvent) vars() map[string]string {
	m := map[string]string{"_tier": ev.Tier, "_balance": ev.Balance, "_seq": strconv.Itoa(ev.Seq)}
	if ev.Wide {
		for j := 1; j <= wideVars; j++ {
			m[fmt.Sprintf("_w%02d", j)] = fmt.Sprintf("%d-%d", ev.Seq, j)
		}
	}
	return m
}

func (ev callEvent) value() []byte {
	v := map[string]any{"id": ev.ID, "seq": ev.Seq, "tier": ev.Tier, "balance": ev.Balance}
	if ev.Wide {
		for j := 1; j <= wideVars; j++ {
			v[fmt.Sprintf("w%02d", j)] = fmt.Sprintf("%d-%d", ev.Seq, j)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // a map of strings and ints always marshals
	}
	return b
}

// records makes the Kafka records of evs, keyed by identifier so one identifier stays on one
// partition.
func records(topic string, evs []callEvent) []*kgo.Record {
	out := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		out[i] = &kgo.Record{Topic: topic, Key: []byte(ev.ID), Value: ev.value()}
	}
	return out
}

// expectedState folds evs, independently of the connector: per identifier, the last value of
// each name.
func expectedState(evs []callEvent) map[string]map[string]string {
	out := make(map[string]map[string]string)
	for _, ev := range evs {
		m := out[ev.ID]
		if m == nil {
			m = make(map[string]string)
			out[ev.ID] = m
		}
		for k, v := range ev.vars() {
			m[k] = v
		}
	}
	return out
}

// callPipeline is the JSON pipeline of the call events: identifier after.id; _tier, _balance,
// _seq, an optional _note and the optional _w01.._w60.
func callPipeline(t *testing.T, name string, topics ...string) connector.Pipeline {
	t.Helper()
	spec := transform.Spec{
		Name:       name,
		Identifier: "after.id",
		Variables: []transform.VariableSpec{
			{Name: "_tier", Value: "after.tier", IVR: transform.Attr{Literal: true}, DataType: transform.Attr{Literal: "text"}},
			{Name: "_balance", Value: "after.balance", Display: transform.Attr{Literal: true}, DataType: transform.Attr{Literal: "currency"}},
			{Name: "_seq", Value: "after.seq", DataType: transform.Attr{Literal: "number"}},
			{Name: "_note", Value: "after.note"},
		},
	}
	for j := 1; j <= wideVars; j++ {
		spec.Variables = append(spec.Variables, transform.VariableSpec{Name: fmt.Sprintf("_w%02d", j), Value: fmt.Sprintf("after.w%02d", j)})
	}
	p, err := transform.Compile(spec)
	if err != nil {
		t.Fatalf("compiling pipeline: %v", err)
	}
	return connector.Pipeline{Name: name, Topics: topics, Tenant: simTenant, Decoder: schemas.NewJSONDecoder(), Transform: p}
}

// cluster is a Kafka cluster and one client to administer it, produce to it and read its
// offsets (one client for every poll of a test, not one per poll).
type cluster struct {
	t    *testing.T
	opts []kgo.Opt // how to reach it: seeds, and TLS and SASL when it needs them
	cl   *kgo.Client
	adm  *kadm.Client
}

// owners returns the partitions each member of group owns, by client id, and whether the
// group is stable. It asks with the API of the group's protocol (KAFKA_GROUP_PROTOCOL):
// DescribeGroups for a classic group, ConsumerGroupDescribe for a KIP-848 one, where a member
// owns a partition once its assignment has reached its target.
func (c *cluster) owners(group string) (map[string][]int32, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	out := map[string][]int32{}
	if len(kafkatest.GroupOpts(c.t)) > 0 {
		groups, err := c.adm.DescribeConsumerGroups(ctx, group)
		if err != nil {
			return nil, false
		}
		g, ok := groups[group]
		if !ok || g.Err != nil || g.State != "Stable" {
			return nil, false
		}
		for _, m := range g.Members {
			if !maps.EqualFunc(m.Assignment, m.TargetAssignment, func(a, b map[int32]struct{}) bool { return maps.Equal(a, b) }) {
				return nil, false
			}
			for _, ps := range m.Assignment {
				for p := range ps {
					out[m.ClientID] = append(out[m.ClientID], p)
				}
			}
			if _, ok := out[m.ClientID]; !ok {
				out[m.ClientID] = nil
			}
		}
		return out, true
	}
	groups, err := c.adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, false
	}
	g, ok := groups[group]
	if !ok || g.State != "Stable" {
		return nil, false
	}
	for _, m := range g.Members {
		as, ok := m.Assigned.AsConsumer()
		if !ok {
			return nil, false
		}
		out[m.ClientID] = nil
		for _, tp := range as.Topics {
			out[m.ClientID] = append(out[m.ClientID], tp.Partitions...)
		}
	}
	return out, true
}

func newCluster(t *testing.T, opts ...kgo.Opt) *cluster {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("creating kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	// The connectors the test starts join their group with the protocol KAFKA_GROUP_PROTOCOL
	// names; the group options are ignored by clients without a group.
	opts = append(slices.Clone(opts), kafkatest.GroupOpts(t)...)
	return &cluster{t: t, opts: opts, cl: cl, adm: kadm.NewClient(cl)}
}

// plainCluster is kafkatest.Brokers: kfake, or the broker of KAFKA_BROKERS.
func plainCluster(t *testing.T) *cluster {
	t.Helper()
	return newCluster(t, kgo.SeedBrokers(kafkatest.Brokers(t)...))
}

func (c *cluster) createTopic(topic string, partitions int32) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	err := kafkatest.Retry(ctx, func() error {
		resp, err := c.adm.CreateTopic(ctx, partitions, -1, nil, topic)
		if err != nil {
			return err
		}
		return resp.Err
	})
	if err != nil {
		c.t.Fatalf("creating topic %q: %v", topic, err)
	}
}

// produce produces recs in order and waits for every acknowledgement; each record's Partition
// and Offset are set on return.
func (c *cluster) produce(recs []*kgo.Record) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	const batch = 2000
	for i := 0; i < len(recs); i += batch {
		if err := c.cl.ProduceSync(ctx, recs[i:min(i+batch, len(recs))]...).FirstErr(); err != nil {
			c.t.Fatalf("producing records: %v", err)
		}
	}
}

// committedErr returns group's committed offsets of topic's partitions that have one.
func (c *cluster) committedErr(group, topic string) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return kafkatest.FetchCommitted(ctx, c.adm, group, topic)
}

func (c *cluster) committed(group, topic string) map[int32]int64 {
	c.t.Helper()
	m, err := c.committedErr(group, topic)
	if err != nil {
		c.t.Fatalf("fetching offsets of group %q: %v", group, err)
	}
	return m
}

// end returns the end offset of each partition of topic.
func (c *cluster) end(topic string) map[int32]int64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	out, err := kafkatest.ListEnd(ctx, c.adm, topic)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// caughtUp reports whether committed reaches end on every partition with records.
func caughtUp(committed, end map[int32]int64) bool {
	for p, e := range end {
		if e > 0 && committed[p] != e {
			return false
		}
	}
	return true
}

// waitCommitted waits until group's committed offsets equal topic's end offsets, failing the
// test at the timeout or as soon as one of the connectors stops.
func (c *cluster) waitCommitted(group, topic string, timeout time.Duration, running ...*runner) {
	c.t.Helper()
	end := c.end(topic)
	deadline := time.Now().Add(timeout)
	var committed map[int32]int64
	var err error
	for {
		committed, err = c.committedErr(group, topic)
		if err == nil && caughtUp(committed, end) {
			return
		}
		for _, r := range running {
			select {
			case <-r.exited:
				c.t.Fatalf("connector stopped before committing everything (committed %v, end %v): %v", committed, end, r.err)
			default:
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("after %s: committed %v, end %v (last error: %v)", timeout, committed, end, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readTopic reads topic from its start until it has n records or the timeout passes.
func (c *cluster) readTopic(topic string, n int, timeout time.Duration) []*kgo.Record {
	c.t.Helper()
	cl, err := kgo.NewClient(append(slices.Clone(c.opts), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		c.t.Fatalf("creating consumer: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			c.t.Fatalf("reading %s: got %d records of %d after %s", topic, len(out), n, timeout)
		}
		fs.EachError(func(_ string, _ int32, err error) { c.t.Logf("reading %s: %v", topic, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// runner is a connector running in a goroutine.
type runner struct {
	c      *connector.Connector
	cancel context.CancelFunc
	exited chan struct{} // closed when Run returned; err is set then
	err    error
}

// startConnector creates a connector with opts and runs it until stop or the test's cleanup.
func startConnector(t *testing.T, opts connector.Options) *runner {
	t.Helper()
	c, err := connector.New(opts)
	if err != nil {
		t.Fatalf("creating connector: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{c: c, cancel: cancel, exited: make(chan struct{})}
	go func() {
		defer close(r.exited)
		r.err = c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.exited:
		case <-time.After(time.Minute):
			t.Error("connector did not stop within a minute of its cleanup")
		}
	})
	return r
}

// stop cancels Run and returns its error, failing the test if Run takes longer than within.
func (r *runner) stop(t *testing.T, within time.Duration) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.exited:
		return r.err
	case <-time.After(within):
		t.Fatalf("Run did not return within %s of the cancel", within)
		return nil
	}
}

// baseOptions are the options every test starts from: a quick commit interval and heartbeat,
// one JSON pipeline, the simulator's tenant.
func baseOptions(t *testing.T, k *cluster, group string, e *apiEnv, pls ...connector.Pipeline) connector.Options {
	return connector.Options{
		KafkaOpts:       append(slices.Clone(k.opts), kgo.FetchMaxWait(100*time.Millisecond), kgo.HeartbeatInterval(500*time.Millisecond)),
		Group:           group,
		Pipelines:       pls,
		Tenants:         map[string]connector.TenantOptions{simTenant: e.tenantOptions()},
		CommitInterval:  100 * time.Millisecond,
		ShutdownTimeout: 10 * time.Second,
		RevokeGrace:     2 * time.Second,
		Logger:          zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)),
	}
}

// waitFor polls cond every 10ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sum adds up the values of m.
func sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
