package connector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/internal/api"
)

// fakeSink records what a tenant reports back.
type fakeSink struct {
	mu      sync.Mutex
	done    map[*rec]int
	dead    map[*rec]string
	skipped map[*rec]string
}

func newFakeSink() *fakeSink {
	return &fakeSink{done: map[*rec]int{}, dead: map[*rec]string{}, skipped: map[*rec]string{}}
}

func (s *fakeSink) contributionSkipped(r *rec, _ string, reason string) {
	s.mu.Lock()
	s.skipped[r] = reason
	s.mu.Unlock()
	s.contributionDone(r)
}

func (s *fakeSink) contributionDone(r *rec) {
	s.mu.Lock()
	s.done[r]++
	s.mu.Unlock()
	r.part.markDone(r)
}

func (s *fakeSink) uncharge(r *rec, n int64) { r.size.Add(-n) }

func (s *fakeSink) deadLetter(_ context.Context, r *rec, _ string, class deadLetterClass, msg string) error {
	s.mu.Lock()
	s.dead[r] = string(class) + ": " + msg
	s.mu.Unlock()
	return nil
}

func (s *fakeSink) counts() (done, dead int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.done), len(s.dead)
}

// received is one request as the test server saw it.
type received struct {
	id   string
	vars []api.Variable
}

// testAPI is a scripted stand-in for the API, for the tenant's unit tests: it answers with the
// statuses the test queues, then 200. (The integration tests use the real simulator.)
type testAPI struct {
	mu       sync.Mutex
	got      []received
	script   []int // statuses to answer, in order, before answering 200
	header   http.Header
	inflight map[string]int
	overlap  atomic.Bool // two requests for one identifier were in flight at once
	gate     chan struct{}
}

// waitOnWire waits until a request for id is in flight (held by the gate).
func (a *testAPI) waitOnWire(t *testing.T, id string) {
	t.Helper()
	waitFor(t, "first request on the wire", func() bool { a.mu.Lock(); defer a.mu.Unlock(); return a.inflight[id] == 1 })
}

// decodeTestRequest reads a body of either form api.AppendRequest writes, {"variables":[...]}
// or {"data":[{"variables":[...]}]}. The fake needs only the variables; the simulator's
// lenient decoder, which answers like the vendor's API, lives in internal/sim.
func decodeTestRequest(body []byte) ([]api.Variable, error) {
	var req struct {
		Variables []api.Variable `json:"variables"`
		Data      []api.Request  `json:"data"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("decoding request body: %w", err)
	}
	vars := req.Variables
	if vars == nil {
		for _, d := range req.Data {
			vars = append(vars, d.Variables...)
		}
	}
	return vars, nil
}

func newTestAPI(t *testing.T) (*testAPI, *httptest.Server) {
	a := &testAPI{inflight: map[string]int{}, header: http.Header{}}
	srv := httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(srv.Close)
	return a, srv
}

func (a *testAPI) serve(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.EscapedPath(), api.PathPrefix)
	body, _ := io.ReadAll(r.Body)
	vars, err := decodeTestRequest(body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	a.mu.Lock()
	a.inflight[id]++
	if a.inflight[id] > 1 {
		a.overlap.Store(true)
	}
	gate := a.gate
	a.mu.Unlock()
	if gate != nil {
		<-gate
	}
	a.mu.Lock()
	a.inflight[id]--
	status := 200
	if len(a.script) > 0 {
		status, a.script = a.script[0], a.script[1:]
	}
	if status == 200 {
		a.got = append(a.got, received{id: id, vars: vars})
	}
	for k, v := range a.header {
		w.Header()[k] = v
	}
	a.mu.Unlock()
	w.WriteHeader(status)
	if status != 200 {
		_ = json.NewEncoder(w).Encode(api.ErrorResponse{Status: "error", Code: status, Message: fmt.Sprintf("scripted %d", status)})
	}
}

func (a *testAPI) requests() []received {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]received(nil), a.got...)
}

func startTenant(t *testing.T, srv *httptest.Server, sink recordSink, mut func(*TenantOptions)) (*tenant, func()) {
	t.Helper()
	o := TenantOptions{BaseURL: srv.URL, TenantID: "t1", Token: "tok", RequestsPerMinute: 10_000, Concurrency: 4, NotFoundGrace: 300 * time.Millisecond}
	if mut != nil {
		mut(&o)
	}
	tn, err := newTenant("t1", o, sink, zap.NewNop(), time.Now, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tn.run(ctx, ctx)
	}()
	return tn, func() { cancel(); <-done; tn.client.close() }
}

func contrib(p *partition, off int64, vars ...api.Variable) *contribution {
	r := &rec{kr: record{Offset: off}, part: p}
	r.outstanding.Store(1)
	p.add(r)
	return &contribution{rec: r, vars: vars, at: time.Now()}
}

func v(name, value string) api.Variable { return api.Variable{Name: name, Value: value} }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTenantCoalescesWhileInFlight holds the first request on the wire, queues updates for the
// same identifier, and checks the next request folds them: last value per name, first-seen
// order, one request in flight per identifier, every record done.
func TestTenantCoalescesWhileInFlight(t *testing.T) {
	a, srv := newTestAPI(t)
	a.gate = make(chan struct{})
	sink := newFakeSink()
	tn, stop := startTenant(t, srv, sink, nil)
	defer stop()
	p := newPartition("t", 0)
	tn.add("int-1", contrib(p, 0, v("_a", "1")))
	a.waitOnWire(t, "int-1")
	tn.add("int-1", contrib(p, 1, v("_a", "2"), v("_b", "x")))
	tn.add("int-1", contrib(p, 2, v("_c", "y"), v("_a", "3")))
	tn.add("int-1", contrib(p, 3, v("_b", "z")))
	close(a.gate)
	waitFor(t, "all records done", func() bool { d, _ := sink.counts(); return d == 4 })
	got := a.requests()
	if len(got) != 2 {
		t.Fatalf("got %d requests, want 2 (the first, then one folded)", len(got))
	}
	want := []api.Variable{v("_a", "3"), v("_b", "z"), v("_c", "y")}
	if fmt.Sprint(got[1].vars) != fmt.Sprint(want) {
		t.Fatalf("folded request = %v, want %v", got[1].vars, want)
	}
	if a.overlap.Load() {
		t.Fatal("two requests for one identifier were in flight at once")
	}
	if off, _, ok := p.toCommit(); !ok || off != 4 {
		t.Fatalf("watermark = %d,%v want 4", off, ok)
	}
}

// TestTenantSplitsAtFifty queues 120 distinct names for one identifier and checks requests of
// at most 50, in order, carrying everything.
func TestTenantSplitsAtFifty(t *testing.T) {
	a, srv := newTestAPI(t)
	a.gate = make(chan struct{})
	sink := newFakeSink()
	tn, stop := startTenant(t, srv, sink, nil)
	defer stop()
	p := newPartition("t", 0)
	tn.add("int-9", contrib(p, 0, v("_first", "0")))
	a.waitOnWire(t, "int-9")
	// One contribution of 70 names, then 50 contributions of one name each.
	big := make([]api.Variable, 70)
	for i := range big {
		big[i] = v(fmt.Sprintf("_big%d", i), "v")
	}
	tn.add("int-9", contrib(p, 1, big...))
	for i := 0; i < 50; i++ {
		tn.add("int-9", contrib(p, int64(2+i), v(fmt.Sprintf("_s%d", i), "v")))
	}
	close(a.gate)
	waitFor(t, "all records done", func() bool { d, _ := sink.counts(); return d == 52 })
	var names []string
	for _, r := range a.requests() {
		if len(r.vars) > api.MaxVariablesPerRequest {
			t.Fatalf("a request carried %d variables", len(r.vars))
		}
		for _, x := range r.vars {
			names = append(names, x.Name)
		}
	}
	if len(names) != 121 {
		t.Fatalf("carried %d variables in all, want 121", len(names))
	}
	if names[1] != "_big0" || names[70] != "_big69" || names[71] != "_s0" || names[120] != "_s49" {
		t.Fatalf("variables out of order: %v ... %v", names[:3], names[len(names)-3:])
	}
}

func TestTenantOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		script    []int
		header    http.Header
		wantDead  string // class prefix, or "" for written
		wantTries int
		// notFoundGrace replaces startTenant's 300 ms where a case needs its 404s well
		// inside the window whatever the machine's load.
		notFoundGrace time.Duration
	}{
		{name: "5xx retried", script: []int{500, 503, 502}, wantTries: 4},
		{name: "429 retried", script: []int{429, 429}, header: http.Header{"Retry-After": {"0"}}, wantTries: 3},
		{name: "400 dead-lettered", script: []int{400}, wantDead: "api_rejected: HTTP 400: scripted 400", wantTries: 1},
		{name: "404 then found", script: []int{404, 404}, wantTries: 3, notFoundGrace: 10 * time.Second},
		{name: "404 past window dead-lettered", script: []int{404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404}, wantDead: "not_found"},
		{name: "401 blocks then recovers", script: []int{401}, wantTries: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, srv := newTestAPI(t)
			a.script = tc.script
			a.header = tc.header
			var tries atomic.Int32
			inner := srv.Config.Handler
			srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tries.Add(1); inner.ServeHTTP(w, r) })
			sink := newFakeSink()
			tn, stop := startTenant(t, srv, sink, func(o *TenantOptions) {
				o.BlockedProbeInterval = 300 * time.Millisecond
				if tc.notFoundGrace > 0 {
					o.NotFoundGrace = tc.notFoundGrace
				}
			})
			defer stop()
			p := newPartition("t", 0)
			c := contrib(p, 0, v("_a", "1"))
			tn.add("int-1", c)
			var sawBlocked atomic.Bool
			go func() {
				for i := 0; i < 200 && !sawBlocked.Load(); i++ {
					if tn.blockedNow() {
						sawBlocked.Store(true)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
			waitFor(t, "record finished", func() bool { d, dd := sink.counts(); return d+dd >= 1 && d == 1 })
			sink.mu.Lock()
			dead := sink.dead[c.rec]
			sink.mu.Unlock()
			if tc.wantDead == "" && dead != "" {
				t.Fatalf("dead-lettered (%s), want written", dead)
			}
			if tc.wantDead != "" && !strings.HasPrefix(dead, tc.wantDead) {
				t.Fatalf("dead letter reason %q, want prefix %q", dead, tc.wantDead)
			}
			if tc.name == "401 blocks then recovers" && !sawBlocked.Load() {
				t.Fatal("the tenant never reported itself blocked during the 401")
			}
			if tc.wantTries > 0 && int(tries.Load()) != tc.wantTries {
				t.Fatalf("%d attempts, want %d", tries.Load(), tc.wantTries)
			}
		})
	}
}

// TestTenantSupersedesOnArrival: a contribution that sets every name of an earlier pending one
// from the same partition replaces it on arrival (its record rides along and is done, or
// dead-lettered, with it); one from another partition, one with fewer names, and the one on
// the wire are kept. The request sent is the fold it would have been without superseding.
func TestTenantSupersedesOnArrival(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int // the answer to every request
		wantDone int
		wantDead int
	}{
		{name: "written", status: 200, wantDone: 6},
		{name: "rejected", status: 400, wantDone: 6, wantDead: 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, srv := newTestAPI(t)
			a.gate = make(chan struct{})
			if tc.status != 200 {
				a.script = []int{tc.status, tc.status}
			}
			sink := newFakeSink()
			tn, stop := startTenant(t, srv, sink, nil)
			defer stop()
			p0, p1 := newPartition("t", 0), newPartition("t", 1)
			c1 := contrib(p0, 0, v("_a", "1"))
			tn.add("int-1", c1)
			a.waitOnWire(t, "int-1")
			c2 := contrib(p0, 1, v("_a", "2"), v("_b", "2"))
			c3 := contrib(p0, 2, v("_a", "3"))
			tn.add("int-1", c2)
			tn.add("int-1", c3) // fewer names than c2: c2 stays
			tn.co.mu.Lock()
			n := len(tn.co.idents["int-1"].pending)
			tn.co.mu.Unlock()
			if n != 3 {
				t.Fatalf("after c3: %d pending, want 3 (c1 on the wire, c2, c3)", n)
			}
			c4 := contrib(p0, 3, v("_b", "4"), v("_a", "4"))
			tn.add("int-1", c4) // supersedes c3 and c2
			c5 := contrib(p1, 0, v("_a", "5"), v("_b", "5"))
			tn.add("int-1", c5) // another partition: kept
			c6 := contrib(p0, 4, v("_a", "6"), v("_b", "6"))
			tn.add("int-1", c6) // supersedes c4 (and its riders), not c5
			tn.co.mu.Lock()
			pend := append([]*contribution(nil), tn.co.idents["int-1"].pending...)
			tn.co.mu.Unlock()
			if len(pend) != 3 || pend[0] != c1 || pend[1] != c5 || pend[2] != c6 {
				t.Fatalf("pending = %d contributions, want c1, c5, c6", len(pend))
			}
			if len(c6.riders) != 3 || c6.folded != 5 {
				t.Fatalf("c6 carries %d riders and %d folded variables, want 3 (c4, c3, c2) and 5", len(c6.riders), c6.folded)
			}
			if !c5.at.Equal(c2.at) {
				t.Fatalf("c5 queued at %v, want c2's time %v (the identifier keeps its place)", c5.at, c2.at)
			}
			close(a.gate)
			waitFor(t, "all records finished", func() bool { d, _ := sink.counts(); return d == tc.wantDone })
			if _, dead := sink.counts(); dead != tc.wantDead {
				t.Fatalf("%d records dead-lettered, want %d", dead, tc.wantDead)
			}
			if tc.status == 200 {
				got := a.requests()
				if len(got) != 2 {
					t.Fatalf("%d requests, want 2", len(got))
				}
				want := []api.Variable{v("_a", "6"), v("_b", "6")}
				if fmt.Sprint(got[1].vars) != fmt.Sprint(want) {
					t.Fatalf("second request = %v, want %v", got[1].vars, want)
				}
				if off, _, ok := p0.toCommit(); !ok || off != 5 {
					t.Fatalf("partition 0 watermark = %d,%v want 5", off, ok)
				}
			}
		})
	}
}

// nopSink is a recordSink that does nothing, for benchmarks.
type nopSink struct{}

func (nopSink) contributionDone(*rec)                                                   {}
func (nopSink) uncharge(*rec, int64)                                                    {}
func (nopSink) deadLetter(context.Context, *rec, string, deadLetterClass, string) error { return nil }
func (nopSink) contributionSkipped(*rec, string, string)                                {}

// BenchmarkCoalesce is the coalescer's cost per record: queueing a contribution of 4
// variables for one of 1,000 identifiers (superseding the earlier one it covers), and, for
// every 10 records, building one request (the fold and its JSON body) and finishing it.
func BenchmarkCoalesce(b *testing.B) {
	tn, err := newTenant("t1", TenantOptions{BaseURL: "http://127.0.0.1:1", TenantID: "t1", Token: "tok", RequestsPerMinute: 100, Concurrency: 1 << 30},
		nopSink{}, zap.NewNop(), time.Now, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer tn.client.close()
	p := newPartition("t", 0)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("int-%06d", i)
	}
	vars := []api.Variable{v("_customerTier", "gold"), v("_accountBalance", "1,234.56"), v("_customerName", "Ada Lovelace"), v("_lastContactReason", "billing")}
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := &rec{kr: record{Offset: int64(i)}, part: p}
		r.outstanding.Store(1)
		tn.add(ids[i%len(ids)], &contribution{rec: r, vars: vars, at: now})
		if i%10 == 9 {
			if req := tn.build(context.Background()); req != nil {
				tn.finish(req, true)
			}
		}
		i++
	}
}

// TestTenantLingerDoesNotHoldOthersBack: with a linger, a brand-new interaction whose first
// event just arrived waits for more of its burst, and goes first once it has waited; an
// identifier that has already lingered is sent meanwhile, not held behind it.
func TestTenantLingerDoesNotHoldOthersBack(t *testing.T) {
	a, srv := newTestAPI(t)
	sink := newFakeSink()
	o := TenantOptions{BaseURL: srv.URL, TenantID: "t1", Token: "tok", RequestsPerMinute: 10_000, Concurrency: 4}
	const linger = time.Second
	tn, err := newTenant("t1", o, sink, zap.NewNop(), time.Now, 0, linger)
	if err != nil {
		t.Fatal(err)
	}
	p := newPartition("t", 0)
	tn.co.written.add("old") // written before: not a brand-new interaction
	old := contrib(p, 0, v("_a", "1"))
	old.at = time.Now().Add(-2 * linger) // has lingered already
	tn.add("old", old)
	tn.add("new", contrib(p, 1, v("_a", "1")))
	tn.add("new", contrib(p, 2, v("_b", "2"))) // more of its burst, folded into its first request
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tn.run(ctx, ctx)
	}()
	defer func() { cancel(); <-done; tn.client.close() }()
	waitFor(t, "both identifiers written", func() bool { d, _ := sink.counts(); return d == 3 })
	got := a.requests()
	if len(got) != 2 || got[0].id != "old" || got[1].id != "new" {
		t.Fatalf("requests %v, want old (lingered already) before new (lingering), one each", got)
	}
	if len(got[1].vars) != 2 {
		t.Fatalf("the new interaction's request carried %v, want its burst folded", got[1].vars)
	}
}
