package tables

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/augment-connector/augment-connector/transform"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestPackRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 25, 7, 0, 0, 123, time.UTC)
	fields := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	vals := []any{"gold", int64(-42), 1250.75, true, false, at, nil, math.MaxInt64}
	got := unpack(fields, pack(vals, transform.FormatKey))
	want := map[string]any{"a": "gold", "b": int64(-42), "c": 1250.75, "d": true, "e": false, "f": at, "h": int64(math.MaxInt64)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("unpack(pack) (-want +got):\n%s", diff)
	}
}

// clock is a settable time for the ttl.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func row(tier string) string { return pack([]any{tier}, transform.FormatKey) }

func TestStoreSingle(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	s := newStore("customers", []string{"tier"}, false, time.Minute, 2, 0, c.now)
	mustPut := func(key, tier string, at time.Time) {
		t.Helper()
		if err := s.put(key, "", row(tier), at); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	mustPut("1", "gold", c.t)
	mustPut("1", "silver", c.t) // replace, not a new entry
	mustPut("2", "bronze", c.t)
	if got := s.get("1"); got["tier"] != "silver" {
		t.Fatalf("get 1 = %v, want silver", got)
	}
	if n, _, _ := s.stats(); n != 2 {
		t.Fatalf("entries %d, want 2", n)
	}
	// The bound refuses a third entry, with ErrFull and the table named; replacing still works.
	err := s.put("3", "", row("gold"), c.t)
	if !errors.Is(err, ErrFull) || err.Error() == "" {
		t.Fatalf("put past maxEntries: %v, want ErrFull", err)
	}
	if _, _, full := s.stats(); !full {
		t.Fatal("full not reported after a refused put")
	}
	mustPut("2", "gold", c.t)
	s.deleteKey("2")
	if s.get("2") != nil {
		t.Fatal("deleted key still found")
	}
	// ttl: an entry older than a minute is invisible, then swept.
	c.t = c.t.Add(61 * time.Second)
	if s.get("1") != nil {
		t.Fatal("expired entry still found")
	}
	if n := s.sweep(); n != 1 {
		t.Fatalf("sweep removed %d, want 1", n)
	}
	if n, b, _ := s.stats(); n != 0 || b != 0 {
		t.Fatalf("after sweep: %d entries, %d bytes; want 0, 0", n, b)
	}
}

// TestSweepBounded: one sweep looks at no more than sweepBatch entries (its lock stays short
// on a large table), and repeated sweeps still remove every expired entry and only those.
func TestSweepBounded(t *testing.T) {
	for _, multi := range []bool{false, true} {
		c := &clock{t: time.Unix(1000, 0)}
		s := newStore("t", []string{"tier"}, multi, time.Minute, 0, 0, c.now)
		const expired, live = 3 * sweepBatch, 500
		for i := range expired + live {
			at := c.t
			if i >= expired {
				at = c.t.Add(2 * time.Minute) // written later: still live after the clock moves
			}
			id := ""
			if multi {
				id = fmt.Sprintf("call-%d", i)
			}
			if err := s.put(fmt.Sprintf("k%d", i), id, row("gold"), at); err != nil {
				t.Fatal(err)
			}
		}
		c.t = c.t.Add(2*time.Minute + time.Second)
		if n := s.sweep(); n == 0 || n > sweepBatch {
			t.Fatalf("multi=%v: one sweep removed %d, want 1..%d", multi, n, sweepBatch)
		}
		for range 200 {
			if n, _, _ := s.stats(); n == live {
				break
			}
			s.sweep()
		}
		if n, _, _ := s.stats(); n != live {
			t.Fatalf("multi=%v: %d entries left after 200 sweeps, want the %d live ones", multi, n, live)
		}
		for i := expired; i < expired+live; i++ {
			k := fmt.Sprintf("k%d", i)
			if multi && len(s.getAll(k)) != 1 || !multi && s.get(k) == nil {
				t.Fatalf("multi=%v: live entry %s was swept", multi, k)
			}
		}
	}
}

// TestFullTableSweepsBeforeRefusing: a table at maxEntries whose entries have expired (and not
// been swept yet) takes a new entry instead of failing with ErrFull; one full of live entries
// still refuses it.
func TestFullTableSweepsBeforeRefusing(t *testing.T) {
	for _, multi := range []bool{false, true} {
		c := &clock{t: time.Unix(1000, 0)}
		s := newStore("t", []string{"tier"}, multi, time.Minute, 3, 0, c.now)
		id := func(i int) string {
			if multi {
				return fmt.Sprintf("call-%d", i)
			}
			return ""
		}
		for i := range 3 {
			if err := s.put(fmt.Sprintf("k%d", i), id(i), row("gold"), c.t); err != nil {
				t.Fatal(err)
			}
		}
		c.t = c.t.Add(2 * time.Minute) // all three expired, none swept
		for i := 3; i < 6; i++ {
			if err := s.put(fmt.Sprintf("k%d", i), id(i), row("gold"), c.t); err != nil {
				t.Fatalf("multi=%v: put into a table full of expired entries: %v", multi, err)
			}
		}
		if err := s.put("k6", id(6), row("gold"), c.t); !errors.Is(err, ErrFull) {
			t.Fatalf("multi=%v: put into a table full of live entries: %v, want ErrFull", multi, err)
		}
		if n, _, _ := s.stats(); n != 3 {
			t.Fatalf("multi=%v: %d entries, want 3", multi, n)
		}
	}
}

func TestStoreMany(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	s := newStore("active", []string{"tier"}, true, 0, 0, 0, c.now)
	for _, p := range []struct{ key, id, tier string }{
		{"cust-1", "call-a", "a1"},
		{"cust-1", "call-b", "b1"},
		{"cust-1", "call-a", "a2"}, // an update replaces its member
		{"cust-2", "call-c", "c1"},
		{"cust-2", "call-b", "b2"}, // call-b moves to cust-2
	} {
		if err := s.put(p.key, p.id, row(p.tier), c.t); err != nil {
			t.Fatal(err)
		}
	}
	tiers := func(key string) []any {
		var out []any
		for _, r := range s.getAll(key) {
			out = append(out, r.(map[string]any)["tier"])
		}
		return out
	}
	if diff := cmp.Diff([]any{"a2"}, tiers("cust-1")); diff != "" {
		t.Errorf("cust-1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"c1", "b2"}, tiers("cust-2")); diff != "" {
		t.Errorf("cust-2 (-want +got):\n%s", diff)
	}
	s.deleteID("call-c") // an end event carrying only the call id
	if diff := cmp.Diff([]any{"b2"}, tiers("cust-2")); diff != "" {
		t.Errorf("cust-2 after ending call-c (-want +got):\n%s", diff)
	}
	s.deleteKey("cust-1")
	if got := s.getAll("cust-1"); got != nil {
		t.Errorf("cust-1 after delete: %v", got)
	}
	if n, _, _ := s.stats(); n != 1 {
		t.Errorf("entries %d, want 1", n)
	}
}

func TestStoreMaxBytes(t *testing.T) {
	s := newStore("t", []string{"v"}, false, 0, 0, 2*entryOverhead+20, time.Now)
	if err := s.put("k1", "", row("0123456789"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.put("k2", "", row("0123456789"), time.Now()); !errors.Is(err, ErrFull) {
		t.Fatalf("second put: %v, want ErrFull", err)
	}
	if n, _, _ := s.stats(); n != 1 {
		t.Fatalf("entries %d after a refused put, want 1", n)
	}
}

// TestApplyDebeziumDelete: a Debezium delete carries the row in before, not after; a table
// keyed by after.id still removes it.
func TestApplyDebeziumDelete(t *testing.T) {
	set, err := New([]Spec{customersSpec(t, "customers-topic", 0)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ev transform.Evaluator
	row := map[string]any{"id": int64(5), "tier": "gold", "balance": 1.0}
	for _, tc := range []struct {
		value      map[string]any
		wantAction string
		wantRow    bool
	}{
		{map[string]any{"op": "c", "before": nil, "after": row}, actionPut, true},
		{map[string]any{"op": "d", "before": row, "after": nil}, actionDelete, false},
	} {
		ev.Set(&transform.Record{Value: tc.value, Timestamp: time.Now()})
		action, err := set.apply(&ev, 0, time.Now())
		if err != nil || action != tc.wantAction {
			t.Fatalf("op %v: action %q, %v; want %q", tc.value["op"], action, err, tc.wantAction)
		}
		if got := set.Lookup("customers", "5") != nil; got != tc.wantRow {
			t.Fatalf("after op %v: row present %v, want %v", tc.value["op"], got, tc.wantRow)
		}
	}
}
