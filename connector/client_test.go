package connector

import (
	"context"
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
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/augment-connector/augment-connector/internal/api"
)

// TestClientNeverFollowsRedirects: a 3xx is never followed, whatever its kind. A 301/302/303
// followed would become a GET answering 200 with nothing written; a 307/308 followed would
// re-send the token and the body to wherever Location points, here plain http:// on the same
// host. Each is classified as a refusal that blocks the tenant, naming the status and host.
func TestClientNeverFollowsRedirects(t *testing.T) {
	// The plain-HTTP listener a hostile or misconfigured endpoint redirects to: it must never
	// see a request, least of all the Authorization header.
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"status":"success"}`)
	}))
	defer plain.Close()
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			var posts, gets atomic.Int32
			tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					gets.Add(1) // where a followed 301/302/303 would land: 200, nothing written
					w.WriteHeader(http.StatusOK)
					_, _ = io.WriteString(w, `{"status":"success"}`)
					return
				}
				posts.Add(1)
				loc := "/moved" + r.URL.Path
				if status == 307 || status == 308 {
					loc = plain.URL + r.URL.Path
				}
				http.Redirect(w, r, loc, status)
			}))
			defer tlsSrv.Close()
			c, err := newAPIClient(TenantOptions{BaseURL: tlsSrv.URL, TenantID: "t1", Token: "secret-token",
				TLS: tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig, RequestTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			res := c.post(context.Background(), "int-1", []byte(`{"variables":[{"name":"_a","value":"1"}]}`))
			if res.outcome != outcomeBlocked || res.status != status {
				t.Fatalf("outcome %v status %d, want blocked %d", res.outcome, res.status, status)
			}
			if posts.Load() != 1 || gets.Load() != 0 || plainHits.Load() != 0 {
				t.Fatalf("POSTs %d, GETs %d, plain-HTTP hits %d: want 1, 0, 0 (the redirect was followed)", posts.Load(), gets.Load(), plainHits.Load())
			}
			wantHost := "https://" + strings.TrimPrefix(tlsSrv.URL, "https://")
			if status == 307 || status == 308 {
				wantHost = plain.URL
			} else {
				wantHost = "a relative Location"
			}
			if !strings.Contains(res.message, fmt.Sprintf("HTTP %d redirect to %s", status, wantHost)) {
				t.Fatalf("message %q does not name the status and the Location host %q", res.message, wantHost)
			}
		})
	}
}

// TestClientClassifiesOKBodies: a 2xx counts only when its body does not say otherwise. An
// error body is classified by its code (no code: transient); an empty or unrecognised body is
// accepted, marked unconfirmed.
func TestClientClassifiesOKBodies(t *testing.T) {
	for _, tc := range []struct {
		name            string
		body            string
		want            outcome
		wantStatus      int
		wantUnconfirmed bool
	}{
		{name: "success", body: `{"status":"success","message":"Variables successfully set","interactionId":"int-1","variablesSet":1}`, want: outcomeDone, wantStatus: 200},
		{name: "empty", body: ``, want: outcomeDone, wantStatus: 200, wantUnconfirmed: true},
		{name: "not JSON", body: `<html>ok</html>`, want: outcomeDone, wantStatus: 200, wantUnconfirmed: true},
		{name: "JSON without status", body: `{"ok":true}`, want: outcomeDone, wantStatus: 200, wantUnconfirmed: true},
		{name: "error 400", body: `{"status":"error","code":400,"message":"Invalid variable name"}`, want: outcomePermanent, wantStatus: 400},
		{name: "error 401", body: `{"status":"error","code":401,"message":"Authentication failed"}`, want: outcomeBlocked, wantStatus: 401},
		{name: "error 404", body: `{"status":"error","code":404,"message":"Interaction not found"}`, want: outcomeNotFound, wantStatus: 404},
		{name: "error 429", body: `{"status":"error","code":429,"message":"Rate limit exceeded"}`, want: outcomeThrottled, wantStatus: 429},
		{name: "error 500", body: `{"status":"error","code":500,"message":"Internal server error"}`, want: outcomeTransient, wantStatus: 500},
		{name: "error without code", body: `{"status":"error","message":"something"}`, want: outcomeTransient, wantStatus: 200},
		{name: "error with an odd code", body: `{"status":"error","code":302}`, want: outcomeTransient, wantStatus: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c, err := newAPIClient(TenantOptions{BaseURL: srv.URL, TenantID: "t1", Token: "tok", RequestTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			res := c.post(context.Background(), "int-1", []byte(`{"variables":[]}`))
			if res.outcome != tc.want || res.status != tc.wantStatus || res.unconfirmed != tc.wantUnconfirmed {
				t.Fatalf("got %v status %d unconfirmed %v (%q), want %v %d %v", res.outcome, res.status, res.unconfirmed, res.message, tc.want, tc.wantStatus, tc.wantUnconfirmed)
			}
		})
	}
}

// TestClientKeepsBaseURLPath: a base URL's path is a prefix of every request's path, so a
// gateway or another published path of the vendor's works.
func TestClientKeepsBaseURLPath(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"", api.PathPrefix + "int-1"},
		{"/", api.PathPrefix + "int-1"},
		{"/gw/8x8", "/gw/8x8" + api.PathPrefix + "int-1"},
		{"/gw/8x8/", "/gw/8x8" + api.PathPrefix + "int-1"},
	} {
		var got atomic.Value
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got.Store(r.URL.EscapedPath())
			_, _ = io.WriteString(w, `{"status":"success"}`)
		}))
		c, err := newAPIClient(TenantOptions{BaseURL: srv.URL + tc.base, TenantID: "t1", Token: "tok", RequestTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		res := c.post(context.Background(), "int-1", []byte(`{"variables":[]}`))
		c.close()
		srv.Close()
		if res.outcome != outcomeDone || got.Load() != tc.want {
			t.Errorf("base %q: request to %v (%v), want %s", tc.base, got.Load(), res.outcome, tc.want)
		}
	}
}

// TestTenantBlockedByRedirect: a tenant whose writes are redirected is blocked like one whose
// token is refused: nothing written, dead-lettered or done, one error line naming the status
// and the Location host, and a probe per probe interval.
func TestTenantBlockedByRedirect(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		http.Redirect(w, r, "https://elsewhere.example"+r.URL.Path, http.StatusMovedPermanently)
	}))
	defer srv.Close()
	core, logs := observer.New(zapcore.InfoLevel)
	sink := newFakeSink()
	tn, err := newTenant("t1", TenantOptions{BaseURL: srv.URL, TenantID: "t1", Token: "tok", RequestsPerMinute: 10_000, Concurrency: 4, BlockedProbeInterval: 100 * time.Millisecond},
		sink, zap.New(core), time.Now, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tn.run(ctx, ctx) }()
	defer func() { cancel(); <-done; tn.client.close() }()
	p := newPartition("t", 0)
	for i := 0; i < 5; i++ {
		tn.add(fmt.Sprintf("int-%d", i), contrib(p, int64(i), v("_a", "1")))
	}
	waitFor(t, "the tenant blocked", func() bool { b, _ := tn.blockedReason(); return b })
	time.Sleep(550 * time.Millisecond)
	if d, dead := sink.counts(); d != 0 || dead != 0 {
		t.Fatalf("%d records done, %d dead-lettered after redirects, want none", d, dead)
	}
	if _, _, ok := p.toCommit(); ok {
		t.Fatal("a watermark to commit after redirects only")
	}
	// The first wave (up to the concurrency) plus one probe per 100 ms.
	if n := posts.Load(); n > 4+8 {
		t.Fatalf("%d POSTs in 550 ms of blocking: the probes are not paced", n)
	}
	_, reason := tn.blockedReason()
	if !strings.Contains(reason, "HTTP 301 redirect to https://elsewhere.example") {
		t.Fatalf("blocked reason %q does not name the status and host", reason)
	}
	errs := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0].ContextMap()), "elsewhere.example") {
		t.Fatalf("error log lines %v: want one naming the Location host", errs)
	}
}

// TestTenantProbeSurvivesRevoke: the tenant, not a request, owns the probe. When a rebalance
// revokes the partitions of every refused request, the tenant still probes from what is
// pending, and recovers once the token is accepted, the token read again from its source
// before each probe.
func TestTenantProbeSurvivesRevoke(t *testing.T) {
	var mu sync.Mutex
	accepted := "good"
	var refused atomic.Int32
	a, srv := newTestAPI(t)
	inner := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pw, _ := r.BasicAuth()
		mu.Lock()
		ok := pw == accepted
		mu.Unlock()
		if !ok {
			refused.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	})
	var fileMu sync.Mutex
	file := "stale" // what a mounted Secret holds
	var reloads atomic.Int32
	sink := newFakeSink()
	tn, stop := startTenant(t, srv, sink, func(o *TenantOptions) {
		o.Token = "stale"
		o.BlockedProbeInterval = 100 * time.Millisecond
		o.ReloadToken = func() (string, error) {
			reloads.Add(1)
			fileMu.Lock()
			defer fileMu.Unlock()
			return file, nil
		}
	})
	defer stop()
	p0, p1 := newPartition("t", 0), newPartition("t", 1)
	tn.add("int-0", contrib(p0, 0, v("_a", "1")))
	tn.add("int-1", contrib(p0, 1, v("_a", "1")))
	waitFor(t, "the tenant blocked", func() bool { b, _ := tn.blockedReason(); return b })
	// A rebalance revokes partition 0: every refused request was its.
	p0.revoke()
	p0.revokedFlag.Store(true)
	tn.revoke(map[*partition]struct{}{p0: {}}, time.Second)
	// Partition 1's record arrives afterwards; the Secret is rotated.
	c := contrib(p1, 0, v("_b", "2"))
	tn.add("int-2", c)
	before := refused.Load()
	waitFor(t, "probes of partition 1's record while refused", func() bool { return refused.Load() >= before+2 })
	fileMu.Lock()
	file = "good"
	fileMu.Unlock()
	waitFor(t, "partition 1's record written", func() bool { d, _ := sink.counts(); return d == 1 })
	if b, _ := tn.blockedReason(); b {
		t.Fatal("the tenant is still blocked after a write succeeded")
	}
	got := a.requests()
	if len(got) != 1 || got[0].id != "int-2" {
		t.Fatalf("written %v, want only int-2 (partition 0 was revoked)", got)
	}
	if reloads.Load() < 3 {
		t.Fatalf("the token was read again %d times, want before each probe", reloads.Load())
	}
}

// TestTenantForbiddenInteraction: a 403 that persists for one interaction while others are
// written is that interaction's, not the tenant's: it is dead-lettered (class forbidden) after
// a few probes, and the tenant ends unblocked with everything else written.
func TestTenantForbiddenInteraction(t *testing.T) {
	var forbidden atomic.Int32
	a, srv := newTestAPI(t)
	inner := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/int-x") {
			forbidden.Add(1)
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"status":"error","code":403,"message":"Forbidden"}`)
			return
		}
		inner.ServeHTTP(w, r)
	})
	sink := newFakeSink()
	tn, stop := startTenant(t, srv, sink, func(o *TenantOptions) { o.BlockedProbeInterval = 50 * time.Millisecond; o.Concurrency = 1 })
	defer stop()
	p := newPartition("t", 0)
	x := contrib(p, 0, v("_a", "1"))
	tn.add("int-x", x)
	for i := 1; i <= 5; i++ {
		tn.add(fmt.Sprintf("int-%d", i), contrib(p, int64(i), v("_a", "1")))
	}
	waitFor(t, "every record finished", func() bool { d, _ := sink.counts(); return d == 6 })
	sink.mu.Lock()
	dead := sink.dead[x.rec]
	ndead := len(sink.dead)
	sink.mu.Unlock()
	if ndead != 1 || !strings.HasPrefix(dead, "forbidden: ") {
		t.Fatalf("%d dead letters, int-x's %q: want int-x's alone, class forbidden", ndead, dead)
	}
	if n := forbidden.Load(); n != forbiddenProbes {
		t.Fatalf("int-x was tried %d times, want %d", n, forbiddenProbes)
	}
	if len(a.requests()) != 5 {
		t.Fatalf("%d interactions written, want 5", len(a.requests()))
	}
	if b, _ := tn.blockedReason(); b {
		t.Fatal("the tenant ends blocked")
	}
	if off, _, ok := p.toCommit(); !ok || off != 6 {
		t.Fatalf("watermark %d,%v want 6", off, ok)
	}
}

// TestParseRetryAfter: both forms are read, and a wait is capped at one rate window plus a
// margin: a negative or overflowing number of seconds, or a date past the cap, means the cap.
func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in         string
		want       time.Duration
		wantCapped bool
	}{
		{"", 0, false},
		{"5", 5 * time.Second, false},
		{" 12 ", 12 * time.Second, false},
		{"90", 90 * time.Second, false},
		{"91", maxRetryAfter, true},
		{"86400", maxRetryAfter, true},
		{"-1", maxRetryAfter, true},
		{"99999999999999999999999", maxRetryAfter, true},
		{"soon", 0, false},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, false},
		{now.Add(-30 * time.Second).Format(http.TimeFormat), 0, false},
		{now.Add(24 * time.Hour).Format(http.TimeFormat), maxRetryAfter, true},
	} {
		if got, capped := parseRetryAfter(tc.in, now); got != tc.want || capped != tc.wantCapped {
			t.Errorf("parseRetryAfter(%q) = %v, %v, want %v, %v", tc.in, got, capped, tc.want, tc.wantCapped)
		}
	}
}
