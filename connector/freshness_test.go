package connector

import (
	"strconv"
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/internal/api"
)

// freshT0 is the fixed clock of the freshness tests.
var freshT0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// TestCoalescerOldestPending: the age of a tenant's oldest pending record counts queued
// contributions, the records riding on one that superseded them, and those carried by a
// request in flight, until the request finishes.
func TestCoalescerOldestPending(t *testing.T) {
	p := newPartition("t", 0)
	type add struct {
		id  string
		age time.Duration // the record's timestamp is freshT0 minus age
		vs  []api.Variable
	}
	for _, tc := range []struct {
		name     string
		adds     []add
		take     bool // take a request (in flight, not finished)
		finish   bool // and finish it
		wantAge  float64
		wantNone bool
	}{
		{name: "nothing pending", wantNone: true},
		{name: "one record", adds: []add{{"a", 30 * time.Second, []api.Variable{v("_x", "1")}}}, wantAge: 30},
		{name: "oldest of several identifiers", adds: []add{
			{"a", 30 * time.Second, []api.Variable{v("_x", "1")}},
			{"b", 90 * time.Second, []api.Variable{v("_x", "1")}},
			{"c", 10 * time.Second, []api.Variable{v("_x", "1")}},
		}, wantAge: 90},
		{name: "a superseded record rides on the newer one and still counts", adds: []add{
			{"a", 300 * time.Second, []api.Variable{v("_x", "1")}},
			{"a", 200 * time.Second, []api.Variable{v("_x", "2")}},
			{"a", 5 * time.Second, []api.Variable{v("_x", "3")}},
		}, wantAge: 300},
		{name: "in flight counts", adds: []add{{"a", 60 * time.Second, []api.Variable{v("_x", "1")}}}, take: true, wantAge: 60},
		{name: "written does not", adds: []add{{"a", 60 * time.Second, []api.Variable{v("_x", "1")}}}, take: true, finish: true, wantNone: true},
		{name: "a timestamp in the future is not late", adds: []add{{"a", -time.Minute, []api.Variable{v("_x", "1")}}}, wantAge: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _, _ := newTestCoalescer(50)
			for _, a := range tc.adds {
				r := &rec{kr: record{Topic: "t", Timestamp: freshT0.Add(-a.age)}, part: p}
				r.outstanding.Store(1)
				q.add(a.id, &contribution{rec: r, pipeline: "p", vars: a.vs, at: freshT0, dataAt: r.kr.Timestamp}, freshT0)
			}
			if tc.take {
				req, _, _ := q.take(false, freshT0)
				if req == nil {
					t.Fatal("no request")
				}
				if tc.finish {
					q.finish(req, true, freshT0)
				}
			}
			oldest, ok := q.oldestPending()
			if ok == tc.wantNone {
				t.Fatalf("pending: %v, want %v", ok, !tc.wantNone)
			}
			if got := ageSeconds(freshT0, oldest, ok); got != tc.wantAge {
				t.Errorf("age %v s, want %v", got, tc.wantAge)
			}
		})
	}
}

// TestPartitionOldestPending: the consumer lag in seconds is measured from the partition's
// first record not yet done (the record at its watermark), skipping transaction markers and
// records done out of order behind it; 0 when all are done or the partition was revoked.
func TestPartitionOldestPending(t *testing.T) {
	type r struct {
		age     time.Duration
		control bool // a transaction marker: no timestamp, done at once
		done    bool
	}
	for _, tc := range []struct {
		name    string
		recs    []r
		revoke  bool
		wantAge float64
	}{
		{name: "nothing fetched", wantAge: 0},
		{name: "head pending", recs: []r{{age: 40 * time.Second}, {age: 20 * time.Second}}, wantAge: 40},
		{name: "done prefix skipped", recs: []r{{age: 40 * time.Second, done: true}, {age: 20 * time.Second}}, wantAge: 20},
		{name: "done out of order behind the head", recs: []r{{age: 40 * time.Second}, {age: 20 * time.Second, done: true}}, wantAge: 40},
		{name: "marker then record", recs: []r{{age: 50 * time.Second, done: true}, {control: true}, {age: 10 * time.Second}}, wantAge: 10},
		{name: "all done", recs: []r{{age: 40 * time.Second, done: true}, {control: true}}, wantAge: 0},
		{name: "revoked", recs: []r{{age: 40 * time.Second}}, revoke: true, wantAge: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPartition("t", 0)
			var recs []*rec
			for i, x := range tc.recs {
				kr := record{Topic: "t", Offset: int64(i)}
				if !x.control {
					kr.Timestamp = freshT0.Add(-x.age)
				}
				rr := &rec{kr: kr, part: p}
				p.add(rr)
				if x.control {
					p.markDone(rr)
				}
				recs = append(recs, rr)
			}
			for i, x := range tc.recs {
				if x.done {
					p.markDone(recs[i])
				}
			}
			if tc.revoke {
				p.revoke()
			}
			oldest, ok := p.oldestPending()
			if got := ageSeconds(freshT0, oldest, ok); got != tc.wantAge {
				t.Errorf("age %v s, want %v", got, tc.wantAge)
			}
		})
	}
}

// BenchmarkCoalescerOldestPending: one scrape's scan at the default bound, 1,000,000 pending
// records: 100,000 identifiers, each with one contribution and 9 records riding on it.
func BenchmarkCoalescerOldestPending(b *testing.B) {
	q, _, _ := newTestCoalescer(50)
	p := newPartition("t", 0)
	for i := range 100_000 {
		id := "id-" + strconv.Itoa(i)
		for j := range 10 {
			r := &rec{kr: record{Topic: "t", Timestamp: freshT0.Add(-time.Duration(i+j) * time.Millisecond)}, part: p}
			q.add(id, &contribution{rec: r, pipeline: "p", vars: []api.Variable{v("_x", strconv.Itoa(j))}, at: freshT0, dataAt: r.kr.Timestamp}, freshT0)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, ok := q.oldestPending(); !ok {
			b.Fatal("nothing pending")
		}
	}
}
