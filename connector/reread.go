package connector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// ErrSourceGone is returned when a replay cannot re-read a dead letter's source record: the
// offset is no longer in the source partition (retention or compaction removed it) or never
// was. The replay dead-letters such a record again with class "replay" instead of processing
// it as a tombstone.
var ErrSourceGone = errors.New("the source record is gone")

// defaultSourceReadTimeout bounds one re-read of a source record.
const defaultSourceReadTimeout = time.Minute

// sourceReader re-reads the source records of replayed dead letters that carry no value.
type sourceReader struct {
	kafkaOpts []kgo.Opt     // Options.KafkaOpts: brokers, TLS, SASL
	timeout   time.Duration // Options.SourceReadTimeout; 0: defaultSourceReadTimeout
	log       *zap.Logger

	client *kgo.Client // the group's client, for the partition's offsets: set by Run before any record is fetched
}

// read sets r's value to that of its source record, read at the coordinates its dead-letter
// headers name, with a client of its own that consumes that one partition from that offset
// (the connector's client is in a group). It is used for dead letters that carry no value:
// private pipelines' and those written with includeValue: false.
func (s *sourceReader) read(ctx context.Context, r *rec) error {
	topic, partition, offset := recordSource(&r.kr, true)
	if topic == "" {
		return fmt.Errorf("%w: the dead letter names no source topic", ErrSourceGone)
	}
	timeout := s.timeout
	if timeout <= 0 {
		timeout = defaultSourceReadTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	where := fmt.Sprintf("%s/%d@%d", topic, partition, offset)

	adm := kadm.NewClient(s.client)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("re-reading %s: listing the partition's start: %w", where, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("re-reading %s: listing the partition's end: %w", where, err)
	}
	start, okStart := starts.Lookup(topic, partition)
	end, okEnd := ends.Lookup(topic, partition)
	switch {
	case !okStart || !okEnd:
		return fmt.Errorf("%w: %s: the partition does not exist", ErrSourceGone, where)
	case offset < start.Offset:
		return fmt.Errorf("%w: %s: the partition now starts at offset %d (retention removed it)", ErrSourceGone, where, start.Offset)
	case offset >= end.Offset:
		return fmt.Errorf("%w: %s: the partition ends at offset %d", ErrSourceGone, where, end.Offset)
	}

	opts := append(slices.Clip(s.kafkaOpts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(offset)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("re-reading %s: creating a kafka client: %w", where, err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			if parent.Err() != nil {
				return parent.Err()
			}
			return fmt.Errorf("re-reading %s: no record within %v: %w", where, timeout, err)
		}
		var found *kgo.Record
		var fetchErr error
		fs.EachError(func(_ string, _ int32, err error) { fetchErr = err })
		fs.EachRecord(func(kr *kgo.Record) {
			if found == nil && kr.Topic == topic && kr.Partition == partition && kr.Offset >= offset {
				found = kr
			}
		})
		switch {
		case found != nil && found.Offset == offset:
			r.kr.Value = found.Value
			return nil
		case found != nil:
			// The first record from there is later: compaction or retention removed it.
			return fmt.Errorf("%w: %s: the partition continues at offset %d", ErrSourceGone, where, found.Offset)
		case fetchErr != nil:
			s.log.Debug("re-reading a source record: fetch error; retrying", zap.String("source", where), zap.Error(fetchErr))
		}
	}
}
