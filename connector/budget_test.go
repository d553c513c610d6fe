package connector

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/internal/pacer"
)

// TestPacerBudgetKeepsPacerBehaviour drives a pacer through the reservation adapter and an
// identical pacer directly, step by step, and checks they agree at every step: Begin is always
// usable with the tenant's own timeout, End(answered) and End(uncertain) are Finish(true, at),
// End(unused) is Finish(false, at), and a second End changes nothing.
func TestPacerBudgetKeepsPacerBehaviour(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	direct := pacer.New(3, clock)
	viaAdapter := pacer.New(3, clock)
	b := newPacerBudget(viaAdapter, 7*time.Second)
	ctx := context.Background()

	same := func(step string) {
		t.Helper()
		if d, a := direct.InUse(), b.InUse(); d != a {
			t.Fatalf("%s: in use %d through the adapter, %d directly", step, a, d)
		}
		if d, a := direct.Limit(), b.Limit(); d != a {
			t.Fatalf("%s: limit %d through the adapter, %d directly", step, a, d)
		}
		if d, a := direct.TryAcquireFor(now, false), viaAdapter.TryAcquireFor(now, false); d != a {
			t.Fatalf("%s: next wait %v through the adapter, %v directly", step, a, d)
		}
		// Give back the probes' reservations, if they got one.
		if direct.TryAcquireFor(now, false) == 0 {
			direct.Finish(false, now)
		}
		direct.Finish(false, now)
		viaAdapter.Finish(false, now)
	}
	for i, how := range []use{useAnswered, useUncertain, useUnused} {
		if err := direct.WaitFor(ctx, nil, nil); err != nil {
			t.Fatal(err)
		}
		r, err := b.Reserve(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if timeout, ok := r.Begin(); !ok || timeout != 7*time.Second {
			t.Fatalf("Begin = %v, %v; want the tenant's timeout 7s and ok", timeout, ok)
		}
		now = now.Add(time.Second)
		direct.Finish(how != useUnused, now)
		r.End(how, now)
		r.End(useAnswered, now) // a second End counts nothing
		same("after " + how.String() + " " + string(rune('0'+i)))
	}
	if got := b.InUse(); got != 2 {
		t.Fatalf("in use %d after answered, uncertain and unused attempts, want 2", got)
	}
}

// TestAttemptUse classifies how an attempt used its reservation: any response is answered,
// a failure after a connection was obtained is uncertain (the request may have been written),
// and one before any connection carried it is unused. The reservation's timeout caps the
// attempt.
func TestAttemptUse(t *testing.T) {
	hang := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/interaction/data/ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"success"}`)) })
	mux.HandleFunc("/api/v1/interaction/data/500", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	mux.HandleFunc("/api/v1/interaction/data/429", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(429) })
	mux.HandleFunc("/api/v1/interaction/data/hang", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/api/v1/interaction/data/reset", func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close() // read the request, answer nothing
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(hang) // before Close, which waits for the handlers

	// A port nothing listens on: the dial fails, nothing is sent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	_ = ln.Close()

	for _, tc := range []struct {
		name, base, id string
		within         time.Duration
		want           use
		status         int
	}{
		{name: "200", base: srv.URL, id: "ok", want: useAnswered, status: 200},
		{name: "500", base: srv.URL, id: "500", want: useAnswered, status: 500},
		{name: "429", base: srv.URL, id: "429", want: useAnswered, status: 429},
		{name: "timeout", base: srv.URL, id: "hang", within: 100 * time.Millisecond, want: useUncertain},
		{name: "connection closed without an answer", base: srv.URL, id: "reset", want: useUncertain},
		{name: "connection refused", base: closedURL, id: "ok", want: useUnused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newAPIClient(TenantOptions{BaseURL: tc.base, TenantID: "t1", Token: "tok", Concurrency: 1, RequestTimeout: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			start := time.Now()
			res := c.postWithin(context.Background(), tc.id, []byte(`{"variables":[]}`), tc.within)
			if got := res.use(); got != tc.want || res.status != tc.status {
				t.Fatalf("use %v, status %d (%s); want %v, %d", got, res.status, res.message, tc.want, tc.status)
			}
			if tc.within > 0 && time.Since(start) > 10*tc.within {
				t.Fatalf("the attempt took %v: the reservation's timeout %v did not cap it", time.Since(start), tc.within)
			}
		})
	}
}
