package sim

import (
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/internal/api"
)

func TestWindowAdmit(t *testing.T) {
	t0 := time.Date(2024, 7, 10, 0, 0, 0, 0, time.UTC)
	type step struct {
		at   time.Duration // since t0
		ok   bool
		wait time.Duration // when refused
	}
	tests := []struct {
		name  string
		limit int
		steps []step
	}{
		{"off", 0, []step{{0, true, 0}, {0, true, 0}, {0, true, 0}}},
		{"limit 2 in one instant", 2, []step{{0, true, 0}, {0, true, 0}, {0, false, 60 * time.Second}}},
		{"refused requests are logged too", 2, []step{
			{0, true, 0}, {10 * time.Second, true, 0},
			{59 * time.Second, false, 11 * time.Second},  // logged: the window holds 10 s and 59 s
			{70 * time.Second, true, 0},                  // 10 s left exactly 60 s before
			{118 * time.Second, false, 12 * time.Second}, // 59 s is still in
			{130 * time.Second, true, 0},
		}},
		{"slow traffic never waits", 1, []step{{0, true, 0}, {60 * time.Second, true, 0}, {120 * time.Second, true, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := window{limit: tt.limit}
			for i, s := range tt.steps {
				ok, wait := w.admit(t0.Add(s.at))
				if ok != s.ok || wait != s.wait {
					t.Fatalf("step %d at %v: admit = %v, %v; want %v, %v", i, s.at, ok, wait, s.ok, s.wait)
				}
			}
		})
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {time.Second + 1, 2}, {30100 * time.Millisecond, 31}, {60 * time.Second, 60}} {
		if got := retryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func TestRateLimitSlidingWindow(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.RateLimit = api.DefaultRequestsPerMinute
		c.RetryAfter = true
	})
	h.create("", "int-1")
	h.create(tenant2, "int-1")
	valid := body(api.Variable{Name: "_a", Value: "1"})
	// Failed authentications do not count; rejected and read requests do.
	for range 5 {
		if r := h.call("POST", "int-1", tenant1, "wrong", valid); r.status != 401 {
			t.Fatalf("wrong token: %d", r.status)
		}
	}
	for i := range 100 {
		var r reply
		switch i % 10 {
		case 0:
			r = h.call("GET", "int-1", tenant1, token1, "")
		case 1:
			r = h.post("int-1", `{"variables":[]}`)
		default:
			r = h.post("int-1", valid)
		}
		if r.status == 429 {
			t.Fatalf("request %d refused: %s", i+1, r.body)
		}
		h.clock.Advance(100 * time.Millisecond)
	}
	// The first request was at 0 s, the second at 0.1 s; now it is 30 s.
	h.clock.Advance(30*time.Second - 10*time.Second)
	r := h.post("int-1", valid)
	if r.status != 429 || r.errorBody(t).Message != api.MsgRateLimited {
		t.Fatalf("101st request: %d %s, want 429", r.status, r.body)
	}
	// The refused request entered the log and pushed out the first: the oldest is at 0.1 s.
	if got := r.header.Get("Retry-After"); got != "31" {
		t.Errorf("Retry-After %q, want 31", got)
	}
	if r := h.call("POST", "int-1", tenant2, token2, valid); r.status != 200 {
		t.Errorf("the other tenant: %d, want 200", r.status)
	}
	h.clock.Advance(30*time.Second + 100*time.Millisecond) // 60.1 s: the 0.1 s request leaves
	if r := h.post("int-1", valid); r.status != 200 {
		t.Errorf("at 60.1 s: %d %s, want 200", r.status, r.body)
	}
	if r := h.post("int-1", valid); r.status != 429 {
		t.Errorf("again at 60.1 s: %d, want 429 (the 0.2 s request is still in)", r.status)
	}
	h.clock.Advance(60 * time.Second) // everything up to 60.1 s is out
	if r := h.post("int-1", valid); r.status != 200 {
		t.Errorf("a window later: %d %s, want 200", r.status, r.body)
	}
}

func TestRateLimitWithoutRetryAfter(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RateLimit = 2 })
	h.create("", "int-1")
	valid := body(api.Variable{Name: "_a", Value: "1"})
	h.post("int-1", valid)
	h.post("int-1", valid)
	r := h.post("int-1", valid)
	if r.status != 429 || r.header.Get("Retry-After") != "" {
		t.Errorf("got %d with Retry-After %q, want 429 without it", r.status, r.header.Get("Retry-After"))
	}
}

func TestRateLimitOff(t *testing.T) {
	h := newHarness(t, nil)
	h.create("", "int-1")
	valid := body(api.Variable{Name: "_a", Value: "1"})
	for i := range 250 {
		if r := h.post("int-1", valid); r.status != 200 {
			t.Fatalf("request %d: %d", i+1, r.status)
		}
	}
}
