package ledger

import (
	"fmt"
	"math"
	"time"
)

// State is what the ledger says, folded from its records in log order: the sequencer epoch,
// and per tenant the slots held, the budget's limit and the members' standing demands. Every
// member keeps one, the sequencer included, and acts only on what its State has read back
// from the log, so all members agree on every decision the log records.
//
// State is deterministic: the same records with the same offsets and log times give the same
// State. It is idempotent for duplicates: grants and reports name slots, never counts, so a
// record appended twice (a producer retry) changes nothing the second time. Its zero value
// is not usable; create it with NewState. It is not safe for concurrent use.
type State struct {
	epoch      uint64 // the current sequencer epoch; 0: none known yet
	sequencer  string // the member whose takeover made epoch current ("" if learned otherwise)
	ledgerTime int64  // the largest log time applied: the ledger's clock
	offset     int64  // the last offset applied
	prunedAt   int64  // ledger time of the last prune
	skipped    int    // records skipped as malformed
	tenants    map[string]*tenantState
}

type tenantState struct {
	limit     int // from the latest valid grant's parameters; 0 before any
	slots     map[Slot]*slotState
	demands   map[string]pendingDemand // the latest demand of each member
	lastFresh int64                    // log time of the latest demand with fresh interactions
}

// slotState is one valid granted slot.
type slotState struct {
	member    string
	offset    int64 // the grant's offset
	granted   int64 // the grant's log time
	params    Params
	final     int64 // log time of the first finished or returned report, if hasFinal
	hasFinal  bool
	uncertain bool
	returned  bool // the first final report says the slot was returned unused: no attempt
}

// pendingDemand is a member's latest demand with where and when it was appended.
type pendingDemand struct {
	rec    Record
	offset int64
	at     int64
}

// pruneEvery is how often (in ledger time) State forgets slots and demands that can no
// longer matter; pruneSlack is how long after its release a slot is kept, so Held stays
// exact for any time from a Window before the ledger time on.
const (
	pruneEvery = int64(time.Second / time.Millisecond)
	pruneSlack = int64(Window / time.Millisecond)
)

// NewState returns an empty State: the ledger before its first record, or a member about to
// rebuild from a suffix (see RebuildFrom). Both start alike: the rules below need no
// knowledge of what came before the first record applied.
func NewState() *State {
	return &State{offset: -1, ledgerTime: math.MinInt64, tenants: make(map[string]*tenantState)}
}

// Sequencer returns the current epoch and, when a takeover read by this State made it
// current, the member that wrote it ("" otherwise: the epoch was learned from a grant while
// rebuilding, and then the member reading it is not the sequencer, since a sequencer never
// rebuilds while sequencing).
func (s *State) Sequencer() (epoch uint64, member string) { return s.epoch, s.sequencer }

// LedgerTime returns the largest log time applied (math.MinInt64 before any): the ledger's
// notion of now, which never goes back even if the broker's clock does.
func (s *State) LedgerTime() int64 { return s.ledgerTime }

// Skipped returns how many malformed records ApplyEncoded skipped.
func (s *State) Skipped() int { return s.skipped }

// ApplyEncoded decodes b and applies it. A malformed record is skipped and counted (see
// Skipped); the error says why, for a log line, and never means the State is unusable.
func (s *State) ApplyEncoded(b []byte, offset, logTime int64) (bool, error) {
	r, err := Decode(b)
	if err != nil {
		s.skipped++
		return false, fmt.Errorf("skipping ledger record at offset %d: %w", offset, err)
	}
	return s.Apply(r, offset, logTime), nil
}

// Apply folds the record read at offset, appended at logTime (Unix milliseconds), into the
// State and reports whether it changed anything that decides a grant: a valid new grant (a
// member uses a grant addressed to it only if Apply accepted it), a report that shortened
// or extended a hold, a new epoch, a demand. Records must come in log order; one at an
// offset already applied (a re-read) is ignored, as is an invalid record.
//
// Epochs. A takeover(e+1, previous e) makes e+1 current if e is current; any other
// takeover is ignored, so of two members taking over from e only the first in the log
// wins. A grant is valid only if its epoch is the current one: a stale sequencer's grants,
// appended after its successor's takeover, are void and hold nothing.
//
// A record may also carry an epoch above the current one without a takeover into it (a
// grant or heartbeat of epoch g, or a takeover whose previous is g). In a log read from its
// start that never happens, since a sequencer writes only after its own takeover. In a log
// read from a suffix (RebuildFrom) it means the takeover into g came before the suffix, so
// g was current at every offset of the suffix read so far: the State adopts g and voids
// the slots of older epochs it had accepted, which were a stale sequencer's. That is what
// the full history would have said of them, so the rebuild agrees with it as soon as one
// record of the current epoch has been read (see docs/LEDGER.md for why the sequencer's
// heartbeat makes that certain within seconds).
func (s *State) Apply(r Record, offset, logTime int64) bool {
	if offset <= s.offset || r.validate() != nil {
		return false
	}
	s.offset = offset
	if logTime > s.ledgerTime {
		s.ledgerTime = logTime
		s.maybePrune()
	}
	switch r.Kind {
	case KindHello:
		return false
	case KindDemand:
		t := s.tenant(r.Tenant)
		t.demands[r.Member] = pendingDemand{rec: r, offset: offset, at: logTime}
		if r.Fresh > 0 {
			t.lastFresh = max(t.lastFresh, logTime)
		}
		return true
	case KindTakeover:
		changed := s.adopt(r.Previous)
		if r.Epoch > s.epoch {
			s.epoch, s.sequencer = r.Epoch, r.Member
			return true
		}
		return changed
	case KindGrant:
		changed := s.adopt(r.Epoch)
		if r.Epoch != s.epoch || len(r.Slots) == 0 {
			return changed
		}
		t := s.tenant(r.Tenant)
		added := false
		for _, id := range r.Slots {
			if _, dup := t.slots[id]; dup {
				continue
			}
			t.slots[id] = &slotState{member: r.Member, offset: offset, granted: logTime, params: *r.Params}
			added = true
		}
		if added {
			t.limit = r.Params.Limit
		}
		return added || changed
	case KindReport:
		t, ok := s.tenants[r.Tenant]
		if !ok {
			return false
		}
		changed := false
		for _, id := range r.Slots {
			sl, ok := t.slots[id]
			if !ok || sl.member != r.Member {
				continue // unknown, void or pruned slot, or not the grantee's: no hold depends on it
			}
			// The first final report decides and later ones change nothing: one slot is one
			// attempt, so a second final report contradicts the first, and letting it extend a
			// hold could over-commit a window the sequencer has already granted from.
			if sl.hasFinal || sl.uncertain {
				continue
			}
			switch r.Use {
			case UseFinished, UseReturned:
				sl.final, sl.hasFinal, sl.returned, changed = logTime, true, r.Use == UseReturned, true
			case UseUncertain:
				sl.uncertain, changed = true, true
			}
		}
		return changed
	}
	return false
}

// adopt makes epoch g current if it is above the current one, voiding every slot of an
// older epoch (see Apply). It reports whether it changed anything.
func (s *State) adopt(g uint64) bool {
	if g <= s.epoch {
		return false
	}
	s.epoch, s.sequencer = g, ""
	for _, t := range s.tenants {
		for id := range t.slots {
			if id.Epoch < g {
				delete(t.slots, id)
			}
		}
	}
	return true
}

func (s *State) tenant(name string) *tenantState {
	t, ok := s.tenants[name]
	if !ok {
		t = &tenantState{
			slots:     make(map[Slot]*slotState),
			demands:   make(map[string]pendingDemand),
			lastFresh: math.MinInt64,
		}
		s.tenants[name] = t
	}
	return t
}

// release is the log time from which the slot no longer counts against the window.
//
// An attempt reaches the API after its grant was appended (the member acts only on grants
// read back) and no later than grant + claimValidity + requestTimeout (it starts at most
// claimValidity after the demand that earned the grant was published, which is before the
// grant, and reaches the API within requestTimeout of its start). A finished or returned
// report bounds it further: the answer had come back (or nothing was sent) before the
// report was appended. So the attempt arrived by end, and the API lets it go Window later;
// ε covers the broker's clock stepping between the grant and the report. Taking the
// earlier of the two bounds, never just the report, also bounds every hold by the grant's
// horizon, which is what lets a member rebuild from a suffix (RebuildFrom).
func (sl *slotState) release() int64 {
	bound := sl.granted + (sl.params.ClaimValidity + sl.params.RequestTimeout).Milliseconds()
	end := bound
	if sl.hasFinal && !sl.uncertain {
		end = min(sl.final, bound)
	}
	if sl.hasFinal && sl.returned {
		// No attempt was made with it, so the API has nothing to forget: the slot is free
		// again from its report on (or from the latest time it could have been used).
		return end
	}
	return end + (Window + sl.params.Epsilon).Milliseconds()
}

func (sl *slotState) heldAt(at int64) bool { return sl.granted <= at && at < sl.release() }

// Held returns how many of tenant's slots count against its window at log time at: granted
// at or before at and not yet released. It is exact for any at from a Window before the
// ledger time on (older slots are forgotten).
func (s *State) Held(tenant string, at int64) int {
	t, ok := s.tenants[tenant]
	if !ok {
		return 0
	}
	n := 0
	for _, sl := range t.slots {
		if sl.heldAt(at) {
			n++
		}
	}
	return n
}

// Available returns the tenant's limit (from the latest valid grant's parameters) minus
// Held at at, never below 0. A tenant never granted has no known limit, so none available:
// the sequencer's own configuration decides its first grant.
func (s *State) Available(tenant string, at int64) int {
	t, ok := s.tenants[tenant]
	if !ok {
		return 0
	}
	return max(0, t.limit-s.Held(tenant, at))
}

// maybePrune forgets, at most once a second of ledger time, the slots released more than
// pruneSlack ago and the demands of members silent as long, so a long-running State stays
// the size of a few minutes of the ledger.
func (s *State) maybePrune() {
	if s.prunedAt != 0 && s.ledgerTime-s.prunedAt < pruneEvery {
		return
	}
	s.prunedAt = s.ledgerTime
	cutoff := s.ledgerTime - pruneSlack
	for _, t := range s.tenants {
		for id, sl := range t.slots {
			if sl.release() <= cutoff {
				delete(t.slots, id)
			}
		}
		for m, d := range t.demands {
			if d.at <= cutoff {
				delete(t.demands, m)
			}
		}
	}
}

// RebuildFrom returns the log time from which a member (re)starting must read the ledger to
// know every slot held at or after ledger time at (the log time of the hello record it
// appended): at minus the longest hold, claimValidity + requestTimeout + Window + ε. p must
// bound the parameters of every grant in the ledger (the largest claimValidity,
// requestTimeout and ε any deployment writing to it uses): a slot granted earlier under p
// is released before at whatever its reports say (see slotState.release), so a State fed
// the records from the first one appended at or after this time on has the same Held as
// one fed the whole history, for every time at or after at. docs/LEDGER.md has the proof
// and its one condition on epochs.
func RebuildFrom(at int64, p Params) int64 { return at - p.horizon().Milliseconds() }
