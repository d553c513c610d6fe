package connector

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// BenchmarkRecordPath is a partition worker's cost per record that its pipeline filters,
// without the decode and transform themselves (a no-op decoder, a fixed result): finding the
// pipeline, the decode and transform steps' bookkeeping, and marking the record done in its
// partition and in flow. It is what tracing's hooks add to when tracing is off.
func BenchmarkRecordPath(b *testing.B) { benchRecordPath(b, nil) }

func benchRecordPath(b *testing.B, setup func(*workerEnv)) {
	pl := &Pipeline{Name: "p", Topics: []string{"t"}, Tenant: "a", Decoder: nopDecoder{},
		Transform: fixedTransform{transform.Result{Outcome: transform.Filtered}}}
	pl.decode = schemas.Retrying(pl.Decoder, nil)
	var st counters
	env := &workerEnv{
		byTopic: map[string]*Pipeline{"t": pl},
		flow:    newFlow(1<<30, 1<<50, nil),
		dead:    &fakeDeadLetters{},
		stats:   &st,
		log:     zap.NewNop(),
		now:     time.Now,
	}
	if setup != nil {
		setup(env)
	}
	p := newPartition("t", 0)
	w := newWorker(env, p)
	ctx := context.Background()
	value := []byte(`{"id":"int-1"}`)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		r := &rec{kr: record{Topic: "t", Partition: 0, Offset: i, Value: value}, part: p}
		r.size.Store(recOverhead)
		p.add(r)
		env.flow.admit(nil, 1, recOverhead)
		w.handle(ctx, r)
		i++
	}
	if st.done.Load() != i {
		b.Fatalf("%d records done of %d", st.done.Load(), i)
	}
}
