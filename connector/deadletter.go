package connector

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// deadLetterClass says why a record can never be written. It is the value of HeaderClass and
// the class label of records_dead_lettered_total: operators' tooling, replays and the chaos
// suite match these values, so they never change.
type deadLetterClass string

// The classes of dead letters; each is decided in one place.
const (
	// classDecode: the value could not be decoded, for a reason no retry can fix (the worker).
	classDecode deadLetterClass = "decode"
	// classTransform: the pipeline rejected the record (the worker).
	classTransform deadLetterClass = "transform"
	// classLookupMiss: a lookup found no row, under onLookupMiss deadLetter or retry (apply).
	classLookupMiss deadLetterClass = ClassLookupMiss
	// classReplay: a replayed dead letter names no pipeline's topic, or its source record is
	// gone (the worker, when replaying).
	classReplay deadLetterClass = "replay"
	// classAPIRejected: a 400 or another 4xx no retry can fix (the sender).
	classAPIRejected deadLetterClass = "api_rejected"
	// classForbidden: a 403 that persisted for one interaction while others were written (the
	// sender).
	classForbidden deadLetterClass = "forbidden"
	// classNotFound: a 404 that is final (the record is older than the not-found grace, or its
	// retries within the grace ran out), or a later record for an identifier found gone (the
	// sender, the worker).
	classNotFound deadLetterClass = "not_found"
	// classRetriesExhausted: transient failures for longer than maxRetryElapsed (the sender).
	classRetriesExhausted deadLetterClass = "retries_exhausted"
	// classStale: the record's data was older than its pipeline's maxRecordAge under onStale
	// deadLetter (the worker, or the coalescer when a request is built).
	classStale deadLetterClass = "stale"
)

// ClassLookupMiss is the dead-letter class of a record whose lookup missed.
const ClassLookupMiss = "lookup-miss"

// headerPrefix starts every header the connector adds to a dead letter.
const headerPrefix = "augment."

// Dead-letter headers, added to the record's own.
const (
	HeaderTopic     = "augment.source.topic"
	HeaderPartition = "augment.source.partition"
	HeaderOffset    = "augment.source.offset"
	// HeaderSourceTimestamp is the source record's Kafka timestamp in epoch milliseconds (the
	// dead letter's own is when it was written): a replay counts the record's age from it.
	HeaderSourceTimestamp = "augment.source.timestamp"
	HeaderPipeline        = "augment.pipeline"
	HeaderClass           = "augment.error.class"
	HeaderMessage         = "augment.error.message"
	// HeaderValueOmitted says the dead letter's value was left out on purpose, and why:
	// OmittedPrivacy (a pipeline with a private variable) or OmittedConfig
	// (deadLetter.includeValue: false). Replay re-reads such a record from its source.
	HeaderValueOmitted = "augment.value.omitted"
	// HeaderTombstone is "true" on the dead letter of a real tombstone (a record whose value
	// is null), so that it is told apart from a dead letter whose value was omitted.
	HeaderTombstone = "augment.source.tombstone"
	// HeaderCheck marks the empty record `check --live` writes to the dead-letter topic to
	// prove it may; replay skips it.
	HeaderCheck = "augment.check"
)

// Values of HeaderValueOmitted.
const (
	OmittedPrivacy = "privacy"
	OmittedConfig  = "config"
)

// deadLetters writes the records that can never be written to the API to the dead-letter
// topic. Its write is the one way a dead letter is produced, whoever decided it (a partition
// worker for decode, transform, lookup and replay failures; a tenant's sender for the API's
// answers), so the headers, the privacy rule, the retries and the counting are the same for
// every class.
type deadLetters struct {
	topic         string // "": no dead-letter topic; a dead letter stops the connector
	omitValue     bool   // Options.DeadLetterOmitValue
	privateValues bool   // Options.DeadLetterPrivateValues
	replay        bool
	byTopic       map[string]*Pipeline // read-only after New
	fail          func(error)          // stops the connector (Connector.fail)
	log           *zap.Logger
	metrics       *Metrics      // may be nil
	count         *atomic.Int64 // Stats.DeadLettered

	client *kgo.Client // set by Run before any record is fetched
}

// write writes r with its original key, value and headers plus headers naming its source and
// the reason, and returns once the broker acknowledged it. It retries until ctx ends, and
// writes a record once however many identifiers it fails for. It returns an error only when
// ctx ends or no dead-letter topic is configured (then the connector stops). The message
// never holds a privacy value or a token: it comes from the decoder, the transform (which
// withholds messages of privacy variables) or the API.
func (d *deadLetters) write(ctx context.Context, r *rec, pipeline string, class deadLetterClass, msg string) error {
	if !r.deadLettered.CompareAndSwap(false, true) {
		return nil
	}
	if d.topic == "" {
		err := fmt.Errorf("%w: pipeline %q, %s/%d@%d: %s: %s", ErrNoDeadLetterTopic, pipeline, r.kr.Topic, r.kr.Partition, r.kr.Offset, class, msg)
		d.log.Error("stopping", zap.Error(err))
		d.fail(err)
		return err
	}
	dl := &kgo.Record{
		Topic: d.topic,
		Key:   r.kr.Key,
		Value: r.kr.Value,
	}
	srcTopic, srcPartition, srcOffset := recordSource(&r.kr, d.replay)
	tombstone := isTombstone(&r.kr, d.replay)
	omitted := ""
	switch {
	case tombstone:
	case d.omitValue:
		omitted = OmittedConfig
	case !d.privateValues && d.byTopic[srcTopic] != nil && d.byTopic[srcTopic].Private:
		omitted = OmittedPrivacy
	}
	if omitted != "" {
		dl.Value = nil
	}
	// A replayed dead letter keeps naming its original source; earlier reasons are replaced.
	for _, h := range r.kr.Headers {
		if !strings.HasPrefix(h.Key, headerPrefix) {
			dl.Headers = append(dl.Headers, h)
		}
	}
	dl.Headers = append(dl.Headers,
		kgo.RecordHeader{Key: HeaderTopic, Value: []byte(srcTopic)},
		kgo.RecordHeader{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(srcPartition)))},
		kgo.RecordHeader{Key: HeaderOffset, Value: []byte(strconv.FormatInt(srcOffset, 10))},
		kgo.RecordHeader{Key: HeaderSourceTimestamp, Value: []byte(strconv.FormatInt(sourceTime(&r.kr, d.replay).UnixMilli(), 10))},
		kgo.RecordHeader{Key: HeaderPipeline, Value: []byte(pipeline)},
		kgo.RecordHeader{Key: HeaderClass, Value: []byte(class)},
		kgo.RecordHeader{Key: HeaderMessage, Value: []byte(msg)},
	)
	switch {
	case tombstone:
		dl.Headers = append(dl.Headers, kgo.RecordHeader{Key: HeaderTombstone, Value: []byte("true")})
	case omitted != "":
		dl.Headers = append(dl.Headers, kgo.RecordHeader{Key: HeaderValueOmitted, Value: []byte(omitted)})
	}
	bo := backoff.NewExponentialBackOff()
	bo.MaxElapsedTime = 0
	bo.Reset()
	for {
		err := d.client.ProduceSync(ctx, dl).FirstErr()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			r.deadLettered.Store(false)
			return ctx.Err()
		}
		wait := bo.NextBackOff()
		d.log.Warn("writing a dead letter failed; retrying", zap.String("topic", d.topic), zap.Error(err), zap.Duration("backoff", wait))
		if !sleepCtx(ctx, wait) {
			r.deadLettered.Store(false)
			return ctx.Err()
		}
	}
	d.count.Add(1)
	d.metrics.recordDeadLettered(pipeline, class)
	r.trace.deadLettered(class)
	d.log.Warn("record dead-lettered", zap.String("pipeline", pipeline), zap.String("topic", r.kr.Topic),
		zap.Int32("partition", r.kr.Partition), zap.Int64("offset", r.kr.Offset), zap.String("class", string(class)), zap.String("reason", msg))
	return nil
}

// deadLetter implements recordSink for the tenants' senders: see deadLetters.write.
func (c *Connector) deadLetter(ctx context.Context, r *rec, pipeline string, class deadLetterClass, msg string) error {
	return c.dead.write(ctx, r, pipeline, class, msg)
}

// recordSource returns where kr comes from as pipelines see it: its own topic, partition and
// offset, or, when replaying a dead letter, those its augment.source.* headers name.
func recordSource(kr *record, replay bool) (topic string, partition int32, offset int64) {
	topic, partition, offset = kr.Topic, kr.Partition, kr.Offset
	if !replay {
		return topic, partition, offset
	}
	topic = ""
	for _, h := range kr.Headers {
		switch h.Key {
		case HeaderTopic:
			topic = string(h.Value)
		case HeaderPartition:
			if n, err := strconv.ParseInt(string(h.Value), 10, 32); err == nil {
				partition = int32(n)
			}
		case HeaderOffset:
			if n, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
				offset = n
			}
		}
	}
	return topic, partition, offset
}

// sourceTime returns kr's Kafka timestamp as pipelines see it: its own, or, when replaying a
// dead letter, the source record's its augment.source.timestamp header gives (the dead
// letter's own when it has none: one written before the header existed).
func sourceTime(kr *record, replay bool) time.Time {
	if replay {
		for _, h := range kr.Headers {
			if h.Key == HeaderSourceTimestamp {
				if ms, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
					return time.UnixMilli(ms)
				}
			}
		}
	}
	return kr.Timestamp
}

// isTombstone reports whether kr is a real tombstone: a record whose value is null, or, when
// replaying, a dead letter that says so (its value is null either way).
func isTombstone(kr *record, replay bool) bool {
	if !replay {
		return kr.Value == nil
	}
	for _, h := range kr.Headers {
		if h.Key == HeaderTombstone {
			return string(h.Value) == "true"
		}
	}
	return false
}
