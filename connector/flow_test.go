package connector

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFlowBounds: every topic pauses at a bound (records; bytes with one tenant; unprocessed
// records) and resumes only at three quarters of each.
func TestFlowBounds(t *testing.T) {
	for _, tc := range []struct {
		name           string
		records        int
		bytes          int64
		unprocessed    int
		wantPause      bool
		wantLowWater   bool
		tenants        map[string]string
		wantPollRoom50 int
	}{
		{name: "empty", wantLowWater: true, wantPollRoom50: 50},
		{name: "records at the bound", records: 100, wantPause: true, wantPollRoom50: 1},
		{name: "records above low water", records: 76, wantPollRoom50: 24},
		{name: "records at low water", records: 75, wantLowWater: true, wantPollRoom50: 25},
		{name: "bytes at the bound, one tenant", bytes: 1000, wantPause: true, wantPollRoom50: 50},
		{name: "bytes above low water, one tenant", bytes: 751, wantPollRoom50: 50},
		{name: "bytes at the bound, two tenants: their shares decide", bytes: 1000, wantLowWater: true, wantPollRoom50: 50,
			tenants: map[string]string{"t1": "a", "t2": "b"}},
		{name: "unprocessed at its bound", unprocessed: maxUnprocessed, wantPause: true, wantPollRoom50: 50},
		{name: "unprocessed above half", unprocessed: maxUnprocessed/2 + 1, wantPollRoom50: 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlow(100, 1000, tc.tenants)
			f.admit(nil, tc.records, tc.bytes)
			if got := f.pauseAll(tc.unprocessed); got != tc.wantPause {
				t.Errorf("pauseAll = %v, want %v", got, tc.wantPause)
			}
			if got := f.belowLowWater(tc.unprocessed); got != tc.wantLowWater {
				t.Errorf("belowLowWater = %v, want %v", got, tc.wantLowWater)
			}
			if got := f.pollRoom(50); got != tc.wantPollRoom50 {
				t.Errorf("pollRoom(50) = %d, want %d", got, tc.wantPollRoom50)
			}
		})
	}
}

// TestFlowTenants: a tenant whose records hold its share of the bytes has its topics paused,
// and resumed at three quarters of it (not while every topic is paused); the others flow; the
// counts go back to zero as records are done or dropped.
func TestFlowTenants(t *testing.T) {
	f := newFlow(100, 1000, map[string]string{"t1": "a", "t2": "b"}) // a share of 500 each
	var paused, resumed []string
	step := func() bool {
		return f.pauseTenants(func(tf *tenantFlow, _ int64) { paused = append(paused, tf.name) },
			func(tf *tenantFlow) { resumed = append(resumed, tf.name) })
	}
	r := &rec{kr: record{Topic: "t1"}, owner: f.owner("t1")}
	f.admit(r.owner, 1, 100)
	r.size.Store(100)
	f.charge(r, 400)
	if !step() || !f.topicPaused("t1") || f.topicPaused("t2") {
		t.Fatalf("tenant a at its share: paused %v, want a only", paused)
	}
	if diff := cmp.Diff([]string{"t2"}, f.resumable([]string{"t1", "t2"})); diff != "" {
		t.Errorf("resumable (-want +got):\n%s", diff)
	}
	f.charge(r, -100) // 400: above three quarters
	if !step() || len(resumed) != 0 {
		t.Fatalf("tenant a above three quarters of its share: resumed %v", resumed)
	}
	f.charge(r, -25) // 375: three quarters
	f.paused.Store(true)
	if step() || len(resumed) != 0 {
		t.Fatalf("while every topic is paused: resumed %v, want none (the poll loop resumes them)", resumed)
	}
	f.paused.Store(false)
	f.done(r)
	if f.pending() != 0 || f.bytes.Load() != 0 || f.byTopic["t1"].bytes.Load() != 0 {
		t.Fatalf("after the record is done: %d records, %d bytes, %d of tenant a's, want 0", f.pending(), f.bytes.Load(), f.byTopic["t1"].bytes.Load())
	}
	if diff := cmp.Diff([]string{"a"}, paused); diff != "" {
		t.Errorf("paused (-want +got):\n%s", diff)
	}
}
