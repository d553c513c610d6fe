package connector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/internal/api"
	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// fakeDeadLetters records the dead letters a worker writes, acknowledging each at once.
type fakeDeadLetters struct{ classes []deadLetterClass }

func (f *fakeDeadLetters) write(_ context.Context, r *rec, _ string, class deadLetterClass, _ string) error {
	if !r.deadLettered.CompareAndSwap(false, true) {
		return nil
	}
	f.classes = append(f.classes, class)
	return nil
}

// idleSink is a tenant's recordSink that does nothing: the worker test never sends.
type idleSink struct{}

func (idleSink) contributionDone(*rec)                    {}
func (idleSink) uncharge(*rec, int64)                     {}
func (idleSink) contributionSkipped(*rec, string, string) {}
func (idleSink) deadLetter(context.Context, *rec, string, deadLetterClass, string) error {
	return nil
}

type failingDecoder struct{}

func (failingDecoder) Decode(context.Context, []byte) (any, error) {
	return nil, errors.New("not avro")
}

type fixedTransform struct{ res transform.Result }

func (f fixedTransform) Apply(*transform.Record) (transform.Result, error) { return f.res, nil }

// TestWorkerHandle checks what a worker makes of a record, without a broker: a record filtered
// or skipped is done; one that fails to decode is dead-lettered, then done; one that writes
// hands one contribution per identifier to its tenant and stays pending until they are carried.
func TestWorkerHandle(t *testing.T) {
	write := transform.Result{Outcome: transform.Write, Identifiers: []string{"i1", "i2"},
		Variables: []api.Variable{{Name: "tier", Value: "gold"}}}
	tests := []struct {
		name          string
		decoder       Decoder
		result        transform.Result
		wantDone      bool
		wantDead      []deadLetterClass
		wantQueued    int // identifiers queued in the tenant
		wantFiltered  int64
		wantSkipped   int64
		wantPending   int64
		wantCommitted bool
		// Issue 15's policies: the record's Kafka timestamp is now+age (0: none), its pipeline's
		// maxRecordAge and onStale; gone identifiers were found gone at now+goneAt.
		age     time.Duration
		maxAge  time.Duration
		onStale string
		gone    []string
		goneAt  time.Duration
		onGone  string
	}{
		{name: "filtered", decoder: nopDecoder{}, result: transform.Result{Outcome: transform.Filtered},
			wantDone: true, wantFiltered: 1, wantCommitted: true},
		{name: "skipped", decoder: nopDecoder{}, result: transform.Result{Outcome: transform.Skipped, Reason: "no id"},
			wantDone: true, wantSkipped: 1, wantCommitted: true},
		{name: "no variables", decoder: nopDecoder{}, result: transform.Result{Outcome: transform.Write, Identifiers: []string{"i1"}},
			wantDone: true, wantSkipped: 1, wantCommitted: true},
		{name: "decode fails", decoder: failingDecoder{}, result: write,
			wantDone: true, wantDead: []deadLetterClass{classDecode}, wantCommitted: true},
		{name: "writes", decoder: nopDecoder{}, result: write, wantQueued: 2, wantPending: 1},
		{name: "stale on arrival is skipped", decoder: nopDecoder{}, result: write, age: -2 * time.Hour, maxAge: time.Minute,
			wantDone: true, wantSkipped: 1, wantCommitted: true},
		{name: "stale on arrival is dead-lettered under onStale deadLetter", decoder: nopDecoder{}, result: write, age: -2 * time.Hour,
			maxAge: time.Minute, onStale: OnStaleDeadLetter, wantDone: true, wantDead: []deadLetterClass{classStale}, wantCommitted: true},
		{name: "younger than maxRecordAge is written", decoder: nopDecoder{}, result: write, age: -10 * time.Second, maxAge: time.Minute,
			wantQueued: 2, wantPending: 1},
		{name: "data time from the pipeline wins over the Kafka timestamp", decoder: nopDecoder{},
			result: transform.Result{Outcome: transform.Write, Identifiers: []string{"i1"}, Variables: write.Variables, DataTime: time.Now().Add(-time.Hour)},
			maxAge: time.Minute, wantDone: true, wantSkipped: 1, wantCommitted: true},
		{name: "an identifier found gone is left out, the record dead-lettered once", decoder: nopDecoder{}, result: write,
			age: -time.Hour, gone: []string{"i1"}, goneAt: -time.Minute, wantDead: []deadLetterClass{classNotFound}, wantQueued: 1, wantPending: 1},
		{name: "every identifier gone, onGone skip", decoder: nopDecoder{}, result: write, age: -time.Hour, gone: []string{"i1", "i2"},
			goneAt: -time.Minute, onGone: OnGoneSkip, wantDone: true, wantSkipped: 1, wantCommitted: true},
		{name: "every identifier gone, dead-lettered", decoder: nopDecoder{}, result: write, age: -time.Hour, gone: []string{"i1", "i2"},
			goneAt: -time.Minute, wantDone: true, wantDead: []deadLetterClass{classNotFound}, wantCommitted: true},
		{name: "data newer than the gone mark is sent", decoder: nopDecoder{}, result: write, age: -time.Second, gone: []string{"i1", "i2"},
			goneAt: -time.Minute, wantQueued: 2, wantPending: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ten, err := newTenant("a", TenantOptions{BaseURL: "http://127.0.0.1:1", RequestsPerMinute: 100, OnGone: tc.onGone}, idleSink{},
				zap.NewNop(), time.Now, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer ten.client.close()
			pl := &Pipeline{Name: "p", Topics: []string{"t"}, Tenant: "a", Decoder: tc.decoder,
				Transform: fixedTransform{tc.result}, MaxRecordAge: tc.maxAge, OnStale: tc.onStale}
			for _, id := range tc.gone {
				ten.gone.mark(id, time.Now().Add(tc.goneAt))
			}
			pl.decode = schemas.Retrying(pl.Decoder, nil)
			dead := &fakeDeadLetters{}
			var st counters
			env := &workerEnv{
				byTopic: map[string]*Pipeline{"t": pl},
				tenants: map[string]*tenant{"a": ten},
				flow:    newFlow(100, 1<<20, nil),
				dead:    dead,
				stats:   &st,
				log:     zap.NewNop(),
				now:     time.Now,
			}
			p := newPartition("t", 0)
			r := &rec{kr: record{Topic: "t", Partition: 0, Offset: 41, Value: []byte("v")}, part: p}
			if tc.age != 0 {
				r.kr.Timestamp = time.Now().Add(tc.age)
			}
			r.size.Store(recOverhead)
			p.add(r)
			env.flow.admit(nil, 1, recOverhead)

			newWorker(env, p).handle(context.Background(), r)

			if got := st.done.Load() == 1; got != tc.wantDone {
				t.Errorf("done: %v, want %v", got, tc.wantDone)
			}
			if diff := cmp.Diff(tc.wantDead, dead.classes); diff != "" {
				t.Errorf("dead letters (-want +got):\n%s", diff)
			}
			if got := ten.pendingIdentifiers(); got != tc.wantQueued {
				t.Errorf("identifiers queued in the tenant: %d, want %d", got, tc.wantQueued)
			}
			if got := st.filtered.Load(); got != tc.wantFiltered {
				t.Errorf("filtered: %d, want %d", got, tc.wantFiltered)
			}
			if got := st.skipped.Load(); got != tc.wantSkipped {
				t.Errorf("skipped: %d, want %d", got, tc.wantSkipped)
			}
			if got := env.flow.pending(); got != tc.wantPending {
				t.Errorf("pending records: %d, want %d", got, tc.wantPending)
			}
			off, _, ok := p.toCommit()
			if ok != tc.wantCommitted || (ok && off != 42) {
				t.Errorf("to commit: %d, %v; want 42 %v", off, ok, tc.wantCommitted)
			}
			if tc.wantQueued > 0 {
				if got := r.outstanding.Load(); got != int32(tc.wantQueued) {
					t.Errorf("outstanding contributions: %d, want %d", got, tc.wantQueued)
				}
			}
		})
	}
}

// keyTransform records the key each record reaches the transform with.
type keyTransform struct{ keys []any }

func (k *keyTransform) Apply(rec *transform.Record) (transform.Result, error) {
	k.keys = append(k.keys, rec.Key)
	return transform.Result{Outcome: transform.Filtered}, nil
}

// mapDecoder decodes every input to one map, as a registry decodes a framed Debezium key.
type mapDecoder struct{}

func (mapDecoder) Decode(_ context.Context, b []byte) (any, error) {
	return map[string]any{"id": string(b)}, nil
}

// TestWorkerDecodesKey: with a key decoder the transform reads the decoded key (key.id);
// without one, the key's bytes as a string; a key that does not decode is dead-lettered with
// class decode and never reaches the transform.
func TestWorkerDecodesKey(t *testing.T) {
	tests := []struct {
		name     string
		keyDec   Decoder
		wantKeys []any
		wantDead []deadLetterClass
	}{
		{"no key decoder", nil, []any{"42"}, nil},
		{"decoded key", mapDecoder{}, []any{map[string]any{"id": "42"}}, nil},
		{"key does not decode", failingDecoder{}, nil, []deadLetterClass{classDecode}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &keyTransform{}
			pl := &Pipeline{Name: "p", Topics: []string{"t"}, Tenant: "a", Decoder: nopDecoder{}, KeyDecoder: tc.keyDec, Transform: tr}
			pl.decode = schemas.Retrying(pl.Decoder, nil)
			if pl.KeyDecoder != nil {
				pl.decodeKey = schemas.Retrying(pl.KeyDecoder, nil)
			}
			dead := &fakeDeadLetters{}
			var st counters
			env := &workerEnv{
				byTopic: map[string]*Pipeline{"t": pl},
				tenants: map[string]*tenant{},
				flow:    newFlow(100, 1<<20, nil),
				dead:    dead,
				stats:   &st,
				log:     zap.NewNop(),
				now:     time.Now,
			}
			p := newPartition("t", 0)
			r := &rec{kr: record{Topic: "t", Partition: 0, Offset: 1, Key: []byte("42"), Value: []byte("v")}, part: p}
			r.size.Store(recOverhead)
			p.add(r)
			env.flow.admit(nil, 1, recOverhead)

			newWorker(env, p).handle(context.Background(), r)

			if diff := cmp.Diff(tc.wantKeys, tr.keys); diff != "" {
				t.Errorf("keys the transform saw (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantDead, dead.classes); diff != "" {
				t.Errorf("dead letters (-want +got):\n%s", diff)
			}
			if st.done.Load() != 1 {
				t.Errorf("the record is not done")
			}
		})
	}
}
