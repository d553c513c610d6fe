package connector

import (
	"math/rand/v2"
	"testing"
)

func newTestRecs(p *partition, offsets ...int64) []*rec {
	rs := make([]*rec, len(offsets))
	for i, o := range offsets {
		rs[i] = &rec{kr: record{Topic: p.topic, Partition: p.id, Offset: o}, part: p}
		p.add(rs[i])
	}
	return rs
}

// TestTrackerShuffledCompletions completes records in random orders and checks after every
// step that the watermark is exactly the offset after the longest done prefix: never past an
// unfinished record (invariant 1), never behind a finished prefix.
func TestTrackerShuffledCompletions(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		p := newPartition("t", 0)
		n := 1 + rng.IntN(300)
		// Offsets with gaps, as compaction and transaction markers leave them.
		offsets := make([]int64, n)
		next := int64(rng.IntN(1000))
		for i := range offsets {
			offsets[i] = next
			next += 1 + int64(rng.IntN(3)/2)
		}
		rs := newTestRecs(p, offsets...)
		order := rng.Perm(n)
		done := make([]bool, n)
		for step, i := range order {
			if !p.markDone(rs[i]) {
				t.Fatalf("seed %d: markDone of a live partition reported false", seed)
			}
			done[i] = true
			prefix := 0
			for prefix < n && done[prefix] {
				prefix++
			}
			off, _, ok := p.toCommit()
			switch {
			case prefix == 0 && ok:
				t.Fatalf("seed %d step %d: commit offered (%d) with the first record unfinished", seed, step, off)
			case prefix > 0 && (!ok || off != offsets[prefix-1]+1):
				t.Fatalf("seed %d step %d: toCommit = %d,%v; want %d", seed, step, off, ok, offsets[prefix-1]+1)
			}
		}
		if len(p.recs) != 0 {
			t.Fatalf("seed %d: %d records still held after all were done", seed, len(p.recs))
		}
	}
}

func TestTrackerCommitProgressAndRevoke(t *testing.T) {
	p := newPartition("t", 3)
	rs := newTestRecs(p, 10, 11, 12)
	if _, _, ok := p.toCommit(); ok {
		t.Fatal("nothing done, yet a commit is offered")
	}
	p.markDone(rs[0])
	off, _, ok := p.toCommit()
	if !ok || off != 11 {
		t.Fatalf("toCommit = %d,%v want 11,true", off, ok)
	}
	p.committedAt(11)
	if _, _, ok := p.toCommit(); ok {
		t.Fatal("offered the same offset again after it was committed")
	}
	p.markDone(rs[2]) // 12 done, 11 not: no progress
	if _, _, ok := p.toCommit(); ok {
		t.Fatal("offered a commit past an unfinished record")
	}
	undone := p.revoke()
	if len(undone) != 1 || undone[0] != rs[1] {
		t.Fatalf("revoke returned %d undone records, want exactly offset 11", len(undone))
	}
	if p.markDone(rs[1]) {
		t.Fatal("markDone after revoke reported the record as newly done")
	}
	if _, _, ok := p.toCommit(); ok {
		t.Fatal("a revoked partition offered a commit")
	}
	if !p.isRevoked() {
		t.Fatal("isRevoked false after revoke")
	}
}

func TestTrackerMarkDoneTwiceCountsOnce(t *testing.T) {
	p := newPartition("t", 0)
	rs := newTestRecs(p, 0, 1)
	if !p.markDone(rs[1]) {
		t.Fatal("first markDone false")
	}
	if p.markDone(rs[1]) {
		t.Fatal("second markDone of the same record reported true")
	}
}

func TestRecQueue(t *testing.T) {
	q := newRecQueue()
	q.push([]*rec{{}, {}})
	q.push([]*rec{{}})
	rs, closed := q.take()
	if len(rs) != 3 || closed {
		t.Fatalf("take = %d,%v want 3,false", len(rs), closed)
	}
	select {
	case <-q.signal:
	default:
		t.Fatal("push did not signal")
	}
	q.close()
	q.push([]*rec{{}})
	rs, closed = q.take()
	if len(rs) != 0 || !closed {
		t.Fatalf("after close: take = %d,%v want 0,true", len(rs), closed)
	}
}
