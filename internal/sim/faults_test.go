package sim

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/augment-connector/augment-connector/internal/api"
)

func decodeFaults(t *testing.T, r reply) FaultStatus {
	t.Helper()
	var st FaultStatus
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("decoding faults %s: %v", r.body, err)
	}
	return st
}

func TestFaultsEndpoint(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Faults = Faults{Latency: 5 * time.Millisecond} })
	none := FaultStatus{Latency: Duration(5 * time.Millisecond), Revoked: []string{}, Force429: []Force429{}}
	if diff := cmp.Diff(none, decodeFaults(t, h.admin("GET", "/sim/faults", ""))); diff != "" {
		t.Fatalf("initial faults (-want +got):\n%s", diff)
	}
	r := h.admin("POST", "/sim/faults", `{"latency":"250ms","latencyJitter":50,"errorRate":0.25,"dropRate":0.125,
		"outage":{"mode":"refuse","seconds":30},"revoke":"t2","force429":{"count":3,"retryAfter":7}}`)
	if r.status != 200 {
		t.Fatalf("POST /sim/faults: %d %s", r.status, r.body)
	}
	want := FaultStatus{
		Latency: Duration(250 * time.Millisecond), LatencyJitter: Duration(50 * time.Millisecond),
		ErrorRate: 0.25, DropRate: 0.125,
		Outage:   &OutageStatus{Mode: "refuse", Until: h.clock.Now().Add(30 * time.Second), RemainingSeconds: 30},
		Revoked:  []string{"t2"},
		Force429: []Force429{{Tenant: "t1", Count: 3, RetryAfter: 7}},
	}
	if diff := cmp.Diff(want, decodeFaults(t, r)); diff != "" {
		t.Errorf("after POST (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, decodeFaults(t, h.admin("GET", "/sim/faults", ""))); diff != "" {
		t.Errorf("GET after POST (-want +got):\n%s", diff)
	}
	for _, bad := range []string{
		`{"errorRate":1.5}`, `{"dropRate":-0.1}`, `{"latency":"soon"}`, `{"latency":"-1s"}`,
		`{"outage":{"mode":"down","seconds":5}}`, `{"outage":{"mode":"500","seconds":-1}}`,
		`{"revoke":"t9"}`, `{"restore":"t9"}`, `{"force429":{"tenant":"t9","count":1}}`, `{"force429":{"count":-1}}`,
		`{"errorrate":0.5,"typo":true}`, `not json`,
	} {
		if r := h.admin("POST", "/sim/faults", bad); r.status != 400 || r.errorBody(t).Code != 400 {
			t.Errorf("POST %s: %d %s, want 400", bad, r.status, r.body)
		}
	}
	if diff := cmp.Diff(want, h.s.FaultStatus()); diff != "" {
		t.Errorf("a rejected patch changed the faults (-want +got):\n%s", diff)
	}
	h.clock.Advance(31 * time.Second)
	r = h.admin("POST", "/sim/faults", `{"reset":true,"restore":"t2","errorRate":0.5}`)
	if diff := cmp.Diff(FaultStatus{ErrorRate: 0.5, Revoked: []string{}, Force429: []Force429{}}, decodeFaults(t, r)); diff != "" {
		t.Errorf("after reset (-want +got):\n%s", diff)
	}
}

func TestLatency(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Faults = Faults{Latency: 50 * time.Millisecond, LatencyJitter: 10 * time.Millisecond}
	})
	var (
		mu     sync.Mutex
		delays []time.Duration
	)
	h.s.sleep = func(_ context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		delays = append(delays, d)
		return nil
	}
	h.create("", "int-1")
	for range 20 {
		h.post("int-1", body(api.Variable{Name: "_a", Value: "1"}))
	}
	h.call("GET", "int-1", "", "", "") // unauthenticated requests are delayed too
	mu.Lock()
	defer mu.Unlock()
	if len(delays) != 21 {
		t.Fatalf("%d delays, want 21", len(delays))
	}
	distinct := map[time.Duration]bool{}
	for _, d := range delays {
		if d < 50*time.Millisecond || d >= 60*time.Millisecond {
			t.Errorf("delay %v outside [50ms, 60ms)", d)
		}
		distinct[d] = true
	}
	if len(distinct) < 2 {
		t.Errorf("jitter gave %d distinct delays, want several", len(distinct))
	}
}

func TestLatencyReallyWaits(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Faults.Latency = 30 * time.Millisecond })
	h.create("", "int-1")
	start := time.Now()
	h.post("int-1", body(api.Variable{Name: "_a", Value: "1"}))
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("response after %v, want at least 30ms", d)
	}
}

func TestErrorRateIsSeededAndAppliesNothing(t *testing.T) {
	statuses := func(seed uint64) []int {
		h := newHarness(t, func(c *Config) {
			c.Faults.ErrorRate = 0.5
			c.Seed = seed
		})
		h.create("", "int-1")
		var out []int
		ok := 0
		for range 200 {
			r := h.post("int-1", body(api.Variable{Name: "_a", Value: "1"}))
			out = append(out, r.status)
			switch r.status {
			case 200:
				ok++
			case 500:
				if e := r.errorBody(t); e.Message != api.MsgInternal {
					t.Fatalf("500 body %s", r.body)
				}
			default:
				t.Fatalf("status %d", r.status)
			}
		}
		if ok < 60 || ok > 140 {
			t.Errorf("seed %d: %d of 200 succeeded at error rate 0.5", seed, ok)
		}
		if st := h.s.Stats(); st.VariablesSet != uint64(ok) || st.ByStatus[500] != uint64(200-ok) {
			t.Errorf("stats %+v, want %d variables set and %d 500s", st, ok, 200-ok)
		}
		return out
	}
	a, b, c := statuses(7), statuses(7), statuses(8)
	if !cmp.Equal(a, b) {
		t.Error("the same seed gave different faults")
	}
	if cmp.Equal(a, c) {
		t.Error("different seeds gave the same faults")
	}
}

func TestDropClosesWithoutResponse(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Faults.DropRate = 1 })
	h.create("", "int-1")
	_, err := h.try("POST", "int-1", tenant1, token1, body(api.Variable{Name: "_a", Value: "1"}))
	if err == nil {
		t.Fatal("POST got a response, want the connection dropped")
	}
	if ia, _ := h.s.Interaction("", "int-1"); len(ia.Variables) != 0 {
		t.Errorf("a dropped request was applied: %+v", ia.Variables)
	}
	j := h.s.Journal(0)
	if len(j) == 0 || j[0].Status != 0 || j[0].Message != noteDropped {
		t.Errorf("journal %+v, want a dropped entry", j)
	}
}

func TestOutage500(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RateLimit = 1 })
	h.create("", "int-1")
	if _, err := h.s.PatchFaults(FaultPatch{Outage: &Outage{Mode: OutageError, Seconds: 10}}); err != nil {
		t.Fatal(err)
	}
	valid := body(api.Variable{Name: "_a", Value: "1"})
	for _, r := range []reply{h.post("int-1", valid), h.call("GET", "int-1", "", "", ""), h.post("int-1", valid)} {
		if r.status != 500 || r.errorBody(t).Message != api.MsgInternal {
			t.Errorf("during the outage: %d %s, want 500", r.status, r.body)
		}
	}
	h.clock.Advance(10 * time.Second)
	// Requests refused by the outage never reached the rate limit.
	if r := h.post("int-1", valid); r.status != 200 {
		t.Errorf("after the outage: %d %s, want 200", r.status, r.body)
	}
}

func TestOutageRefuse(t *testing.T) {
	clock := newFakeClock()
	s, err := New(Config{Tenants: []Tenant{{ID: tenant1, Token: token1}}, PlainHTTP: true, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	h := &harness{t: t, s: s, clock: clock, url: base, hc: &http.Client{Transport: tr}}
	h.create("", "int-1")
	valid := body(api.Variable{Name: "_a", Value: "1"})
	if r := h.post("int-1", valid); r.status != 200 { // leaves a kept-alive connection
		t.Fatalf("before: %d", r.status)
	}
	if _, err := s.PatchFaults(FaultPatch{Outage: &Outage{Mode: OutageRefuse, Seconds: 5}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.try("POST", "int-1", tenant1, token1, valid); err == nil {
		t.Error("POST on a kept-alive connection during the outage got a response")
	}
	tr.CloseIdleConnections()
	if _, err := h.try("POST", "int-1", tenant1, token1, valid); err == nil {
		t.Error("POST on a new connection during the outage got a response")
	}
	clock.Advance(5 * time.Second)
	if r := h.post("int-1", valid); r.status != 200 {
		t.Errorf("after the outage: %d", r.status)
	}
	if ia, _ := s.Interaction("", "int-1"); len(ia.Variables) != 1 {
		t.Errorf("variables %+v", ia.Variables)
	}
}

func TestRevokeAndRestore(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RateLimit = 2 })
	h.create("", "int-1")
	h.create(tenant2, "int-1")
	valid := body(api.Variable{Name: "_a", Value: "1"})
	if r := h.admin("POST", "/sim/faults", `{"revoke":"t1"}`); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	for range 3 {
		if r := h.post("int-1", valid); r.status != 401 || r.errorBody(t).Message != api.MsgAuthFailed {
			t.Fatalf("revoked: %d %s, want 401", r.status, r.body)
		}
	}
	if r := h.call("POST", "int-1", tenant2, token2, valid); r.status != 200 {
		t.Errorf("other tenant while t1 is revoked: %d", r.status)
	}
	if r := h.admin("POST", "/sim/faults", `{"restore":"t1"}`); r.status != 200 {
		t.Fatalf("restore: %d %s", r.status, r.body)
	}
	// The 401s did not use up the limit of 2.
	for i := range 2 {
		if r := h.post("int-1", valid); r.status != 200 {
			t.Errorf("restored, request %d: %d %s", i+1, r.status, r.body)
		}
	}
}

func TestForce429(t *testing.T) {
	h := newHarness(t, nil)
	h.create("", "int-1")
	h.create(tenant2, "int-1")
	valid := body(api.Variable{Name: "_a", Value: "1"})
	if r := h.admin("POST", "/sim/faults", `{"force429":{"tenant":"t1","count":2,"retryAfter":7}}`); r.status != 200 {
		t.Fatalf("force429: %d %s", r.status, r.body)
	}
	if r := h.call("POST", "int-1", tenant2, token2, valid); r.status != 200 {
		t.Errorf("other tenant: %d", r.status)
	}
	for i := range 2 {
		r := h.post("int-1", valid)
		if r.status != 429 || r.header.Get("Retry-After") != "7" || r.errorBody(t).Message != api.MsgRateLimited {
			t.Errorf("forced 429 #%d: %d Retry-After %q %s", i+1, r.status, r.header.Get("Retry-After"), r.body)
		}
		if i == 0 {
			if st := h.s.FaultStatus(); len(st.Force429) != 1 || st.Force429[0].Count != 1 {
				t.Errorf("after one forced 429: %+v, want 1 remaining", st.Force429)
			}
		}
	}
	if r := h.post("int-1", valid); r.status != 200 {
		t.Errorf("after the forced 429s: %d", r.status)
	}
	if st := h.s.FaultStatus(); len(st.Force429) != 0 {
		t.Errorf("force429 %+v, want none left", st.Force429)
	}
	// Without retryAfter there is no header; count 0 cancels.
	if _, err := h.s.PatchFaults(FaultPatch{Force429: &Force429{Count: 5}}); err != nil {
		t.Fatal(err)
	}
	if r := h.post("int-1", valid); r.status != 429 || r.header.Get("Retry-After") != "" {
		t.Errorf("forced 429 without retryAfter: %d %q", r.status, r.header.Get("Retry-After"))
	}
	if _, err := h.s.PatchFaults(FaultPatch{Force429: &Force429{Count: 0}}); err != nil {
		t.Fatal(err)
	}
	if r := h.post("int-1", valid); r.status != 200 {
		t.Errorf("after cancelling: %d", r.status)
	}
}

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{`"1.5s"`, 1500 * time.Millisecond, false},
		{`250`, 250 * time.Millisecond, false},
		{`0.5`, 500 * time.Microsecond, false},
		{`"soon"`, 0, true},
		{`true`, 0, true},
	}
	for _, tt := range tests {
		var d Duration
		err := json.Unmarshal([]byte(tt.in), &d)
		if (err != nil) != tt.wantErr || time.Duration(d) != tt.want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v, error %v", tt.in, time.Duration(d), err, tt.want, tt.wantErr)
		}
	}
	b, err := json.Marshal(Duration(1500 * time.Millisecond))
	if err != nil || string(b) != `"1.5s"` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
	if err := new(Duration).UnmarshalJSON([]byte(`"x"`)); err == nil || !strings.Contains(err.Error(), "parsing duration") {
		t.Errorf("error %v", err)
	}
}
