package ledger

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// logBuilder appends records with consecutive offsets to a State, failing the test on a
// record the test meant to be accepted but was not (and the reverse).
type logBuilder struct {
	t      *testing.T
	st     *State
	offset int64
}

func newLog(t *testing.T) *logBuilder { return &logBuilder{t: t, st: NewState()} }

// add applies r at log time at and returns what Apply returned.
func (l *logBuilder) add(r Record, at int64) bool {
	l.t.Helper()
	ok := l.st.Apply(r, l.offset, at)
	l.offset++
	return ok
}

func takeover(member string, epoch uint64) Record {
	return Record{Kind: KindTakeover, Member: member, Epoch: epoch, Previous: epoch - 1}
}

func grant(tenant, member string, epoch uint64, ns ...uint64) Record {
	p := testParams
	r := Record{Kind: KindGrant, Tenant: tenant, Member: member, Epoch: epoch, Params: &p}
	for _, n := range ns {
		r.Slots = append(r.Slots, Slot{Epoch: epoch, N: n})
	}
	return r
}

func report(tenant, member string, use Use, slots ...Slot) Record {
	return Record{Kind: KindReport, Tenant: tenant, Member: member, Use: use, Slots: slots}
}

// horizonMs is testParams' longest hold: claim 2 s + timeout 5 s + 60 s + ε 250 ms.
const horizonMs = 2000 + 5000 + 60000 + 250

func TestHoldRule(t *testing.T) {
	const g = 10_000 // the grant's log time
	s1 := Slot{1, 1}
	tests := []struct {
		name    string
		reports []Record
		at      []int64 // report log times, one per report
		release int64   // first log time at which the slot is no longer held
	}{
		{"no report", nil, nil, g + horizonMs},
		{"started only", []Record{report("t", "a", UseStarted, s1)}, []int64{g + 100}, g + horizonMs},
		{"finished", []Record{report("t", "a", UseFinished, s1)}, []int64{g + 700}, g + 700 + 60_250},
		{"returned: no attempt, free from its report on", []Record{report("t", "a", UseReturned, s1)}, []int64{g + 30}, g + 30},
		{"uncertain", []Record{report("t", "a", UseUncertain, s1)}, []int64{g + 5000}, g + horizonMs},
		{"finished then uncertain: the first final report decides", []Record{report("t", "a", UseFinished, s1), report("t", "a", UseUncertain, s1)}, []int64{g + 500, g + 600}, g + 500 + 60_250},
		{"uncertain then finished", []Record{report("t", "a", UseUncertain, s1), report("t", "a", UseFinished, s1)}, []int64{g + 500, g + 600}, g + horizonMs},
		{"first final report wins", []Record{report("t", "a", UseFinished, s1), report("t", "a", UseFinished, s1)}, []int64{g + 500, g + 9000}, g + 500 + 60_250},
		{"returned then finished", []Record{report("t", "a", UseReturned, s1), report("t", "a", UseFinished, s1)}, []int64{g + 50, g + 900}, g + 50},
		{"late report capped at claim+timeout", []Record{report("t", "a", UseFinished, s1)}, []int64{g + 20_000}, g + horizonMs},
		{"report from another member ignored", []Record{report("t", "b", UseFinished, s1)}, []int64{g + 500}, g + horizonMs},
		{"report for another tenant ignored", []Record{report("u", "a", UseFinished, s1)}, []int64{g + 500}, g + horizonMs},
		{"report for unknown slot ignored", []Record{report("t", "a", UseFinished, Slot{1, 2})}, []int64{g + 500}, g + horizonMs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLog(t)
			l.add(takeover("seq", 1), 0)
			if !l.add(grant("t", "a", 1, 1), g) {
				t.Fatal("grant not accepted")
			}
			for i, r := range tt.reports {
				l.add(r, tt.at[i])
			}
			for _, c := range []struct {
				at   int64
				want int
			}{{g - 1, 0}, {g, 1}, {tt.release - 1, 1}, {tt.release, 0}} {
				if got := l.st.Held("t", c.at); got != c.want {
					t.Errorf("Held at grant%+d ms = %d, want %d", c.at-g, got, c.want)
				}
			}
		})
	}
}

func TestEpochs(t *testing.T) {
	type step struct {
		rec    Record
		accept bool // what Apply must return
	}
	tests := []struct {
		name      string
		steps     []step
		wantEpoch uint64
		wantSeq   string
		wantHeld  int // slots of tenant t held at log time 1000
	}{
		{
			name: "takeover then grant",
			steps: []step{
				{takeover("s1", 1), true},
				{grant("t", "a", 1, 1, 2), true},
			},
			wantEpoch: 1, wantSeq: "s1", wantHeld: 2,
		},
		{
			name: "stale sequencer's grant after a takeover is void",
			steps: []step{
				{takeover("s1", 1), true},
				{grant("t", "a", 1, 1), true},
				{takeover("s2", 2), true},
				{grant("t", "a", 1, 2), false},
				{grant("t", "b", 2, 1), true},
			},
			wantEpoch: 2, wantSeq: "s2", wantHeld: 2, // slot 1/1 (before the takeover) and 2/1
		},
		{
			name: "of two takeovers from one epoch the first wins",
			steps: []step{
				{takeover("s1", 1), true},
				{takeover("s2", 2), true},
				{takeover("s3", 2), false},
			},
			wantEpoch: 2, wantSeq: "s2",
		},
		{
			name: "a takeover from an old epoch is ignored",
			steps: []step{
				{takeover("s1", 1), true},
				{takeover("s2", 2), true},
				{takeover("s3", 3), true},
				{takeover("s4", 3), false},
				{takeover("s5", 2), false},
			},
			wantEpoch: 3, wantSeq: "s3",
		},
		{
			name: "a suffix starting after the takeover learns the epoch from a grant",
			steps: []step{
				{grant("t", "a", 4, 1), true},
				{grant("t", "a", 4, 2), true},
			},
			wantEpoch: 4, wantSeq: "", wantHeld: 2,
		},
		{
			name: "a stale grant read before the current epoch's heartbeat is voided by it",
			steps: []step{
				{grant("t", "a", 3, 7), true}, // looks current until...
				{grant("", "", 4), true},      // ...the heartbeat of epoch 4 shows 3 was stale all along
				{grant("t", "a", 3, 8), false},
			},
			wantEpoch: 4, wantHeld: 0,
		},
		{
			name: "a stale grant read before a takeover from a higher epoch is voided by it",
			steps: []step{
				{grant("t", "a", 3, 7), true},
				{takeover("s9", 6), true}, // previous 5 was current before the suffix: 3 was stale
			},
			wantEpoch: 6, wantSeq: "s9", wantHeld: 0,
		},
		{
			name: "a duplicated grant adds nothing",
			steps: []step{
				{takeover("s1", 1), true},
				{grant("t", "a", 1, 1), true},
				{grant("t", "a", 1, 1), false},
			},
			wantEpoch: 1, wantSeq: "s1", wantHeld: 1,
		},
		{
			name: "a heartbeat of the current epoch changes nothing",
			steps: []step{
				{takeover("s1", 1), true},
				{grant("", "", 1), false},
			},
			wantEpoch: 1, wantSeq: "s1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLog(t)
			for i, s := range tt.steps {
				if got := l.add(s.rec, 1000); got != s.accept {
					t.Errorf("step %d (%s): Apply = %v, want %v", i, s.rec.Kind, got, s.accept)
				}
			}
			epoch, seq := l.st.Sequencer()
			if epoch != tt.wantEpoch || seq != tt.wantSeq {
				t.Errorf("Sequencer() = %d, %q; want %d, %q", epoch, seq, tt.wantEpoch, tt.wantSeq)
			}
			if got := l.st.Held("t", 1000); got != tt.wantHeld {
				t.Errorf("Held = %d, want %d", got, tt.wantHeld)
			}
		})
	}
}

func TestReportForVoidSlotIgnored(t *testing.T) {
	l := newLog(t)
	l.add(takeover("s1", 1), 0)
	l.add(takeover("s2", 2), 0)
	if l.add(grant("t", "a", 1, 1), 10) {
		t.Fatal("stale grant accepted")
	}
	if l.add(report("t", "a", UseFinished, Slot{1, 1}), 20) {
		t.Fatal("report for a void slot accepted")
	}
	if got := l.st.Held("t", 20); got != 0 {
		t.Fatalf("Held = %d, want 0", got)
	}
}

func TestAvailableAndOffsets(t *testing.T) {
	l := newLog(t)
	l.add(takeover("s1", 1), 0)
	if got := l.st.Available("t", 0); got != 0 {
		t.Fatalf("Available before any grant = %d, want 0 (no known limit)", got)
	}
	l.add(grant("t", "a", 1, 1, 2, 3), 100)
	if got, want := l.st.Available("t", 100), testParams.Limit-3; got != want {
		t.Fatalf("Available = %d, want %d", got, want)
	}
	// A re-read of an offset already applied is ignored, whatever it says.
	if l.st.Apply(grant("t", "a", 1, 9), 1, 100) {
		t.Fatal("record at an offset already applied was accepted")
	}
	if got := l.st.Held("t", 100); got != 3 {
		t.Fatalf("Held = %d after a re-read, want 3", got)
	}
	// An invalid record is ignored, not trusted.
	if l.add(Record{Kind: KindGrant, Tenant: "t", Member: "a", Epoch: 1, Slots: []Slot{{1, 5}}}, 100) {
		t.Fatal("grant without parameters was accepted")
	}
}

func TestApplyEncodedSkipsMalformed(t *testing.T) {
	st := NewState()
	if _, err := st.ApplyEncoded([]byte("\x01{"), 0, 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("malformed record: error %v, want ErrMalformed", err)
	}
	b, err := Encode(takeover("s1", 1))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st.ApplyEncoded(b, 1, 0); !ok || err != nil {
		t.Fatalf("ApplyEncoded(takeover) = %v, %v", ok, err)
	}
	if st.Skipped() != 1 {
		t.Fatalf("Skipped = %d, want 1", st.Skipped())
	}
}

func TestPruneKeepsHeldExact(t *testing.T) {
	l := newLog(t)
	l.add(takeover("s1", 1), 0)
	l.add(grant("t", "a", 1, 1), 0)
	l.add(grant("t", "a", 1, 2), 50_000)
	// Far later the first slot is forgotten; the second is still counted where it is held.
	l.add(grant("", "", 1), 0+horizonMs+pruneSlack)
	if got := len(l.st.tenants["t"].slots); got != 1 {
		t.Fatalf("%d slots kept, want 1 (the first pruned)", got)
	}
	if got := l.st.Held("t", 50_000+horizonMs-1); got != 1 {
		t.Fatalf("Held = %d, want 1", got)
	}
}

func TestRebuildFrom(t *testing.T) {
	if got, want := RebuildFrom(100_000, testParams), int64(100_000-horizonMs); got != want {
		t.Fatalf("RebuildFrom = %d, want %d", got, want)
	}
}

// TestReportsNeverExtendAHold checks on random ledgers that no report makes a slot held at a
// time it was not held before the report: the sequencer grants from Held now, so a report
// that extended a hold afterwards could over-commit the window.
func TestReportsNeverExtendAHold(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	entries := genLog(rng, 1500)
	st := NewState()
	for off, e := range entries {
		var before []int
		if e.rec.Kind == KindReport {
			for _, d := range heldProbe {
				before = append(before, st.Held(e.rec.Tenant, e.at+d))
			}
		}
		st.Apply(e.rec, int64(off), e.at)
		for i, b := range before {
			d := heldProbe[i]
			if after := st.Held(e.rec.Tenant, e.at+d); after > b {
				t.Fatalf("offset %d: a %s report raised Held at +%d ms from %d to %d", off, e.rec.Use, d, b, after)
			}
		}
	}
}
