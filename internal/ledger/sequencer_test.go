package ledger

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func demand(tenant, member string, want, fresh int, seen int64) Record {
	return Record{Kind: KindDemand, Tenant: tenant, Member: member, Want: want, Fresh: fresh, Seen: seen}
}

// granted sums the slots of grants per member.
func granted(recs []Record) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		m[r.Member] += len(r.Slots)
	}
	return m
}

// applyAll appends recs to l at log time at, as the log would.
func applyAll(l *logBuilder, recs []Record, at int64) {
	for _, r := range recs {
		l.add(r, at)
	}
}

func withLimit(limit int) Params {
	p := testParams
	p.Limit = limit
	return p
}

func TestDecide(t *testing.T) {
	const at = 100_000
	tests := []struct {
		name    string
		limit   int
		held    int      // slots granted (to "x") just before at, so held at at
		demands []Record // appended at at
		fresh   bool     // a demand with fresh interactions 5 s before at (hold-back on)
		want    map[string]int
	}{
		{
			name: "never more than available", limit: 100, held: 97,
			demands: []Record{demand("t", "a", 5, 0, -1)},
			want:    map[string]int{"a": 3},
		},
		{
			name: "the bucket binds at a small limit", limit: 10, held: 2,
			demands: []Record{demand("t", "a", 5, 0, -1)},
			want:    map[string]int{"a": 1}, // 8 available, a bucket of 1
		},
		{
			name: "nothing when the window is full", limit: 10, held: 10,
			demands: []Record{demand("t", "a", 5, 0, -1)},
			want:    map[string]int{},
		},
		{
			name: "spreading: a burst takes a tenth of the limit", limit: 100,
			demands: []Record{demand("t", "a", 50, 0, -1)},
			want:    map[string]int{"a": 10},
		},
		{
			name: "fair share among members", limit: 100,
			demands: []Record{demand("t", "a", 50, 0, -1), demand("t", "b", 50, 0, -1), demand("t", "c", 50, 0, -1)},
			want:    map[string]int{"a": 4, "b": 3, "c": 3},
		},
		{
			name: "a small demand is served in full", limit: 100,
			demands: []Record{demand("t", "a", 1, 0, -1), demand("t", "b", 50, 0, -1)},
			want:    map[string]int{"a": 1, "b": 9},
		},
		{
			name: "brand-new interactions first", limit: 100, held: 0,
			demands: []Record{demand("t", "a", 20, 0, -1), demand("t", "b", 20, 8, -1)},
			want:    map[string]int{"a": 1, "b": 8}, // 8 fresh first; updates leave the last token to brand-new interactions
		},
		{
			name: "hold-back: updates leave slots to brand-new interactions", limit: 100, held: 98, fresh: true,
			demands: []Record{demand("t", "a", 5, 0, -1)},
			want:    map[string]int{"a": 1}, // 2 available, 1 held back
		},
		{
			name: "without recent brand-new interactions nothing is held back", limit: 100, held: 98,
			demands: []Record{demand("t", "a", 5, 0, -1)},
			want:    map[string]int{"a": 2},
		},
		{
			name: "a brand-new interaction takes the held-back slot", limit: 100, held: 99, fresh: true,
			demands: []Record{demand("t", "a", 5, 1, -1)},
			want:    map[string]int{"a": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := withLimit(tt.limit)
			l := newLog(t)
			l.add(takeover("seq", 1), 0)
			q := NewSequencer("seq", 1, DefaultSequencerConfig())
			if tt.fresh {
				l.add(demand("t", "z", 1, 1, -1), at-5000)
				l.add(demand("t", "z", 0, 0, -1), at-5000)
			}
			for i := range tt.held {
				// Granted to another member by an earlier decision: held at at.
				l.add(grant("t", "x", 1, uint64(1000+i)), at-1)
			}
			if got := l.st.Held("t", at); got != tt.held {
				t.Fatalf("setup: held %d, want %d", got, tt.held)
			}
			applyAll(l, tt.demands, at)
			got := granted(q.Decide(l.st, "t", p, at))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("grants (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecideCountsUnacknowledgedGrants(t *testing.T) {
	p := withLimit(100)
	l := newLog(t)
	l.add(takeover("seq", 1), 0)
	q := NewSequencer("seq", 1, DefaultSequencerConfig())
	l.add(demand("t", "a", 3, 0, -1), 1000)
	first := q.Decide(l.st, "t", p, 1000)
	if got := granted(first)["a"]; got != 3 {
		t.Fatalf("first decision granted %d, want 3", got)
	}
	// Not read back yet: the demand is answered, nothing more is granted.
	if got := q.Decide(l.st, "t", p, 1010); len(got) != 0 {
		t.Fatalf("second decision before the grant was read back: %v", got)
	}
	// The member's refreshed demand, written before it read the grant (Seen before it),
	// is still answered by it once read back.
	l.add(demand("t", "a", 3, 0, 0), 1020)
	applyAll(l, first, 1030)
	if got := q.Decide(l.st, "t", p, 1040); len(got) != 0 {
		t.Fatalf("grant read back, stale demand: %v", got)
	}
	// A demand written after reading the grant asks for more.
	l.add(demand("t", "a", 2, 0, l.offset-1), 1050)
	if got := granted(q.Decide(l.st, "t", p, 1060))["a"]; got != 2 {
		t.Fatalf("new demand granted %d, want 2", got)
	}
}

func TestDecideWindowAcrossUnacked(t *testing.T) {
	// Grants not read back count against the window as held: never over the limit.
	p := withLimit(3)
	l := newLog(t)
	l.add(takeover("seq", 1), 0)
	q := NewSequencer("seq", 1, DefaultSequencerConfig())
	total := 0
	for i := range 10 {
		at := int64(1000 + 60_000*i/10) // the bucket refills one slot every 20 s
		l.add(demand("t", "a", 100, 0, -1), at)
		total += granted(q.Decide(l.st, "t", p, at))["a"]
	}
	if total != 3 {
		t.Fatalf("granted %d in a window with nothing read back, want the limit 3", total)
	}
}

func TestDecideSpreading(t *testing.T) {
	p := withLimit(100)
	l := newLog(t)
	l.add(takeover("seq", 1), 0)
	q := NewSequencer("seq", 1, DefaultSequencerConfig())
	steps := []struct {
		at   int64
		want int
	}{
		{0, 10},    // a full bucket: a tenth of the limit
		{300, 0},   // half a slot refilled
		{600, 1},   // one slot per 600 ms at 100 a minute
		{6600, 10}, // a quiet spell refills the bucket, no more
	}
	for _, s := range steps {
		l.add(demand("t", "a", 50, 0, l.offset), s.at)
		recs := q.Decide(l.st, "t", p, s.at)
		if got := granted(recs)["a"]; got != s.want {
			t.Fatalf("at %d ms: granted %d, want %d", s.at, got, s.want)
		}
		applyAll(l, recs, s.at)
	}
}

func TestDecideTripwire(t *testing.T) {
	p := withLimit(100)
	l := newLog(t)
	l.add(takeover("seq", 1), 0)
	q := NewSequencer("seq", 1, DefaultSequencerConfig())
	held := 0
	decide := func(at int64) int {
		l.add(demand("t", "a", 1000, 0, l.offset), at)
		recs := q.Decide(l.st, "t", p, at)
		applyAll(l, recs, at)
		n := granted(recs)["a"]
		held += n
		return n
	}
	// A burst of five 429s (the requests on the wire when another client filled the window)
	// is one event: the limit is halved once, not to 1/32.
	for at := int64(0); at < 500; at += 100 {
		q.Throttled("t", 10*time.Second, at)
	}
	if got := decide(5000); got != 0 {
		t.Fatalf("granted %d within Retry-After", got)
	}
	// After Retry-After the limit is halved: 50 in a window, never more.
	for at := int64(10_000); at < 70_000; at += 100 {
		decide(at)
	}
	if held != 50 {
		t.Fatalf("granted %d in the cool-down's first window, want 50", held)
	}
	// After the cool-down (2 min) the full limit is back.
	held = 0
	for at := int64(200_000); at < 260_000; at += 100 {
		decide(at)
	}
	if held != 100 {
		t.Fatalf("granted %d in a window after the cool-down, want the full limit 100", held)
	}
}

func TestDecideOnlyWhenSequencer(t *testing.T) {
	p := withLimit(100)
	l := newLog(t)
	l.add(takeover("seq", 1), 0)
	l.add(demand("t", "a", 5, 0, -1), 10)
	stale := NewSequencer("seq", 1, DefaultSequencerConfig())
	other := NewSequencer("other", 1, DefaultSequencerConfig())
	if got := other.Decide(l.st, "t", p, 20); got != nil {
		t.Fatalf("a member whose takeover lost granted %v", got)
	}
	l.add(takeover("next", 2), 30)
	if got := stale.Decide(l.st, "t", p, 40); got != nil {
		t.Fatalf("a sequencer taken over granted %v", got)
	}
}
