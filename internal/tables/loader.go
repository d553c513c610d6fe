package tables

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// LoaderOptions are what Run needs beyond the tables themselves.
type LoaderOptions struct {
	// KafkaOpts reach the cluster (brokers, TLS, SASL); Run adds the topics and the start.
	KafkaOpts []kgo.Opt
	// Decoders decode each table's values, in the order of the specs given to New.
	Decoders []Decoder
	// KeyDecoders read each table's keys, in the same order (schemas.KeyDecoder); nil (or a
	// nil entry) reads keys as their bytes in a string.
	KeyDecoders []Decoder
	// IsTransientDecodeError tells a decode error a retry can fix (registry unreachable); nil
	// treats every decode error as permanent: the record is skipped and counted.
	IsTransientDecodeError func(error) bool
	Logger                 *zap.Logger
}

// Prepare gives the Set what Run needs. Call it once, before Run.
func (s *Set) Prepare(o LoaderOptions) error {
	if len(o.Decoders) != len(s.specs) {
		return fmt.Errorf("tables: %d decoders for %d tables", len(o.Decoders), len(s.specs))
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.IsTransientDecodeError == nil {
		o.IsTransientDecodeError = func(error) bool { return false }
	}
	s.loader = o
	if o.KeyDecoders != nil && len(o.KeyDecoders) != len(s.specs) {
		return fmt.Errorf("tables: %d key decoders for %d tables", len(o.KeyDecoders), len(s.specs))
	}
	s.decoders = make([]*schemas.RetryingDecoder, len(o.Decoders))
	for i, d := range o.Decoders {
		s.decoders[i] = schemas.Retrying(d, o.IsTransientDecodeError)
	}
	s.keyDecoders = make([]*schemas.RetryingDecoder, len(s.specs))
	for i, d := range o.KeyDecoders {
		if d != nil {
			s.keyDecoders[i] = schemas.Retrying(d, o.IsTransientDecodeError)
		}
	}
	return nil
}

// pollTurn bounds one wait for records, so an idle table still sweeps expired entries.
const pollTurn = time.Second

// Run reads every partition of the tables' topics from the start, without a consumer group,
// and keeps following them until ctx ends (it then returns nil). CaughtUp is closed once the
// end offsets seen at the start are reached. It returns an error when a table's bound is
// exceeded (ErrFull); other problems (a record that does not decode or evaluate) skip the
// record, counted and logged.
func (s *Set) Run(ctx context.Context) error {
	log := s.loader.Logger
	if log == nil {
		log = zap.NewNop()
	}
	topics := s.Topics()
	opts := append(append([]kgo.Opt{}, s.loader.KafkaOpts...),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Transaction markers take offsets too, often the last one of a partition; kgo drops
		// them by default, so loading could never see the end offset it waits for. Kept, they
		// move the position past themselves and are otherwise skipped.
		kgo.KeepControlRecords(),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("tables: creating kafka client: %w", err)
	}
	defer cl.Close()

	start := time.Now()
	remaining, err := s.endOffsets(ctx, kadm.NewClient(cl), topics, log)
	if err != nil {
		return nil // ctx ended while listing
	}
	s.noteProgress(remaining, start, log)

	byTopic := make(map[string][]int, len(s.specs))
	for i, sp := range s.specs {
		byTopic[sp.Topic] = append(byTopic[sp.Topic], i)
	}
	var ev transform.Evaluator
	lastSweep := time.Now()
	for {
		turn, end := context.WithTimeout(ctx, pollTurn)
		fetches := cl.PollFetches(turn)
		end()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			log.Warn("reading a table topic", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
		})
		next := make(map[topicPartition]int64)
		var fatal error
		fetches.EachPartition(func(ftp kgo.FetchTopicPartition) {
			if fatal != nil || len(ftp.Records) == 0 {
				return
			}
			// Decode first, outside the lock: a decode may wait for the schema registry, and
			// pipelines holding the tables (Hold) must not wait for that.
			keys := make([]any, len(ftp.Records))
			values := make([]any, len(ftp.Records))
			usable := make([]bool, len(ftp.Records))
			for i, r := range ftp.Records {
				if r.Attrs.IsControl() {
					continue
				}
				if usable[i], keys[i], values[i], fatal = s.decode(ctx, byTopic[r.Topic], r, log); fatal != nil {
					return
				}
			}
			s.applyMu.Lock()
			defer s.applyMu.Unlock()
			for i, r := range ftp.Records {
				if !usable[i] {
					continue
				}
				if fatal = s.applyRecord(&ev, byTopic[r.Topic], r, keys[i], values[i], log); fatal != nil {
					return
				}
			}
			next[topicPartition{ftp.Topic, ftp.Partition}] = ftp.Records[len(ftp.Records)-1].Offset + 1
		})
		ev.Reset()
		if fatal != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fatal
		}
		s.advance(next)
		if len(remaining) > 0 {
			for tp, o := range next {
				if end, ok := remaining[tp]; ok && o >= end {
					delete(remaining, tp)
				}
			}
			s.noteProgress(remaining, start, log)
		}
		if time.Since(lastSweep) >= pollTurn {
			lastSweep = time.Now()
			for _, st := range s.stores {
				st.sweep()
			}
		}
	}
}

func (s *Set) entries() int {
	n := 0
	for _, st := range s.stores {
		c, _, _ := st.stats()
		n += c
	}
	return n
}

// noteProgress records how far loading is: caught up once no partition remains to be read up to
// its start-up end offset, else why lookups wait.
func (s *Set) noteProgress(remaining map[topicPartition]int64, start time.Time, log *zap.Logger) {
	if len(remaining) == 0 {
		s.markCaughtUp()
		log.Info("lookup tables loaded", zap.Int("entries", s.entries()), zap.Duration("elapsed", time.Since(start)))
		return
	}
	why := fmt.Sprintf("lookup tables loading: %d partitions to read up to their end offsets", len(remaining))
	s.loading.Store(&why)
}

// endOffsets lists where each partition of topics ends now (its last stable offset), retrying (not ready meanwhile)
// until it succeeds or ctx ends. It returns the partitions that hold records to read.
func (s *Set) endOffsets(ctx context.Context, adm *kadm.Client, topics []string, log *zap.Logger) (map[topicPartition]int64, error) {
	bo := backoff.NewExponentialBackOff()
	bo.MaxElapsedTime = 0
	bo.MaxInterval = 10 * time.Second
	bo.Reset()
	for {
		out, err := listEnds(ctx, adm, topics)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		why := "lookup tables: listing the end offsets of their topics: " + err.Error()
		s.loading.Store(&why)
		log.Warn("listing the end offsets of the table topics failed; retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(bo.NextBackOff()):
		}
	}
}

func listEnds(ctx context.Context, adm *kadm.Client, topics []string) (map[topicPartition]int64, error) {
	// The last stable offset, not the high watermark: records of a transaction still open
	// are past it, and a read_committed client cannot see them until it ends, which may be
	// never (a producer that died mid-transaction holds it until the transaction times out).
	// A read_uncommitted client reaches it too, and reads on past it.
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	if err := ends.Error(); err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	if err := starts.Error(); err != nil {
		return nil, err
	}
	for _, t := range topics {
		if len(ends[t]) == 0 {
			return nil, fmt.Errorf("topic %q has no partitions (does it exist?)", t)
		}
	}
	out := make(map[topicPartition]int64)
	ends.Each(func(o kadm.ListedOffset) {
		st, _ := starts.Lookup(o.Topic, o.Partition)
		if o.Offset > st.Offset {
			out[topicPartition{o.Topic, o.Partition}] = o.Offset
		}
	})
	return out, nil
}

// decode decodes r's key and value for the tables at indexes which. ok is false for a record
// that does not decode (skipped, counted and logged); the error is ctx's, when it ends during
// retries of a transient failure.
func (s *Set) decode(ctx context.Context, which []int, r *kgo.Record, log *zap.Logger) (ok bool, key, value any, _ error) {
	key = string(r.Key)
	var err error
	if kd := s.keyDecoders[which[0]]; kd != nil {
		key, err = kd.Decode(ctx, r.Key)
	}
	if err == nil && len(r.Value) > 0 {
		value, err = s.decoders[which[0]].Decode(ctx, r.Value)
	}
	if err == nil {
		return true, key, value, nil
	}
	if ctx.Err() != nil {
		return false, nil, nil, ctx.Err()
	}
	for _, i := range which {
		s.metrics.record(s.specs[i].Name, actionError)
	}
	log.Warn("a table record does not decode; skipped", zap.String("topic", r.Topic),
		zap.Int32("partition", r.Partition), zap.Int64("offset", r.Offset), zap.Error(err))
	return false, nil, nil, nil
}

// applyRecord applies a decoded record to the tables at indexes which. Only ErrFull is
// returned; a record a table cannot use is skipped, counted and logged.
func (s *Set) applyRecord(ev *transform.Evaluator, which []int, r *kgo.Record, key, value any, log *zap.Logger) error {
	ev.Set(&transform.Record{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp,
		Key: key, Headers: headers(r), Value: value,
	})
	for _, i := range which {
		name := s.specs[i].Name
		action, err := s.apply(ev, i, r.Timestamp)
		s.metrics.record(name, action)
		if errors.Is(err, ErrFull) {
			log.Error("a lookup table reached its bound", zap.String("table", name), zap.Error(err))
			return err
		}
		if err != nil {
			log.Warn("a table record cannot be used; skipped", zap.String("table", name), zap.String("topic", r.Topic),
				zap.Int32("partition", r.Partition), zap.Int64("offset", r.Offset), zap.Error(err))
		}
	}
	return nil
}

func headers(r *kgo.Record) map[string]string {
	if len(r.Headers) == 0 {
		return nil
	}
	h := make(map[string]string, len(r.Headers))
	for _, x := range r.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}
