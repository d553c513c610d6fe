//go:build chaos

package chaos

// Issue 14's rate-limited fault scenarios: the budget ledger's sequencer SIGKILLed at the
// limit, another member SIGKILLed, the sequencer frozen (SIGSTOP) for 90 s, API latency above
// the client's timeout, and the ledger topic deleted while running. Each runs through
// runBudget (budget_test.go) with the simulator's limit on and asserts max60s ≤ limit,
// 429s = 0 (every arrival at the simulator counts, a request the client gave up on too) and
// lost = 0; what each fault costs is measured and appended to the result line.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/internal/ledger"
	"github.com/augment-connector/augment-connector/internal/sim"
)

// ledgerEntry is one record of the ledger topic, as the State folded it.
type ledgerEntry struct {
	Offset int64
	Time   time.Time // log time (kfake: the producer's, on this machine)
	Rec    ledger.Record
	Valid  bool // State.Apply accepted it (a valid takeover, a valid grant, ...)
}

// readLedger reads the Env's ledger topic from its start and folds it into a State, as a
// member rebuilding from the whole log does.
func readLedger(e *Env) ([]ledgerEntry, *ledger.State) {
	st := ledger.NewState()
	var out []ledgerEntry
	for _, r := range e.ReadTopic(e.Ledger) {
		rec, err := ledger.Decode(r.Value)
		if err != nil {
			continue
		}
		ok := st.Apply(rec, r.Offset, r.Timestamp.UnixMilli())
		out = append(out, ledgerEntry{Offset: r.Offset, Time: r.Timestamp, Rec: rec, Valid: ok})
	}
	return out, st
}

// memberOf is the ledger member id a replica logged when it joined the budget ledger.
func memberOf(p *Proc) string {
	for _, l := range p.LogLines() {
		if l.Msg != "joined the budget ledger" {
			continue
		}
		var f struct {
			Member string `json:"member"`
		}
		if json.Unmarshal([]byte(l.raw), &f) == nil {
			return f.Member
		}
	}
	return ""
}

// sequencer finds the live replica that is the ledger's sequencer now: the member of the
// current epoch's takeover record, mapped to a replica by the member id it logged. It waits
// up to 10 s for one (a takeover may be under way).
func (r *budgetRun) sequencer(live []*Proc) (idx int, member string, epoch uint64) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, st := readLedger(r.e)
		epoch, member = st.Sequencer()
		for i, p := range live {
			if member != "" && memberOf(p) == member {
				return i, member, epoch
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the ledger's sequencer (epoch %d, member %q) is none of the %d live replicas", epoch, member, len(live))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// arrivals returns the tenant's requests at the simulator, sorted by arrival: every one,
// whatever its status (0 for a request the client gave up on during injected latency).
func arrivals(e *Env) []sim.Entry {
	var out []sim.Entry
	for _, en := range e.Sim.Journal(0) {
		if en.Tenant == simTenant {
			out = append(out, en)
		}
	}
	slices.SortFunc(out, func(x, y sim.Entry) int { return x.Time.Compare(y.Time) })
	return out
}

// perSecond counts arrivals in each of n seconds from from.
func perSecond(ens []sim.Entry, from time.Time, n int) string {
	c := make([]int, n)
	for _, en := range ens {
		if d := en.Time.Sub(from); d >= 0 && d < time.Duration(n)*time.Second {
			c[d/time.Second]++
		}
	}
	s := make([]string, n)
	for i, v := range c {
		s[i] = fmt.Sprint(v)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// maxGap is the longest time without an arrival between from and to.
func maxGap(ens []sim.Entry, from, to time.Time) time.Duration {
	prev, gap := from, time.Duration(0)
	for _, en := range ens {
		if en.Time.Before(from) {
			continue
		}
		if en.Time.After(to) {
			break
		}
		gap = max(gap, en.Time.Sub(prev))
		prev = en.Time
	}
	return max(gap, to.Sub(prev))
}

// disruptedShare is the share of the limit used in the full minute holding at, or "n/a".
func disruptedShare(r *budgetRun, a budgetAnalysis, at time.Time) string {
	from := r.start.Add(budgetWarmup)
	k := int(at.Sub(from) / time.Minute)
	if at.Before(from) || k >= len(a.minutes) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*a.minutes[k].share(a.limit))
}

// per10s counts the tenant's arrivals in each 10 s from the first replica's start until the
// drain ended: the shape of the run around its fault.
func per10s(r *budgetRun) string {
	n := int(r.drainedAt.Sub(r.start)/(10*time.Second)) + 1
	c := make([]int, n)
	for _, en := range arrivals(r.e) {
		if d := en.Time.Sub(r.start); d >= 0 && int(d/(10*time.Second)) < n {
			c[d/(10*time.Second)]++
		}
	}
	s := make([]string, n)
	for i, v := range c {
		s[i] = fmt.Sprint(v)
	}
	return "per10s=[" + strings.Join(s, " ") + "]"
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// ---------------------------------------------------------------------------------------------
// Actions

// killAction SIGKILLs the sequencer (seq) or, else, a live replica that is not the sequencer.
func killAction(seq bool) budgetAction {
	name := "kill-other"
	if seq {
		name = "kill-sequencer"
	}
	return budgetAction{Name: name, Do: func(r *budgetRun, live []*Proc) []*Proc {
		i, member, epoch := r.sequencer(live)
		if !seq {
			i = (i + 1) % len(live)
			member = memberOf(live[i])
		}
		p := live[i]
		p.Scrape()
		at := time.Now()
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		r.mark("kill", at)
		r.mark("member:"+member, at)
		r.disrupted = append(r.disrupted, at)
		r.note("killed=%s(member=%s,epoch=%d,sequencer=%v)", p.Name, member, epoch, seq)
		return append(live[:i:i], live[i+1:]...)
	}}
}

// checkKill measures a SIGKILL: the dip of its minute and, for the sequencer, the takeover
// (its record's log time after the kill), the first grant of the new epoch and the first
// request after that grant ("resumed", asserted within 5 s: the takeover comes after 2-3 s
// of silence); for another member, its granted slots without a final report, which stay held
// until their grant's horizon.
func checkKill(seq bool) func(r *budgetRun, a budgetAnalysis) string {
	return func(r *budgetRun, a budgetAnalysis) string {
		kill := r.marks["kill"]
		var killed string
		for k := range r.marks {
			if m, ok := strings.CutPrefix(k, "member:"); ok {
				killed = m
			}
		}
		ens := arrivals(r.e)
		entries, _ := readLedger(r.e)
		out := fmt.Sprintf("%s kill_minute=%s gap_after_kill=%s per_s_from_kill-2s=%s", per10s(r), disruptedShare(r, a, kill),
			secs(maxGap(ens, kill, kill.Add(20*time.Second))), perSecond(ens, kill.Add(-2*time.Second), 12))
		if seq {
			var takeAt, grantAt time.Time
			var newEpoch uint64
			var newSeq string
			for _, en := range entries {
				if en.Time.Before(kill.Truncate(time.Millisecond)) || !en.Valid {
					continue
				}
				if takeAt.IsZero() && en.Rec.Kind == ledger.KindTakeover {
					takeAt, newEpoch, newSeq = en.Time, en.Rec.Epoch, en.Rec.Member
				}
				if !takeAt.IsZero() && en.Rec.Kind == ledger.KindGrant && en.Rec.Epoch == newEpoch && len(en.Rec.Slots) > 0 {
					grantAt = en.Time
					break
				}
			}
			if takeAt.IsZero() || grantAt.IsZero() {
				r.t.Errorf("no takeover with a grant after the sequencer's SIGKILL (takeover at %v, epoch %d)", takeAt, newEpoch)
				return out
			}
			var resumed time.Time
			for _, en := range ens {
				if !en.Time.Before(grantAt) {
					resumed = en.Time
					break
				}
			}
			out += fmt.Sprintf(" takeover=%s(epoch=%d,by=%s) first_grant=%s resumed=%s",
				secs(takeAt.Sub(kill)), newEpoch, newSeq, secs(grantAt.Sub(kill)), secs(resumed.Sub(kill)))
			if resumed.IsZero() || resumed.Sub(kill) > 5*time.Second {
				r.t.Errorf("requests resumed %s after the sequencer's SIGKILL (first grant of epoch %d %s after), want within 5s",
					resumed.Sub(kill), newEpoch, grantAt.Sub(kill))
			}
			return out
		}
		// The killed member's slots: granted (validly) and never reported final.
		open := make(map[ledger.Slot]time.Time)
		for _, en := range entries {
			switch {
			case en.Rec.Kind == ledger.KindGrant && en.Valid && en.Rec.Member == killed && en.Rec.Params != nil:
				p := en.Rec.Params
				for _, s := range en.Rec.Slots {
					open[s] = en.Time.Add(p.ClaimValidity + p.RequestTimeout + ledger.Window + p.Epsilon)
				}
			case en.Rec.Kind == ledger.KindReport && en.Rec.Member == killed && en.Rec.Use != ledger.UseStarted:
				for _, s := range en.Rec.Slots {
					delete(open, s)
				}
			}
		}
		var last time.Time
		for _, u := range open {
			if u.After(last) {
				last = u
			}
		}
		out += fmt.Sprintf(" unreported_slots=%d", len(open))
		if len(open) > 0 {
			out += " held_until=kill+" + secs(last.Sub(kill))
		}
		return out
	}
}

// freezeAction SIGSTOPs the sequencer; thawAction SIGCONTs it.
var freezeAction = budgetAction{Name: "freeze-sequencer", Do: func(r *budgetRun, live []*Proc) []*Proc {
	i, member, epoch := r.sequencer(live)
	p := live[i]
	p.Scrape()
	at := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGSTOP)
	r.frozen = p
	r.mark("freeze", at)
	r.mark("member:"+member, at)
	r.disrupted = append(r.disrupted, at)
	r.note("frozen=%s(member=%s,epoch=%d)", p.Name, member, epoch)
	return live
}}

var thawAction = budgetAction{Name: "thaw", Do: func(r *budgetRun, live []*Proc) []*Proc {
	at := time.Now()
	_ = r.frozen.cmd.Process.Signal(syscall.SIGCONT)
	r.mark("thaw", at)
	r.disrupted = append(r.disrupted, at)
	return live
}}

// checkFreeze reports what the frozen sequencer did after it woke: grants of its old epoch
// appended after the takeover (void: nobody may use them), its slots granted before the
// freeze and reported after the wake (returned: its claims expired; finished or uncertain:
// an attempt made or answered across the freeze), and the requests its process made in the
// 2 s after the wake and in all after.
func checkFreeze(r *budgetRun, a budgetAnalysis) string {
	freeze, thaw := r.marks["freeze"], r.marks["thaw"]
	var frozen string
	for k := range r.marks {
		if m, ok := strings.CutPrefix(k, "member:"); ok {
			frozen = m
		}
	}
	entries, st := readLedger(r.e)
	var takeover time.Time
	var oldEpoch uint64
	voidGrants := 0
	grantedBefore := make(map[ledger.Slot]bool)
	late := map[ledger.Use]int{}
	for _, en := range entries {
		switch en.Rec.Kind {
		case ledger.KindTakeover:
			if en.Valid && takeover.IsZero() && !en.Time.Before(freeze.Truncate(time.Millisecond)) {
				takeover, oldEpoch = en.Time, en.Rec.Previous
			}
		case ledger.KindGrant:
			if en.Time.Before(freeze) && en.Rec.Member == frozen {
				for _, s := range en.Rec.Slots {
					grantedBefore[s] = true
				}
			}
			if !takeover.IsZero() && en.Rec.Epoch == oldEpoch && en.Time.After(takeover) {
				voidGrants++
				if en.Valid {
					r.t.Errorf("a grant of the frozen sequencer's epoch %d at offset %d, after the takeover, was accepted", oldEpoch, en.Offset)
				}
			}
		case ledger.KindReport:
			if en.Rec.Member == frozen && !en.Time.Before(thaw.Truncate(time.Millisecond)) {
				for _, s := range en.Rec.Slots {
					if grantedBefore[s] {
						late[en.Rec.Use]++
					}
				}
			}
		}
	}
	frozenProc := r.frozen
	soon, after := 0, 0
	for _, en := range arrivals(r.e) {
		if en.Time.Before(thaw) {
			continue
		}
		for _, v := range en.Variables {
			if v.Name == "_inst" && v.Value == frozenProc.Name {
				after++
				if en.Time.Before(thaw.Add(2 * time.Second)) {
					soon++
				}
			}
		}
	}
	epoch, seqNow := st.Sequencer()
	return fmt.Sprintf("%s freeze_minute=%s takeover=%s void_grants_after_wake=%d pre_freeze_slots_reported_after_wake=[returned=%d finished=%d uncertain=%d started=%d] its_requests_after_wake=%d(first_2s=%d) final_epoch=%d(%s)",
		per10s(r), disruptedShare(r, a, freeze), secs(takeover.Sub(freeze)), voidGrants,
		late[ledger.UseReturned], late[ledger.UseFinished], late[ledger.UseUncertain], late[ledger.UseStarted],
		after, soon, epoch, seqNow)
}

// latencyAction sets the simulator's injected latency (uniform in [d, d+jitter)); off clears it.
func latencyAction(d, jitter time.Duration) budgetAction {
	return budgetAction{Name: "latency", Do: func(r *budgetRun, live []*Proc) []*Proc {
		l, j := sim.Duration(d), sim.Duration(jitter)
		if _, err := r.e.Sim.PatchFaults(sim.FaultPatch{Latency: &l, LatencyJitter: &j}); err != nil {
			r.t.Fatalf("setting latency: %v", err)
		}
		if d == 0 {
			r.mark("latency-off", time.Now())
		} else {
			r.mark("latency-on", time.Now())
		}
		return live
	}}
}

// checkLatency counts the arrivals during the latency, the slots reported uncertain in the
// ledger (the test fails if there are none: nothing outlived the client's timeout), and how
// the simulator took the attempts the client gave up on: journaled with status 0 when it saw
// the client go during the delay, else applied after the delay (the connector's retry then
// repeats the write: Verify's repeats). max60s counts them all.
func checkLatency(r *budgetRun, a budgetAnalysis) string {
	on, off := r.marks["latency-on"], r.marks["latency-off"]
	in, gone := 0, 0
	for _, en := range arrivals(r.e) {
		if en.Time.Before(on) || en.Time.After(off) {
			continue
		}
		in++
		if en.Status == 0 {
			gone++
		}
	}
	entries, _ := readLedger(r.e)
	uncertain := 0
	for _, en := range entries {
		if en.Rec.Kind == ledger.KindReport && en.Rec.Use == ledger.UseUncertain {
			uncertain += len(en.Rec.Slots)
		}
	}
	if uncertain == 0 {
		r.t.Errorf("no attempt ended uncertain during the latency: the scenario tested nothing")
	}
	return fmt.Sprintf("%s latency_window=%s arrivals_in_latency=%d uncertain_slots=%d sim_saw_client_go=%d applied_then_retried=%d",
		per10s(r), secs(off.Sub(on)), in, uncertain, gone, r.verified.Repeats)
}

// deleteLedgerAction deletes the ledger topic, watches /readyz and the simulator for
// deleteWatch, re-creates the topic with the settings the connector creates it with
// (ledger.EnsureTopic), and watches for recreateWatch more: do the running members recover
// by themselves? (docs/LEDGER.md: they read nothing new until they restart.) It blocks for
// the whole time; the scenario's restart steps follow.
const (
	deleteWatch   = 25 * time.Second
	recreateWatch = 15 * time.Second
)

var deleteLedgerAction = budgetAction{Name: "delete-ledger", Do: func(r *budgetRun, live []*Proc) []*Proc {
	e := r.e
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	resp, err := e.adm.DeleteTopics(ctx, e.Ledger)
	cancel()
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		r.t.Fatalf("deleting the ledger topic: %v", err)
	}
	del := time.Now()
	r.mark("delete", del)
	r.disrupted = append(r.disrupted, del)

	notReady := make(map[string]time.Duration)
	var reason string
	watch := func(until time.Time, readyAgain map[string]time.Duration, since time.Time) {
		for time.Now().Before(until) {
			for _, p := range live {
				code, body, err := p.get("/readyz")
				if err != nil {
					continue
				}
				if readyAgain == nil {
					if _, ok := notReady[p.Name]; !ok && code == http.StatusServiceUnavailable && strings.Contains(body, "budget ledger") {
						notReady[p.Name] = time.Since(since)
						if reason == "" {
							reason = strings.TrimSpace(body)
						}
					}
				} else if _, ok := readyAgain[p.Name]; !ok && code == http.StatusOK {
					readyAgain[p.Name] = time.Since(since)
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	watch(del.Add(deleteWatch), nil, del)
	for _, p := range live {
		if d, ok := notReady[p.Name]; ok {
			r.note("readyz_unready_%s=+%s", p.Name, secs(d))
		} else {
			r.t.Errorf("%s: /readyz did not say the budget ledger is unavailable within %s of the topic's deletion", p.Name, deleteWatch)
		}
	}
	r.note("readyz_reason=%q", reason)

	ctx, cancel = context.WithTimeout(context.Background(), opTimeout)
	warnings, err := ledger.EnsureTopic(ctx, e.cl, ledger.TopicOptions{Topic: e.Ledger, AllowUnsafe: true})
	cancel()
	if err != nil {
		r.t.Fatalf("re-creating the ledger topic: %v (warnings %v)", err, warnings)
	}
	rec := time.Now()
	r.mark("recreate", rec)
	again := make(map[string]time.Duration)
	watch(rec.Add(recreateWatch), again, rec)
	r.note("ready_again_within_%s_of_recreate=%d/%d", secs(recreateWatch), len(again), len(live))
	return live
}}

// checkDeleted: after the deletion no request may arrive later than a claim handed out
// before it could be used (claimValidity 2 s + requestTimeout, plus 1 s) until the topic is
// re-created; it reports the last such arrival, whether requests came between the
// re-creation and the first restart (the running members recovering by themselves), and
// when they resumed after it.
func checkDeleted(requestTimeout time.Duration) func(r *budgetRun, a budgetAnalysis) string {
	return func(r *budgetRun, a budgetAnalysis) string {
		del, rec := r.marks["delete"], r.marks["recreate"]
		var restart time.Time
		for _, d := range r.disrupted {
			if d.After(rec) {
				restart = d
				break
			}
		}
		var lastAfterDel, firstAfterRec, firstAfterRestart time.Time
		betweenRecRestart := 0
		for _, en := range arrivals(r.e) {
			switch {
			case en.Time.After(del) && en.Time.Before(rec):
				lastAfterDel = en.Time
			case en.Time.After(rec) && (restart.IsZero() || en.Time.Before(restart)):
				betweenRecRestart++
				if firstAfterRec.IsZero() {
					firstAfterRec = en.Time
				}
			}
			if !restart.IsZero() && firstAfterRestart.IsZero() && en.Time.After(restart) {
				firstAfterRestart = en.Time
			}
		}
		bound := 2*time.Second + requestTimeout + time.Second
		out := per10s(r) + " last_request_after_delete="
		if lastAfterDel.IsZero() {
			out += "none"
		} else {
			out += "+" + secs(lastAfterDel.Sub(del))
			if lastAfterDel.Sub(del) > bound {
				r.t.Errorf("a request arrived %s after the ledger topic was deleted (and before it was re-created): writes must wait (bound %s)", lastAfterDel.Sub(del), bound)
			}
		}
		out += fmt.Sprintf(" requests_between_recreate_and_restart=%d", betweenRecRestart)
		if !firstAfterRec.IsZero() {
			out += " (first +" + secs(firstAfterRec.Sub(rec)) + ")"
		}
		if !restart.IsZero() && !firstAfterRestart.IsZero() {
			out += " resumed_after_first_restart=" + secs(firstAfterRestart.Sub(restart))
		}
		return out
	}
}

// ---------------------------------------------------------------------------------------------
// Scenarios (CHAOS_BUDGET=1): 3 replicas from the start, load on all 6 partitions, 1,200 a
// minute. Times are from the first replica's start.

// The sequencer SIGKILLed at 40 s while demand exceeds the limit; nothing replaces it.
func TestChaosBudgetKillSequencer(t *testing.T) {
	requireBudgetRuns(t)
	runBudget(t, budgetScenario{Name: "budget-kill-sequencer", Limit: 1200, Duration: 130 * time.Second, Skew: skewEven,
		Steps:   []budgetStep{{0, stepStart, 0}, {0, stepStart, 0}, {0, stepStart, 0}, {40 * time.Second, stepAction, 0}},
		Actions: []budgetAction{killAction(true)}, Check: checkKill(true)})
}

// A member that is not the sequencer SIGKILLed at 40 s: its unused grants come back when
// their holds end (docs/LEDGER.md: at most grant + claimValidity + requestTimeout + 60 s + ε).
func TestChaosBudgetKillMember(t *testing.T) {
	requireBudgetRuns(t)
	runBudget(t, budgetScenario{Name: "budget-kill-member", Limit: 1200, Duration: 130 * time.Second, Skew: skewEven,
		Steps:   []budgetStep{{0, stepStart, 0}, {0, stepStart, 0}, {0, stepStart, 0}, {40 * time.Second, stepAction, 0}},
		Actions: []budgetAction{killAction(false)}, Check: checkKill(false)})
}

// The sequencer frozen (SIGSTOP) at 30 s for 90 s, then continued: the others take over and
// keep working; the group kicks it (session timeout 6 s); when it wakes, its claims have
// expired (Claim.Start) and its grants are of a void epoch.
func TestChaosBudgetFrozenSequencer(t *testing.T) {
	requireBudgetRuns(t)
	runBudget(t, budgetScenario{Name: "budget-frozen-sequencer", Limit: 1200, Duration: 160 * time.Second, Skew: skewEven,
		Steps: []budgetStep{{0, stepStart, 0}, {0, stepStart, 0}, {0, stepStart, 0},
			{30 * time.Second, stepAction, 0}, {120 * time.Second, stepAction, 1}},
		Actions:     []budgetAction{freezeAction, thawAction},
		MinutesOnly: "a member frozen for 90 s (its partitions stuck until the group's session timeout, its slots held to their horizon)",
		Check:       checkFreeze})
}

// The simulator delays every response by 1.5-2.5 s from 30 s to 90 s, with the tenant's
// requestTimeout at 2 s: about half the attempts end uncertain at the client (the simulator
// journals them, status 0, and they count in max60s).
func TestChaosBudgetAPILatency(t *testing.T) {
	requireBudgetRuns(t)
	runBudget(t, budgetScenario{Name: "budget-api-latency", Limit: 1200, Duration: 130 * time.Second, Skew: skewEven,
		Steps: []budgetStep{{0, stepStart, 0}, {0, stepStart, 0}, {0, stepStart, 0},
			{30 * time.Second, stepAction, 0}, {90 * time.Second, stepAction, 1}},
		Actions: []budgetAction{latencyAction(1500*time.Millisecond, time.Second), latencyAction(0, 0)},
		Config:  func(o *ConfigOptions) { o.RequestTimeout = 2 * time.Second },
		// The simulator applies a request it delayed past the client's timeout (it does not
		// notice the client going before it reads the body), so the retry of that uncertain
		// attempt writes the same _seq again: allowed for writes that arrived while the
		// latency was on, counted as repeats.
		VerifyOptions: func(r *budgetRun, o *VerifyOptions) {
			on, off := r.marks["latency-on"], r.marks["latency-off"]
			o.MayRepeat = func(prev time.Time) bool { return !prev.Before(on) && !prev.After(off) }
		},
		MinutesOnly: "responses slower than the client's timeout: each uncertain attempt holds its slot to its horizon",
		Check:       checkLatency})
}

// The ledger topic deleted at 40 s: writes wait and /readyz says why; at 65 s the test
// re-creates it (ledger.EnsureTopic, the connector's settings) and watches 15 s; from 80 s
// the replicas are restarted one by one (SIGTERM, the replacement at once), every 10 s.
func TestChaosBudgetLedgerDeleted(t *testing.T) {
	requireBudgetRuns(t)
	runBudget(t, budgetScenario{Name: "budget-ledger-deleted", Limit: 1200, Duration: 160 * time.Second, Skew: skewEven,
		Steps: []budgetStep{{0, stepStart, 0}, {0, stepStart, 0}, {0, stepStart, 0},
			{40 * time.Second, stepAction, 0},
			{80 * time.Second, stepRestart, 0}, {90 * time.Second, stepRestart, 0}, {100 * time.Second, stepRestart, 0}},
		Actions:     []budgetAction{deleteLedgerAction},
		MinutesOnly: "the ledger topic deleted: writes wait on purpose until the replicas restart",
		Check:       checkDeleted(5 * time.Second)})
}

// recreateAtOnceAction deletes the ledger topic and re-creates it (ledger.EnsureTopic) 2 s
// later, while the API's window is full; the scenario's restarts follow at once.
var recreateAtOnceAction = budgetAction{Name: "recreate-ledger-at-once", Do: func(r *budgetRun, live []*Proc) []*Proc {
	e := r.e
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	resp, err := e.adm.DeleteTopics(ctx, e.Ledger)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		r.t.Fatalf("deleting the ledger topic: %v", err)
	}
	del := time.Now()
	r.mark("delete", del)
	r.disrupted = append(r.disrupted, del)
	time.Sleep(2 * time.Second)
	if warnings, err := ledger.EnsureTopic(ctx, e.cl, ledger.TopicOptions{Topic: e.Ledger, AllowUnsafe: true}); err != nil {
		r.t.Fatalf("re-creating the ledger topic: %v (warnings %v)", err, warnings)
	}
	r.mark("recreate", time.Now())
	return live
}}

// The ledger topic deleted at 70 s, when the API's window holds a full minute, re-created 2 s
// later and the three replicas restarted at once (72, 74 and 76 s), as an operator might
// repair it. The re-created topic has no record of the requests the API still counts, so the
// members rebuilding from it see an empty window: docs/LEDGER.md's rebuild assumes the log
// covers the horizon before the member's hello, and nothing checks that it does. It FAILS
// "never over" (run on kfake 2026-12-04: max60s=1205, 5 self-caused 429s, then ~110 s at
// 0.6 requests a second under the tripwire's penalty) until internal/ledger holds back for a
// horizon when its log starts after the rebuild point (a bug reported with issue 14; it
// cannot be fixed in internal/chaos, so the failing assertion stays).
func TestChaosBudgetLedgerRecreatedAtOnce(t *testing.T) {
	requireBudgetRuns(t)
	runBudget(t, budgetScenario{Name: "budget-ledger-recreated", Limit: 1200, Duration: 130 * time.Second, Skew: skewEven,
		Steps: []budgetStep{{0, stepStart, 0}, {0, stepStart, 0}, {0, stepStart, 0},
			{70 * time.Second, stepAction, 0},
			{72 * time.Second, stepRestart, 0}, {74 * time.Second, stepRestart, 0}, {76 * time.Second, stepRestart, 0}},
		Actions:     []budgetAction{recreateAtOnceAction},
		MinutesOnly: "the ledger topic deleted and re-created",
		Check:       checkDeleted(5 * time.Second)})
}
