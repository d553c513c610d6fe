package connector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// poller is the consumer side of the group, as in franz-go's goroutine-per-partition example
// with BlockRebalanceOnPoll: the poll loop (run) fetches no more than flow has room for,
// registers each record with its partition and hands it to the partition's worker (dispatch),
// and pauses and resumes fetching as flow says; the rebalance callbacks (assigned, revoked,
// lost) start a worker per partition and stop it. kgo gates the two against each other: a
// callback waits for a poll's AllowRebalance, and a poll waits for a running callback.
//
// The poller is the only owner of the partition map (parts), which only the callbacks change.
// Everyone else (dispatch, the committer, the metrics, the budget shares) reads the snapshot
// the callbacks publish after each change (owned): an immutable map, so reading it takes no
// lock and never waits for a rebalance.
type poller struct {
	// Set by New (workCtx by Run, before the group is joined) and read-only after.
	topics      []string             // consumed: the pipelines' topics, or the replayed dead-letter topic
	byTopic     map[string]*Pipeline // for the budget shares and the consumed metric's label
	replay      bool
	tenants     map[string]*tenant
	flow        *flow
	commits     *committer
	workers     *workerEnv // what the partition workers share
	stats       *counters
	metrics     *Metrics // may be nil
	log         *zap.Logger
	now         func() time.Time
	revokeGrace time.Duration
	shared      bool            // the budget is the cluster's (the ledger's): no shares to set
	failed      <-chan struct{} // closed when the connector fails (Connector.fail)
	failure     func() error    // the error it failed with, once failed is closed
	// partitionCounts reads the partition count of each topic for the budget shares
	// (listPartitionCounts; a test may slow it down). It is called with no lock held.
	partitionCounts func(ctx context.Context, cl *kgo.Client, topics []string) (map[string]int, error)
	// workCtx is the parent of the partition workers' contexts (it ends after the shutdown
	// drain). It is a field because kgo's callbacks are called with the client's context,
	// which must not bound the workers.
	workCtx context.Context

	// For Health.
	lastLoop     atomic.Int64 // unix nanos of the poll loop's last turn
	assignedOnce atomic.Bool

	// mu serialises the callbacks' changes to parts and the publishing of owned (kgo calls
	// the callbacks one at a time already; mu keeps that true for direct calls). It is never
	// held across a wait, and no one else takes it.
	mu    sync.Mutex
	parts map[string]map[int32]*partWorker                // guarded by mu: the partitions assigned now, and their workers
	owned atomic.Pointer[map[string]map[int32]*partition] // published copy of parts' partitions; never changed once stored
}

// partWorker is an assigned partition and the goroutine that decodes and transforms its
// records in order (worker.run).
type partWorker struct {
	p      *partition
	cancel context.CancelFunc
	done   chan struct{}
}

// ownedPartitions returns the partitions assigned to this member now: the snapshot last
// published, which the caller must not change.
func (po *poller) ownedPartitions() map[string]map[int32]*partition {
	if m := po.owned.Load(); m != nil {
		return *m
	}
	return nil
}

// publishLocked stores a new snapshot of parts' partitions. The caller holds mu.
func (po *poller) publishLocked() {
	out := make(map[string]map[int32]*partition, len(po.parts))
	for topic, ps := range po.parts {
		if len(ps) == 0 {
			continue
		}
		m := make(map[int32]*partition, len(ps))
		for id, w := range ps {
			m[id] = w.p
		}
		out[topic] = m
	}
	po.owned.Store(&out)
}

// Fetch sizes. kgo buffers a fetch response per broker ahead of the polls, outside the pending
// bound; with its defaults (50 MiB a fetch, 1 MiB of compressed data a partition, several
// times that decompressed) that can exceed what the bound allows for. These keep what is
// fetched ahead to a few polls' worth. (A broker still returns at least one whole producer
// batch a partition, whatever the limits: kfake in the benchmarks does.) The application's
// kafka.fetchMaxBytes (default the same 1 MiB), passed in KafkaOpts, overrides the first.
const (
	fetchMaxBytes          = 1 << 20
	fetchMaxPartitionBytes = 256 << 10
)

// maxPoll bounds one poll, so handing records to workers stays well inside the rebalance
// timeout.
const maxPoll = 10_000

// pollTurn bounds one wait for records, so the poll loop's liveness shows when idle.
const pollTurn = 10 * time.Second

// run polls until ctx ends (nil), the client is closed (nil) or the connector fails (its
// error). Between a poll and its AllowRebalance no callback runs: dispatch hands off the whole
// poll before a partition can be released.
func (po *poller) run(ctx context.Context, cl *kgo.Client) error {
	// A fatal error ends a poll that is waiting for records.
	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-po.failed:
			cancel()
		case <-pollCtx.Done():
		}
	}()
	paused := false
	for {
		po.lastLoop.Store(po.now().UnixNano())
		select {
		case <-po.failed:
			return po.failure()
		default:
		}
		if paused {
			if !po.waitBelowLowWater(ctx) {
				return nil
			}
			cl.ResumeFetchTopics(po.flow.resumable(po.topics)...)
			paused = false
			po.flow.paused.Store(false)
		}
		// A bounded poll keeps the loop turning (and /healthz honest) on an idle replica;
		// while a tenant's topics are paused, a short one notices soon that they may resume.
		turn := pollTurn
		if po.pauseTenants(cl) {
			turn = tenantPauseTurn
		}
		turnCtx, endTurn := context.WithTimeout(pollCtx, turn)
		fetches := cl.PollRecords(turnCtx, po.flow.pollRoom(maxPoll))
		endTurn()
		if fetches.IsClientClosed() {
			return nil
		}
		if pollCtx.Err() != nil {
			cl.AllowRebalance()
			select {
			case <-po.failed:
				return po.failure()
			default:
				return nil
			}
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			po.log.Warn("fetch error", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
		})
		po.dispatch(fetches)
		po.pauseTenants(cl)
		if po.flow.pauseAll(po.unprocessed()) {
			cl.PauseFetchTopics(po.topics...)
			paused = true
			po.flow.paused.Store(true)
		}
		cl.AllowRebalance()
	}
}

// maxUnprocessed bounds the records fetched and not yet decoded and transformed, as a second
// reason to pause fetching: fetching far ahead of the workers buys nothing, and a record only
// becomes cheap once processed (when a later record for the same identifier supersedes its
// values, it costs only recOverhead), which is what lets the pending bound hold a large
// backlog while it coalesces.
const maxUnprocessed = 2 * maxPoll

// unprocessed counts the records queued for the partition workers.
func (po *poller) unprocessed() int {
	n := 0
	for _, ps := range po.ownedPartitions() {
		for _, p := range ps {
			n += p.queue.len()
		}
	}
	return n
}

// tenantPauseTurn bounds a poll while some tenant's topics are paused.
const tenantPauseTurn = 100 * time.Millisecond

// pauseTenants pauses and resumes the topics of the tenants whose records hold their share of
// maxPendingBytes (see flow.pauseTenants). It reports whether any tenant's topics are paused.
func (po *poller) pauseTenants(cl *kgo.Client) bool {
	return po.flow.pauseTenants(func(tf *tenantFlow, bytes int64) {
		cl.PauseFetchTopics(tf.topics...)
		po.log.Info("fetching paused for a tenant's topics: its pending records reached its share of maxPendingBytes",
			zap.String("tenant", tf.name), zap.Strings("topics", tf.topics), zap.Int64("pending_bytes", bytes))
	}, func(tf *tenantFlow) {
		cl.ResumeFetchTopics(tf.topics...)
	})
}

// waitBelowLowWater waits until pending work falls to three quarters of its bounds, so
// fetching resumes in steps instead of flapping. It returns false if ctx ends first.
func (po *poller) waitBelowLowWater(ctx context.Context) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		po.lastLoop.Store(po.now().UnixNano())
		if po.flow.belowLowWater(po.unprocessed()) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-po.failed:
			return false
		case <-t.C:
		}
	}
}

// dispatch registers each fetched record with its partition's tracker, in offset order, and
// hands it to the partition's worker.
func (po *poller) dispatch(fetches kgo.Fetches) {
	owned := po.ownedPartitions()
	fetches.EachPartition(func(ftp kgo.FetchTopicPartition) {
		p := owned[ftp.Topic][ftp.Partition]
		if p == nil {
			return // revoked between the fetch and now: the next owner reads them
		}
		p.setHighWatermark(ftp.HighWatermark)
		if len(ftp.Records) == 0 {
			return
		}
		batch := make([]*rec, 0, len(ftp.Records))
		var bytes int64
		owner := po.flow.owner(ftp.Topic)
		for _, kr := range ftp.Records {
			if kr.Attrs.IsControl() {
				// A transaction marker: nothing to write, but its offset must be committed
				// past, in order, once the records before it are done.
				r := &rec{kr: record{Topic: kr.Topic, Partition: kr.Partition, Offset: kr.Offset, LeaderEpoch: kr.LeaderEpoch}, part: p}
				p.add(r)
				p.markDone(r)
				continue
			}
			r := &rec{kr: detach(kr), part: p, owner: owner}
			r.size.Store(int64(len(kr.Key)+len(kr.Value)) + recOverhead)
			bytes += r.size.Load()
			batch = append(batch, r)
			p.add(r)
		}
		if len(batch) == 0 {
			return
		}
		po.flow.admit(owner, len(batch), bytes)
		po.stats.consumed.Add(int64(len(batch)))
		po.metrics.recordConsumed(po.consumedLabel(ftp.Topic), len(batch))
		p.queue.push(batch)
	})
}

// detach copies a fetched record out of the fetch: kgo's records alias the decompressed batch
// and sit in one slice per batch, so a single record kept pending (until its identifier is
// written) kept its whole batch alive, tens of thousands of records when producers batch
// large (measured: 20 MB of record slices and 15 MB of decompressed batches live in the
// throughput benchmark even with 10,000 records pending). The copy keeps what the connector
// reads later, the key, value and headers (a dead letter carries the original bytes) and
// where the record came from, in one allocation for the bytes.
func detach(kr *kgo.Record) record {
	n := len(kr.Key) + len(kr.Value)
	for _, h := range kr.Headers {
		n += len(h.Key) + len(h.Value)
	}
	buf := make([]byte, 0, n)
	take := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(buf)
		buf = append(buf, b...)
		return buf[start:len(buf):len(buf)]
	}
	out := record{
		Key:         take(kr.Key),
		Value:       take(kr.Value),
		Timestamp:   kr.Timestamp,
		Topic:       kr.Topic,
		Partition:   kr.Partition,
		LeaderEpoch: kr.LeaderEpoch,
		Offset:      kr.Offset,
	}
	if len(kr.Headers) > 0 {
		out.Headers = make([]kgo.RecordHeader, len(kr.Headers))
		for i, h := range kr.Headers {
			out.Headers[i] = kgo.RecordHeader{Key: string(take([]byte(h.Key))), Value: take(h.Value)}
		}
	}
	return out
}

// recOverhead is what a pending record costs beyond its key and value: our rec (with its
// record) and the references to it, so maxPendingBytes bounds memory rather than payload. Its
// contributions are charged while they are queued (worker.process charges contributionCost), so a record whose
// contribution was superseded on arrival costs only this.
const recOverhead = 320

// assigned starts a worker for each newly assigned partition, publishes the new partition
// map, and then (with no lock held) updates the budget shares.
func (po *poller) assigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	po.mu.Lock()
	for topic, ps := range assigned {
		if po.parts[topic] == nil {
			po.parts[topic] = make(map[int32]*partWorker)
		}
		for _, id := range ps {
			if po.parts[topic][id] != nil {
				continue
			}
			wctx, cancel := context.WithCancel(po.workCtx)
			w := &partWorker{p: newPartition(topic, id), cancel: cancel, done: make(chan struct{})}
			po.parts[topic][id] = w
			wk := newWorker(po.workers, w.p)
			go func() {
				defer close(w.done)
				wk.run(wctx)
			}()
		}
	}
	po.publishLocked()
	po.mu.Unlock()
	po.assignedOnce.Store(true)
	po.log.Info("partitions assigned", zap.Any("partitions", assigned))
	po.updateShares(ctx, cl)
}

// metadataTimeout bounds the metadata request that reads the partition counts for the budget
// shares.
const metadataTimeout = 5 * time.Second

// listPartitionCounts reads how many partitions each of topics has, with one metadata request
// (up to metadataTimeout). Topics whose metadata came back with an error are left out.
func listPartitionCounts(ctx context.Context, cl *kgo.Client, topics []string) (map[string]int, error) {
	mctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	details, err := kadm.NewClient(cl).ListTopics(mctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	counts := make(map[string]int, len(details))
	for topic, d := range details {
		if d.Err == nil {
			counts[topic] = len(d.Partitions)
		}
	}
	return counts, nil
}

// updateShares sets each tenant's share of its budget to this replica's share of the tenant's
// partitions, so replicas in one group together stay within the tenant's limit. It reads the
// partition counts (a network call of up to metadataTimeout) with no lock held, the poller's
// mu included: a slow metadata answer must not stall a rebalance callback, the commit loop,
// the metrics scrape or dispatch.
func (po *poller) updateShares(ctx context.Context, cl *kgo.Client) {
	if ctx.Err() != nil || po.replay || po.shared {
		// The client is closing; a replay keeps the whole budget of its config; a shared
		// budget (the ledger) is divided among the members by the ledger itself.
		return
	}
	counts, err := po.partitionCounts(ctx, cl, po.topics)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		po.log.Warn("reading partition counts for the budget shares failed; keeping the current shares", zap.Error(err))
		return
	}
	total := make(map[string]int)
	owned := make(map[string]int)
	parts := po.ownedPartitions()
	for topic, pl := range po.byTopic {
		if n, ok := counts[topic]; ok {
			total[pl.Tenant] += n
		}
		owned[pl.Tenant] += len(parts[topic])
	}
	for name, t := range po.tenants {
		if total[name] == 0 {
			continue
		}
		share := float64(owned[name]) / float64(total[name])
		t.budget.SetShare(share)
		po.log.Info("budget share", zap.String("tenant", name), zap.Int("partitions", owned[name]),
			zap.Int("of", total[name]), zap.Int("requests_per_minute", t.budget.Limit()))
	}
}

// revoked is called before partitions move to another member. It stops their workers, stops
// sending their records, waits briefly for their requests on the wire, commits their
// watermarks and forgets them. When it returns, nothing of theirs is sent or committed again.
func (po *poller) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	po.release(ctx, cl, revoked, true)
}

// lost is called when partitions were lost (the session expired): another member may own
// them already, so nothing is committed for them.
func (po *poller) lost(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	po.release(ctx, cl, lost, false)
}

// release takes the partitions out of the map (and the published snapshot, so dispatch, the
// committer and the metrics stop seeing them), stops their workers and their sends, and has
// the committer mark them revoked and, when commit, commit their watermarks.
func (po *poller) release(ctx context.Context, cl *kgo.Client, which map[string][]int32, commit bool) {
	var ws []*partWorker
	po.mu.Lock()
	for topic, ps := range which {
		for _, id := range ps {
			if w := po.parts[topic][id]; w != nil {
				ws = append(ws, w)
				delete(po.parts[topic], id)
			}
		}
	}
	po.publishLocked()
	po.mu.Unlock()
	if len(ws) == 0 {
		return
	}
	// 1. No new contributions: stop the workers.
	set := make(map[*partition]struct{}, len(ws))
	for _, w := range ws {
		w.p.queue.close()
		w.cancel()
		<-w.done
		w.p.revokedFlag.Store(true) // from here nothing of theirs is sent
		set[w.p] = struct{}{}
	}
	// 2. Drop their pending contributions; let requests on the wire finish (briefly).
	grace := po.revokeGrace
	if !commit {
		grace = 0
	}
	for _, t := range po.tenants {
		t.revoke(set, grace)
	}
	// 3. Commit what is done, under the commit lock, marking them revoked in the same step so
	// no commit decided earlier can land after this returns.
	ps := make([]*partition, len(ws))
	for i, w := range ws {
		ps[i] = w.p
	}
	if err := po.commits.release(ctx, cl, ps, commit); err != nil {
		// The partitions' next owner reads again from their last commit: redelivery, which is
		// allowed, but an operator should see why. commits_total{result="error"} counts it.
		po.log.Warn("committing the revoked partitions failed; their records after the last commit will be redelivered to the next owner",
			zap.Any("partitions", which), zap.Error(err))
	}
	po.log.Info("partitions released", zap.Bool("committed", commit), zap.Any("partitions", which))
	po.updateShares(ctx, cl)
}

// consumedLabel is the pipeline label of records consumed from topic.
func (po *poller) consumedLabel(topic string) string {
	if po.replay {
		return "replay"
	}
	return po.byTopic[topic].Name
}
