package connector

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
)

// TestTracingAttemptPerRequest: a request answered 500 and then 200 has one api.request span
// per attempt, each with its status and class (the 500 an error), and a budget.wait span per
// reservation, all children of the record's span.
func TestTracingAttemptPerRequest(t *testing.T) {
	a, srv := newTestAPI(t)
	a.script = []int{500}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tracer := newTracer(tp)

	sink := newFakeSink()
	o := TenantOptions{BaseURL: srv.URL, TenantID: "t1", Token: "tok", RequestsPerMinute: 10_000, Concurrency: 4}
	tn, err := newTenant("t1", o, sink, zap.NewNop(), time.Now, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	tn.tracer = tracer
	p := newPartition("t", 0)
	c := contrib(p, 7, v("_a", "1"))
	startRecord(context.Background(), tracer, "g", c.rec, &Pipeline{Name: "p", Tenant: "t1"})
	if c.rec.trace == nil {
		t.Fatal("a sampled record got no trace")
	}
	tn.add("int-1", c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tn.run(ctx, ctx)
	}()
	waitFor(t, "the record written", func() bool { d, _ := sink.counts(); return d == 1 })
	cancel()
	<-done
	tn.client.close()
	c.rec.trace.end(c.rec)

	var attempts, waits int
	recordID := c.rec.trace.span.SpanContext().SpanID()
	for _, s := range exp.GetSpans() {
		if s.Name != spanRecord && s.Parent.SpanID() != recordID {
			t.Errorf("span %s is not a child of the record's", s.Name)
		}
		switch s.Name {
		case spanBudget:
			waits++
		case spanRequest:
			attempts++
			m := map[string]any{}
			for _, kv := range s.Attributes {
				m[string(kv.Key)] = kv.Value.AsInterface()
			}
			wantStatus, wantClass, wantErr := int64(500), "transient", true
			if attempts == 2 {
				wantStatus, wantClass, wantErr = 200, "done", false
			}
			if m["http.response.status_code"] != wantStatus || m["augment.attempt.class"] != wantClass ||
				m["augment.attempt"] != int64(attempts) || (s.Status.Code == codes.Error) != wantErr {
				t.Errorf("attempt %d: %v status %v, want %d %s", attempts, m, s.Status, wantStatus, wantClass)
			}
		case spanRecord:
			for _, kv := range s.Attributes {
				if kv.Key == attrOutcome && kv.Value.AsString() != traceWritten {
					t.Errorf("record outcome %s, want written", kv.Value.AsString())
				}
			}
		}
	}
	if attempts != 2 || waits != 2 {
		t.Errorf("%d api.request and %d budget.wait spans, want 2 of each (one per attempt)", attempts, waits)
	}
}

// TestTracingOffIsNil: without a provider, or with a no-op one, the connector has no tracer
// and a record gets no trace: none of the tracing hooks does anything.
func TestTracingOffIsNil(t *testing.T) {
	if newTracer(nil) != nil || newTracer(noop.NewTracerProvider()) != nil {
		t.Fatal("a nil or no-op provider gave a tracer")
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	r := &rec{part: newPartition("t", 0)}
	startRecord(context.Background(), newTracer(tp), "g", r, nil)
	if r.trace != nil {
		t.Fatal("a record the sampler dropped got a trace")
	}
}

// BenchmarkRecordPathTraced is BenchmarkRecordPath with tracing on and every record sampled
// (spans recorded, none exported): what a traced record costs the worker.
func BenchmarkRecordPathTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	benchRecordPath(b, func(env *workerEnv) { env.tracer = newTracer(tp); env.group = "g" })
}

// TestTracingHeaderNames: the traceparent header is found whatever its case, and a malformed
// one starts a new trace instead of failing the record.
func TestTracingHeaderNames(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	const tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, tc := range []struct {
		key, value string
		continues  bool
	}{
		{"traceparent", "00-" + tid + "-00f067aa0ba902b7-01", true},
		{"Traceparent", "00-" + tid + "-00f067aa0ba902b7-01", true},
		{"traceparent", "00-" + tid + "-bad-01", false},
	} {
		r := &rec{kr: record{Headers: []kgo.RecordHeader{{Key: tc.key, Value: []byte(tc.value)}}}, part: newPartition("t", 0)}
		startRecord(context.Background(), newTracer(tp), "g", r, nil)
		if r.trace == nil {
			t.Fatalf("%s: %s: no trace", tc.key, tc.value)
		}
		got := r.trace.span.SpanContext().TraceID().String() == tid
		if got != tc.continues {
			t.Errorf("%s: %s: continues the trace: %v, want %v", tc.key, tc.value, got, tc.continues)
		}
		r.trace.span.End()
	}
}
