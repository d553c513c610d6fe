package connector

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing (Options.TracerProvider; README "Tracing"). A record's journey is one span,
// "augment.record", started when its partition's worker takes it and ended when it is done
// (written, filtered, skipped or dead-lettered). It continues the W3C trace context of the
// record's traceparent (and tracestate) header when there is one. Its children are "decode"
// and "transform" (the worker's) and, for its write, "budget.wait" and one "api.request" per
// HTTP attempt (the tenant's). A request carries several records' contributions: its spans
// are children of the first record it carries (the oldest pending one) and link to the other
// records' spans. Attributes name where a record comes from and what became of it, never a
// value, an identifier or a token. A record abandoned by a revoke or a shutdown ends no span:
// its partition's next owner processes it again and ends one.
//
// With no TracerProvider nothing here runs: every hook checks for a nil tracer or a nil
// *recTrace first, so the hot path allocates nothing for tracing. A record that the sampler
// drops gets no *recTrace either: its children would be dropped too.

// tracerName is the instrumentation scope of the connector's spans.
const tracerName = "github.com/augment-connector/augment-connector/connector"

// Span names.
const (
	spanRecord    = "augment.record"
	spanDecode    = "decode"
	spanTransform = "transform"
	spanBudget    = "budget.wait"
	spanRequest   = "api.request"
)

// Attribute keys: OpenTelemetry's messaging and HTTP conventions where they fit, augment.*
// for the rest.
const (
	attrMessagingSystem = attribute.Key("messaging.system")
	attrOperationType   = attribute.Key("messaging.operation.type")
	attrTopic           = attribute.Key("messaging.destination.name")
	attrPartition       = attribute.Key("messaging.destination.partition.id")
	attrOffset          = attribute.Key("messaging.kafka.offset")
	attrGroup           = attribute.Key("messaging.consumer.group.name")
	attrPipeline        = attribute.Key("augment.pipeline")
	attrTenant          = attribute.Key("augment.tenant")
	attrOutcome         = attribute.Key("augment.outcome")
	attrSkipReason      = attribute.Key("augment.skip.reason")
	attrDeadLetterClass = attribute.Key("augment.dead_letter.class")
	attrIdentifiers     = attribute.Key("augment.identifiers")
	attrAttempt         = attribute.Key("augment.attempt")
	attrAttemptClass    = attribute.Key("augment.attempt.class")
	attrRecords         = attribute.Key("augment.request.records")
	attrVariables       = attribute.Key("augment.request.variables")
	attrFresh           = attribute.Key("augment.request.fresh")
	attrProbe           = attribute.Key("augment.request.probe")
	attrHTTPMethod      = attribute.Key("http.request.method")
	attrHTTPStatus      = attribute.Key("http.response.status_code")
)

// What augment.outcome may be.
const (
	traceWritten      = "written"
	traceFiltered     = "filtered"
	traceSkipped      = "skipped"
	traceDeadLettered = "dead_lettered"
)

// maxLinks bounds the links of a request's spans (the SDK's default limit too): a backlog
// coalesced into one request can carry thousands of records.
const maxLinks = 128

// newTracer returns the connector's tracer of tp, or nil (tracing off) for no provider or a
// no-op one.
func newTracer(tp trace.TracerProvider) trace.Tracer {
	switch tp.(type) {
	case nil, noop.TracerProvider, *noop.TracerProvider:
		return nil
	}
	return tp.Tracer(tracerName)
}

// recTrace is a sampled record's span. Set by its worker before the record is handed to a
// tenant, read-only after (the span itself is safe for concurrent use).
type recTrace struct {
	tracer trace.Tracer
	span   trace.Span
	ctx    context.Context // holds span: the parent of the record's children
	// outcome is set by the worker when it ends the record (filtered, skipped); a record
	// dead-lettered says so through rec.deadLettered; any other is written.
	outcome bool
}

// headerCarrier reads a record's headers as a propagation.TextMapCarrier.
type headerCarrier []kgo.RecordHeader

func (h headerCarrier) Get(key string) string {
	for i := range h {
		if strings.EqualFold(h[i].Key, key) {
			return string(h[i].Value)
		}
	}
	return ""
}

func (headerCarrier) Set(string, string) {}

func (h headerCarrier) Keys() []string {
	keys := make([]string, len(h))
	for i := range h {
		keys[i] = h[i].Key
	}
	return keys
}

// startRecord starts r's span, continuing the trace context of its headers, and sets r.trace
// when the span is sampled.
func startRecord(ctx context.Context, tracer trace.Tracer, group string, r *rec, pl *Pipeline) {
	ctx = propagation.TraceContext{}.Extract(ctx, headerCarrier(r.kr.Headers))
	attrs := []attribute.KeyValue{
		attrMessagingSystem.String("kafka"),
		attrOperationType.String("process"),
		attrTopic.String(r.kr.Topic),
		attrPartition.String(strconv.Itoa(int(r.kr.Partition))),
		attrOffset.Int64(r.kr.Offset),
		attrGroup.String(group),
	}
	if pl != nil {
		attrs = append(attrs, attrPipeline.String(pl.Name), attrTenant.String(pl.Tenant))
	}
	ctx, span := tracer.Start(ctx, spanRecord, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	if !span.IsRecording() {
		span.End()
		return
	}
	r.trace = &recTrace{tracer: tracer, span: span, ctx: ctx}
}

// child starts a child of the record's span; nil when rt is (tracing off or not sampled).
func (rt *recTrace) child(name string) trace.Span {
	if rt == nil {
		return nil
	}
	_, sp := rt.tracer.Start(rt.ctx, name)
	return sp
}

// endChild ends a span child returned, failed naming the failure's class when it failed.
func endChild(sp trace.Span, failed string) {
	if sp == nil {
		return
	}
	if failed != "" {
		sp.SetStatus(codes.Error, failed)
	}
	sp.End()
}

// ended records what the worker decided for r (filtered, skipped with reason); recordDone
// ends the span.
func (rt *recTrace) ended(outcome, reason string) {
	if rt == nil {
		return
	}
	rt.outcome = true
	rt.span.SetAttributes(attrOutcome.String(outcome))
	if reason != "" {
		rt.span.SetAttributes(attrSkipReason.String(reason))
	}
}

// deadLettered records that r was dead-lettered with class.
func (rt *recTrace) deadLettered(class deadLetterClass) {
	if rt == nil {
		return
	}
	rt.span.SetAttributes(attrOutcome.String(traceDeadLettered), attrDeadLetterClass.String(string(class)))
	rt.span.SetStatus(codes.Error, string(class))
}

// end ends r's span once r is done.
func (rt *recTrace) end(r *rec) {
	if !rt.outcome && !r.deadLettered.Load() {
		rt.span.SetAttributes(attrOutcome.String(traceWritten))
	}
	rt.span.End()
}

// reqTrace is where a request's spans go: under the span of one record it carries, linked
// to the others'.
type reqTrace struct {
	ctx     context.Context
	links   []trace.Link
	records int
}

// traceRequest sets req.trace when the tenant traces and a record req carries is sampled,
// and records the wait for the first attempt's budget, from waitStart to waitEnd.
func (t *tenant) traceRequest(req *request, waitStart, waitEnd time.Time) {
	if t.tracer == nil {
		return
	}
	var rt reqTrace
	seen := make(map[*rec]bool)
	note := func(r *rec) {
		if seen[r] {
			return
		}
		seen[r] = true
		rt.records++
		if r.trace == nil {
			return
		}
		if rt.ctx == nil {
			rt.ctx = r.trace.ctx
		} else if len(rt.links) < maxLinks {
			rt.links = append(rt.links, trace.Link{SpanContext: r.trace.span.SpanContext()})
		}
	}
	for _, cr := range req.carried {
		note(cr.c.rec)
	}
	for _, cr := range req.carried {
		for _, r := range cr.c.riders {
			note(r)
		}
	}
	if rt.ctx == nil {
		return
	}
	req.trace = &rt
	t.traceBudgetWait(req, waitStart, waitEnd)
}

// traceBudgetWait records a wait for the budget, once it is over.
func (t *tenant) traceBudgetWait(req *request, start, end time.Time) {
	if req.trace == nil {
		return
	}
	_, sp := t.tracer.Start(req.trace.ctx, spanBudget, trace.WithTimestamp(start), trace.WithLinks(req.trace.links...),
		trace.WithAttributes(attrTenant.String(t.name)))
	sp.End(trace.WithTimestamp(end))
}

// startAttempt starts the span of attempt n (0-based) of req; nil when req is not traced.
func (t *tenant) startAttempt(req *request, n int, at time.Time) trace.Span {
	if req.trace == nil {
		return nil
	}
	_, sp := t.tracer.Start(req.trace.ctx, spanRequest, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(at),
		trace.WithLinks(req.trace.links...),
		trace.WithAttributes(
			attrTenant.String(t.name),
			attrHTTPMethod.String("POST"),
			attrAttempt.Int(n+1),
			attrRecords.Int(req.trace.records),
			attrVariables.Int(len(req.vars)),
			attrFresh.Bool(req.fresh),
			attrProbe.Bool(req.probe),
		))
	return sp
}

// endAttempt ends an attempt's span with what the answer was: its status and class, never
// its message (the API's may quote the identifier).
func endAttempt(sp trace.Span, res attemptResult, at time.Time) {
	if sp == nil {
		return
	}
	if res.status != 0 {
		sp.SetAttributes(attrHTTPStatus.Int(res.status))
	}
	sp.SetAttributes(attrAttemptClass.String(res.outcome.String()))
	if res.outcome != outcomeDone {
		sp.SetStatus(codes.Error, res.outcome.String())
	}
	sp.End(trace.WithTimestamp(at))
}
