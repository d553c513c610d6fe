package ledger

import (
	"math"
	"slices"
	"time"
)

// SequencerConfig is how the sequencer shares a tenant's budget out.
type SequencerConfig struct {
	// HoldBack is how many slots updates may not take while brand-new interactions have been
	// demanded in the last FreshSpan (at most a fifth of the limit): a new call's first write
	// must not wait for the window to roll because a backlog of updates filled it.
	HoldBack int
	// FreshSpan is how far back a demand for brand-new interactions keeps the hold-back on.
	FreshSpan time.Duration
	// DemandTTL is how long a standing demand counts without being refreshed: members
	// refresh theirs every 100-200 ms while unmet, so one older than this is a member gone.
	DemandTTL time.Duration
}

// DefaultSequencerConfig mirrors internal/pacer: one slot held back, counted over 10 s of
// brand-new interactions, and a demand standing for a second.
func DefaultSequencerConfig() SequencerConfig {
	return SequencerConfig{HoldBack: 1, FreshSpan: 10 * time.Second, DemandTTL: time.Second}
}

// spreadBurst is the share of the limit the spreading bucket holds (as internal/pacer): what
// may be granted at once after a quiet spell, a tenth of the window.
const spreadBurst = 0.1

// maxHoldBack is the largest share of the limit held back from updates.
const maxHoldBack = 0.2

// throttleCooldown is how long a 429 the ledger did not cause keeps the limit reduced.
const throttleCooldown = 2 * Window

// throttleBurst is how long after one halving further 429s count as the same event.
const throttleBurst = 10 * time.Second

// Sequencer decides the grants of one sequencer epoch. Decide is a deterministic function
// of the State, the log time and what the Sequencer itself remembers between calls: the
// spreading bucket, the tripwire's penalty and the grants it wrote that the State has not
// read back yet. It does no I/O: the caller appends what Decide returns. Create it with
// NewSequencer once the State shows the member's takeover as current. It is not safe for
// concurrent use.
type Sequencer struct {
	member  string
	epoch   uint64
	cfg     SequencerConfig
	next    uint64 // the last slot number used in this epoch
	tenants map[string]*seqTenant
}

type seqTenant struct {
	tokens    float64 // spreading bucket, at tokensAt
	tokensAt  int64
	started   bool    // the bucket has been filled once
	penalty   float64 // tripwire: 1 normally, halved by each Throttled
	cooldown  int64   // log time when penalty returns to 1
	notBefore int64   // Retry-After: no grant before this log time
	halved    bool    // the penalty was halved at halvedAt
	halvedAt  int64
	unacked   []unacked
	last      string // the member granted last, where the next tie starts after
}

// unacked is a grant the sequencer wrote and its State has not read back yet.
type unacked struct {
	member  string
	slots   []Slot
	at      int64
	horizon int64
}

// NewSequencer returns the sequencer of epoch for member.
func NewSequencer(member string, epoch uint64, cfg SequencerConfig) *Sequencer {
	return &Sequencer{member: member, epoch: epoch, cfg: cfg, tenants: make(map[string]*seqTenant)}
}

func (q *Sequencer) tenant(name string) *seqTenant {
	t, ok := q.tenants[name]
	if !ok {
		t = &seqTenant{penalty: 1, notBefore: math.MinInt64}
		q.tenants[name] = t
	}
	return t
}

// Heartbeat returns a grant of no slots, which the sequencer appends whenever it has written
// nothing for a heartbeat interval: it keeps members from taking over, and lets a member
// rebuilding from a suffix learn the current epoch (see State.Apply).
func (q *Sequencer) Heartbeat(p Params) Record {
	return Record{Kind: KindGrant, Epoch: q.epoch, Params: &p}
}

// Throttled is the tripwire: the API answered 429 while the ledger showed budget left, so
// another client spends from the tenant's budget. It halves the limit the sequencer grants
// under for throttleCooldown (down to one request per window) and grants nothing before
// retryAfter has passed.
func (q *Sequencer) Throttled(tenant string, retryAfter time.Duration, at int64) {
	t := q.tenant(tenant)
	// One burst of 429s (every request on the wire when another client filled the window) is
	// one event: it halves the limit once. Halving per 429 cut it to 1/32 after five.
	if !t.halved || at-t.halvedAt >= throttleBurst.Milliseconds() {
		t.penalty = max(t.penalty/2, 0.01)
		t.halved, t.halvedAt = true, at
	}
	t.cooldown = at + throttleCooldown.Milliseconds()
	if retryAfter > 0 {
		t.notBefore = max(t.notBefore, at+retryAfter.Milliseconds())
	}
}

// limit is the limit grants are made under at at: p.Limit × the tripwire's penalty.
func (t *seqTenant) limit(p Params, at int64) int {
	if t.penalty < 1 && at >= t.cooldown {
		t.penalty = 1
	}
	return max(1, int(float64(p.Limit)*t.penalty))
}

// refill brings the bucket up to at for limit and returns its capacity.
func (t *seqTenant) refill(at int64, limit int) float64 {
	capacity := max(1, float64(limit)*spreadBurst)
	if !t.started {
		t.tokens, t.started = capacity, true
	} else if d := at - t.tokensAt; d > 0 {
		t.tokens += float64(limit) * float64(d) / float64(Window.Milliseconds())
	}
	t.tokens = min(t.tokens, capacity)
	t.tokensAt = max(t.tokensAt, at)
	return capacity
}

// want is one member's unmet demand as the sequencer sees it.
type want struct {
	member string
	rest   int // slots still wanted beyond what it was granted after its demand's Seen
	fresh  int // of which for brand-new interactions
	given  int // granted by this decision
}

// Decide returns the grants to append for tenant at log time at, under p (the tenant's
// limit and the hold parameters every grant carries), one record per member served; it
// returns nothing unless st shows this sequencer's epoch as current, so a sequencer that
// has been taken over stops granting as soon as it reads the takeover.
//
// It never grants more than is available at at: the limit minus the slots st holds and
// minus the grants this sequencer wrote that st has not read back (counted as held from
// at, which is no later than their log time). Within that:
//   - spreading: grants also spend a bucket refilled at the limit per Window holding a
//     tenth of it, so a backlog does not spend the whole window in its first second and
//     then starve its end;
//   - brand-new interactions first: demand for them is served before any update;
//   - hold-back: while brand-new interactions were demanded in the last FreshSpan, updates
//     leave HoldBack slots (and the bucket's last token) to them;
//   - fair share: updates are shared one slot at a time to the member granted least so
//     far, ties broken round-robin, so a member with a small demand is served in full
//     and the rest is split evenly.
func (q *Sequencer) Decide(st *State, tenant string, p Params, at int64) []Record {
	if epoch, member := st.Sequencer(); epoch != q.epoch || member != q.member {
		return nil
	}
	t := q.tenant(tenant)
	ts := st.tenants[tenant]
	pending := t.settle(ts, at)
	if at < t.notBefore {
		return nil
	}
	limit := t.limit(p, at)
	avail := limit - st.Held(tenant, at) - pending
	capacity := t.refill(at, limit)
	if avail <= 0 || ts == nil {
		return nil
	}
	wants := q.wants(ts, t, at)
	if len(wants) == 0 {
		return nil
	}

	n := min(avail, int(t.tokens))
	holdBack, tokenHoldBack := 0, 0
	if ts.lastFresh >= at-q.cfg.FreshSpan.Milliseconds() {
		holdBack = min(q.cfg.HoldBack, int(float64(limit)*maxHoldBack))
		if capacity >= 2 {
			tokenHoldBack = 1
		}
	}
	granted := 0
	// Brand-new interactions first, one slot a member at a time.
	for granted < n {
		i := q.pick(wants, t.last, func(w *want) bool { return w.fresh > 0 })
		if i < 0 {
			break
		}
		wants[i].fresh--
		wants[i].rest--
		wants[i].given++
		t.last = wants[i].member
		granted++
	}
	// Updates, within the hold-back.
	updates := min(avail-holdBack, int(t.tokens)-tokenHoldBack)
	for granted < updates {
		i := q.pick(wants, t.last, func(w *want) bool { return w.rest > 0 })
		if i < 0 {
			break
		}
		wants[i].rest--
		wants[i].given++
		t.last = wants[i].member
		granted++
	}
	if granted == 0 {
		return nil
	}
	t.tokens -= float64(granted)

	var out []Record
	for _, w := range wants {
		if w.given == 0 {
			continue
		}
		pp := p
		r := Record{Kind: KindGrant, Tenant: tenant, Member: w.member, Epoch: q.epoch, Params: &pp}
		for range w.given {
			q.next++
			r.Slots = append(r.Slots, Slot{Epoch: q.epoch, N: q.next})
		}
		t.unacked = append(t.unacked, unacked{member: w.member, slots: r.Slots, at: at, horizon: p.horizon().Milliseconds()})
		out = append(out, r)
	}
	return out
}

// settle forgets the unacknowledged grants the State has read back (or that are older than
// their horizon: a write that failed) and returns how many slots the rest hold.
func (t *seqTenant) settle(ts *tenantState, at int64) int {
	n := 0
	t.unacked = slices.DeleteFunc(t.unacked, func(u unacked) bool {
		if at >= u.at+u.horizon {
			return true
		}
		if ts != nil {
			if _, ok := ts.slots[u.slots[0]]; ok {
				return true
			}
		}
		n += len(u.slots)
		return false
	})
	return n
}

// wants lists the members' unmet standing demands, sorted by member.
func (q *Sequencer) wants(ts *tenantState, t *seqTenant, at int64) []want {
	var ws []want
	for m, d := range ts.demands {
		if d.at < at-q.cfg.DemandTTL.Milliseconds() {
			continue
		}
		// Grants the member had not read when it wrote the demand already answer part of it.
		out := 0
		for _, sl := range ts.slots {
			if sl.member == m && sl.offset > d.rec.Seen {
				out++
			}
		}
		for _, u := range t.unacked {
			if u.member == m {
				out += len(u.slots)
			}
		}
		if rest := d.rec.Want - out; rest > 0 {
			ws = append(ws, want{member: m, rest: rest, fresh: min(d.rec.Fresh, rest)})
		}
	}
	slices.SortFunc(ws, func(a, b want) int {
		switch {
		case a.member < b.member:
			return -1
		case a.member > b.member:
			return 1
		}
		return 0
	})
	return ws
}

// pick returns the index of the eligible want granted least in this decision, ties going
// to the first member after last (round-robin); -1 if none is eligible.
func (q *Sequencer) pick(ws []want, last string, eligible func(*want) bool) int {
	start := 0
	for i, w := range ws {
		if w.member > last {
			start = i
			break
		}
	}
	best := -1
	for k := range ws {
		i := (start + k) % len(ws)
		if !eligible(&ws[i]) {
			continue
		}
		if best < 0 || ws[i].given < ws[best].given {
			best = i
		}
	}
	return best
}
