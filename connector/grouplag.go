package connector

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// The group's lag, reported by one member (issue 15, "Operators see it"). Each member reports
// the lag of the partitions it owns (consumer_lag_records, consumer_lag_seconds), so the
// partitions of a member that is down, stuck before joining, or not yet replaced show in no
// one's series: exactly when the lag matters. One member therefore reads the lag of the whole
// group from Kafka (the committed offsets against the end offsets) for every partition of the
// source topics, and publishes group_lag_records and group_lag_seconds.
//
// The role: the member assigned partition 0 of the alphabetically first topic it consumes.
// Every partition is assigned to at most one member at a time, so at most one member holds it,
// and some member does whenever the group has one and that topic exists; it needs no
// coordination of its own and moves with the assignment. A member that loses the role stops
// publishing at once (the collector checks the role at every scrape), so the series of the
// new holder replace its series instead of doubling them (sum() over the group stays right).
// Around a rebalance the series may be absent for a few seconds (until the new holder's first
// read), and a member whose session expired without noticing may publish alongside the new
// holder until its partitions are lost.

// Tunables of the group lag reporter.
const (
	groupLagInterval  = 30 * time.Second // how often the holder reads the group's lag
	groupLagRoleCheck = time.Second      // how often a member checks whether it holds the role
	groupLagTimeout   = 10 * time.Second // bounds one read: the offsets and the probes
	// groupLagStale: a read older than this is not published (the reads failed since).
	groupLagStale = 3 * groupLagInterval
	// maxLagProbes bounds the partitions whose record at the committed offset is read in one
	// refresh, the lagging ones with the lowest topic and partition first; the others have
	// group_lag_records but no group_lag_seconds until fewer lag.
	maxLagProbes = 256
	// probeFetchBytes keeps the probes' fetches small. A broker still returns at least one
	// whole batch per partition, so one probe costs up to a producer batch per lagging
	// partition probed, once per interval.
	probeFetchBytes = 64 << 10
)

// groupLagRow is the group's lag on one partition.
type groupLagRow struct {
	topic     string
	partition int32
	from      int64 // the offset the group resumes at: committed, else the log start
	records   int64 // end offset minus from
	// at is the timestamp of the record at from; zero when none lags or it was not read.
	at time.Time
}

// groupLag reads and keeps the group's lag while this member holds the role.
type groupLag struct {
	// Set by New and read-only after.
	group  string
	first  string   // the topic whose partition 0 gives the role
	topics []string // sorted
	now    func() time.Time
	log    *zap.Logger
	owned  func() map[string]map[int32]*partition
	// probeOpts are the client options of the short-lived client that reads the record at a
	// committed offset: the connector's KafkaOpts (brokers, TLS, SASL).
	probeOpts []kgo.Opt

	mu   sync.Mutex
	rows []groupLagRow // guarded by mu: the last read, nil while not holding the role
	read time.Time     // guarded by mu: when rows were read
}

func newGroupLag(group string, topics []string, kafkaOpts []kgo.Opt, now func() time.Time, log *zap.Logger,
	owned func() map[string]map[int32]*partition) *groupLag {
	sorted := slices.Clone(topics)
	slices.Sort(sorted)
	return &groupLag{group: group, first: sorted[0], topics: sorted, now: now, log: log, owned: owned, probeOpts: kafkaOpts}
}

// holdsRole reports whether this member is assigned partition 0 of the first topic.
func (g *groupLag) holdsRole() bool {
	return g.owned()[g.first][0] != nil
}

// set replaces the published read (nil: nothing to publish).
func (g *groupLag) set(rows []groupLagRow) {
	g.mu.Lock()
	g.rows, g.read = rows, g.now()
	g.mu.Unlock()
}

// snapshot returns the rows to publish now: none unless this member holds the role and its
// last read is recent.
func (g *groupLag) snapshot() []groupLagRow {
	if !g.holdsRole() {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.now().Sub(g.read) > groupLagStale {
		return nil
	}
	return g.rows
}

// run checks the role every groupLagRoleCheck and, while holding it, reads the group's lag
// every groupLagInterval (at once when the role arrives), until ctx ends. Its owner is
// startGroupLag.
func (g *groupLag) run(ctx context.Context, cl *kgo.Client) {
	t := time.NewTicker(groupLagRoleCheck)
	defer t.Stop()
	var last time.Time
	for {
		switch {
		case !g.holdsRole():
			if !last.IsZero() {
				g.set(nil)
				last = time.Time{}
			}
		case last.IsZero() || g.now().Sub(last) >= groupLagInterval:
			last = g.now()
			rows, err := g.readLag(ctx, cl)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				// The previous read stays published until it is groupLagStale.
				g.log.Warn("reading the group's lag failed", zap.Error(err))
			default:
				g.set(rows)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readLag reads the group's committed offsets and the source topics' start and end offsets,
// and the timestamp of the record at the committed offset of up to maxLagProbes lagging
// partitions, within groupLagTimeout. A partition the group never committed counts from its
// log start (where a new group starts by default); a committed offset below the log start
// (retention deleted the records) counts from the log start too.
func (g *groupLag) readLag(ctx context.Context, cl *kgo.Client) ([]groupLagRow, error) {
	ctx, cancel := context.WithTimeout(ctx, groupLagTimeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, g.topics...)
	if err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, g.topics...)
	if err != nil {
		return nil, fmt.Errorf("listing start offsets: %w", err)
	}
	committed, err := adm.FetchOffsets(ctx, g.group)
	if err != nil {
		return nil, fmt.Errorf("fetching the committed offsets of group %q: %w", g.group, err)
	}
	var rows []groupLagRow
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			return // a partition without a leader now: left out of this read
		}
		from := int64(0)
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok && s.Err == nil {
			from = s.Offset
		}
		if c, ok := committed.Lookup(e.Topic, e.Partition); ok && c.Err == nil && c.At > from {
			from = c.At
		}
		rows = append(rows, groupLagRow{topic: e.Topic, partition: e.Partition, from: from, records: max(e.Offset-from, 0)})
	})
	slices.SortFunc(rows, func(a, b groupLagRow) int {
		return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
	probe := make(map[string]map[int32]kgo.Offset)
	n := 0
	for _, r := range rows {
		if r.records == 0 || n == maxLagProbes {
			continue
		}
		if probe[r.topic] == nil {
			probe[r.topic] = make(map[int32]kgo.Offset)
		}
		probe[r.topic][r.partition] = kgo.NewOffset().At(r.from)
		n++
	}
	if n > 0 {
		times, err := g.probe(ctx, probe, n)
		if err != nil && ctx.Err() == nil {
			g.log.Warn("reading the records at the group's committed offsets failed; group_lag_seconds is left out for them", zap.Error(err))
		}
		for i := range rows {
			rows[i].at = times[rows[i].topic][rows[i].partition]
		}
	}
	return rows, nil
}

// probe reads the first record at or after each of offsets with a short-lived client of its
// own (no group, so nothing is committed and the group is not joined), and returns their
// timestamps: those read before ctx ends. Each partition is paused once its record is read.
func (g *groupLag) probe(ctx context.Context, offsets map[string]map[int32]kgo.Offset, n int) (map[string]map[int32]time.Time, error) {
	opts := append(slices.Clone(g.probeOpts),
		kgo.ConsumePartitions(offsets),
		kgo.FetchMaxBytes(probeFetchBytes),
		kgo.FetchMaxPartitionBytes(probeFetchBytes),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating the probe client: %w", err)
	}
	defer cl.Close()
	out := make(map[string]map[int32]time.Time, len(offsets))
	for got := 0; got < n; {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return out, ctx.Err()
		}
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 || !out[p.Topic][p.Partition].IsZero() {
				return
			}
			if out[p.Topic] == nil {
				out[p.Topic] = make(map[int32]time.Time)
			}
			out[p.Topic][p.Partition] = p.Records[0].Timestamp
			cl.PauseFetchPartitions(map[string][]int32{p.Topic: {p.Partition}})
			got++
		})
	}
	return out, nil
}

// startGroupLag starts the group lag reporter on cl, until ctx ends or the returned stop is
// called; stop waits for it and may be called more than once.
func (c *Connector) startGroupLag(ctx context.Context, cl *kgo.Client) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.groupLag.run(ctx, cl)
	}()
	return func() {
		cancel()
		<-done
	}
}

// collectGroupLag reports the group's lag, when this member holds the role.
func (g *gaugeCollector) collectGroupLag(ch chan<- prometheus.Metric) {
	gl := g.c.groupLag
	if gl == nil {
		return
	}
	now := g.c.opts.Now()
	for _, r := range gl.snapshot() {
		p := strconv.Itoa(int(r.partition))
		ch <- prometheus.MustNewConstMetric(g.groupLagRecords, prometheus.GaugeValue, float64(r.records), r.topic, p)
		if r.records == 0 || !r.at.IsZero() {
			ch <- prometheus.MustNewConstMetric(g.groupLagSeconds, prometheus.GaugeValue, ageSeconds(now, r.at, r.records > 0), r.topic, p)
		}
	}
}
