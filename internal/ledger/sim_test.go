package ledger

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"testing"
)

// The simulation runs members of the ledger protocol against a fake one-partition log and a
// fake API in virtual time (milliseconds, stepped), with no goroutines: everything is a
// function of the seed. Members publish standing demand, act only on grants their State
// accepted, report every attempt, take over a silent sequencer; the fake API records when
// each attempt arrives. An independent checker then counts arrivals per rolling window.

const (
	simStep      = 10   // ms per step
	simDecide    = 20   // the sequencer decides every simDecide ms
	simHeartbeat = 500  // the sequencer's heartbeat when it has written nothing as long
	simRefresh   = 150  // standing demand is refreshed this often while unmet
	simSilence   = 2000 // a member takes over after this long without the sequencer
	simMaxOut    = 3    // slots a member wants outstanding at most
)

type simFaults struct {
	dupPct       int   // % of appends duplicated (a producer retry)
	uncertainPct int   // % of attempts with no answer (reported uncertain at the timeout)
	silentPct    int   // % of attempts never reported (a crash between answer and report)
	freezeAt     int64 // the first sequencer is frozen (SIGSTOP) from freezeAt...
	freezeFor    int64 // ...for freezeFor, then writes stale grants for staleFor before reading
	staleFor     int64
	killAt       int64 // member 2 is killed (SIGKILL) at killAt (0: never)
	joinAt       int64 // a new member joins at joinAt, rebuilding from a suffix (0: none)
}

type simAttempt struct {
	slot                  Slot
	start, arrive, answer int64 // answer < 0: no answer (uncertain)
	silent                bool
}

type simMember struct {
	id          string
	idx         int
	st          *State
	read        int   // next log index to read
	lag         int64 // read latency
	seq         *Sequencer
	lastDecide  int64
	lastWrite   int64
	work, fresh int
	inflight    []*simAttempt
	demSeq      uint64
	demandAt    map[uint64]int64
	ownDemand   int64 // publication time of the latest own demand read back
	lastDemand  int64
	lastWant    int
	epoch       uint64
	lastSeqSeen int64
	lastTry     int64
	joinAt      int64
	joined      bool
	rebuild     bool // joins by rebuilding from a suffix
	helloT      int64
	frozenUntil int64
	staleUntil  int64
	dead        bool
}

type simPending struct {
	arrive int64
	n      int
	rec    Record
}

type sim struct {
	t         *testing.T
	rng       *rand.Rand
	p         Params
	cfg       SequencerConfig
	f         simFaults
	now       int64
	log       []entry
	pending   []simPending
	appends   int
	members   []*simMember
	arrivals  []int64        // when each attempt reached the API
	intervals [][2]int64     // when each attempt may have reached it, at the latest bound
	voidSeen  int            // grants members read that their State refused (a stale sequencer's)
	byMember  map[string]int // attempts started per member
}

func newSim(t *testing.T, seed uint64, members int, f simFaults) *sim {
	s := &sim{
		t:   t,
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		p:   testParams,
		cfg: DefaultSequencerConfig(),
		f:   f,

		byMember: map[string]int{},
	}
	for i := range members {
		s.members = append(s.members, s.newMember(i, 0, false))
	}
	if f.joinAt > 0 {
		s.members = append(s.members, s.newMember(members, f.joinAt, true))
	}
	return s
}

func (s *sim) newMember(i int, joinAt int64, rebuild bool) *simMember {
	return &simMember{
		id: "m" + strconv.Itoa(i), idx: i, st: NewState(), lag: 5 + int64(s.rng.IntN(40)),
		work: math.MaxInt32, demandAt: map[uint64]int64{}, ownDemand: math.MinInt64,
		lastDemand: math.MinInt64 / 2, lastTry: math.MinInt64 / 2, joinAt: joinAt, rebuild: rebuild,
	}
}

// append sends r to the broker: it is appended 2-15 ms later, sometimes twice.
func (s *sim) append(r Record) {
	d := 2 + int64(s.rng.IntN(14))
	s.pending = append(s.pending, simPending{s.now + d, s.appends, r})
	s.appends++
	if s.rng.IntN(100) < s.f.dupPct {
		s.pending = append(s.pending, simPending{s.now + d + 1 + int64(s.rng.IntN(30)), s.appends, r})
		s.appends++
	}
}

// deliver appends what reached the broker by now, in arrival order; the log time is the
// arrival time.
func (s *sim) deliver() {
	slices.SortFunc(s.pending, func(a, b simPending) int {
		if a.arrive != b.arrive {
			return int(a.arrive - b.arrive)
		}
		return a.n - b.n
	})
	k := 0
	for k < len(s.pending) && s.pending[k].arrive <= s.now {
		s.log = append(s.log, entry{s.pending[k].rec, s.pending[k].arrive})
		k++
	}
	s.pending = s.pending[k:]
}

func (s *sim) run(until int64) {
	s.members[0].lastWrite = 0
	s.append(Record{Kind: KindTakeover, Member: s.members[0].id, Epoch: 1})
	for s.now = 0; s.now < until; s.now += simStep {
		s.deliver()
		for _, m := range s.members {
			s.step(m)
		}
	}
}

func (s *sim) step(m *simMember) {
	now := s.now
	if m.dead || now < m.joinAt {
		return
	}
	if s.f.killAt > 0 && m.idx == 2 && now >= s.f.killAt {
		m.dead = true // in-flight attempts still reach the API; nothing is reported
		return
	}
	if s.f.freezeFor > 0 && m.idx == 0 && now >= s.f.freezeAt && m.frozenUntil == 0 {
		m.frozenUntil = now + s.f.freezeFor
		m.staleUntil = m.frozenUntil + s.f.staleFor
	}
	if now < m.frozenUntil {
		return
	}
	if !m.joined {
		if !s.join(m) {
			return
		}
	}
	if now >= m.staleUntil {
		for m.read < len(s.log) && s.log[m.read].at <= now-m.lag {
			s.apply(m, m.read)
			m.read++
		}
	}
	s.finishAttempts(m)
	s.publishDemand(m)
	if m.seq != nil && now-m.lastDecide >= simDecide {
		m.lastDecide = now
		for _, r := range m.seq.Decide(m.st, "t", s.p, now) {
			s.append(r)
			m.lastWrite = now
		}
		if now-m.lastWrite >= simHeartbeat {
			s.append(m.seq.Heartbeat(s.p))
			m.lastWrite = now
		}
	}
	if m.seq == nil && m.epoch > 0 && now >= m.staleUntil &&
		now-m.lastSeqSeen > simSilence+300*int64(m.idx) && now-m.lastTry > 3000 {
		m.lastTry = now
		s.append(Record{Kind: KindTakeover, Member: m.id, Epoch: m.epoch + 1, Previous: m.epoch})
	}
}

// join starts a member: the first ones read from the start; a rebuilding one appends a
// hello, and once it reads it back (log time T) reads the log from RebuildFrom(T).
func (s *sim) join(m *simMember) bool {
	if !m.rebuild {
		m.joined = true
		return true
	}
	if m.helloT == 0 {
		m.helloT = -1
		s.append(Record{Kind: KindHello, Member: m.id})
		return false
	}
	for i := len(s.log) - 1; i >= 0; i-- {
		e := s.log[i]
		if e.rec.Kind == KindHello && e.rec.Member == m.id && e.at <= s.now-m.lag {
			m.helloT = e.at
			from := RebuildFrom(e.at, s.p)
			m.read = sort.Search(len(s.log), func(j int) bool { return s.log[j].at >= from })
			m.joined = true
			return true
		}
	}
	return false
}

func (s *sim) apply(m *simMember, off int) {
	e := s.log[off]
	r := e.rec
	ok := m.st.Apply(r, int64(off), e.at)
	epoch, who := m.st.Sequencer()
	if epoch != m.epoch {
		m.epoch, m.lastSeqSeen = epoch, e.at
	}
	if (r.Kind == KindGrant && r.Epoch == epoch) || (r.Kind == KindTakeover && ok) {
		m.lastSeqSeen = e.at
	}
	switch {
	case who == m.id && (m.seq == nil || m.seq.epoch != epoch):
		m.seq = NewSequencer(m.id, epoch, s.cfg)
		m.lastWrite = s.now
	case who != m.id && m.seq != nil:
		m.seq = nil
	}
	switch {
	case r.Kind == KindDemand && r.Member == m.id:
		m.ownDemand = m.demandAt[r.Seq]
	case r.Kind == KindGrant && r.Member == m.id && len(r.Slots) > 0:
		if !ok {
			s.voidSeen++
			return
		}
		var returned []Slot
		for _, sl := range r.Slots {
			if m.work == 0 || s.now > m.ownDemand+s.p.ClaimValidity.Milliseconds() {
				returned = append(returned, sl)
				continue
			}
			s.start(m, sl)
		}
		if len(returned) > 0 {
			s.append(Record{Kind: KindReport, Tenant: "t", Member: m.id, Use: UseReturned, Slots: returned})
		}
	}
}

// start sends an attempt: it reaches the API 10-300 ms later and is answered 10-200 ms
// after that; an uncertain one reaches the API (or not) before the request timeout.
func (s *sim) start(m *simMember, sl Slot) {
	m.work--
	if m.fresh > 0 {
		m.fresh--
	}
	a := &simAttempt{slot: sl, start: s.now}
	s.byMember[m.id]++
	timeout := s.p.RequestTimeout.Milliseconds()
	if s.rng.IntN(100) < s.f.uncertainPct {
		a.answer = -1
		if s.rng.IntN(2) == 0 {
			a.arrive = s.now + int64(s.rng.IntN(int(timeout)))
			s.arrivals = append(s.arrivals, a.arrive)
		}
		s.intervals = append(s.intervals, [2]int64{a.start, a.start + timeout})
	} else {
		a.arrive = s.now + 10 + int64(s.rng.IntN(290))
		a.answer = a.arrive + 10 + int64(s.rng.IntN(190))
		a.silent = s.rng.IntN(100) < s.f.silentPct
		s.arrivals = append(s.arrivals, a.arrive)
		s.intervals = append(s.intervals, [2]int64{a.start, a.answer})
	}
	m.inflight = append(m.inflight, a)
}

func (s *sim) finishAttempts(m *simMember) {
	timeout := s.p.RequestTimeout.Milliseconds()
	m.inflight = slices.DeleteFunc(m.inflight, func(a *simAttempt) bool {
		switch {
		case a.answer >= 0 && s.now >= a.answer:
			if !a.silent {
				s.append(Record{Kind: KindReport, Tenant: "t", Member: m.id, Use: UseFinished, Slots: []Slot{a.slot}})
			}
			return true
		case a.answer < 0 && s.now >= a.start+timeout:
			s.append(Record{Kind: KindReport, Tenant: "t", Member: m.id, Use: UseUncertain, Slots: []Slot{a.slot}})
			return true
		}
		return false
	})
}

// publishDemand refreshes the member's standing demand while it is unmet, and withdraws it
// once it is met. Brand-new interactions arrive now and then.
func (s *sim) publishDemand(m *simMember) {
	if s.rng.IntN(500) == 0 { // about one every 5 s
		m.fresh++
	}
	want := max(0, min(m.work, simMaxOut-len(m.inflight)))
	if want == 0 && m.lastWant == 0 {
		return
	}
	if want > 0 && s.now-m.lastDemand < simRefresh && want == m.lastWant {
		return
	}
	if s.now-m.lastDemand < simStep*2 {
		return
	}
	m.demSeq++
	m.demandAt[m.demSeq] = s.now
	m.lastDemand, m.lastWant = s.now, want
	s.append(Record{Kind: KindDemand, Tenant: "t", Member: m.id, Want: want, Fresh: min(m.fresh, want),
		Seen: int64(m.read - 1), Seq: m.demSeq})
}

// maxInWindow is the most arrivals in any rolling Window: (t - 60 s, t].
func maxInWindow(arrivals []int64) (most int, at int64) {
	a := slices.Clone(arrivals)
	slices.Sort(a)
	lo := 0
	for hi := range a {
		for a[lo] <= a[hi]-Window.Milliseconds() {
			lo++
		}
		if n := hi - lo + 1; n > most {
			most, at = n, a[hi]
		}
	}
	return most, at
}

// maxWorstCase is the most attempts whose possible arrival interval meets one rolling
// window: the worst the API could have counted, wherever in its interval each arrived.
func maxWorstCase(iv [][2]int64) int {
	most := 0
	w := Window.Milliseconds()
	for _, x := range iv {
		t, n := x[0], 0
		for _, y := range iv {
			if y[0] <= t && y[1] > t-w {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// perMinute counts arrivals in each full minute [k min, k+1 min) before until.
func perMinute(arrivals []int64, until int64) []int {
	out := make([]int, until/Window.Milliseconds())
	for _, a := range arrivals {
		if k := a / Window.Milliseconds(); k >= 0 && k < int64(len(out)) {
			out[k]++
		}
	}
	return out
}

func TestSimulationSteady(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		t.Run("seed"+strconv.FormatUint(seed, 10), func(t *testing.T) {
			const until = 5 * 60_000
			s := newSim(t, seed, 3, simFaults{})
			s.run(until)
			most, at := maxInWindow(s.arrivals)
			worst := maxWorstCase(s.intervals)
			mins := perMinute(s.arrivals, until)
			t.Logf("max in a rolling minute %d (at %d ms), worst case %d, limit %d; per minute %v",
				most, at, worst, s.p.Limit, mins)
			if most > s.p.Limit || worst > s.p.Limit {
				t.Fatalf("over the limit: %d arrivals (worst case %d) in a rolling minute, limit %d", most, worst, s.p.Limit)
			}
			for k, n := range mins[1:] {
				if n*100 < 98*s.p.Limit {
					t.Errorf("minute %d: %d requests, under 98%% of the limit %d", k+1, n, s.p.Limit)
				}
			}
			// Equal demand, equal shares: each member gets roughly a third.
			total := len(s.arrivals)
			for id, n := range s.byMember {
				if share := float64(n) / float64(total); share < 0.28 || share > 0.39 {
					t.Errorf("member %s started %d of %d attempts (%.0f%%), want about a third", id, n, total, 100*share)
				}
			}
			t.Logf("attempts per member: %v", s.byMember)
		})
	}
}

func TestSimulationFaults(t *testing.T) {
	for _, seed := range []uint64{3, 4} {
		t.Run("seed"+strconv.FormatUint(seed, 10), func(t *testing.T) {
			const until = 6 * 60_000
			f := simFaults{
				dupPct: 3, uncertainPct: 2, silentPct: 1,
				freezeAt: 90_000, freezeFor: 8_000, staleFor: 400,
				killAt: 200_000, joinAt: 150_000,
			}
			s := newSim(t, seed, 4, f)
			s.run(until)
			most, at := maxInWindow(s.arrivals)
			worst := maxWorstCase(s.intervals)
			mins := perMinute(s.arrivals, until)
			epoch, who := s.members[1].st.Sequencer()
			t.Logf("max in a rolling minute %d (at %d ms), worst case %d, limit %d; per minute %v; epoch %d (%s); void grants read %d; log %d records",
				most, at, worst, s.p.Limit, mins, epoch, who, s.voidSeen, len(s.log))
			if most > s.p.Limit || worst > s.p.Limit {
				t.Fatalf("over the limit: %d arrivals (worst case %d) in a rolling minute, limit %d", most, worst, s.p.Limit)
			}
			if epoch < 2 {
				t.Fatalf("epoch %d: the frozen sequencer was never taken over", epoch)
			}
			if s.voidSeen == 0 {
				t.Fatalf("the stale sequencer's grants never reached a member: the scenario tests nothing")
			}
			joiner := s.members[len(s.members)-1]
			if joiner.helloT <= 0 {
				t.Fatalf("the joining member never read its hello back")
			}
			// The joiner, rebuilt from a suffix, agrees with a member that read everything.
			for _, d := range []int64{0, 1000, 60_000} {
				if a, b := joiner.st.Held("t", s.now+d), s.members[1].st.Held("t", s.now+d); a != b {
					t.Errorf("Held at end+%d ms: rebuilt member %d, full-history member %d", d, a, b)
				}
			}
			compareRebuild(t, s.log, joiner.helloT, []string{"t"})
			// Every minute but the first, the fault-free ones must be near the limit.
			for k, n := range mins {
				t.Logf("minute %d: %d%% of the limit", k, n*100/s.p.Limit)
			}
		})
	}
}
