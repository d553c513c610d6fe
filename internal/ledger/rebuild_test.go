package ledger

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// entry is one record of a log with its log append time; its offset is its index.
type entry struct {
	rec Record
	at  int64
}

// heldProbe is how far after a record's log time compareRebuild compares Held: now, within
// the window and beyond the longest hold.
var heldProbe = []int64{0, 1, 1000, 30_000, 60_000, horizonMs - 1, horizonMs + 1}

// compareRebuild feeds entries to a State from offset 0 and to a State from the first
// entry appended at or after RebuildFrom(T), and checks that from the first entry at or
// after T on they agree on the epoch and on Held for every tenant at every probe time.
func compareRebuild(t *testing.T, entries []entry, T int64, tenants []string) {
	t.Helper()
	from := RebuildFrom(T, testParams)
	full, rebuilt := NewState(), NewState()
	started := false
	for off, e := range entries {
		full.Apply(e.rec, int64(off), e.at)
		if !started && e.at >= from {
			started = true
		}
		if !started {
			continue
		}
		rebuilt.Apply(e.rec, int64(off), e.at)
		if e.at < T {
			continue
		}
		if fe, _ := full.Sequencer(); true {
			if re, _ := rebuilt.Sequencer(); re != fe {
				t.Fatalf("offset %d (log time %d, T %d): rebuilt epoch %d, full history %d", off, e.at, T, re, fe)
			}
		}
		for _, tn := range tenants {
			for _, d := range heldProbe {
				if f, r := full.Held(tn, e.at+d), rebuilt.Held(tn, e.at+d); f != r {
					t.Fatalf("offset %d (log time %d, T %d): Held(%s, +%d ms): rebuilt %d, full history %d",
						off, e.at, T, tn, d, r, f)
				}
			}
		}
	}
}

// compareDuplicate checks that appending entries[dup] a second time right after it (a
// producer retry) changes no Held and no epoch at any point.
func compareDuplicate(t *testing.T, entries []entry, dup int, tenants []string) {
	t.Helper()
	plain, doubled := NewState(), NewState()
	off := int64(0)
	for i, e := range entries {
		plain.Apply(e.rec, int64(i), e.at)
		doubled.Apply(e.rec, off, e.at)
		off++
		if i == dup {
			doubled.Apply(e.rec, off, e.at)
			off++
		}
		pe, _ := plain.Sequencer()
		de, _ := doubled.Sequencer()
		if pe != de {
			t.Fatalf("offset %d: epoch %d with the duplicate, %d without", i, de, pe)
		}
		for _, tn := range tenants {
			for _, d := range heldProbe {
				if p, q := plain.Held(tn, e.at+d), doubled.Held(tn, e.at+d); p != q {
					t.Fatalf("offset %d after duplicating %d (%s): Held(%s, +%d) %d with the duplicate, %d without",
						i, dup, entries[dup].rec.Kind, tn, d, q, p)
				}
			}
		}
	}
}

// genLog writes a random ledger as members following the protocol would, with its
// faults: reports that never come, uncertain and returned slots, reports naming unknown
// slots, takeovers (some competing, some from a member with a stale view) and a stale
// sequencer still granting in its old epoch after being taken over. The current sequencer
// writes a heartbeat whenever it has been silent for a second, as the protocol asks (it is
// what lets a rebuild learn the epoch). Log times never go back.
func genLog(rng *rand.Rand, n int) []entry {
	tenants := []string{"t", "u"}
	members := []string{"a", "b", "c"}
	p := testParams
	var out []entry
	now := int64(0)
	epoch := uint64(1)
	var next uint64
	var staleEpoch uint64 // a taken-over sequencer's epoch, still granting for a while
	staleFrom, staleUntil := int64(0), int64(0)
	lastSeq := int64(0)
	type g struct {
		tenant, member string
		slot           Slot
	}
	var granted []g
	add := func(r Record) { out = append(out, entry{r, now}) }
	add(Record{Kind: KindTakeover, Member: "s1", Epoch: 1})
	for len(out) < n {
		now += int64(rng.IntN(500))
		if now-lastSeq > 1000 {
			add(Record{Kind: KindGrant, Epoch: epoch, Params: &p})
			lastSeq = now
		}
		tn, m := tenants[rng.IntN(len(tenants))], members[rng.IntN(len(members))]
		if now >= staleFrom && now < staleUntil { // the stale sequencer still granting
			r := Record{Kind: KindGrant, Tenant: tn, Member: m, Epoch: staleEpoch, Params: &p}
			r.Slots = []Slot{{staleEpoch, uint64(5000 + rng.IntN(100))}}
			add(r)
		}
		switch x := rng.IntN(100); {
		case x < 35: // a grant of the current epoch
			r := Record{Kind: KindGrant, Tenant: tn, Member: m, Epoch: epoch, Params: &p}
			for range 1 + rng.IntN(3) {
				next++
				s := Slot{epoch, next}
				r.Slots = append(r.Slots, s)
				granted = append(granted, g{tn, m, s})
			}
			add(r)
			lastSeq = now
		case x < 75: // a report for a slot granted (or one never granted)
			if len(granted) == 0 {
				continue
			}
			back := 20
			if rng.IntN(10) == 0 {
				back = 300 // a report appended long after its grant
			}
			k := granted[len(granted)-1-rng.IntN(min(len(granted), back))]
			if rng.IntN(20) == 0 {
				k.slot.N += 1000
			}
			use := []Use{UseStarted, UseFinished, UseFinished, UseFinished, UseUncertain, UseReturned}[rng.IntN(6)]
			add(Record{Kind: KindReport, Tenant: k.tenant, Member: k.member, Use: use, Slots: []Slot{k.slot}})
		case x < 85:
			add(Record{Kind: KindDemand, Tenant: tn, Member: m, Want: rng.IntN(4), Seen: int64(len(out) - 1)})
		case x < 87: // a takeover, sometimes contested by a second member
			add(Record{Kind: KindTakeover, Member: m, Epoch: epoch + 1, Previous: epoch})
			if rng.IntN(2) == 0 {
				add(Record{Kind: KindTakeover, Member: "z", Epoch: epoch + 1, Previous: epoch})
			}
			// The old sequencer was frozen (SIGSTOP): it writes a burst of grants in its old
			// epoch when it wakes, up to 90 s later, before reading the takeover.
			staleEpoch = epoch
			staleFrom = now + int64(rng.IntN(90_000))
			staleUntil = staleFrom + 500 + int64(rng.IntN(2500))
			epoch++
			next = 0
			lastSeq = now
		case x < 88: // a member with a stale view takes over from an old epoch: ignored
			if epoch > 1 {
				prev := uint64(rng.IntN(int(epoch)-1)) + 1
				add(Record{Kind: KindTakeover, Member: m, Epoch: prev + 1, Previous: prev})
			}
		case x < 92:
			add(Record{Kind: KindHello, Member: m})
		}
	}
	return out
}

// FuzzRebuild checks on random ledgers that rebuilding from the suffix RebuildFrom gives,
// from any ledger time on, exactly the held slots and epoch of the full history, and that
// duplicating any record changes nothing.
func FuzzRebuild(f *testing.F) {
	for _, seed := range []uint64{1, 2, 42, 1234} {
		var b [24]byte
		binary.LittleEndian.PutUint64(b[:], seed)
		binary.LittleEndian.PutUint64(b[8:], seed*7919)
		binary.LittleEndian.PutUint64(b[16:], seed*104729)
		f.Add(b[:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s [24]byte
		copy(s[:], b)
		rng := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(s[:]), 0))
		entries := genLog(rng, 700)
		tenants := []string{"t", "u"}
		// T: the log time of any record at least a horizon into the log.
		pick := binary.LittleEndian.Uint64(s[8:])
		i := len(entries)/2 + int(pick%uint64(len(entries)/2))
		compareRebuild(t, entries, entries[i].at, tenants)
		dup := int(binary.LittleEndian.Uint64(s[16:]) % uint64(len(entries)))
		compareDuplicate(t, entries, dup, tenants)
	})
}

// TestRebuildAtBoundaries checks the rebuild where it can go wrong: with the suffix starting
// just before a stale sequencer's grant (the rebuild must learn that its epoch is over) and
// just after a grant whose report came late (the hold must not outlast the grant's
// horizon), and at points spread over the ledger; and duplicates of records spread over it.
func TestRebuildAtBoundaries(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	entries := genLog(rng, 1000)
	if entries[len(entries)-1].at < 2*horizonMs {
		t.Fatalf("generated ledger spans %d ms, too short to test a rebuild", entries[len(entries)-1].at)
	}
	full := NewState()
	var stale, late []int64 // values of T
	reported := map[Slot]int64{}
	for off, e := range entries {
		r := e.rec
		if r.Kind == KindGrant && len(r.Slots) > 0 {
			if epoch, _ := full.Sequencer(); r.Epoch < epoch && e.at > horizonMs {
				stale = append(stale, e.at-1+horizonMs)
			}
			for _, sl := range r.Slots {
				reported[sl] = e.at
			}
		}
		if r.Kind == KindReport && r.Use == UseFinished {
			if g, ok := reported[r.Slots[0]]; ok && e.at-g > 7000 && g > horizonMs {
				late = append(late, g+1+horizonMs)
				delete(reported, r.Slots[0])
			}
		}
		full.Apply(r, int64(off), e.at)
	}
	if len(stale) < 2 || len(late) < 2 {
		t.Fatalf("ledger has %d stale grants and %d late reports; the test needs a few of each", len(stale), len(late))
	}
	var points []int64
	points = append(points, stale[:min(len(stale), 6)]...)
	points = append(points, late[:min(len(late), 6)]...)
	for i := len(entries) / 2; i < len(entries); i += 100 {
		points = append(points, entries[i].at)
	}
	for _, T := range points {
		compareRebuild(t, entries, T, []string{"t", "u"})
	}
	for dup := range entries {
		if dup%100 == 0 {
			compareDuplicate(t, entries, dup, []string{"t", "u"})
		}
	}
}

// TestRebuildNeedsTheWholeHorizon shows the suffix cannot be shorter: starting a second
// after RebuildFrom misses a slot still held at T. (If this passed with a shorter suffix,
// RebuildFrom would be wasting reads, and compareRebuild would not be testing anything.)
func TestRebuildNeedsTheWholeHorizon(t *testing.T) {
	entries := []entry{
		{takeover("s1", 1), 0},
		{grant("t", "a", 1, 1), 1000}, // no report: held until 1000 + horizon
		{grant("", "", 1), 1000 + horizonMs - 1},
	}
	T := int64(1000 + horizonMs - 1)
	full, late := NewState(), NewState()
	for off, e := range entries {
		full.Apply(e.rec, int64(off), e.at)
		if e.at >= RebuildFrom(T, testParams)+1000 {
			late.Apply(e.rec, int64(off), e.at)
		}
	}
	if full.Held("t", T) != 1 || late.Held("t", T) != 0 {
		t.Fatalf("Held at T: full %d (want 1), late suffix %d (want 0)", full.Held("t", T), late.Held("t", T))
	}
	compareRebuild(t, entries, T, []string{"t"})
}
