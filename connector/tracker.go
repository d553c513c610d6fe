package connector

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// record is what the connector keeps of a fetched record, copied out of the fetch (detach):
// what the transform, a dead letter, the watermark and the metrics read; the fields are named
// as kgo.Record's. rec holds it by value: a *kgo.Record cost an allocation of its own (rec
// 48 B plus kgo.Record 160 B; now one rec of 176 B with its trace pointer, exactly a size
// class) and carried fields nobody read (the producer's id and epoch, the attributes, a
// context).
type record struct {
	Key, Value  []byte
	Headers     []kgo.RecordHeader
	Timestamp   time.Time
	Topic       string
	Offset      int64
	Partition   int32
	LeaderEpoch int32
}

// rec is one consumed record's state from the fetch until it is done. A record is done when
// every contribution it made has been carried by a successful request (its own or a later one
// that carried a newer value of the same name), or when it was filtered, skipped or
// dead-lettered and the dead letter was acknowledged.
type rec struct {
	kr   record
	part *partition
	// size is what the record counts against the pending bound, in bytes: its own cost from
	// the fetch, plus its contributions' while they are queued (see worker.process and contributionCost).
	size atomic.Int64
	// owner is the pending bytes of the tenant the record's pipeline writes to (nil when
	// replaying, where each record names its own pipeline), for per-tenant pausing.
	owner *atomic.Int64

	// outstanding counts the contributions (one per identifier) not yet carried.
	outstanding atomic.Int32
	// deadLettered is set once the record has been written to the dead-letter topic, so a
	// record that fans out to several failing identifiers is dead-lettered once.
	deadLettered atomic.Bool
	// trace is the record's span, nil unless tracing is on and the record sampled (see
	// tracing.go). Set by its worker before the record reaches a tenant; read-only after.
	trace *recTrace

	done bool // guarded by part.mu
}

// partition tracks the records of one assigned topic partition in offset order, and the
// watermark: the offset after the longest prefix of done records, which is the next offset to
// commit. It also marks revocation under the same lock as the watermark, so a commit decided
// before a revoke can never be issued after it (see committer.release).
type partition struct {
	topic string
	id    int32

	mu        sync.Mutex // guards recs, watermark, committed, epoch, revoked and each rec's done
	recs      []*rec     // not-yet-done prefix and everything after it, in offset order
	watermark int64      // next offset to commit; -1 until a record is done
	committed int64      // last offset committed (or found committed); -1 if none
	epoch     int32      // leader epoch of the record that set the watermark
	revoked   bool
	// revokedFlag mirrors revoked for lock-free reads on the send path.
	revokedFlag atomic.Bool

	queue *recQueue // records waiting for the partition's worker

	hw    atomic.Int64 // high watermark from the last fetch, for the lag metric
	first atomic.Int64 // offset of the first record fetched, -1 before any
}

func newPartition(topic string, id int32) *partition {
	p := &partition{topic: topic, id: id, watermark: -1, committed: -1, queue: newRecQueue()}
	p.first.Store(-1)
	return p
}

func (p *partition) setHighWatermark(hw int64) {
	if hw >= 0 {
		p.hw.Store(hw)
	}
}

// lag is the high watermark minus the committed offset (or, before the first commit, the
// offset this member started at).
func (p *partition) lag() int64 {
	p.mu.Lock()
	base := p.committed
	p.mu.Unlock()
	if base < 0 {
		base = p.first.Load()
	}
	hw := p.hw.Load()
	if base < 0 || hw <= base {
		return 0
	}
	return hw - base
}

// add appends a fetched record. Records must be added in offset order.
func (p *partition) add(r *rec) {
	p.first.CompareAndSwap(-1, r.kr.Offset)
	p.mu.Lock()
	p.recs = append(p.recs, r)
	p.mu.Unlock()
}

// markDone marks r done and advances the watermark past every done record at the head.
// It reports false when the partition was revoked before: the record already left the
// pending set then, and its offset will never be committed by us.
func (p *partition) markDone(r *rec) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.revoked || r.done {
		return false
	}
	r.done = true
	n := 0
	for n < len(p.recs) && p.recs[n].done {
		last := p.recs[n]
		p.watermark = last.kr.Offset + 1
		p.epoch = last.kr.LeaderEpoch
		p.recs[n] = nil
		n++
	}
	if n > 0 {
		p.recs = p.recs[n:]
		if len(p.recs) == 0 {
			p.recs = nil // let the backing array go
		}
	}
	return true
}

// toCommit returns the offset to commit and whether it moved past the last commit. It
// returns false for a revoked partition.
func (p *partition) toCommit() (offset int64, epoch int32, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.revoked || p.watermark < 0 || p.watermark <= p.committed {
		return 0, 0, false
	}
	return p.watermark, p.epoch, true
}

// committedAt records a successful commit of offset.
func (p *partition) committedAt(offset int64) {
	p.mu.Lock()
	if offset > p.committed {
		p.committed = offset
	}
	p.mu.Unlock()
}

// revoke marks the partition revoked and returns the records that were never done, which
// leave the pending set without being committed: the next owner redelivers them.
func (p *partition) revoke() []*rec {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revoked = true
	p.revokedFlag.Store(true)
	var undone []*rec
	for _, r := range p.recs {
		if !r.done {
			undone = append(undone, r)
		}
	}
	p.recs = nil
	return undone
}

func (p *partition) isRevoked() bool { return p.revokedFlag.Load() }

// recQueue is a partition's queue of records between the poll loop and the partition's
// worker. It is unbounded by count on purpose: the poll loop must never block (it holds the
// rebalance while it does), and the connector bounds what it holds in total by pausing
// fetches once maxPendingRecords or maxPendingBytes is reached.
type recQueue struct {
	mu     sync.Mutex // guards recs and closed
	recs   []*rec
	closed bool
	signal chan struct{} // capacity 1: something was pushed or the queue closed
}

func newRecQueue() *recQueue { return &recQueue{signal: make(chan struct{}, 1)} }

func (q *recQueue) push(rs []*rec) {
	q.mu.Lock()
	if !q.closed {
		q.recs = append(q.recs, rs...)
	}
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// takeChunk bounds what a worker takes at once, so the records not yet processed show in the
// queue's length (see poller.unprocessed).
const takeChunk = 512

// take returns up to takeChunk of the records queued, oldest first, and whether the queue is
// closed.
func (q *recQueue) take() ([]*rec, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.recs) <= takeChunk {
		rs := q.recs
		q.recs = nil
		return rs, q.closed
	}
	rs := append([]*rec(nil), q.recs[:takeChunk]...)
	clear(q.recs[:takeChunk])
	q.recs = q.recs[takeChunk:]
	return rs, q.closed
}

// len is the number of records queued.
func (q *recQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.recs)
}

func (q *recQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.recs = nil
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}
