package connector

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/augment-connector/augment-connector/internal/api"
)

// TestNotFoundRetrySchedule: a 404 costs a few attempts within the grace, fewer the older the
// record, and one when it is older than the grace.
func TestNotFoundRetrySchedule(t *testing.T) {
	const grace = 30 * time.Second
	attempts := func(age time.Duration) []time.Duration {
		ages := []time.Duration{age}
		for {
			wait, ok := notFoundRetry(age, grace)
			if !ok {
				return ages
			}
			age += wait
			ages = append(ages, age)
		}
	}
	s := time.Second
	for _, tc := range []struct {
		age  time.Duration
		want []time.Duration
	}{
		{0, []time.Duration{0, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s}},
		{5 * s, []time.Duration{5 * s, 10 * s, 20 * s, 30 * s}},
		{20 * s, []time.Duration{20 * s, 30 * s}},
		{29 * s, []time.Duration{29 * s, 30 * s}},
		{30 * s, []time.Duration{30 * s}},
		{2 * time.Hour, []time.Duration{2 * time.Hour}},
	} {
		if diff := cmp.Diff(tc.want, attempts(tc.age)); diff != "" {
			t.Errorf("attempts of a record %s old (-want +got):\n%s", tc.age, diff)
		}
	}
}

// TestGoneSet: an identifier found gone covers the records whose data is older than that
// moment, for goneMemory; the set stays bounded.
func TestGoneSet(t *testing.T) {
	g := newGoneSet()
	now := time.Unix(1_000_000, 0)
	g.mark("x", now)
	for _, tc := range []struct {
		name   string
		dataAt time.Time
		now    time.Time
		want   bool
	}{
		{"older data", now.Add(-time.Hour), now, true},
		{"data newer than the mark", now.Add(time.Second), now.Add(2 * time.Second), false},
		{"data at the mark", now, now, false},
		{"forgotten after goneMemory", now.Add(-time.Hour), now.Add(goneMemory), false},
	} {
		if _, got := g.covers("x", tc.dataAt, tc.now); got != tc.want {
			t.Errorf("%s: covered %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, got := g.covers("y", now.Add(-time.Hour), now); got {
		t.Error("an identifier never marked is covered")
	}
	for i := range goneMaxEntries + 10 {
		g.mark(strings.Repeat("k", 1+i%7)+string(rune('a'+i%26))+time.Duration(i).String(), now)
	}
	if n := g.len(); n > goneMaxEntries {
		t.Errorf("%d identifiers remembered, want at most %d", n, goneMaxEntries)
	}
}

// TestCoalescerStaleWhileWaiting: a contribution that turns stale while it waits is left out
// when the request is built (and handed back to be skipped or dead-lettered), and the request
// carries only what is fresh.
func TestCoalescerStaleWhileWaiting(t *testing.T) {
	q, _, _ := newTestCoalescer(50)
	p := newPartition("t", 0)
	start := time.Unix(1_000_000, 0)
	old := contrib(p, 1, v("_a", "old"), v("_b", "old"))
	old.dataAt, old.maxAge = start.Add(-50*time.Second), time.Minute
	young := contrib(p, 2, v("_a", "new"))
	young.dataAt, young.maxAge = start, time.Minute
	q.add("x", old, start)
	q.add("x", young, start)
	req, _, drops := q.take(false, start.Add(15*time.Second)) // old is 65 s old by now
	if req == nil {
		t.Fatal("no request built")
	}
	if diff := cmp.Diff([]api.Variable{v("_a", "new")}, req.vars); diff != "" {
		t.Errorf("request variables (-want +got):\n%s", diff)
	}
	if len(drops) != 1 || drops[0].c != old || !drops[0].goneAt.IsZero() || drops[0].age != 65*time.Second {
		t.Fatalf("drops %+v, want the old contribution, stale, 65s old", drops)
	}
	if !req.dataAt.Equal(start) {
		t.Errorf("request data time %v, want the young contribution's %v", req.dataAt, start)
	}
}

// TestCoalescerGoneLeftOut: contributions older than the moment their identifier was found
// gone are left out when a request is built; a newer one is sent.
func TestCoalescerGoneLeftOut(t *testing.T) {
	q, _, _ := newTestCoalescer(50)
	p := newPartition("t", 0)
	now := time.Unix(1_000_000, 0)
	before := contrib(p, 1, v("_a", "1"))
	before.dataAt = now.Add(-time.Hour)
	q.add("x", before, now)
	q.gone.mark("x", now.Add(-time.Minute))
	req, _, drops := q.take(false, now)
	if req != nil || len(drops) != 1 || drops[0].c != before || !drops[0].goneAt.Equal(now.Add(-time.Minute)) {
		t.Fatalf("request %v, drops %+v: want none and the contribution dropped as gone", req, drops)
	}
	after := contrib(p, 2, v("_a", "2"))
	after.dataAt = now
	q.add("x", after, now)
	if req, _, drops := q.take(false, now); req == nil || len(drops) != 0 {
		t.Fatalf("request %v, drops %+v: want the newer contribution sent", req, drops)
	}
}

// TestCoalescerNotFoundLast: an identifier retried after a 404 waits until its retry time, then
// goes after every brand-new interaction and every update to one that was written, however
// long it has waited, and is not counted as brand-new by the budget.
func TestCoalescerNotFoundLast(t *testing.T) {
	q, _, _ := newTestCoalescer(50)
	p := newPartition("t", 0)
	now := time.Unix(1_000_000, 0)
	q.add("missing", contrib(p, 1, v("_a", "1")), now.Add(-time.Hour))
	req, _, _ := q.take(false, now)
	if req == nil || req.id.id != "missing" || !req.fresh {
		t.Fatalf("first request %+v, want the brand-new missing", req)
	}
	q.deferNotFound(req, now.Add(2*time.Second), now) // answered 404 within the grace
	if ready, wait := q.peek(now); ready || wait != 2*time.Second {
		t.Fatalf("peek: ready %v, wait %v; want nothing ready for 2s", ready, wait)
	}
	// An update to a written interaction (queued earlier than anything) and a brand-new one.
	q.written.add("written")
	q.add("written", contrib(p, 2, v("_a", "2")), now.Add(-2*time.Hour))
	later := now.Add(3 * time.Second)
	q.add("new", contrib(p, 3, v("_a", "3")), later)
	var order []string
	for {
		q.peek(later)
		if len(order) == 0 && q.nextIsFresh() != true {
			t.Error("the brand-new interaction is not next")
		}
		req, _, _ := q.take(false, later)
		if req == nil {
			break
		}
		if req.id.id == "missing" && (req.fresh || q.nextIsFresh()) {
			t.Error("the 404 retry counts as brand-new for the budget")
		}
		order = append(order, req.id.id)
		q.finish(req, true, later)
	}
	if diff := cmp.Diff([]string{"new", "written", "missing"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// TestCoalescerBacklogIsNotBrandNew: an identifier never written whose data is older than
// freshFor is backlog, not a call that just started: a brand-new interaction queued after it
// goes first, and only the brand-new one counts as fresh for the budget.
func TestCoalescerBacklogIsNotBrandNew(t *testing.T) {
	q, _, fresh := newTestCoalescer(50)
	q.freshFor = 30 * time.Second
	p := newPartition("t", 0)
	now := time.Unix(1_000_000, 0)
	old := contrib(p, 1, v("_a", "1"))
	old.dataAt = now.Add(-2 * time.Hour)
	q.add("backlog", old, now)
	young := contrib(p, 2, v("_a", "2"))
	young.dataAt = now.Add(-time.Second)
	q.add("started", young, now.Add(time.Second))
	if *fresh != 1 {
		t.Errorf("%d brand-new interactions noted to the budget, want 1", *fresh)
	}
	var order []string
	for {
		req, _, _ := q.take(false, now.Add(time.Second))
		if req == nil {
			break
		}
		if req.fresh != (req.id.id == "started") {
			t.Errorf("request for %s: fresh %v", req.id.id, req.fresh)
		}
		order = append(order, req.id.id)
		q.finish(req, true, now)
	}
	if diff := cmp.Diff([]string{"started", "backlog"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// notFoundUntil answers 404 to an identifier until it is registered, then 200, counting the
// requests each identifier received: a stand-in for interactions that appear late or never.
type notFoundUntil struct {
	mu         sync.Mutex
	registered map[string]bool
	requests   map[string]int
	order      []string
}

func (n *notFoundUntil) register(id string) {
	n.mu.Lock()
	n.registered[id] = true
	n.mu.Unlock()
}

func (n *notFoundUntil) count(id string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.requests[id]
}

func (n *notFoundUntil) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.EscapedPath(), api.PathPrefix)
	n.mu.Lock()
	n.requests[id]++
	n.order = append(n.order, id)
	ok := n.registered[id]
	n.mu.Unlock()
	if !ok {
		http.Error(w, `{"status":"failure","message":"interaction not found"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"success"}`))
}

func startNotFoundTenant(t *testing.T, mut func(*TenantOptions)) (*notFoundUntil, *tenant, *fakeSink, func()) {
	t.Helper()
	api := &notFoundUntil{registered: map[string]bool{}, requests: map[string]int{}}
	_, srv := newTestAPI(t)
	srv.Config.Handler = api
	sink := newFakeSink()
	tn, stop := startTenant(t, srv, sink, func(o *TenantOptions) {
		o.NotFoundGrace = 30 * time.Second
		if mut != nil {
			mut(o)
		}
	})
	return api, tn, sink, stop
}

// TestTenantNotFoundOldRecord: the 404 of a record older than the grace is final after one
// request; a later record about the same call, older than that moment, costs no request and
// is dead-lettered, or skipped under onGone skip.
func TestTenantNotFoundOldRecord(t *testing.T) {
	for _, onGone := range []string{OnGoneDeadLetter, OnGoneSkip} {
		t.Run(onGone, func(t *testing.T) {
			a, tn, sink, stop := startNotFoundTenant(t, func(o *TenantOptions) { o.OnGone = onGone })
			defer stop()
			p := newPartition("t", 0)
			first := contrib(p, 1, v("_a", "1"))
			first.dataAt = time.Now().Add(-2 * time.Hour)
			tn.add("ended", first)
			waitFor(t, "the first record dead-lettered", func() bool { _, d := sink.counts(); return d == 1 })
			sink.mu.Lock()
			msg := sink.dead[first.rec]
			sink.mu.Unlock()
			if !strings.HasPrefix(msg, "not_found: ") || !strings.Contains(msg, "1 attempts") {
				t.Errorf("dead letter %q, want not_found after 1 attempt", msg)
			}
			second := contrib(p, 2, v("_a", "2"))
			second.dataAt = time.Now().Add(-time.Hour)
			tn.add("ended", second)
			waitFor(t, "the second record done", func() bool { d, _ := sink.counts(); return d == 2 })
			sink.mu.Lock()
			dead, skipped := sink.dead[second.rec], sink.skipped[second.rec]
			sink.mu.Unlock()
			switch onGone {
			case OnGoneDeadLetter:
				if !strings.HasPrefix(dead, "not_found: the API answered 404 for this interaction at ") {
					t.Errorf("second record's dead letter %q", dead)
				}
			case OnGoneSkip:
				if dead != "" || skipped != ReasonGone {
					t.Errorf("second record: dead letter %q, skipped %q; want skipped as gone", dead, skipped)
				}
			}
			if n := a.count("ended"); n != 1 {
				t.Errorf("%d requests for the ended call, want 1", n)
			}
		})
	}
}

// TestTenantNotFoundLateRegistration: a CRM change that arrives before its call is registered
// still lands, after a few attempts within the grace; meanwhile a brand-new interaction's
// first write is not held behind the 404 retries.
func TestTenantNotFoundLateRegistration(t *testing.T) {
	a, tn, sink, stop := startNotFoundTenant(t, nil)
	defer stop()
	p := newPartition("t", 0)
	early := contrib(p, 1, v("_tier", "gold"))
	early.dataAt = time.Now()
	tn.add("late", early)
	waitFor(t, "the first 404", func() bool { return a.count("late") >= 1 })
	var registered atomic.Bool
	go func() {
		time.Sleep(3 * time.Second)
		a.register("late")
		registered.Store(true)
	}()
	a.register("other")
	other := contrib(p, 2, v("_x", "1"))
	tn.add("other", other)
	waitFor(t, "the brand-new interaction written", func() bool { sink.mu.Lock(); defer sink.mu.Unlock(); return sink.done[other.rec] == 1 })
	if registered.Load() {
		t.Error("the brand-new interaction waited for the late one")
	}
	waitFor(t, "the early record written", func() bool { sink.mu.Lock(); defer sink.mu.Unlock(); return sink.done[early.rec] == 1 })
	sink.mu.Lock()
	dead := sink.dead[early.rec]
	sink.mu.Unlock()
	if dead != "" {
		t.Fatalf("dead-lettered: %s", dead)
	}
	// Attempts at ages 0, 2 s and 4 s: registered at 3 s, written at the third.
	if n := a.count("late"); n < 2 || n > 4 {
		t.Errorf("%d attempts for the late call, want 2 to 4", n)
	}
}

// TestTenantStaleWhileWaiting: a record that turns stale while it waits for the budget is not
// sent, and is skipped or dead-lettered as its pipeline says.
func TestTenantStaleWhileWaiting(t *testing.T) {
	for _, onStale := range []string{OnStaleSkip, OnStaleDeadLetter} {
		t.Run(onStale, func(t *testing.T) {
			a, srv := newTestAPI(t)
			a.gate = make(chan struct{})
			sink := newFakeSink()
			tn, stop := startTenant(t, srv, sink, func(o *TenantOptions) { o.Concurrency = 1 })
			defer stop()
			p := newPartition("t", 0)
			tn.add("busy", contrib(p, 1, v("_a", "1")))
			a.waitOnWire(t, "busy") // the only concurrency slot is taken
			waiting := contrib(p, 2, v("_b", "1"))
			waiting.dataAt, waiting.maxAge, waiting.onStale = time.Now(), time.Second, onStale
			tn.add("waits", waiting)
			time.Sleep(1200 * time.Millisecond) // it turns stale while the slot is taken
			close(a.gate)
			waitFor(t, "both records done", func() bool { d, _ := sink.counts(); return d == 2 })
			sink.mu.Lock()
			dead, skipped := sink.dead[waiting.rec], sink.skipped[waiting.rec]
			sink.mu.Unlock()
			switch onStale {
			case OnStaleSkip:
				if skipped != ReasonStale || dead != "" {
					t.Errorf("skipped %q, dead %q; want skipped as stale", skipped, dead)
				}
			case OnStaleDeadLetter:
				if !strings.HasPrefix(dead, "stale: the record's data was ") {
					t.Errorf("dead letter %q, want class stale", dead)
				}
			}
			for _, r := range a.requests() {
				if r.id == "waits" {
					t.Error("the stale record was sent")
				}
			}
		})
	}
}
