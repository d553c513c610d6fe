package tables

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

func mustExpr(t testing.TB, code string) *transform.Expr {
	t.Helper()
	e, err := transform.CompileExpr(code)
	if err != nil {
		t.Fatalf("compiling %q: %v", code, err)
	}
	return e
}

// customersSpec is a table of customer rows keyed by id, keeping tier and balance.
func customersSpec(t testing.TB, topic string, maxEntries int) Spec {
	return Spec{
		Name: "customers", Topic: topic, Key: mustExpr(t, "after.id"),
		Fields:     []Field{{Name: "tier", Value: mustExpr(t, "after.tier")}, {Name: "balance", Value: mustExpr(t, "after.balance")}},
		MaxEntries: maxEntries,
	}
}

// activeSpec is a many-valued table of calls by customer: a "started" event adds the call, an
// "ended" event (which carries only the call id) removes it.
func activeSpec(t testing.TB, topic string) Spec {
	return Spec{
		Name: "activeInteractions", Topic: topic, Key: mustExpr(t, "after.customer_id"),
		ID:     mustExpr(t, "after.interaction_id"),
		Delete: mustExpr(t, `after.event == "ended"`),
		Fields: []Field{{Name: "interaction_id", Value: mustExpr(t, "after.interaction_id")}},
		TTL:    time.Hour,
	}
}

func jsonRec(t testing.TB, topic, key string, v any) *kgo.Record {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: b}
}

func customer(t testing.TB, topic string, id int, tier string) *kgo.Record {
	return jsonRec(t, topic, fmt.Sprint(id), map[string]any{"op": "u", "after": map[string]any{"id": id, "tier": tier, "balance": float64(id) + 0.5}})
}

func call(t testing.TB, topic, event, id string, cust int) *kgo.Record {
	after := map[string]any{"event": event, "interaction_id": id}
	if event == "started" {
		after["customer_id"] = cust
	}
	return jsonRec(t, topic, id, after)
}

// running is a Set being run by a goroutine of the test.
type running struct {
	set    *Set
	cancel context.CancelFunc
	done   chan error
}

func runSet(t *testing.T, seeds []string, specs ...Spec) *running {
	t.Helper()
	return runSetOpts(t, []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.FetchMaxWait(100 * time.Millisecond)}, specs...)
}

func runSetOpts(t *testing.T, kopts []kgo.Opt, specs ...Spec) *running {
	t.Helper()
	decs := make([]Decoder, len(specs))
	for i := range decs {
		decs[i] = schemas.NewJSONDecoder()
	}
	return runSetWith(t, kopts, decs, specs...)
}

func runSetDecoders(t *testing.T, seeds []string, decs []Decoder, specs ...Spec) *running {
	t.Helper()
	return runSetWith(t, []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.FetchMaxWait(100 * time.Millisecond)}, decs, specs...)
}

func runSetWith(t *testing.T, kopts []kgo.Opt, decs []Decoder, specs ...Spec) *running {
	t.Helper()
	s, err := New(specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(LoaderOptions{KafkaOpts: kopts,
		Decoders: decs, Logger: zaptest.NewLogger(t)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{set: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of the cancel")
		return nil
	}
}

func (r *running) waitCaughtUp(t *testing.T) {
	t.Helper()
	select {
	case <-r.set.CaughtUp():
	case err := <-r.done:
		t.Fatalf("Run returned before catching up: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("not caught up after 30s: %s", r.set.Loading())
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func callIDs(rows []any) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.(map[string]any)["interaction_id"].(string))
	}
	slices.Sort(out) // members of different partitions arrive in no defined order
	return out
}

func TestSetLoadsFollowsAndRebuilds(t *testing.T) {
	seeds := kafkatest.Brokers(t)
	custTopic, callTopic := kafkatest.UniqueName(t, "customers"), kafkatest.UniqueName(t, "calls")
	kafkatest.CreateTopic(t, seeds, custTopic, 3)
	kafkatest.CreateTopic(t, seeds, callTopic, 3)
	var recs []*kgo.Record
	for i := 1; i <= 300; i++ {
		recs = append(recs, customer(t, custTopic, i, "silver"))
	}
	recs = append(recs, customer(t, custTopic, 7, "gold"), // a later row of the same key wins
		call(t, callTopic, "started", "c1", 7), call(t, callTopic, "started", "c2", 7),
		call(t, callTopic, "started", "c3", 8), call(t, callTopic, "ended", "c3", 0))
	kafkatest.ProduceSync(t, seeds, recs...)

	r := runSet(t, seeds, customersSpec(t, custTopic, 0), activeSpec(t, callTopic))
	if why := r.set.Loading(); why == "" {
		select {
		case <-r.set.CaughtUp():
		default:
			t.Fatal("Loading is empty before CaughtUp is closed")
		}
	}
	r.waitCaughtUp(t)
	// Caught up means every record produced before the start is in: no waiting needed.
	if n, _ := r.set.Len("customers"); n != 300 {
		t.Fatalf("customers has %d entries after catching up, want 300", n)
	}
	if got := r.set.Lookup("customers", "7"); got["tier"] != "gold" || got["balance"] != 7.5 {
		t.Fatalf("customer 7 = %v, want gold, 7.5", got)
	}
	if got := callIDs(r.set.LookupAll("activeInteractions", "7")); fmt.Sprint(got) != "[c1 c2]" {
		t.Fatalf("calls of customer 7 = %v, want [c1 c2]", got)
	}
	if got := r.set.LookupAll("activeInteractions", "8"); got != nil {
		t.Fatalf("calls of customer 8 = %v, want none (c3 ended)", got)
	}

	// It keeps following: a late row, a call ending, a tombstone.
	end := call(t, callTopic, "ended", "c1", 0)
	kafkatest.ProduceSync(t, seeds, customer(t, custTopic, 301, "bronze"), end,
		&kgo.Record{Topic: custTopic, Key: []byte("5")})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.set.WaitPast(ctx, callTopic, end.Partition, end.Offset); err != nil {
		t.Fatalf("WaitPast the end event: %v", err)
	}
	if got := callIDs(r.set.LookupAll("activeInteractions", "7")); fmt.Sprint(got) != "[c2]" {
		t.Fatalf("calls of customer 7 once WaitPast returned = %v, want [c2]", got)
	}
	eventually(t, "the late customer row", func() bool { return r.set.Lookup("customers", "301") != nil })
	// The tombstone's key expression reads after.id, which a tombstone lacks: it is skipped,
	// and counted. (A table keyed by the Kafka key, key: "key", removes it.)
	if r.set.Lookup("customers", "5") == nil {
		t.Fatal("customer 5 removed by a tombstone its key expression cannot key")
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	// A restart rebuilds the same tables from the topics.
	r2 := runSet(t, seeds, customersSpec(t, custTopic, 0), activeSpec(t, callTopic))
	r2.waitCaughtUp(t)
	if n, _ := r2.set.Len("customers"); n != 301 {
		t.Fatalf("rebuilt customers has %d entries, want 301", n)
	}
	if got := callIDs(r2.set.LookupAll("activeInteractions", "7")); fmt.Sprint(got) != "[c2]" {
		t.Fatalf("rebuilt calls of customer 7 = %v, want [c2]", got)
	}
}

func TestSetTombstoneByKafkaKey(t *testing.T) {
	seeds := kafkatest.Brokers(t)
	topic := kafkatest.UniqueName(t, "customers")
	kafkatest.CreateTopic(t, seeds, topic, 1)
	spec := customersSpec(t, topic, 0)
	spec.Key = mustExpr(t, "key")
	kafkatest.ProduceSync(t, seeds, customer(t, topic, 1, "gold"), customer(t, topic, 2, "gold"), &kgo.Record{Topic: topic, Key: []byte("1")})
	r := runSet(t, seeds, spec)
	r.waitCaughtUp(t)
	if r.set.Lookup("customers", "1") != nil || r.set.Lookup("customers", "2") == nil {
		t.Fatalf("after a tombstone of 1: 1 = %v, 2 = %v; want nil and a row", r.set.Lookup("customers", "1"), r.set.Lookup("customers", "2"))
	}
}

// TestSetDecodesKeys: with a key decoder (as keyFormat avro-registry gives for Debezium's
// framed keys) the table's key expression reads the decoded key (key.id), for rows and for
// tombstones, which carry only the key.
func TestSetDecodesKeys(t *testing.T) {
	seeds := kafkatest.Brokers(t)
	topic := kafkatest.UniqueName(t, "customers")
	kafkatest.CreateTopic(t, seeds, topic, 1)
	spec := customersSpec(t, topic, 0)
	spec.Key = mustExpr(t, "key.id")
	keyed := func(r *kgo.Record, id int) *kgo.Record {
		r.Key = fmt.Appendf(nil, `{"id":%d}`, id)
		return r
	}
	kafkatest.ProduceSync(t, seeds, keyed(customer(t, topic, 1, "gold"), 1), keyed(customer(t, topic, 2, "gold"), 2),
		keyed(&kgo.Record{Topic: topic}, 1))
	s, err := New([]Spec{spec}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(LoaderOptions{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.FetchMaxWait(100 * time.Millisecond)},
		Decoders: []Decoder{schemas.NewJSONDecoder()}, KeyDecoders: []Decoder{schemas.NewJSONDecoder()},
		Logger: zaptest.NewLogger(t)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{set: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	r.waitCaughtUp(t)
	if r.set.Lookup("customers", "1") != nil || r.set.Lookup("customers", "2") == nil {
		t.Fatalf("after a tombstone keyed {id: 1}: 1 = %v, 2 = %v; want nil and a row", r.set.Lookup("customers", "1"), r.set.Lookup("customers", "2"))
	}
}

func TestSetBoundStopsRun(t *testing.T) {
	seeds := kafkatest.Brokers(t)
	topic := kafkatest.UniqueName(t, "customers")
	kafkatest.CreateTopic(t, seeds, topic, 1)
	var recs []*kgo.Record
	for i := 1; i <= 11; i++ {
		recs = append(recs, customer(t, topic, i, "gold"))
	}
	kafkatest.ProduceSync(t, seeds, recs...)
	r := runSet(t, seeds, customersSpec(t, topic, 10))
	select {
	case err := <-r.done:
		close(r.done)
		if !errors.Is(err, ErrFull) {
			t.Fatalf("Run = %v, want ErrFull", err)
		}
		if want := `table "customers": lookup table is full: more than maxEntries 10 entries`; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
			t.Fatalf("error %q, want it to start with %q", err, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop at the bound")
	}
	if n, _ := r.set.Len("customers"); n != 10 {
		t.Fatalf("%d entries, want the bound, 10", n)
	}
}

func TestSetWaitsForMissingTopic(t *testing.T) {
	seeds := kafkatest.Brokers(t)
	topic := kafkatest.UniqueName(t, "absent")
	r := runSet(t, seeds, customersSpec(t, topic, 0))
	eventually(t, "a reason naming the listing", func() bool {
		return len(r.set.Loading()) > len("lookup tables: listing") && r.set.Loading()[:len("lookup tables: listing")] == "lookup tables: listing"
	})
	select {
	case <-r.set.CaughtUp():
		t.Fatal("caught up on a topic that does not exist")
	default:
	}
}

// TestSetSkipsHostileAvroRow: a row whose Avro array claims 2^30 items in six bytes (goavro
// would allocate 16 GiB for it and the process die of "out of memory", on every replica) is
// skipped and counted as an error; the rows around it load, and loading goes on.
func TestSetSkipsHostileAvroRow(t *testing.T) {
	const schema = `{"type":"record","name":"Change","fields":[{"name":"op","type":"string"},{"name":"after","type":{"type":"record","name":"Row","fields":[
		{"name":"id","type":"long"},{"name":"tier","type":"string"},{"name":"balance","type":"double"},
		{"name":"tags","type":{"type":"array","items":"string"}}]}}]}`
	codec, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	avroRow := func(id int64, tier string) []byte {
		b, err := codec.BinaryFromNative(nil, map[string]any{"op": "u", "after": map[string]any{"id": id, "tier": tier, "balance": 1.5, "tags": []any{"a"}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// op "u", id 3, tier "x", balance 0, then a block count of 2^30 and its end marker.
	hostile := []byte{2, 'u', 6, 2, 'x', 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x08, 0}

	seeds := kafkatest.Brokers(t)
	topic := kafkatest.UniqueName(t, "customers")
	kafkatest.CreateTopic(t, seeds, topic, 1)
	kafkatest.ProduceSync(t, seeds,
		&kgo.Record{Topic: topic, Key: []byte("1"), Value: avroRow(1, "gold")},
		&kgo.Record{Topic: topic, Key: []byte("3"), Value: hostile},
		&kgo.Record{Topic: topic, Key: []byte("2"), Value: avroRow(2, "silver")})
	dec, err := schemas.NewAvroDecoder(schema)
	if err != nil {
		t.Fatal(err)
	}
	r := runSetDecoders(t, seeds, []Decoder{schemas.LimitSize(dec, 1<<20)}, customersSpec(t, topic, 0))
	r.waitCaughtUp(t)
	if n, _ := r.set.Len("customers"); n != 2 {
		t.Fatalf("customers has %d entries, want 2 (the hostile row skipped)", n)
	}
	if r.set.Lookup("customers", "1") == nil || r.set.Lookup("customers", "2") == nil || r.set.Lookup("customers", "3") != nil {
		t.Fatalf("rows 1, 2, 3 = %v, %v, %v; want two rows and nil", r.set.Lookup("customers", "1"), r.set.Lookup("customers", "2"), r.set.Lookup("customers", "3"))
	}
	if got := r.set.metrics.records["customers"][actionError].Load(); got != 1 {
		t.Fatalf("error count %d, want 1", got)
	}
	// It keeps following after the hostile row.
	kafkatest.ProduceSync(t, seeds, &kgo.Record{Topic: topic, Key: []byte("4"), Value: avroRow(4, "bronze")})
	eventually(t, "the row after the hostile one", func() bool { return r.set.Lookup("customers", "4") != nil })
}

// Under read_committed, a table skips the records of an aborted transaction and catches up
// although the last offsets are transaction markers (never handed over as records) and a
// transaction is still open (its records are past the last stable offset, unseen until it
// ends); once that transaction commits, its rows arrive.
func TestSetTransactions(t *testing.T) {
	seeds := kafkatest.Brokers(t)
	topic := kafkatest.UniqueName(t, "customers")
	kafkatest.CreateTopic(t, seeds, topic, 2)
	txn, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.TransactionalID(kafkatest.UniqueName(t, "txn")))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produce := func(end *kgo.TransactionEndTry, recs ...*kgo.Record) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := txn.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if end != nil {
			if err := txn.EndTransaction(ctx, *end); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(new(kgo.TryCommit), customer(t, topic, 1, "gold"), customer(t, topic, 2, "gold"))
	produce(new(kgo.TryAbort), customer(t, topic, 1, "aborted"), customer(t, topic, 3, "aborted"))
	produce(nil, customer(t, topic, 4, "open")) // left open while the table loads

	r := runSetOpts(t, []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.FetchIsolationLevel(kgo.ReadCommitted())}, customersSpec(t, topic, 0))
	r.waitCaughtUp(t)
	tier := func(id string) any {
		if row := r.set.Lookup("customers", id); row != nil {
			return row["tier"]
		}
		return nil
	}
	for id, want := range map[string]any{"1": "gold", "2": "gold", "3": nil, "4": nil} {
		if got := tier(id); got != want {
			t.Errorf("customer %s: tier %v, want %v", id, got, want)
		}
	}
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the committed open transaction's row", func() bool { return tier("4") == "open" })
}
