package connector

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/augment-connector/augment-connector/internal/ledger"
)

// startLedgerTenant runs a tenant whose budget is f's (coordination kafka) against srv.
func startLedgerTenant(t *testing.T, srv string, f *fakeMember, mut func(*TenantOptions)) (*tenant, func()) {
	t.Helper()
	o := TenantOptions{BaseURL: srv, TenantID: "t1", Token: "tok", RequestsPerMinute: 100, Concurrency: 4, NotFoundGrace: 300 * time.Millisecond}
	if mut != nil {
		mut(&o)
	}
	tn, err := newTenant("t1", o, newFakeSink(), zap.NewNop(), time.Now, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	link := &ledgerLink{}
	link.set(f)
	tn.budget = newLedgerBudget(link, AccountKey(o.BaseURL, o.TenantID), "t1", o.RequestsPerMinute, zap.NewNop(), time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tn.run(ctx, ctx)
	}()
	return tn, func() { cancel(); <-done; tn.client.close() }
}

// scriptedAPI answers each request with the next of its script: a status, or 0 to hang until
// the client gives up. Then 200.
type scriptedAPI struct {
	mu     sync.Mutex
	script []int
	posts  int
	header http.Header
}

func (a *scriptedAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	a.mu.Lock()
	a.posts++
	status := 200
	if len(a.script) > 0 {
		status, a.script = a.script[0], a.script[1:]
	}
	for k, v := range a.header {
		w.Header()[k] = v
	}
	a.mu.Unlock()
	if status == 0 {
		<-r.Context().Done()
		return
	}
	w.WriteHeader(status)
	if status == 200 {
		_, _ = io.WriteString(w, `{"status":"success"}`)
	}
}

func (a *scriptedAPI) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.posts
}

// TestLedgerBudgetUses: each attempt is one claim, finished as its outcome says: an answer
// (200, 500, 404, 429: whatever the status) is finished, a timeout is uncertain, a request
// never sent (connection refused) is returned; a claim that expired before Start is returned
// and another one acquired, without a request.
func TestLedgerBudgetUses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  []int
		expire  int
		refused bool
		want    []ledger.Use
		posts   int
	}{
		{name: "200", want: []ledger.Use{ledger.UseFinished}, posts: 1},
		{name: "500 then 200", script: []int{500}, want: []ledger.Use{ledger.UseFinished, ledger.UseFinished}, posts: 2},
		{name: "404 then 200", script: []int{404}, want: []ledger.Use{ledger.UseFinished, ledger.UseFinished}, posts: 2},
		{name: "timeout then 200", script: []int{0}, want: []ledger.Use{ledger.UseUncertain, ledger.UseFinished}, posts: 2},
		{name: "expired claim", expire: 1, want: []ledger.Use{ledger.UseReturned, ledger.UseFinished}, posts: 1},
		{name: "two expired claims, a 500, then 200", expire: 2, script: []int{500},
			want: []ledger.Use{ledger.UseReturned, ledger.UseReturned, ledger.UseFinished, ledger.UseFinished}, posts: 2},
		{name: "never sent", refused: true, want: []ledger.Use{ledger.UseReturned}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &scriptedAPI{script: slices.Clone(tc.script)}
			srv := httptest.NewServer(a)
			defer srv.Close()
			url := srv.URL
			if tc.refused {
				srv.Close() // nothing listens there any more
			}
			f := newFakeMember(0)
			f.timeout = 200 * time.Millisecond // the claim's timeout caps the attempt (the tenant's is 10s)
			f.expireNext = tc.expire
			tn, stop := startLedgerTenant(t, url, f, nil)
			p := newPartition("t", 0)
			tn.add("int-1", contrib(p, 0, v("_a", "1")))
			waitFor(t, "the claims finished", func() bool { return len(f.uses()) >= len(tc.want) })
			if tc.refused {
				stop()
			} else {
				waitFor(t, "the record done", func() bool { _, _, ok := p.toCommit(); return ok })
				stop()
			}
			got := f.uses()
			if tc.refused {
				// Retries go on until stopped; every one of them was never sent.
				for i, u := range got {
					if u != ledger.UseReturned {
						t.Fatalf("claim %d finished as %v, want returned (never sent): %v", i, u, got)
					}
				}
			} else if !slices.Equal(got, tc.want) {
				t.Fatalf("claims finished as %v, want %v", got, tc.want)
			}
			if a.count() != tc.posts && !tc.refused {
				t.Fatalf("%d requests, want %d", a.count(), tc.posts)
			}
			if f.doubles != 0 {
				t.Fatalf("%d claims finished twice", f.doubles)
			}
			if f.outstanding != 0 {
				t.Fatalf("%d claims never finished", f.outstanding)
			}
		})
	}
}

// TestLedgerBudgetThrottledForwarded: a 429 is reported to the member for the tenant's
// account, with its Retry-After.
func TestLedgerBudgetThrottledForwarded(t *testing.T) {
	a := &scriptedAPI{script: []int{429}, header: http.Header{"Retry-After": {"2"}}}
	srv := httptest.NewServer(a)
	defer srv.Close()
	f := newFakeMember(0)
	tn, stop := startLedgerTenant(t, srv.URL, f, nil)
	defer stop()
	p := newPartition("t", 0)
	tn.add("int-1", contrib(p, 0, v("_a", "1")))
	waitFor(t, "the record done", func() bool { _, _, ok := p.toCommit(); return ok })
	f.mu.Lock()
	defer f.mu.Unlock()
	want := []throttle{{AccountKey(srv.URL, "t1"), 2 * time.Second}}
	if !slices.Equal(f.throttled, want) {
		t.Fatalf("throttled %v, want %v", f.throttled, want)
	}
	if !slices.Equal(f.finishes, []ledger.Use{ledger.UseFinished, ledger.UseFinished}) {
		t.Fatalf("claims finished as %v, want the 429's and the 200's finished", f.finishes)
	}
}

// TestLedgerBudgetStatus: Limit and InUse are the member's cluster-wide values (the
// configured limit until the ledger has one); SetShare changes nothing.
func TestLedgerBudgetStatus(t *testing.T) {
	link := &ledgerLink{}
	b := newLedgerBudget(link, "t1@api.example", "t1", 100, zap.NewNop(), time.Now)
	if b.Limit() != 100 || b.InUse() != 0 {
		t.Fatalf("before the member runs: limit %d, in use %d; want 100, 0", b.Limit(), b.InUse())
	}
	if _, err := b.Reserve(context.Background(), nil, nil); err == nil {
		t.Fatal("Reserve without a member succeeded")
	}
	f := newFakeMember(0)
	f.Register(ledger.Account{Key: "t1@api.example", Limit: 60})
	link.set(f)
	r, err := b.Reserve(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.SetShare(0.1)
	if b.Limit() != 60 || b.InUse() != 1 {
		t.Fatalf("limit %d, in use %d; want the member's 60 and 1", b.Limit(), b.InUse())
	}
	r.End(useUnused, time.Now())
	r.End(useAnswered, time.Now())
	if got := f.uses(); !slices.Equal(got, []ledger.Use{ledger.UseReturned}) || f.doubles != 0 {
		t.Fatalf("finished %v (doubles %d), want one returned", got, f.doubles)
	}
	// Reserve gives ctx's error when it ends first, holding nothing.
	f.setReady(ledger.ErrMalformed)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := b.Reserve(ctx, nil, nil); err != context.DeadlineExceeded {
		t.Fatalf("Reserve = %v, want the context's deadline", err)
	}
}

// TestAccountKey: the ledger's account is the tenant id at the API host, whatever the
// tenant's name in the config or the URL's path; never the token.
func TestAccountKey(t *testing.T) {
	a := AccountKey("https://vcc-na12.8x8.com", "acme")
	if b := AccountKey("https://VCC-NA12.8x8.com/", "acme"); a != b {
		t.Errorf("keys differ for one account: %q, %q", a, b)
	}
	if a != "acme@vcc-na12.8x8.com" {
		t.Errorf("key %q", a)
	}
	if AccountKey("https://vcc-eu1.8x8.com", "acme") == a || AccountKey("https://vcc-na12.8x8.com", "other") == a {
		t.Error("different accounts share a key")
	}
	tn, err := newTenant("some-name", TenantOptions{BaseURL: "https://vcc-na12.8x8.com", TenantID: "acme", Token: "s3cr3t"}, newFakeSink(), zap.NewNop(), time.Now, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tn.client.close()
	if k := AccountKey(tn.opts.BaseURL, tn.opts.TenantID); strings.Contains(k, "s3cr3t") || strings.Contains(k, "some-name") {
		t.Errorf("key %q carries the token or the config's name", k)
	}
}

// TestLedgerBudgetLogsLongWaits: a write waiting on the ledger longer than logAfter is logged
// with why (the ledger not ready, or the cluster-wide budget in use), at most once per
// logEvery for the tenant, however many writes wait.
func TestLedgerBudgetLogsLongWaits(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	f := newFakeMember(0)
	f.Register(ledger.Account{Key: "t1@api.example", Limit: 100})
	f.setReady(errors.New("no record read back for 12s"))
	link := &ledgerLink{}
	link.set(f)
	b := newLedgerBudget(link, "t1@api.example", "t1", 100, zap.New(core), time.Now)
	b.logAfter, b.logEvery = 20*time.Millisecond, time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Reserve(ctx, nil, nil); err == nil {
				t.Error("a reservation while the ledger is not ready")
			}
		}()
	}
	wg.Wait()
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d log lines, want 1 for the tenant: %v", len(entries), entries)
	}
	if msg := entries[0].Message; !strings.Contains(msg, "waited on the budget ledger") || !strings.Contains(msg, "the budget ledger is not available: no record read back for 12s") {
		t.Fatalf("log line %q does not say why", msg)
	}

	// Available, but the budget is in use: the line says so.
	f.setReady(nil)
	f.mu.Lock()
	f.grantEvery = time.Hour
	f.nextGrant = time.Now().Add(time.Hour)
	f.mu.Unlock()
	b.lastLog.Store(0)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	_, _ = b.Reserve(ctx2, nil, nil)
	entries = logs.All()
	if len(entries) != 2 || !strings.Contains(entries[1].Message, "the tenant's cluster-wide budget is in use (0 of 100 requests in the rolling minute)") {
		t.Fatalf("log lines %v, want a second one saying the budget is in use", entries)
	}
}
