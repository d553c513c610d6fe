package connector

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// committer commits the owned partitions' watermarks (the offset after the longest prefix of
// done records, kept by each partition): on a timer (run), for the partitions being released
// (release) and at shutdown (all). mu serialises every commit with revocation: release marks
// its partitions revoked under it, so no commit decided before a revoke can land after it
// (docs/DESIGN.md, "Invariants"). mu is taken before a partition's lock, never after; the
// owned partitions are the poller's published snapshot, read without a lock.
type committer struct {
	interval  time.Duration
	owned     func() map[string]map[int32]*partition // the partitions assigned now (the poller's published snapshot, poller.ownedPartitions)
	flow      *flow
	log       *zap.Logger
	metrics   *Metrics      // may be nil
	committed *atomic.Int64 // Stats.Committed
	now       func() time.Time

	mu sync.Mutex // guards no field: held for the whole of a commit, and by release while it revokes
}

// run commits every interval until ctx ends. A failed commit is logged and retried on the next
// tick: the watermark only moves forward, so the next commit carries it.
func (q *committer) run(ctx context.Context, cl *kgo.Client) {
	t := time.NewTicker(q.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := q.all(ctx, cl); err != nil && ctx.Err() == nil {
				q.log.Warn("committing offsets failed; will retry", zap.Error(err))
			}
		}
	}
}

// all commits every owned partition's watermark that moved.
func (q *committer) all(ctx context.Context, cl *kgo.Client) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	for topic, ps := range q.owned() {
		for id, p := range ps {
			if off, epoch, ok := p.toCommit(); ok {
				if offsets[topic] == nil {
					offsets[topic] = make(map[int32]kgo.EpochOffset)
				}
				offsets[topic][id] = kgo.EpochOffset{Epoch: epoch, Offset: off}
			}
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	return q.commitLocked(ctx, cl, offsets)
}

// release marks the released partitions ps revoked, takes their undone records out of the
// pending bound and, when commit (a revoke, not a loss), commits their watermarks, all under mu.
func (q *committer) release(ctx context.Context, cl *kgo.Client, ps []*partition, commit bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	for _, p := range ps {
		off, epoch, ok := p.toCommit()
		q.flow.drop(p.revoke())
		if ok && commit {
			if offsets[p.topic] == nil {
				offsets[p.topic] = make(map[int32]kgo.EpochOffset)
			}
			offsets[p.topic][p.id] = kgo.EpochOffset{Epoch: epoch, Offset: off}
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return q.commitLocked(cctx, cl, offsets)
}

// commitLocked commits offsets and records, on each partition still owned, what the broker
// accepted. The caller holds mu.
func (q *committer) commitLocked(ctx context.Context, cl *kgo.Client, offsets map[string]map[int32]kgo.EpochOffset) error {
	var firstErr error
	start := q.now()
	defer func() { q.metrics.recordCommit(firstErr, q.now().Sub(start)) }()
	accepted := make(map[string]map[int32]int64)
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsgReq, resp *kmsgResp, err error) {
		if err != nil {
			firstErr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, e)
					}
					continue
				}
				if o, ok := offsets[t.Topic][p.Partition]; ok {
					if accepted[t.Topic] == nil {
						accepted[t.Topic] = make(map[int32]int64)
					}
					accepted[t.Topic][p.Partition] = o.Offset
				}
			}
		}
	})
	if len(accepted) > 0 {
		owned := q.owned()
		for topic, ps := range accepted {
			for id, off := range ps {
				if p := owned[topic][id]; p != nil {
					p.committedAt(off)
				}
			}
		}
	}
	if firstErr == nil {
		q.committed.Add(1)
	}
	return firstErr
}
