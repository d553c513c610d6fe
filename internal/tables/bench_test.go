package tables

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// sizingRow is the row of the README's sizing: 3 projected fields of a customer.
func sizingRow(i int) string {
	tiers := [...]string{"gold", "silver", "bronze", "platinum"}
	return pack([]any{tiers[i%len(tiers)], float64(i%100_000) + 0.25, int64(i % 7)}, transform.FormatKey)
}

// BenchmarkStoreMemory measures the heap one entry of a customers table costs (key a 7-8 digit
// id, 3 fields: tier, balance, open orders), for the README's sizing. It reports bytes/entry
// (measured) and estimated-bytes/entry (what maxBytes counts).
func BenchmarkStoreMemory(b *testing.B) {
	const n = 1_000_000
	fields := []string{"balance", "openOrders", "tier"}
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := newStore("customers", fields, false, 0, 0, 0, time.Now)
		at := time.Now()
		for i := range n {
			if err := s.put(strconv.Itoa(10_000_000+i), "", sizingRow(i), at); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		_, est, _ := s.stats()
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/entry")
		b.ReportMetric(float64(est)/n, "estimated-bytes/entry")
		runtime.KeepAlive(s)
	}
}

// BenchmarkLookup measures one lookup of a customers table of a million entries: the read
// lock, the map and unpacking the row into the map expressions read.
func BenchmarkLookup(b *testing.B) {
	const n = 1_000_000
	s := newStore("customers", []string{"balance", "openOrders", "tier"}, false, 0, 0, 0, time.Now)
	at := time.Now()
	keys := make([]string, n)
	for i := range n {
		keys[i] = strconv.Itoa(10_000_000 + i)
		if err := s.put(keys[i], "", sizingRow(i), at); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if s.get(keys[i%n]) == nil {
			b.Fatal("miss")
		}
		i += 7919
	}
}

// BenchmarkRestore measures how fast a table is rebuilt from its topic: 100,000 JSON customer
// rows on 6 partitions (kfake in-process, or KAFKA_BROKERS), read from the start until caught
// up. It reports entries/s.
func BenchmarkRestore(b *testing.B) {
	const n = 100_000
	seeds := kafkatest.Brokers(b)
	topic := kafkatest.UniqueName(b, "restore")
	kafkatest.CreateTopic(b, seeds, topic, 6)
	cl := kafkatest.Client(b, seeds)
	ctx := context.Background()
	recs := make([]*kgo.Record, 0, 5000)
	for i := 1; i <= n; i++ {
		recs = append(recs, customer(b, topic, i, "silver"))
		if len(recs) == cap(recs) || i == n {
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		s, err := New([]Spec{customersSpec(b, topic, 0)}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Prepare(LoaderOptions{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(seeds...)}, Decoders: []Decoder{schemas.NewJSONDecoder()}}); err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(rctx) }()
		select {
		case <-s.CaughtUp():
		case err := <-done:
			b.Fatalf("Run: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if got, _ := s.Len("customers"); got != n {
			b.Fatalf("%d entries, want %d", got, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "entries/s")
}
