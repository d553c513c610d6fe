package connector

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/augment-connector/augment-connector/internal/api"
)

// newTestCoalescer is a coalescer whose uncharges and fresh notes are counted.
func newTestCoalescer(maxVars int) (q *coalescer, uncharged *int, fresh *int) {
	uncharged, fresh = new(int), new(int)
	q = newCoalescer(0, maxVars, false, newGoneSet(), func(*rec, int64) { *uncharged++ }, func(time.Time) { *fresh++ })
	return q, uncharged, fresh
}

// drain takes and finishes (as carried) every request the coalescer builds, in order, and
// returns their variables and the records they completed.
func drain(t *testing.T, q *coalescer) (reqs [][]api.Variable, completed int) {
	t.Helper()
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("the coalescer keeps building requests")
		}
		req, _, _ := q.take(false, time.Time{})
		if req == nil {
			return reqs, completed
		}
		reqs = append(reqs, req.vars)
		completed += len(q.finish(req, true, time.Now()))
	}
}

// TestCoalescerFold: the fold of an identifier's pending contributions, with the supersedes on
// arrival: the last value of each name wins, in first-seen order; a contribution that sets
// every name of an earlier one of the same partition supersedes it; requests carry at most
// maxVars, and a contribution larger than that goes in consecutive requests.
func TestCoalescerFold(t *testing.T) {
	type add struct {
		part int
		vars []api.Variable
	}
	for _, tc := range []struct {
		name          string
		maxVars       int
		adds          []add
		wantPending   int
		wantUncharged int
		wantRequests  [][]api.Variable
		wantCompleted int
	}{
		{
			name:    "last value wins in first-seen order",
			maxVars: 50,
			adds: []add{
				{0, []api.Variable{v("_a", "1")}},
				{1, []api.Variable{v("_a", "2"), v("_b", "x")}},
				{0, []api.Variable{v("_c", "y"), v("_a", "3")}}, // supersedes the first
				{1, []api.Variable{v("_b", "z")}},
			},
			wantPending: 3, wantUncharged: 1,
			wantRequests:  [][]api.Variable{{v("_a", "3"), v("_b", "z"), v("_c", "y")}},
			wantCompleted: 4,
		},
		{
			name:    "a contribution setting fewer names supersedes nothing",
			maxVars: 50,
			adds: []add{
				{0, []api.Variable{v("_a", "1")}},
				{0, []api.Variable{v("_a", "2"), v("_b", "2")}}, // supersedes the first
				{0, []api.Variable{v("_a", "3")}},               // fewer names than the second
			},
			wantPending: 2, wantUncharged: 1,
			wantRequests:  [][]api.Variable{{v("_a", "3"), v("_b", "2")}},
			wantCompleted: 3,
		},
		{
			name:    "another partition's contribution is kept",
			maxVars: 50,
			adds: []add{
				{0, []api.Variable{v("_a", "1")}},
				{1, []api.Variable{v("_a", "2")}},
			},
			wantPending:   2,
			wantRequests:  [][]api.Variable{{v("_a", "2")}},
			wantCompleted: 2,
		},
		{
			name:    "requests split at maxVars between contributions",
			maxVars: 2,
			adds: []add{
				{0, []api.Variable{v("_a", "1")}},
				{1, []api.Variable{v("_b", "1")}},
				{2, []api.Variable{v("_c", "1")}},
			},
			wantPending:   3,
			wantRequests:  [][]api.Variable{{v("_a", "1"), v("_b", "1")}, {v("_c", "1")}},
			wantCompleted: 3,
		},
		{
			name:    "a contribution larger than maxVars goes in consecutive requests",
			maxVars: 2,
			adds: []add{
				{0, []api.Variable{v("_a", "1"), v("_b", "1"), v("_c", "1"), v("_d", "1"), v("_e", "1")}},
			},
			wantPending:   1,
			wantRequests:  [][]api.Variable{{v("_a", "1"), v("_b", "1")}, {v("_c", "1"), v("_d", "1")}, {v("_e", "1")}},
			wantCompleted: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, uncharged, fresh := newTestCoalescer(tc.maxVars)
			parts := []*partition{newPartition("t", 0), newPartition("t", 1), newPartition("t", 2)}
			for i, a := range tc.adds {
				q.add("int-1", contrib(parts[a.part], int64(i), a.vars...), time.Now())
			}
			if n := len(q.idents["int-1"].pending); n != tc.wantPending {
				t.Errorf("%d contributions pending, want %d", n, tc.wantPending)
			}
			if *uncharged != tc.wantUncharged {
				t.Errorf("%d contributions uncharged, want %d", *uncharged, tc.wantUncharged)
			}
			if *fresh != 1 {
				t.Errorf("%d brand-new interactions noted, want 1", *fresh)
			}
			reqs, completed := drain(t, q)
			if diff := cmp.Diff(tc.wantRequests, reqs); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if completed != tc.wantCompleted {
				t.Errorf("%d records completed, want %d", completed, tc.wantCompleted)
			}
			if n := q.len(); n != 0 {
				t.Errorf("%d identifiers left after every request was carried, want 0", n)
			}
		})
	}
}

// TestCoalescerInFlight: the contributions a request in flight carries are neither superseded
// nor sent again; what arrives meanwhile waits for the next request; a request that fails
// leaves its contributions pending, in order.
func TestCoalescerInFlight(t *testing.T) {
	q, uncharged, _ := newTestCoalescer(50)
	p := newPartition("t", 0)
	q.add("int-1", contrib(p, 0, v("_a", "1")), time.Now())
	first, _, _ := q.take(false, time.Time{})
	if first == nil {
		t.Fatal("no request for a ready identifier")
	}
	q.add("int-1", contrib(p, 1, v("_a", "2")), time.Now()) // covers the one in flight
	if *uncharged != 0 {
		t.Fatalf("the contribution in flight was superseded")
	}
	if req, _, _ := q.take(false, time.Time{}); req != nil {
		t.Fatalf("a second request for an identifier with one in flight: %v", req.vars)
	}
	if got := q.finish(first, false, time.Now()); len(got) != 0 {
		t.Fatalf("a failed request completed %d records", len(got))
	}
	reqs, completed := drain(t, q)
	if diff := cmp.Diff([][]api.Variable{{v("_a", "2")}}, reqs); diff != "" {
		t.Errorf("requests after the failed one (-want +got):\n%s", diff)
	}
	if completed != 2 {
		t.Errorf("%d records completed, want 2", completed)
	}
}

// TestCoalescerRevoke: a revoked partition's pending contributions are dropped; the request in
// flight that carries one has its retries stopped and is returned to be waited for.
func TestCoalescerRevoke(t *testing.T) {
	q, _, _ := newTestCoalescer(50)
	p0, p1 := newPartition("t", 0), newPartition("t", 1)
	q.add("int-1", contrib(p0, 0, v("_a", "0")), time.Now())
	onWire, _, _ := q.take(false, time.Time{})
	q.add("int-1", contrib(p0, 1, v("_b", "0")), time.Now())
	q.add("int-2", contrib(p0, 2, v("_a", "0")), time.Now())
	q.add("int-2", contrib(p1, 0, v("_c", "1")), time.Now())
	p0.revoke()
	waits := q.revoke(map[*partition]struct{}{p0: {}})
	if len(waits) != 1 || waits[0] != onWire || !onWire.stopRetry.Load() {
		t.Fatalf("revoke returned %d requests to wait for, want the one on the wire with its retries stopped", len(waits))
	}
	q.finish(onWire, false, time.Now())
	reqs, _ := drain(t, q)
	if diff := cmp.Diff([][]api.Variable{{v("_c", "1")}}, reqs); diff != "" {
		t.Errorf("requests after the revoke (-want +got):\n%s", diff)
	}
}

// TestCoalescerOrder: a brand-new interaction goes first, then the identifier whose oldest
// contribution waited longest.
func TestCoalescerOrder(t *testing.T) {
	q, _, _ := newTestCoalescer(50)
	p := newPartition("t", 0)
	t0 := time.Now()
	for i, id := range []string{"b", "a"} {
		q.written.add(id)
		c := contrib(p, int64(i), v("_x", id))
		c.at = t0.Add(time.Duration(i) * time.Second) // b waited longer than a
		q.add(id, c, t0)
	}
	c := contrib(p, 2, v("_x", "new"))
	c.at = t0.Add(5 * time.Second)
	q.add("new", c, t0)
	if !q.nextIsFresh() {
		t.Error("nextIsFresh = false with a brand-new interaction ready")
	}
	var got []string
	for {
		req, _, _ := q.take(false, time.Time{})
		if req == nil {
			break
		}
		got = append(got, req.id.id)
	}
	if diff := cmp.Diff([]string{"new", "b", "a"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}
