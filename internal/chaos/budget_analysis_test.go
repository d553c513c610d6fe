//go:build chaos

package chaos

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// budgetAnalysis is what the simulator's journal says of a budget run. Every attempt of the
// tenant counts, whatever its status (a 429 too), as the API counts them.
type budgetAnalysis struct {
	limit        int
	attempts     int // the tenant's requests, from the first replica's start to the drain
	inScript     int // of them before the script's end (Duration after the start)
	scriptMax    int // what the limit allowed in Duration
	n429         int
	max60        int // the most attempts in any rolling 60 s
	min60        int // the fewest in any rolling 60 s after the warm-up and before the drain ended (-1: none fits)
	minutes      []budgetMinute
	idleMax      time.Duration // the longest time without any attempt, after the warm-up
	first        []time.Duration
	interactions int
}

// budgetMinute is one full minute, aligned to the first replica's start plus the warm-up.
type budgetMinute struct {
	attempts  int
	demand    bool // records were pending at every sample of the minute
	disrupted bool // it holds a SIGKILL or a restart
}

func (m budgetMinute) share(limit int) float64 { return float64(m.attempts) / float64(limit) }

func analyzeBudgetRun(r *budgetRun) budgetAnalysis {
	a := budgetAnalysis{limit: r.sc.Limit, interactions: len(r.load.w.byID), scriptMax: int(int64(r.sc.Limit) * int64(r.sc.Duration) / int64(time.Minute))}
	scriptEnd := r.start.Add(r.sc.Duration)
	var times []time.Time
	first := make(map[string]time.Time) // identifier -> its first request
	for _, en := range r.e.Sim.Journal(0) {
		if en.Tenant != simTenant {
			continue
		}
		times = append(times, en.Time)
		if en.Time.Before(scriptEnd) {
			a.inScript++
		}
		if en.Status == 429 {
			a.n429++
		}
		if _, ok := first[en.Identifier]; !ok {
			first[en.Identifier] = en.Time
		}
	}
	slices.SortFunc(times, func(x, y time.Time) int { return x.Compare(y) })
	a.attempts = len(times)
	j := 0
	for i := range times {
		for times[i].Sub(times[j]) >= time.Minute {
			j++
		}
		a.max60 = max(a.max60, i-j+1)
	}

	// Idle: the longest gap between attempts (or from the warm-up's end) until the drain.
	from := r.start.Add(budgetWarmup)
	prev := from
	for _, at := range times {
		if at.Before(from) {
			continue
		}
		if at.After(r.drainedAt) {
			break
		}
		a.idleMax = max(a.idleMax, at.Sub(prev))
		prev = at
	}

	// The worst rolling minute: windows starting each 100 ms from the warm-up's end.
	a.min60 = -1
	lo, hi := 0, 0
	for ws := from; !ws.Add(time.Minute).After(r.drainedAt); ws = ws.Add(100 * time.Millisecond) {
		for lo < len(times) && times[lo].Before(ws) {
			lo++
		}
		for hi < len(times) && times[hi].Before(ws.Add(time.Minute)) {
			hi++
		}
		if n := hi - lo; a.min60 < 0 || n < a.min60 {
			a.min60 = n
		}
	}

	// Full minutes.
	r.load.mu.Lock()
	samples := append([]pendingSample(nil), r.load.samples...)
	r.load.mu.Unlock()
	for k := 0; ; k++ {
		ms := from.Add(time.Duration(k) * time.Minute)
		me := ms.Add(time.Minute)
		if me.After(r.drainedAt) {
			break
		}
		m := budgetMinute{demand: true}
		n := 0
		for _, s := range samples {
			if !s.At.Before(ms) && s.At.Before(me) {
				n++
				if s.Pending <= 0 {
					m.demand = false
				}
			}
		}
		m.demand = m.demand && n > 0
		for _, at := range times {
			if !at.Before(ms) && at.Before(me) {
				m.attempts++
			}
		}
		for _, d := range r.disrupted {
			if !d.Before(ms) && d.Before(me) {
				m.disrupted = true
			}
		}
		a.minutes = append(a.minutes, m)
	}

	// First writes of the trickle's brand-new interactions.
	for id, produced := range r.load.trickle {
		if at, ok := first[id]; ok {
			a.first = append(a.first, at.Sub(produced))
		}
	}
	slices.Sort(a.first)
	return a
}

// quantile is the nearest-rank q-quantile of sorted ds (0 when empty).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// line is the analysis part of the result line. minutes lists each full minute's share of
// the limit: "-" for a minute without demand throughout, "*" after one holding a SIGKILL or
// a restart.
func (a budgetAnalysis) line() string {
	var ms []string
	for _, m := range a.minutes {
		s := fmt.Sprintf("%.0f%%", 100*m.share(a.limit))
		if !m.demand {
			s = "-" + s
		}
		if m.disrupted {
			s += "*"
		}
		ms = append(ms, s)
	}
	return fmt.Sprintf("max60s=%d min60s=%d 429s=%d script=%d/%d(%.0f%%) minutes=[%s] idle_max=%s first_write_p50=%s first_write_p99=%s (n=%d) req_per_interaction=%.2f requests=%d",
		a.max60, a.min60, a.n429, a.inScript, a.scriptMax, 100*float64(a.inScript)/float64(max(a.scriptMax, 1)), strings.Join(ms, " "), a.idleMax.Round(100*time.Millisecond),
		quantile(a.first, 0.5).Round(time.Millisecond), quantile(a.first, 0.99).Round(time.Millisecond), len(a.first),
		float64(a.attempts)/float64(max(a.interactions, 1)), a.attempts)
}

// assert checks issue 14's properties 1-3 (kafka coordination only): never over, never idle
// while there is work, and new interactions first when under budget.
func (a budgetAnalysis) assert(t *testing.T, sc budgetScenario) {
	t.Helper()
	if a.max60 > a.limit {
		t.Errorf("never over: %d requests in a rolling 60 s, limit %d", a.max60, a.limit)
	}
	if a.n429 != 0 {
		t.Errorf("never over: %d self-caused 429s", a.n429)
	}
	if sc.MinutesOnly != "" {
		t.Logf("minutes reported, not asserted: %s", sc.MinutesOnly)
		return
	}
	if sc.Under {
		if p99 := quantile(a.first, 0.99); len(a.first) == 0 || p99 > time.Second {
			t.Errorf("new calls first: first-write p99 %s over %d brand-new interactions, want ≤ 1s", p99, len(a.first))
		}
		return
	}
	withDemand := 0
	for i, m := range a.minutes {
		if !m.demand {
			continue
		}
		withDemand++
		floor := 0.98
		if m.disrupted {
			floor = 0.95
		}
		if m.share(a.limit) < floor {
			t.Errorf("never idle: full minute %d (from %s) used %d of %d (%.1f%%), want ≥ %.0f%%",
				i+1, budgetWarmup+time.Duration(i)*time.Minute, m.attempts, a.limit, 100*m.share(a.limit), 100*floor)
		}
	}
	if withDemand == 0 {
		t.Errorf("no full minute had demand throughout: the scenario measured nothing")
	}
}
