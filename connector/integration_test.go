package connector_test

// Integration tests: the connector against a Kafka cluster (kfake, or the real broker of
// KAFKA_BROKERS) and the API simulator over HTTPS. Each checks the outcome against an
// expectation computed by the test itself, and the invariants of docs/DESIGN.md that show
// from outside: offsets committed only past written records, per-identifier order, at most 50
// variables a request, nothing lost across a rebalance, a shutdown or a blocked tenant.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/api"
	"github.com/augment-connector/augment-connector/internal/app"
	"github.com/augment-connector/augment-connector/internal/config"
	"github.com/augment-connector/augment-connector/internal/demo"
	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/augment-connector/augment-connector/internal/sim"
	"github.com/augment-connector/augment-connector/internal/workload"
)

func TestIntegrationEndToEnd(t *testing.T) {
	k := plainCluster(t)
	e := startSim(t, sim.Config{AutoCreate: true})
	topic := kafkatest.UniqueName(t, "calls")
	group := kafkatest.UniqueName(t, "group")
	k.createTopic(topic, 6)

	const events, ids = 20_000, 2_000
	evs := genEvents(1, events, ids)
	recs := records(topic, evs)
	k.produce(recs)
	// The keying the test relies on: one identifier, one partition; every partition used.
	partOf := make(map[string]int32)
	for _, r := range recs {
		id := string(r.Key)
		if p, ok := partOf[id]; ok && p != r.Partition {
			t.Fatalf("identifier %q produced to partitions %d and %d", id, p, r.Partition)
		}
		partOf[id] = r.Partition
	}
	if end := k.end(topic); len(end) != 6 || sum(end) != events {
		t.Fatalf("end offsets %v, want 6 partitions holding %d records", end, events)
	}

	r := startConnector(t, baseOptions(t, k, group, e, callPipeline(t, "calls", topic)))
	k.waitCommitted(group, topic, 60*time.Second, r)
	if err := r.stop(t, 15*time.Second); err != nil {
		t.Fatalf("Run returned %v after a graceful shutdown, want nil", err)
	}

	want := expectedState(evs)
	checkState(t, "final state", want, e.state())
	if diff := cmp.Diff(k.end(topic), k.committed(group, topic)); diff != "" {
		t.Errorf("committed offsets differ from end offsets (-end +committed):\n%s", diff)
	}

	journal := e.srv.Journal(0)
	simStats := e.srv.Stats()
	if uint64(len(journal)) != simStats.Total {
		t.Fatalf("journal holds %d of %d requests; the checks below need all", len(journal), simStats.Total)
	}
	checkJournal(t, journal, true)
	var varsSent uint64
	wide := 0
	for _, en := range journal {
		if en.Method != "POST" || en.Status != 200 {
			t.Errorf("journal entry %d: %s %s answered %d (%s); want only successful POSTs", en.Seq, en.Method, en.Identifier, en.Status, en.Message)
		}
		varsSent += uint64(len(en.Variables))
		if len(en.Variables) == api.MaxVariablesPerRequest {
			wide++
		}
	}
	if wide == 0 {
		t.Error("no request carried 50 variables: the wide records were never split, so the 50-variable check proved nothing")
	}
	if varsSent != simStats.VariablesSet {
		t.Errorf("journal carries %d variables, simulator counted %d set", varsSent, simStats.VariablesSet)
	}
	if n := len(journal); n < len(want) || n >= events {
		t.Errorf("%d requests for %d events over %d identifiers: want at least one per identifier and fewer than one per event (coalescing)", n, events, len(want))
	}

	st := r.c.Stats()
	wantStats := connector.Stats{Consumed: events, Done: events, Committed: st.Committed}
	if diff := cmp.Diff(wantStats, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if st.Committed == 0 {
		t.Error("stats count no successful commit")
	}
	t.Logf("%d events, %d identifiers: %d requests, %d variables, %d commits", events, len(want), len(journal), varsSent, st.Committed)
}

func TestIntegrationAvroRegistry(t *testing.T) {
	k := plainCluster(t)
	e := startSim(t, sim.Config{AutoCreate: true})
	reg := srfake.New()
	t.Cleanup(reg.Close)
	srCl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}

	wopts := workload.DefaultOptions()
	wopts.Framing = workload.FramingConfluent
	wopts.CustomersTopic = kafkatest.UniqueName(t, "customers")
	wopts.OrdersTopic = kafkatest.UniqueName(t, "orders")
	wopts.FlatTopic = kafkatest.UniqueName(t, "flat")
	wopts.Tombstones = true
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if wopts.IDs, err = workload.Register(ctx, srCl, wopts); err != nil {
		t.Fatalf("registering schemas: %v", err)
	}
	for _, topic := range []string{wopts.CustomersTopic, wopts.OrdersTopic, wopts.FlatTopic} {
		k.createTopic(topic, 6)
	}

	// The demo's own configuration and pipelines, pointed at this test's topics, group and
	// simulator.
	cfg, err := demo.Config(demo.ConfigValues{
		Brokers: "127.0.0.1:1", Registry: reg.URL(), API: e.url,
		TenantID: simTenant, Token: e.token, RequestsPerMinute: 200_000,
	})
	if err != nil {
		t.Fatalf("loading the demo config: %v", err)
	}
	group := kafkatest.UniqueName(t, "group")
	cfg.Kafka.GroupID = group
	cfg.DeadLetter.Topic = kafkatest.UniqueName(t, "dlq")
	for i := range cfg.Pipelines {
		switch cfg.Pipelines[i].Name {
		case "customers":
			cfg.Pipelines[i].Topics = []string{wopts.CustomersTopic, wopts.FlatTopic}
		case "orders":
			cfg.Pipelines[i].Topics = []string{wopts.OrdersTopic}
		default:
			t.Fatalf("unexpected demo pipeline %q", cfg.Pipelines[i].Name)
		}
	}
	compiled, err := app.Compile(cfg)
	if err != nil {
		t.Fatalf("compiling the demo config: %v", err)
	}
	opts, err := compiled.Options(zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)))
	if err != nil {
		t.Fatalf("building options: %v", err)
	}
	opts.KafkaOpts = append(slices.Clone(k.opts), kgo.FetchMaxWait(100*time.Millisecond))
	opts.CommitInterval = 100 * time.Millisecond
	if len(opts.Tenants) != 1 {
		t.Fatalf("demo config has %d tenants, want 1", len(opts.Tenants))
	}
	for name, to := range opts.Tenants {
		to.TLS = e.tls.Clone() // the demo serves plain HTTP; this simulator speaks HTTPS
		opts.Tenants[name] = to
	}

	gen, err := workload.NewGenerator(7, wopts)
	if err != nil {
		t.Fatal(err)
	}
	const events = 5_000
	evs := gen.Generate(events)
	recs := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		recs[i] = &kgo.Record{Topic: ev.Topic, Key: ev.Key, Value: ev.Value}
	}
	k.produce(recs)

	r := startConnector(t, opts)
	for _, topic := range []string{wopts.CustomersTopic, wopts.OrdersTopic} {
		k.waitCommitted(group, topic, 60*time.Second, r)
	}
	if err := r.stop(t, 15*time.Second); err != nil {
		t.Fatalf("Run returned %v after a graceful shutdown, want nil", err)
	}

	want := workload.FinalState(evs)
	for id, vars := range want {
		if len(vars) == 0 {
			delete(want, id) // nothing to write, so no interaction
		}
	}
	checkState(t, "final state vs workload.FinalState", want, e.state())
	for _, topic := range []string{wopts.CustomersTopic, wopts.OrdersTopic} {
		if diff := cmp.Diff(k.end(topic), k.committed(group, topic)); diff != "" {
			t.Errorf("%s: committed offsets differ from end offsets (-end +committed):\n%s", topic, diff)
		}
	}
	checkJournal(t, e.srv.Journal(0), false)
	st := r.c.Stats()
	if st.Consumed != events || st.Done != events || st.DeadLettered != 0 {
		t.Errorf("stats %+v: want %d consumed and done, none dead-lettered", st, events)
	}
	var writes int64
	for _, ev := range evs {
		if ev.Identifier != "" && len(ev.Vars) > 0 {
			writes++
		}
	}
	if got := st.Done - st.Filtered - st.Skipped; got != writes {
		t.Errorf("%d records were written (done - filtered - skipped), the model says %d", got, writes)
	}
	t.Logf("%d events: %d written, %d filtered, %d skipped, %d interactions", events, writes, st.Filtered, st.Skipped, len(want))
}

// poison is a record that can never be written, and what its dead letter must say.
type poison struct {
	key, value []byte
	class      string
	msg        string // a part of the error message
	rec        *kgo.Record
}

func TestIntegrationDeadLetters(t *testing.T) {
	k := plainCluster(t)
	e := startSim(t, sim.Config{}) // no AutoCreate: an unknown identifier gets a 404
	topic := kafkatest.UniqueName(t, "calls")
	dlq := kafkatest.UniqueName(t, "dlq")
	group := kafkatest.UniqueName(t, "group")
	k.createTopic(topic, 1)

	good := genEvents(3, 40, 5)
	for id := range expectedState(good) {
		if err := e.srv.CreateInteraction(simTenant, api.Interaction{InteractionID: id}); err != nil {
			t.Fatal(err)
		}
	}
	long := fmt.Sprintf(`{"id":%q,"tier":"gold","seq":1000,"note":%q}`, good[0].ID, strings.Repeat("n", api.MaxValueLen+1))
	poisons := []*poison{
		{key: []byte(good[1].ID), value: []byte(`{"id":"` + good[1].ID + `","tier":`), class: "decode", msg: "decoding JSON"},
		{key: []byte(good[0].ID), value: []byte(long), class: "transform", msg: "variables[_note].value: invalid: must be at most 1000 characters"},
		{key: []byte("nested"), value: []byte(`{"id":{"nested":true},"tier":"gold","seq":1}`), class: "transform", msg: "identifier"},
		{key: []byte("ghost@pc9.example.com"), value: []byte(`{"id":"ghost@pc9.example.com","tier":"gold","seq":1}`), class: "not_found", msg: api.MsgNotFound},
	}
	var recs []*kgo.Record
	for i := range good {
		recs = append(recs, records(topic, good[i:i+1])...)
		if i%10 == 4 {
			p := poisons[i/10]
			p.rec = &kgo.Record{Topic: topic, Key: p.key, Value: p.value, Headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte("poison-" + strconv.Itoa(i/10))}}}
			recs = append(recs, p.rec)
		}
	}
	k.produce(recs)

	opts := baseOptions(t, k, group, e, callPipeline(t, "calls", topic))
	opts.DeadLetterTopic = dlq
	to := opts.Tenants[simTenant]
	// The grace counts from the records' timestamps, and they were produced before the
	// connector starts: it must outlast the start-up (joining the group on a real broker takes
	// seconds), or the ghost's first 404 is already final.
	to.NotFoundGrace = 10 * time.Second
	opts.Tenants[simTenant] = to
	r := startConnector(t, opts)
	k.waitCommitted(group, topic, 30*time.Second, r)
	if err := r.stop(t, 15*time.Second); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}

	checkState(t, "good records", expectedState(good), e.state())
	if diff := cmp.Diff(k.end(topic), k.committed(group, topic)); diff != "" {
		t.Errorf("committed offsets differ from end offsets (-end +committed):\n%s", diff)
	}
	if n := sum(k.end(dlq)); n != int64(len(poisons)) {
		t.Errorf("dead-letter topic holds %d records, want %d", n, len(poisons))
	}
	byOffset := make(map[string]*kgo.Record)
	for _, d := range k.readTopic(dlq, len(poisons), 20*time.Second) {
		h := headers(d)
		byOffset[h[connector.HeaderOffset]] = d
	}
	for i, p := range poisons {
		d := byOffset[strconv.FormatInt(p.rec.Offset, 10)]
		if d == nil {
			t.Errorf("poison %d (offset %d, %s): no dead letter", i, p.rec.Offset, p.class)
			continue
		}
		if string(d.Key) != string(p.key) || string(d.Value) != string(p.value) {
			t.Errorf("poison %d: dead letter key %q value %.60q, want the original %q %.60q", i, d.Key, d.Value, p.key, p.value)
		}
		h := headers(d)
		wantH := map[string]string{
			"trace-id":                      "poison-" + strconv.Itoa(i),
			connector.HeaderTopic:           topic,
			connector.HeaderPartition:       strconv.Itoa(int(p.rec.Partition)),
			connector.HeaderOffset:          strconv.FormatInt(p.rec.Offset, 10),
			connector.HeaderSourceTimestamp: strconv.FormatInt(p.rec.Timestamp.UnixMilli(), 10),
			connector.HeaderPipeline:        "calls",
			connector.HeaderClass:           p.class,
			connector.HeaderMessage:         h[connector.HeaderMessage],
		}
		if diff := cmp.Diff(wantH, h); diff != "" {
			t.Errorf("poison %d: dead-letter headers (-want +got):\n%s", i, diff)
		}
		if !strings.Contains(h[connector.HeaderMessage], p.msg) {
			t.Errorf("poison %d: error message %q does not contain %q", i, h[connector.HeaderMessage], p.msg)
		}
		if strings.Contains(h[connector.HeaderMessage], e.token) {
			t.Errorf("poison %d: error message holds the action token", i)
		}
	}
	// The unknown interaction was retried within its not-found window before its dead letter.
	var ghost404 int
	for _, en := range e.srv.Journal(0) {
		if en.Identifier == "ghost@pc9.example.com" && en.Status == 404 {
			ghost404++
		}
	}
	if ghost404 < 2 {
		t.Errorf("the unknown interaction was tried %d times, want retries within the not-found window", ghost404)
	}
	st := r.c.Stats()
	if st.DeadLettered != int64(len(poisons)) || st.Done != int64(len(recs)) || st.Consumed != int64(len(recs)) {
		t.Errorf("stats %+v: want %d consumed and done, %d dead-lettered", st, len(recs), len(poisons))
	}
	checkJournal(t, e.srv.Journal(0), true)
}

func headers(r *kgo.Record) map[string]string {
	m := make(map[string]string, len(r.Headers))
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

func TestIntegrationNoDeadLetterTopicStops(t *testing.T) {
	k := plainCluster(t)
	e := startSim(t, sim.Config{AutoCreate: true})
	topic := kafkatest.UniqueName(t, "calls")
	group := kafkatest.UniqueName(t, "group")
	k.createTopic(topic, 1)

	evs := genEvents(4, 30, 5)
	recs := records(topic, evs[:20])
	k.produce(recs)
	r := startConnector(t, baseOptions(t, k, group, e, callPipeline(t, "calls", topic)))
	// Everything before the poison record is written and committed first, so the commit
	// after the failure shows exactly where the connector stopped.
	k.waitCommitted(group, topic, 30*time.Second, r)
	bad := &kgo.Record{Topic: topic, Key: []byte(evs[20].ID), Value: []byte(`{"id":`)}
	k.produce(append([]*kgo.Record{bad}, records(topic, evs[20:])...))
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop on a record it cannot write without a dead-letter topic")
	}
	if !errors.Is(r.err, connector.ErrNoDeadLetterTopic) {
		t.Fatalf("Run returned %v, want an error wrapping ErrNoDeadLetterTopic", r.err)
	}
	if strings.Contains(r.err.Error(), e.token) {
		t.Error("the error holds the action token")
	}
	// Every record before the poison one was committed before it arrived; nothing after it
	// may be, whatever was written.
	committed := k.committed(group, topic)
	if c := committed[bad.Partition]; c != bad.Offset {
		t.Errorf("committed offset %d, want %d: the poison record's own offset, never past it", c, bad.Offset)
	}
	t.Logf("stopped with %v; committed %v, poison at %d", r.err, committed, bad.Offset)
}

func TestIntegrationRebalance(t *testing.T) {
	k := plainCluster(t)
	// Latency keeps the run going long enough to stop one instance in the middle of it.
	e := startSim(t, sim.Config{AutoCreate: true, Faults: sim.Faults{Latency: 10 * time.Millisecond}})
	topic := kafkatest.UniqueName(t, "calls")
	group := kafkatest.UniqueName(t, "group")
	k.createTopic(topic, 6)
	evs := genEvents(5, 10_000, 1_000)
	recs := records(topic, evs)
	k.produce(recs)

	options := func(clientID string) connector.Options {
		o := baseOptions(t, k, group, e, callPipeline(t, "calls", topic))
		o.KafkaOpts = append(o.KafkaOpts, kgo.ClientID(clientID))
		to := o.Tenants[simTenant]
		to.Concurrency = 2
		o.Tenants[simTenant] = to
		return o
	}
	// A shutdown that gives up on its backlog quickly, so A leaves work behind for B.
	optsA := options("conn-a")
	optsA.ShutdownTimeout = 200 * time.Millisecond
	a := startConnector(t, optsA)
	waitFor(t, 30*time.Second, "the first instance to consume", func() bool { return a.c.Stats().Consumed > 0 })
	b := startConnector(t, options("conn-b"))

	// Wait until the group is stable with both members owning partitions, and learn A's.
	var aParts []int32
	waitFor(t, 30*time.Second, "both instances to own partitions", func() bool {
		owners, ok := k.owners(group)
		if !ok || len(owners) != 2 {
			return false
		}
		owned := 0
		for client, parts := range owners {
			if len(parts) == 0 {
				return false
			}
			owned += len(parts)
			if client == "conn-a" {
				aParts = parts
			}
		}
		return owned == 6 && b.c.Stats().Consumed > 0
	})
	if err := a.stop(t, 20*time.Second); err != nil {
		t.Fatalf("stopping the first instance: Run returned %v, want nil", err)
	}
	atStop := k.committed(group, topic)
	checkCommittedWritten(t, recs, evs, atStop, e.srv.Journal(0))
	end := k.end(topic)
	var left int64
	for _, p := range aParts {
		left += end[p] - atStop[p]
	}
	if left == 0 {
		t.Fatalf("the first instance's partitions %v were all committed when it stopped (%v of %v): nothing was left to take over; slow the run down", aParts, atStop, end)
	}
	// The rest need not be slow.
	if _, err := e.srv.PatchFaults(sim.FaultPatch{Reset: true}); err != nil {
		t.Fatal(err)
	}

	k.waitCommitted(group, topic, 60*time.Second, b)
	if err := b.stop(t, 15*time.Second); err != nil {
		t.Fatalf("stopping the second instance: Run returned %v, want nil", err)
	}
	checkState(t, "final state", expectedState(evs), e.state())
	if diff := cmp.Diff(end, k.committed(group, topic)); diff != "" {
		t.Errorf("committed offsets differ from end offsets (-end +committed):\n%s", diff)
	}
	if got := b.c.Stats().Consumed; got < left {
		t.Errorf("the second instance consumed %d records, fewer than the %d left on the first one's partitions", got, left)
	}
	checkJournal(t, e.srv.Journal(0), false)
	t.Logf("A owned %v; %d records left on them at its stop (committed %v); B consumed %d", aParts, left, atStop, b.c.Stats().Consumed)
}

func TestIntegrationTenantBlocked(t *testing.T) {
	k := plainCluster(t)
	e := startSim(t, sim.Config{AutoCreate: true})
	topic := kafkatest.UniqueName(t, "calls")
	group := kafkatest.UniqueName(t, "group")
	k.createTopic(topic, 3)
	evs := genEvents(6, 1_200, 150)
	k.produce(records(topic, evs[:600]))

	const probe = 200 * time.Millisecond
	opts := baseOptions(t, k, group, e, callPipeline(t, "calls", topic))
	to := opts.Tenants[simTenant]
	to.BlockedProbeInterval = probe
	to.Concurrency = 4
	opts.Tenants[simTenant] = to
	r := startConnector(t, opts)
	k.waitCommitted(group, topic, 30*time.Second, r)
	if ok, why := r.c.Ready(); !ok {
		t.Fatalf("Ready() = false %v before any fault", why)
	}
	end1 := k.end(topic)

	if _, err := e.srv.PatchFaults(sim.FaultPatch{Revoke: simTenant}); err != nil {
		t.Fatal(err)
	}
	mark := e.srv.Stats().JournalLastSeq
	k.produce(records(topic, evs[600:]))
	waitFor(t, 10*time.Second, "Ready() to report the blocked tenant", func() bool { ok, _ := r.c.Ready(); return !ok })
	blockedAt := time.Now()
	_, why := r.c.Ready()
	if len(why) != 1 || !strings.Contains(why[0], simTenant) || strings.Contains(why[0], e.token) {
		t.Errorf("Ready() reasons %q: want one naming the tenant, without its token", why)
	}
	// While blocked nothing new is written, so nothing new may be committed.
	for i := 0; i < 10; i++ {
		time.Sleep(100 * time.Millisecond)
		if diff := cmp.Diff(end1, k.committed(group, topic)); diff != "" {
			t.Fatalf("committed offsets moved while the tenant was blocked (-before +now):\n%s", diff)
		}
		if ok, _ := r.c.Ready(); ok {
			t.Fatal("Ready() reported true while the tenant was still refused")
		}
	}
	blockedFor := time.Since(blockedAt)
	var refused int
	for _, en := range e.srv.Journal(mark) {
		switch en.Status {
		case 200:
			t.Errorf("journal entry %d: a write succeeded while the tenant was revoked", en.Seq)
		case 401:
			refused++
		}
	}
	// Blocked, the tenant sends nothing new; only the requests already in flight probe, each
	// once per probe interval.
	if limit := to.Concurrency * (int(blockedFor/probe) + 3); refused > limit {
		t.Errorf("%d requests refused in %s of blocking: the probes are not paced (limit %d)", refused, blockedFor.Round(time.Millisecond), limit)
	}

	if _, err := e.srv.PatchFaults(sim.FaultPatch{Restore: simTenant}); err != nil {
		t.Fatal(err)
	}
	k.waitCommitted(group, topic, 30*time.Second, r)
	waitFor(t, 5*time.Second, "Ready() to recover", func() bool { ok, _ := r.c.Ready(); return ok })
	if err := r.stop(t, 15*time.Second); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	checkState(t, "final state", expectedState(evs), e.state())
	if diff := cmp.Diff(k.end(topic), k.committed(group, topic)); diff != "" {
		t.Errorf("committed offsets differ from end offsets (-end +committed):\n%s", diff)
	}
	checkJournal(t, e.srv.Journal(0), true)
	t.Logf("blocked for %s: %d requests refused", blockedFor.Round(time.Millisecond), refused)
}

// TestIntegrationBlockedTenantRecoversAfterRebalance: a tenant blocked by 401s recovers once
// its token is accepted again, even when a rebalance revoked every partition whose requests
// were refused (an eager balancer revokes them all) and the token is fixed either at the API or
// by rewriting the token file, as a rotated Kubernetes Secret does. Everything is written and
// committed, nothing lost.
func TestIntegrationBlockedTenantRecoversAfterRebalance(t *testing.T) {
	for _, fix := range []string{"api", "token file"} {
		t.Run(fix, func(t *testing.T) {
			k := plainCluster(t)
			e := startSim(t, sim.Config{AutoCreate: true})
			topic := kafkatest.UniqueName(t, "calls")
			group := kafkatest.UniqueName(t, "group")
			k.createTopic(topic, 4)
			evs := genEvents(12, 1_200, 150)

			tokenFile := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(tokenFile, []byte("not-the-token\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			opts := baseOptions(t, k, group, e, callPipeline(t, "calls", topic))
			opts.KafkaOpts = append(opts.KafkaOpts, kgo.Balancers(kgo.RangeBalancer())) // eager: a rebalance revokes everything
			to := opts.Tenants[simTenant]
			to.BlockedProbeInterval = 200 * time.Millisecond
			to.Concurrency = 4
			if fix == "api" {
				if _, err := e.srv.PatchFaults(sim.FaultPatch{Revoke: simTenant}); err != nil {
					t.Fatal(err)
				}
			} else {
				to.Token = "not-the-token"
				to.ReloadToken = func() (string, error) {
					tok, err := config.ReadSecretFile(tokenFile)
					return string(tok), err
				}
			}
			opts.Tenants[simTenant] = to

			a := startConnector(t, opts)
			k.produce(records(topic, evs[:600]))
			waitFor(t, 10*time.Second, "the first instance blocked", func() bool { ok, _ := a.c.Ready(); return !ok })
			waitFor(t, 10*time.Second, "refused requests", func() bool { return e.srv.Stats().JournalLastSeq > 4 })

			// A second instance joins: the eager rebalance revokes every partition of the
			// first, the ones its refused requests carried included.
			b := startConnector(t, opts)
			waitFor(t, 30*time.Second, "the second instance to consume", func() bool { return b.c.Stats().Consumed > 0 })
			k.produce(records(topic, evs[600:]))
			time.Sleep(time.Second)
			if diff := cmp.Diff(map[int32]int64{}, k.committed(group, topic)); diff != "" {
				t.Fatalf("offsets committed while every write was refused:\n%s", diff)
			}

			if fix == "api" {
				if _, err := e.srv.PatchFaults(sim.FaultPatch{Restore: simTenant}); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(tokenFile, []byte(e.token+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			k.waitCommitted(group, topic, 30*time.Second, a, b)
			for name, r := range map[string]*runner{"first": a, "second": b} {
				waitFor(t, 5*time.Second, "the "+name+" instance ready", func() bool { ok, _ := r.c.Ready(); return ok })
			}
			for _, r := range []*runner{a, b} {
				if err := r.stop(t, 15*time.Second); err != nil {
					t.Fatalf("Run returned %v, want nil", err)
				}
			}
			checkState(t, "final state", expectedState(evs), e.state())
			checkJournal(t, e.srv.Journal(0), false)
		})
	}
}

func TestIntegrationSASL(t *testing.T) {
	s := kafkatest.SASLBrokers(t)
	kopts, err := s.Opts()
	if err != nil {
		t.Fatal(err)
	}
	k := newCluster(t, kopts...)
	e := startSim(t, sim.Config{AutoCreate: true})
	topic := kafkatest.UniqueName(t, "calls")
	group := kafkatest.UniqueName(t, "group")
	k.createTopic(topic, 3)
	evs := genEvents(7, 300, 40)
	k.produce(records(topic, evs))

	r := startConnector(t, baseOptions(t, k, group, e, callPipeline(t, "calls", topic)))
	k.waitCommitted(group, topic, 30*time.Second, r)
	if err := r.stop(t, 15*time.Second); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	checkState(t, "final state", expectedState(evs), e.state())
	if diff := cmp.Diff(k.end(topic), k.committed(group, topic)); diff != "" {
		t.Errorf("committed offsets differ from end offsets (-end +committed):\n%s", diff)
	}
	if st := r.c.Stats(); st.Consumed != int64(len(evs)) || st.Done != int64(len(evs)) {
		t.Errorf("stats %+v: want %d consumed and done", st, len(evs))
	}
}

func TestIntegrationGracefulShutdown(t *testing.T) {
	k := plainCluster(t)
	// 4 requests at a time of 15 ms each: about 270 a second.
	e := startSim(t, sim.Config{AutoCreate: true, Faults: sim.Faults{Latency: 15 * time.Millisecond}})
	topic := kafkatest.UniqueName(t, "calls")
	group := kafkatest.UniqueName(t, "group")
	k.createTopic(topic, 6)
	evs := genEvents(8, 10_000, 1_000)
	recs := records(topic, evs)
	// Two halves: a record's contribution superseded on arrival is done when its identifier's
	// latest value is written, so with everything queued at once the commits would come near
	// the end and the shutdown's drain could finish the run. The second half is produced once
	// the first is committed, and the cancel comes soon after, with most of it to write.
	half := len(recs) / 2
	k.produce(recs[:half])

	const shutdownTimeout = time.Second
	opts := baseOptions(t, k, group, e, callPipeline(t, "calls", topic))
	opts.ShutdownTimeout = shutdownTimeout
	to := opts.Tenants[simTenant]
	to.Concurrency = 4
	opts.Tenants[simTenant] = to
	r := startConnector(t, opts)
	k.waitCommitted(group, topic, 30*time.Second, r)
	k.produce(recs[half:])
	// Cancel once a twentieth more of the records are committed, so the check below covers
	// many.
	waitFor(t, 30*time.Second, "part of the second half committed", func() bool {
		c, err := k.committedErr(group, topic)
		return err == nil && sum(c) >= int64(half+len(evs)/20)
	})

	start := time.Now()
	if err := r.stop(t, shutdownTimeout+20*time.Second); err != nil {
		t.Fatalf("Run returned %v after a graceful shutdown, want nil", err)
	}
	// The drain is bounded by ShutdownTimeout; the final commit and leaving the group add a
	// little.
	took := time.Since(start)
	if took > shutdownTimeout+5*time.Second {
		t.Errorf("Run took %s to return after the cancel, with a shutdown timeout of %s", took.Round(time.Millisecond), shutdownTimeout)
	}

	// Invariant 1: every record below a committed offset was written: its identifier has a
	// successful write carrying its _seq or a later one.
	committed := k.committed(group, topic)
	end := k.end(topic)
	covered := checkCommittedWritten(t, recs, evs, committed, e.srv.Journal(0))
	if sum(committed) == 0 || sum(committed) >= sum(end) {
		t.Fatalf("committed %v of %v at shutdown: the test needs a shutdown in the middle of the run", committed, end)
	}

	// A second instance in the same group finishes the rest, from the committed offsets.
	if _, err := e.srv.PatchFaults(sim.FaultPatch{Reset: true}); err != nil {
		t.Fatal(err)
	}
	r2 := startConnector(t, baseOptions(t, k, group, e, callPipeline(t, "calls", topic)))
	k.waitCommitted(group, topic, 60*time.Second, r2)
	if err := r2.stop(t, 15*time.Second); err != nil {
		t.Fatalf("second run: Run returned %v, want nil", err)
	}
	checkState(t, "final state", expectedState(evs), e.state())
	if diff := cmp.Diff(end, k.committed(group, topic)); diff != "" {
		t.Errorf("committed offsets differ from end offsets (-end +committed):\n%s", diff)
	}
	if got, want := r2.c.Stats().Consumed, sum(end)-sum(committed); got != want {
		t.Errorf("the second run consumed %d records, want the %d past the first run's commits", got, want)
	}
	checkJournal(t, e.srv.Journal(0), false)
	t.Logf("first run committed %d of %d records (%d covered by the check); shutdown took %s", sum(committed), sum(end), covered, took.Round(time.Millisecond))
}

// TestIntegrationTenantPausedAlone: a tenant that cannot write (its token is refused) fills
// its share of maxPendingBytes; fetching pauses for its topic only, so the other tenant's
// topic is read and written to the end meanwhile, and the stuck tenant's records stay near
// its share instead of filling the connector-wide bound.
func TestIntegrationTenantPausedAlone(t *testing.T) {
	k := plainCluster(t)
	e := startSim(t, sim.Config{AutoCreate: true})
	fast := kafkatest.UniqueName(t, "fast")
	stuck := kafkatest.UniqueName(t, "stuck")
	group := kafkatest.UniqueName(t, "group")
	k.createTopic(fast, 2)
	k.createTopic(stuck, 2)
	stuckPl := callPipeline(t, "stuck", stuck)
	stuckPl.Tenant = "stuck"
	opts := baseOptions(t, k, group, e, callPipeline(t, "fast", fast), stuckPl)
	refused := e.tenantOptions()
	refused.Token = "not-the-token"
	refused.BlockedProbeInterval = time.Hour
	opts.Tenants["stuck"] = refused
	// Small fetches, so one fetch overshoots the share by little.
	opts.KafkaOpts = append(opts.KafkaOpts, kgo.FetchMaxPartitionBytes(4<<10), kgo.FetchMaxBytes(8<<10))
	const bound = 400 << 10 // the stuck tenant's share: 200 KiB, about 100 of these records
	opts.MaxPendingBytes = bound
	opts.ShutdownTimeout = 500 * time.Millisecond

	// In small batches: a fetch returns at least one whole batch, whatever its size limits.
	stuckRecs := records(stuck, genEvents(11, 3_000, 300))
	for i := 0; i < len(stuckRecs); i += 10 {
		k.produce(stuckRecs[i : i+10])
	}
	r := startConnector(t, opts)
	waitFor(t, 30*time.Second, "the stuck tenant to be refused", func() bool { ok, _ := r.c.Ready(); return !ok })
	fastEvs := genEvents(12, 2_000, 200)
	k.produce(records(fast, fastEvs))
	k.waitCommitted(group, fast, 60*time.Second, r)
	checkState(t, "the fast tenant's state", expectedState(fastEvs), e.state())

	// Everything consumed beyond the fast topic is the stuck tenant's: near its share.
	stuckRead := r.c.Stats().Consumed - int64(len(fastEvs))
	if stuckRead <= 0 || stuckRead >= 1_000 {
		t.Errorf("read %d of the stuck tenant's 3,000 records; want some, and fetching paused near its share (~100 plus a fetch)", stuckRead)
	}
	if c := k.committed(group, stuck); sum(c) != 0 {
		t.Errorf("committed %v on the stuck tenant's topic, want nothing", c)
	}
	if err := r.stop(t, 15*time.Second); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	t.Logf("read %d of the stuck tenant's records", stuckRead)
}
