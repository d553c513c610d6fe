package connector_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/augment-connector/augment-connector/internal/sim"
	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// traceparent is a W3C traceparent header of a sampled span in trace tid.
func traceparent(tid, sid string) kgo.RecordHeader {
	return kgo.RecordHeader{Key: "traceparent", Value: []byte("00-" + tid + "-" + sid + "-01")}
}

// TestTracingSpans runs a few records through a connector traced into the SDK's in-memory
// exporter and checks each record's span: a record with a traceparent header continues its
// trace, with decode, transform, budget.wait and api.request children and the attributes of
// where it came from; one without starts a new trace; a filtered and a dead-lettered record
// end with their outcome; two records coalesced into one request have its spans under one of
// them, linked to the other; and no attribute, name or status quotes a variable value, an
// identifier or the token.
func TestTracingSpans(t *testing.T) {
	k := plainCluster(t)
	e := startSim(t, sim.Config{AutoCreate: true})
	topic := kafkatest.UniqueName(t, "calls")
	dlq := kafkatest.UniqueName(t, "dlq")
	group := kafkatest.UniqueName(t, "group")
	k.createTopic(topic, 1)

	const (
		traceA  = "4bf92f3577b34da6a3ce929d0e0e4736"
		traceC1 = "0af7651916cd43dd8448eb211c80319c"
		traceC2 = "1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"
	)
	// Values no span may quote: every variable value, every identifier.
	secrets := []string{"int-traced-7f3a", "int-fresh-91b2", "int-pair-55c1", "int-gone-0d4e",
		"tier-zircon", "tier-quartz", "tier-basalt", "81234.56", "note-onyx", "99887.66"}
	recs := []*kgo.Record{
		{Key: []byte("a"), Value: []byte(`{"id":"int-traced-7f3a","tier":"tier-zircon","balance":"81234.56"}`),
			Headers: []kgo.RecordHeader{traceparent(traceA, "00f067aa0ba902b7"), {Key: "tracestate", Value: []byte("vendor=x")}}},
		{Key: []byte("b"), Value: []byte(`{"id":"int-fresh-91b2","tier":"tier-quartz","balance":"99887.66"}`)},
		{Key: []byte("f"), Value: []byte(`{"id":"int-gone-0d4e","tier":"drop"}`)},
		{Key: []byte("d"), Value: []byte(`{"id":"int-gone-0d4e","tier":`)},
		{Key: []byte("c1"), Value: []byte(`{"id":"int-pair-55c1","tier":"tier-basalt","note":"note-onyx"}`),
			Headers: []kgo.RecordHeader{traceparent(traceC1, "b7ad6b7169203331")}},
		{Key: []byte("c2"), Value: []byte(`{"id":"int-pair-55c1","tier":"tier-zircon"}`),
			Headers: []kgo.RecordHeader{traceparent(traceC2, "a1b2c3d4e5f60718")}},
	}
	for _, r := range recs {
		r.Topic = topic
		r.Partition = 0
	}
	k.produce(recs)

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	spec := transform.Spec{
		Name:       "calls",
		Filter:     `after.tier != "drop"`,
		Identifier: "after.id",
		Variables: []transform.VariableSpec{
			{Name: "_tier", Value: "after.tier"},
			{Name: "_balance", Value: "after.balance"},
			{Name: "_note", Value: "after.note"},
		},
	}
	pl, err := transform.Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	opts := baseOptions(t, k, group, e, connector.Pipeline{Name: "calls", Topics: []string{topic}, Tenant: simTenant,
		Decoder: schemas.NewJSONDecoder(), Transform: pl})
	opts.DeadLetterTopic = dlq
	opts.Linger = 500 * time.Millisecond // c1 and c2 go in one request
	opts.TracerProvider = tp
	r := startConnector(t, opts)
	k.waitCommitted(group, topic, 30*time.Second, r)
	if err := r.stop(t, 15*time.Second); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}

	spans := exp.GetSpans()
	byID := map[trace.SpanID]tracetest.SpanStub{}
	records := map[int64]tracetest.SpanStub{} // by offset
	children := map[trace.SpanID][]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
		if s.Name == "augment.record" {
			records[attrs(s)["messaging.kafka.offset"].AsInt64()] = s
		}
		if s.Parent.IsValid() {
			children[s.Parent.SpanID()] = append(children[s.Parent.SpanID()], s)
		}
	}
	if len(records) != len(recs) {
		t.Fatalf("%d record spans, want %d (one per record); spans: %v", len(records), len(recs), names(spans))
	}
	childNames := func(s tracetest.SpanStub) string {
		var ns []string
		for _, c := range children[s.SpanContext.SpanID()] {
			ns = append(ns, c.Name)
		}
		return strings.Join(ns, ",")
	}

	// a: continues its trace, with every child, and says where it came from.
	a := records[recs[0].Offset]
	if got := a.SpanContext.TraceID().String(); got != traceA || a.Parent.SpanID().String() != "00f067aa0ba902b7" || !a.Parent.IsRemote() {
		t.Errorf("record a: trace %s parent %s, want trace %s under the remote parent of its traceparent", got, a.Parent.SpanID(), traceA)
	}
	if ts := a.SpanContext.TraceState().String(); ts != "vendor=x" {
		t.Errorf("record a: tracestate %q, want vendor=x from its header", ts)
	}
	if a.SpanKind != trace.SpanKindConsumer {
		t.Errorf("record a: kind %v, want consumer", a.SpanKind)
	}
	want := map[string]string{
		"messaging.system": "kafka", "messaging.destination.name": topic, "messaging.destination.partition.id": "0",
		"messaging.kafka.offset": fmt.Sprint(recs[0].Offset), "messaging.consumer.group.name": group,
		"augment.pipeline": "calls", "augment.tenant": simTenant, "augment.outcome": "written", "augment.identifiers": "1",
	}
	for key, v := range want {
		if got := attrs(a)[attribute.Key(key)].Emit(); got != v {
			t.Errorf("record a: %s = %q, want %q", key, got, v)
		}
	}
	if got := childNames(a); got != "decode,transform,budget.wait,api.request" {
		t.Errorf("record a: children %q, want decode,transform,budget.wait,api.request", got)
	}
	for _, c := range children[a.SpanContext.SpanID()] {
		if c.SpanContext.TraceID() != a.SpanContext.TraceID() {
			t.Errorf("record a: child %s in trace %s, not its record's", c.Name, c.SpanContext.TraceID())
		}
		if c.Name == "api.request" {
			if got := attrs(c)["http.response.status_code"].AsInt64(); got != 200 {
				t.Errorf("record a: api.request status %d, want 200", got)
			}
			if got := attrs(c)["augment.attempt.class"].AsString(); got != "done" || c.Status.Code == codes.Error {
				t.Errorf("record a: api.request class %q status %v, want done, not an error", got, c.Status)
			}
			if c.SpanKind != trace.SpanKindClient || len(c.Links) != 0 {
				t.Errorf("record a: api.request kind %v with %d links, want client and none (it carried only a)", c.SpanKind, len(c.Links))
			}
		}
	}

	// b: no traceparent, a new trace of its own.
	b := records[recs[1].Offset]
	if b.Parent.IsValid() || b.SpanContext.TraceID() == a.SpanContext.TraceID() {
		t.Errorf("record b: parent %v in trace %s, want a root span of a new trace", b.Parent, b.SpanContext.TraceID())
	}
	if got := attrs(b)["augment.outcome"].AsString(); got != "written" {
		t.Errorf("record b: outcome %q, want written", got)
	}

	// f: filtered; d: dead-lettered as undecodable.
	f := records[recs[2].Offset]
	if got := attrs(f)["augment.outcome"].AsString(); got != "filtered" || childNames(f) != "decode,transform" {
		t.Errorf("record f: outcome %q children %q, want filtered after decode,transform", got, childNames(f))
	}
	d := records[recs[3].Offset]
	if got, class := attrs(d)["augment.outcome"].AsString(), attrs(d)["augment.dead_letter.class"].AsString(); got != "dead_lettered" || class != "decode" || d.Status.Code != codes.Error {
		t.Errorf("record d: outcome %q class %q status %v, want dead_lettered, decode, an error", got, class, d.Status)
	}
	if got := childNames(d); got != "decode" || children[d.SpanContext.SpanID()][0].Status.Code != codes.Error {
		t.Errorf("record d: children %q, want one failed decode", got)
	}

	// c1 and c2: one request, under one of them and linked to the other.
	c1, c2 := records[recs[4].Offset], records[recs[5].Offset]
	var reqs []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == "api.request" && (s.Parent.SpanID() == c1.SpanContext.SpanID() || s.Parent.SpanID() == c2.SpanContext.SpanID()) {
			reqs = append(reqs, s)
		}
	}
	if len(reqs) != 1 {
		t.Fatalf("%d api.request spans under c1 or c2, want 1 (one coalesced request)", len(reqs))
	}
	owner, other := c1, c2
	if reqs[0].Parent.SpanID() == c2.SpanContext.SpanID() {
		owner, other = c2, c1
	}
	if reqs[0].SpanContext.TraceID() != owner.SpanContext.TraceID() {
		t.Errorf("the coalesced request is in trace %s, not its record's %s", reqs[0].SpanContext.TraceID(), owner.SpanContext.TraceID())
	}
	if len(reqs[0].Links) != 1 || reqs[0].Links[0].SpanContext.SpanID() != other.SpanContext.SpanID() ||
		reqs[0].Links[0].SpanContext.TraceID() != other.SpanContext.TraceID() {
		t.Errorf("the coalesced request links %v, want the other record's span %s", reqs[0].Links, other.SpanContext.SpanID())
	}
	if got := attrs(reqs[0])["augment.request.records"].AsInt64(); got != 2 {
		t.Errorf("the coalesced request says it carried %d records, want 2", got)
	}
	for _, c := range []tracetest.SpanStub{c1, c2} {
		if got := attrs(c)["augment.outcome"].AsString(); got != "written" {
			t.Errorf("record at offset %d: outcome %q, want written", attrs(c)["messaging.kafka.offset"].AsInt64(), got)
		}
	}

	// Nothing quotes a value, an identifier or the token.
	secrets = append(secrets, e.token)
	for _, s := range spans {
		texts := []string{s.Name, s.Status.Description}
		for _, kv := range s.Attributes {
			texts = append(texts, string(kv.Key), kv.Value.Emit())
		}
		for _, ev := range s.Events {
			texts = append(texts, ev.Name)
			for _, kv := range ev.Attributes {
				texts = append(texts, kv.Value.Emit())
			}
		}
		for _, text := range texts {
			for _, sec := range secrets {
				if strings.Contains(text, sec) {
					t.Errorf("span %s quotes %q: %q", s.Name, sec, text)
				}
			}
		}
	}
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(s.Attributes))
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
