//go:build chaos

package chaos

// Issue 14's rate-limited multi-process scenarios: N connector processes in one group, the
// simulator enforcing the tenant's limit, a workload whose demand exceeds the limit the whole
// time (or stays under it), and a script of joins, leaves, SIGKILLs and rolling restarts. The
// analysis reads the simulator's journal (every attempt of the tenant, whatever its status,
// as the API counts them); budget_analysis_test.go holds it.
//
// Environment:
//
//	CHAOS_BUDGET=1                          run the long scenarios (otherwise skipped; only
//	                                        TestChaosBudgetRestart runs in the regular suite)
//	CHAOS_BUDGET_COORDINATION=kafka|local   the budget.coordination the configs name
//	                                        (default kafka); only kafka asserts the budget

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augment-connector/augment-connector/internal/sim"
)

// budgetSkew is how the workload spreads over partitions and topics.
type budgetSkew int

const (
	skewEven      budgetSkew = iota // every partition of the topic
	skewTwoOfSix                    // partitions 0 and 1 of 6 only
	skewHotTopics                   // a hot topic (topped up) and a quiet one (a steady 5% of the limit)
)

func (s budgetSkew) String() string {
	switch s {
	case skewTwoOfSix:
		return "2of6"
	case skewHotTopics:
		return "hot+quiet"
	}
	return "even"
}

// budgetStepKind is one event of a scenario's script.
type budgetStepKind int

const (
	stepStart   budgetStepKind = iota // start a replica (join)
	stepTerm                          // SIGTERM a replica, nothing replaces it (leave)
	stepKill                          // SIGKILL a replica
	stepRestart                       // SIGTERM a replica and start its replacement at once
	stepReplay                        // start `replay --from DLQ` (same config, same tenant)
	stepAction                        // run the scenario's Actions[Target] (budget_faults_test.go)
)

// budgetStep happens At after the scenario's start, to the live replica of index Target
// (0: the oldest still running).
type budgetStep struct {
	At     time.Duration
	Kind   budgetStepKind
	Target int
}

// budgetScenario is one run of the budget runner.
type budgetScenario struct {
	Name     string
	Limit    int           // requests per minute: the simulator's and the tenant's
	Duration time.Duration // of the script and of producing; then the backlog drains
	Skew     budgetSkew
	Steps    []budgetStep
	// Under produces at half the limit (plus the trickle of brand-new interactions) instead
	// of keeping every loaded partition's backlog topped up.
	Under bool
	// Replay is how many records are dead-lettered before the script (by a connector whose
	// config fails on them, which makes no request), for a stepReplay to write.
	Replay int

	// The fault scenarios (budget_faults_test.go):
	// Actions are what stepAction steps run (Target indexes them).
	Actions []budgetAction
	// Config changes the replicas' config options before the config is written.
	Config func(o *ConfigOptions)
	// MinutesOnly, when set, says why the per-minute shares are reported, not asserted (a
	// fault that stops writes on purpose); max60s, 429s and lost are asserted all the same.
	MinutesOnly string
	// VerifyOptions changes Env.Verify's options (one topic only).
	VerifyOptions func(r *budgetRun, o *VerifyOptions)
	// Check runs after the analysis (kafka coordination or not): it may fail the test and
	// returns what it measured, appended to the result line.
	Check func(r *budgetRun, a budgetAnalysis) string
}

// budgetAction is one fault a stepAction does: it gets the live replicas (oldest first) and
// returns them as they are after it (a killed one removed).
type budgetAction struct {
	Name string
	Do   func(r *budgetRun, live []*Proc) []*Proc
}

// budgetWarmup is skipped before the first full minute: the first replica joins its group.
const budgetWarmup = 10 * time.Second

// budgetCoordination reads CHAOS_BUDGET_COORDINATION (default kafka).
func budgetCoordination(t *testing.T) string {
	c := os.Getenv("CHAOS_BUDGET_COORDINATION")
	switch c {
	case "":
		return "kafka"
	case "kafka", "local":
		return c
	}
	t.Fatalf("CHAOS_BUDGET_COORDINATION=%q: want kafka or local", c)
	return ""
}

// requireBudgetRuns skips the long budget scenarios unless CHAOS_BUDGET=1.
func requireBudgetRuns(t *testing.T) {
	if os.Getenv("CHAOS_BUDGET") != "1" {
		t.Skip("a long rate-limited scenario (issue 14, 2-4 minutes): set CHAOS_BUDGET=1 to run it " +
			"(and CHAOS_BUDGET_COORDINATION=local for the baseline)")
	}
}

// budgetLoad is the workload of a budget scenario, made as it is produced: every produced
// record is an Event of w (so Verify can check it), keyed by its identifier.
type budgetLoad struct {
	e   *Env
	sc  budgetScenario
	w   *Workload
	rng *rand.Rand

	topics  []string           // topics[0] is the Env's; the quiet topic second
	allowed map[string][]int32 // topic -> partitions that get records
	recent  map[tp][]string    // per partition, recent bulk identifiers to update
	end     map[tp]int64       // produced end offset per partition
	topicOf map[int]string     // event index -> topic, when not the Env's
	keyPart map[string]kgo.TopicPartitioner
	nextID  int

	// trickle: brand-new interactions, one every trickleEvery, with their produce time.
	trickleEvery time.Duration
	trickleNext  time.Time
	trickle      map[string]time.Time

	mu      sync.Mutex // guards end (read by caughtUp on the test's goroutine) and samples
	samples []pendingSample
}

type tp struct {
	topic string
	part  int32
}

// pendingSample is one observation of the records produced but not committed.
type pendingSample struct {
	At      time.Time
	Pending int64
}

func newBudgetLoad(e *Env, sc budgetScenario, quiet string) *budgetLoad {
	l := &budgetLoad{
		e: e, sc: sc, w: &Workload{byID: make(map[string][]int)},
		rng:     rand.New(rand.NewPCG(uint64(sc.Limit), 14)),
		topics:  []string{e.Topic},
		allowed: map[string][]int32{e.Topic: {0, 1, 2, 3, 4, 5}},
		recent:  make(map[tp][]string), end: make(map[tp]int64), topicOf: make(map[int]string),
		keyPart: make(map[string]kgo.TopicPartitioner),
		trickle: make(map[string]time.Time),
		// A tenth of the limit: 2/s at 1,200 a minute, one every 6 s at 100.
		trickleEvery: time.Duration(float64(10*time.Minute) / float64(sc.Limit)),
	}
	switch sc.Skew {
	case skewTwoOfSix:
		l.allowed[e.Topic] = []int32{0, 1}
	case skewHotTopics:
		l.topics = append(l.topics, quiet)
		l.allowed[quiet] = []int32{0, 1, 2, 3, 4, 5}
	}
	for _, topic := range l.topics {
		l.keyPart[topic] = kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	}
	return l
}

// partition is where the producer's default partitioner (murmur2 of the key) puts key.
func (l *budgetLoad) partition(topic, key string) int32 {
	return int32(l.keyPart[topic].Partition(&kgo.Record{Key: []byte(key)}, int(l.e.Partitions)))
}

// newEvent appends an event for partition p of topic: with update (70% of the bulk), an
// update to one of the partition's 200 most recent bulk identifiers, else a brand-new
// identifier that hashes to p. Most records are updates, as in the budget bench's bursts, so
// the trickle's brand-new interactions are the exception the hold-back is for, and the ring
// is wide enough that coalescing cannot absorb the demand.
func (l *budgetLoad) newEvent(topic string, p int32, prefix string, update bool) int {
	k := tp{topic, p}
	var id string
	if rec := l.recent[k]; update && len(rec) > 0 {
		id = rec[l.rng.IntN(len(rec))]
	} else {
		for {
			l.nextID++
			id = fmt.Sprintf("call-%s%07d", prefix, l.nextID)
			if l.partition(topic, id) == p {
				break
			}
		}
		if prefix == "b" || prefix == "q" {
			l.recent[k] = append(l.recent[k], id)
			if len(l.recent[k]) > 200 {
				l.recent[k] = l.recent[k][1:]
			}
		}
	}
	tiers := []string{"bronze", "silver", "gold", "platinum"}
	l.w.byID[id] = append(l.w.byID[id], len(l.w.Events))
	l.w.Events = append(l.w.Events, Event{
		ID:      id,
		Seq:     len(l.w.byID[id]),
		Tier:    tiers[l.rng.IntN(len(tiers))],
		Balance: fmt.Sprintf("%d.%02d", l.rng.IntN(100_000), l.rng.IntN(100)),
		Pin:     fmt.Sprintf("pv%016x", l.rng.Uint64()),
	})
	i := len(l.w.Events) - 1
	if topic != l.e.Topic {
		l.topicOf[i] = topic
	}
	return i
}

// produce produces events idx (in order) and records their partitions and offsets.
func (l *budgetLoad) produce(idx []int) error {
	if len(idx) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, len(idx))
	for j, i := range idx {
		ev := &l.w.Events[i]
		topic := l.e.Topic
		if t, ok := l.topicOf[i]; ok {
			topic = t
		}
		recs[j] = &kgo.Record{Topic: topic, Key: []byte(ev.ID), Value: ev.value()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	if err := l.e.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("producing %d records: %w", len(recs), err)
	}
	for j, r := range recs {
		ev := &l.w.Events[idx[j]]
		if want := l.partition(r.Topic, ev.ID); r.Partition != want {
			return fmt.Errorf("record %q went to partition %d, the harness computed %d: the skew is wrong", ev.ID, r.Partition, want)
		}
		ev.Partition, ev.Offset = r.Partition, r.Offset
		k := tp{r.Topic, r.Partition}
		l.mu.Lock()
		l.end[k] = max(l.end[k], r.Offset+1)
		l.mu.Unlock()
	}
	return nil
}

// committed reads the group's committed offsets of every topic.
func (l *budgetLoad) committed() (map[tp]int64, error) {
	out := make(map[tp]int64)
	for _, topic := range l.topics {
		offs, err := l.e.Committed(l.e.Group, topic)
		if err != nil {
			return nil, err
		}
		for p, o := range offs {
			out[tp{topic, p}] = o
		}
	}
	return out, nil
}

// run produces until stop closes, every 250 ms: the trickle when due, and either the
// under-budget rate or, per loaded partition of the hot topic, enough to keep a backlog of a
// quarter of a minute's budget over the loaded partitions (so demand exceeds the limit the
// whole time, wherever the partitions are and however long one is stuck), plus the quiet
// topic's steady 5%. It samples what is pending each time, and keeps sampling after stop
// until drained is closed.
func (l *budgetLoad) run(stop, drained <-chan struct{}) error {
	hot := l.allowed[l.e.Topic]
	target := max(int64(l.sc.Limit/4)/int64(len(hot)), 10)
	var underDue, quietDue float64
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	producing := true
	l.trickleNext = time.Now()
	for {
		var batch []int
		now := time.Now()
		com, err := l.committed()
		if producing && err == nil {
			if !now.Before(l.trickleNext) {
				p := hot[l.rng.IntN(len(hot))]
				i := l.newEvent(l.e.Topic, p, "n", false)
				l.trickle[l.w.Events[i].ID] = now
				batch = append(batch, i)
				l.trickleNext = l.trickleNext.Add(l.trickleEvery)
			}
			if l.sc.Under {
				underDue += float64(l.sc.Limit) / 2 / 240 // per 250 ms
				for ; underDue >= 1; underDue-- {
					batch = append(batch, l.newEvent(l.e.Topic, hot[l.rng.IntN(len(hot))], "b", l.rng.IntN(10) < 7))
				}
			} else {
				for _, p := range hot {
					k := tp{l.e.Topic, p}
					for n := l.end[k] - com[k]; n < target; n++ {
						batch = append(batch, l.newEvent(l.e.Topic, p, "b", l.rng.IntN(10) < 7))
					}
				}
			}
			if len(l.topics) > 1 {
				quietDue += float64(l.sc.Limit) * 0.05 / 240
				for ; quietDue >= 1; quietDue-- {
					batch = append(batch, l.newEvent(l.topics[1], int32(l.rng.IntN(int(l.e.Partitions))), "q", l.rng.IntN(10) < 7))
				}
			}
			if err := l.produce(batch); err != nil {
				return err
			}
		}
		if err == nil {
			var pending int64
			l.mu.Lock()
			for k, end := range l.end {
				pending += end - com[k]
			}
			l.samples = append(l.samples, pendingSample{At: now, Pending: pending})
			l.mu.Unlock()
		}
		select {
		case <-drained:
			return nil
		case <-stop:
			producing = false
		case <-tick.C:
		}
	}
}

// caughtUp reports whether the group committed every produced record.
func (l *budgetLoad) caughtUp() bool {
	com, err := l.committed()
	if err != nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, end := range l.end {
		if com[k] != end {
			return false
		}
	}
	return true
}

// budgetRun is what a scenario's run leaves for the analysis.
type budgetRun struct {
	e            *Env
	sc           budgetScenario
	coordination string // as written in the config ("" when the binary has no budget section)
	load         *budgetLoad
	start        time.Time // the first replica started
	drainedAt    time.Time // the group committed everything
	disrupted    []time.Time
	maxLive      int
	// t is the scenario's test; cfg the replicas' config; marks the instants an action noted
	// (a kill, a freeze) for its Check; notes what it saw, for the result line.
	t     *testing.T
	cfg   string
	mu    sync.Mutex
	marks map[string]time.Time
	notes []string
	// verified is what Env.Verify found (one topic only).
	verified Result
	// frozen is a replica an action stopped with SIGSTOP (continued at cleanup if left so).
	frozen *Proc
}

// mark notes an instant under name.
func (r *budgetRun) mark(name string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.marks == nil {
		r.marks = make(map[string]time.Time)
	}
	r.marks[name] = at
}

// note adds a measurement to the result line.
func (r *budgetRun) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// runBudget runs a scenario: it starts the Env, the replicas and the producer, plays the
// script, waits for the backlog to drain, checks lost = 0, prints the result line and, when
// the coordination is kafka, asserts the budget properties.
func runBudget(t *testing.T, sc budgetScenario) {
	t.Helper()
	coord := budgetCoordination(t)
	e := NewEnv(t, sc.Name, EnvOptions{Sim: sim.Config{RateLimit: sc.Limit}})
	written := coord
	var quiet string
	var extra []string
	if sc.Skew == skewHotTopics {
		quiet = e.Topic + "-quiet"
		e.createTopic(quiet, e.Partitions)
		extra = []string{quiet}
	}
	const shutdown = 30 * time.Second // the chart's default: the rolling restart's old process may hold its partitions this long
	co := ConfigOptions{
		RequestsPerMinute: sc.Limit, Coordination: written, ShutdownTimeout: shutdown, ExtraTopics: extra,
	}
	if sc.Config != nil {
		sc.Config(&co)
	}
	cfg := e.WriteConfig(sc.Name, co)
	load := newBudgetLoad(e, sc, quiet)
	run := &budgetRun{e: e, sc: sc, coordination: coord, load: load, t: t, cfg: cfg}
	vip := func(ev *Event) bool { return ev.VIP }
	if sc.Replay > 0 {
		deadLetterForReplay(t, e, load, written, sc.Replay)
	}
	var replays []*Proc

	var live []*Proc
	var exits sync.WaitGroup
	termAsync := func(p *Proc) {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		exits.Add(1)
		go func() {
			defer exits.Done()
			if code := p.Wait(shutdown + 15*time.Second); code != 0 {
				t.Errorf("%s exited with %d after SIGTERM", p.Name, code)
			}
		}()
	}
	stop, drained := make(chan struct{}), make(chan struct{})
	var stopOnce, drainOnce sync.Once
	closeStop := func() { stopOnce.Do(func() { close(stop) }) }
	closeDrained := func() { drainOnce.Do(func() { close(drained) }) }
	produced := make(chan error, 1)
	// On a fatal failure mid-script: stop the producer, and let the SIGTERM waiters finish
	// (they may report) before the Env's cleanup kills what is left.
	t.Cleanup(func() {
		if run.frozen != nil {
			_ = run.frozen.cmd.Process.Signal(syscall.SIGCONT)
		}
		closeStop()
		closeDrained()
		exits.Wait()
	})
	run.start = time.Now()
	for _, st := range sc.Steps {
		if d := time.Until(run.start.Add(st.At)); d > 0 {
			time.Sleep(d)
		}
		if (st.Kind == stepTerm || st.Kind == stepKill || st.Kind == stepRestart) && st.Target >= len(live) {
			t.Fatalf("step at %s: no live replica %d (%d live)", st.At, st.Target, len(live))
		}
		switch st.Kind {
		case stepStart:
			live = append(live, e.StartConnector(cfg))
			if len(live) == 1 && st.At == 0 {
				go func() { produced <- load.run(stop, drained) }()
			}
		case stepTerm:
			termAsync(live[st.Target])
			live = append(live[:st.Target], live[st.Target+1:]...)
		case stepKill:
			live[st.Target].Kill()
			live = append(live[:st.Target], live[st.Target+1:]...)
			run.disrupted = append(run.disrupted, time.Now())
		case stepAction:
			live = sc.Actions[st.Target].Do(run, live)
		case stepReplay:
			replays = append(replays, e.StartCommand(cfg, "replay", "--config", cfg, "--from", e.DLQ))
		case stepRestart:
			old := live[st.Target]
			live = append(live[:st.Target], live[st.Target+1:]...)
			termAsync(old)
			live = append(live, e.StartConnector(cfg))
			run.disrupted = append(run.disrupted, time.Now())
		}
		run.maxLive = max(run.maxLive, len(live))
	}
	if d := time.Until(run.start.Add(sc.Duration)); d > 0 {
		time.Sleep(d)
	}
	closeStop()
	// The backlog drains at the limit, or slower (the local baseline idles).
	drainTimeout := 8 * time.Minute
	deadline := time.Now().Add(drainTimeout)
	for !load.caughtUp() {
		if time.Now().After(deadline) {
			t.Fatalf("the group did not commit every produced record within %s of the script's end", drainTimeout)
		}
		select {
		case err := <-produced:
			t.Fatalf("producing: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	for _, rp := range replays {
		if code := rp.Wait(drainTimeout); code != 0 {
			t.Errorf("replay exited with %d; log tail:\n%s", code, tail(rp.LogPath))
		}
	}
	run.drainedAt = time.Now()
	closeDrained()
	if err := <-produced; err != nil {
		t.Fatalf("producing: %v", err)
	}

	// lost = 0: Verify (every record written or dead-lettered, in order, commits never ahead
	// of writes, final state, no secrets) when there is one topic; with two, the check of
	// checkWrittenAll (every record written, every offset committed).
	var lost int
	if len(load.topics) == 1 {
		o := VerifyOptions{Timeout: time.Minute}
		if sc.Replay > 0 {
			o.DeadLetter = vip // and replayed: written
		}
		if sc.VerifyOptions != nil {
			sc.VerifyOptions(run, &o)
		}
		run.verified = e.Verify(load.w, o)
		lost = run.verified.Lost
	} else {
		lost = checkWrittenAll(e, load)
	}
	for _, p := range live {
		termAsync(p)
	}
	exits.Wait()

	a := analyzeBudgetRun(run)
	extraLine := ""
	if sc.Check != nil {
		if s := sc.Check(run, a); s != "" {
			extraLine = " " + s
		}
	}
	run.mu.Lock()
	for _, n := range run.notes {
		extraLine += " " + n
	}
	run.mu.Unlock()
	t.Logf("CHAOS %s broker=%s coordination=%s replicas=%d skew=%s limit=%d %s records=%d lost=%d%s",
		sc.Name, e.Broker.Kind, coordLabel(coord, written), run.maxLive, sc.Skew, sc.Limit, a.line(), len(load.w.Events), lost, extraLine)
	if coord != "kafka" {
		return // the baseline: lost = 0 (Verify) and the line
	}
	a.assert(t, sc)
}

func coordLabel(coord, written string) string {
	if coord == "local" && written == "" {
		return "local(no-section)"
	}
	return coord
}

// deadLetterForReplay produces n records for the replay (VIP events over the loaded
// partitions) and has a connector whose config fails on VIP records dead-letter them, with
// their values (its pipeline's _pin is privacy: true), as TestChaosReplay does: no request
// reaches the API. It returns once the group has committed them and the connector exited.
func deadLetterForReplay(t *testing.T, e *Env, l *budgetLoad, coordination string, n int) {
	t.Helper()
	hot := l.allowed[e.Topic]
	var idx []int
	for k := range n {
		i := l.newEvent(e.Topic, hot[k%len(hot)], "r", false)
		l.w.Events[i].VIP = true
		idx = append(idx, i)
	}
	if err := l.produce(idx); err != nil {
		t.Fatal(err)
	}
	broken := e.WriteConfig(e.Name+"-deadletter", ConfigOptions{
		RequestsPerMinute: l.sc.Limit, Coordination: coordination,
		TierValue: `after.vip ? int(after.tier) : after.tier`, IncludePrivateValues: true,
	})
	p := e.StartConnector(broken)
	deadline := time.Now().Add(2 * time.Minute)
	for !l.caughtUp() {
		if time.Now().After(deadline) {
			t.Fatalf("the dead-lettering connector did not commit the %d replay records within 2m", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, took := p.Term(30 * time.Second); code != 0 {
		t.Fatalf("%s exited with %d after SIGTERM (%s)", p.Name, code, took)
	}
	if got := len(e.ReadTopic(e.DLQ)); got != n {
		t.Fatalf("%d dead letters, want the %d replay records", got, n)
	}
	if st := e.Sim.Stats(); st.Total != 0 {
		t.Fatalf("dead-lettering made %d API requests, want none", st.Total)
	}
}

// checkWrittenAll is lost = 0 for a workload over several topics: every event's identifier
// was written with its _seq or a later one (the group has committed every offset: the
// caller waited for it).
func checkWrittenAll(e *Env, l *budgetLoad) int {
	maxW := make(map[string]int)
	for _, en := range e.Sim.Journal(0) {
		if en.Method != "POST" || en.Status != 200 {
			continue
		}
		for _, v := range en.Variables {
			if v.Name == "_seq" {
				var s int
				fmt.Sscan(v.Value, &s)
				maxW[en.Identifier] = max(maxW[en.Identifier], s)
			}
		}
	}
	lost := 0
	for i := range l.w.Events {
		ev := &l.w.Events[i]
		if maxW[ev.ID] < ev.Seq {
			if lost++; lost <= 5 {
				e.T.Errorf("lost: %q _seq %d (partition %d offset %d) was never written", ev.ID, ev.Seq, ev.Partition, ev.Offset)
			}
		}
	}
	return lost
}

// ---------------------------------------------------------------------------------------------
// Scenarios (issue 14's table, then a rolling restart of one replica, the real limit, replay,
// hot and quiet topics and the under-budget case). Times are from the first replica's
// start; the load runs for Duration, at least 130 s, so that two full minutes follow the
// warm-up.

// a. Load on 2 of 6 partitions, replicas joining at 30 s and 60 s, one leaving at 90 s (the
// load runs 130 s, so that two full minutes follow the 10 s warm-up).
func TestChaosBudgetSkewJoins(t *testing.T) {
	requireBudgetRuns(t)
	runBudget(t, budgetScenario{Name: "budget-skew-joins", Limit: 1200, Duration: 130 * time.Second, Skew: skewTwoOfSix,
		Steps: []budgetStep{{0, stepStart, 0}, {30 * time.Second, stepStart, 0}, {60 * time.Second, stepStart, 0}, {90 * time.Second, stepTerm, 0}}})
}

// b. The same joins and leave, load on all 6 partitions.
func TestChaosBudgetEvenJoins(t *testing.T) {
	requireBudgetRuns(t)
	runBudget(t, budgetScenario{Name: "budget-even-joins", Limit: 1200, Duration: 130 * time.Second, Skew: skewEven,
		Steps: []budgetStep{{0, stepStart, 0}, {30 * time.Second, stepStart, 0}, {60 * time.Second, stepStart, 0}, {90 * time.Second, stepTerm, 0}}})
}

// c. A second replica joins after the first has used a full minute.
func TestChaosBudgetJoinAfterMinute(t *testing.T) {
	requireBudgetRuns(t)
	runBudget(t, budgetScenario{Name: "budget-join-after-minute", Limit: 1200, Duration: 140 * time.Second, Skew: skewEven,
		Steps: []budgetStep{{0, stepStart, 0}, {70 * time.Second, stepStart, 0}}})
}

// d. 3 replicas at 600 a minute, load on 2 of 6 partitions: two joins, a SIGKILL (its pod
// restarted 5 s later) and a rolling restart of all three, in 150 s; the load runs 190 s,
// for a third full minute.
func TestChaosBudgetKillAndRollingRestart(t *testing.T) {
	requireBudgetRuns(t)
	runBudget(t, budgetScenario{Name: "budget-kill-rolling", Limit: 600, Duration: 190 * time.Second, Skew: skewTwoOfSix,
		Steps: []budgetStep{
			{0, stepStart, 0}, {20 * time.Second, stepStart, 0}, {40 * time.Second, stepStart, 0},
			{70 * time.Second, stepKill, 1}, {75 * time.Second, stepStart, 0},
			{100 * time.Second, stepRestart, 0}, {115 * time.Second, stepRestart, 0}, {130 * time.Second, stepRestart, 0},
		}})
}

// e. One replica restarted (SIGTERM, its replacement started at once, as a rolling deploy
// does) after a busy minute. The one budget scenario of the regular chaos run (about 2.5
// minutes): it needs no CHAOS_BUDGET, and skips while the binary has no budget section.
func TestChaosBudgetRestart(t *testing.T) {
	runBudget(t, budgetScenario{Name: "budget-restart", Limit: 1200, Duration: 130 * time.Second, Skew: skewEven,
		Steps: []budgetStep{{0, stepStart, 0}, {70 * time.Second, stepRestart, 0}}})
}

// g. Scenario e at the real limit of 100 a minute, with a third minute.
func TestChaosBudgetRestartRealLimit(t *testing.T) {
	requireBudgetRuns(t)
	runBudget(t, budgetScenario{Name: "budget-restart-100", Limit: 100, Duration: 190 * time.Second, Skew: skewEven,
		Steps: []budgetStep{{0, stepStart, 0}, {70 * time.Second, stepRestart, 0}}})
}

// f. `replay` beside a running connector on the same tenant: 600 dead letters (half a
// minute's budget) replayed from 40 s, while two replicas drain a backlog. With local
// coordination the replay paces itself with the tenant's whole limit.
func TestChaosBudgetReplayBeside(t *testing.T) {
	requireBudgetRuns(t)
	runBudget(t, budgetScenario{Name: "budget-replay", Limit: 1200, Duration: 130 * time.Second, Skew: skewEven, Replay: 600,
		Steps: []budgetStep{{0, stepStart, 0}, {0, stepStart, 0}, {40 * time.Second, stepReplay, 0}}})
}

// A hot topic beside a quiet one (both of the pipeline), two replicas, the second joining at 30 s.
func TestChaosBudgetHotAndQuietTopics(t *testing.T) {
	requireBudgetRuns(t)
	runBudget(t, budgetScenario{Name: "budget-hot-quiet", Limit: 1200, Duration: 130 * time.Second, Skew: skewHotTopics,
		Steps: []budgetStep{{0, stepStart, 0}, {30 * time.Second, stepStart, 0}}})
}

// Under budget: 3 replicas, load at half the limit on 6 partitions; a brand-new
// interaction's first write must follow its record within 1 s (p99).
func TestChaosBudgetUnder(t *testing.T) {
	requireBudgetRuns(t)
	runBudget(t, budgetScenario{Name: "budget-under", Limit: 1200, Duration: 70 * time.Second, Skew: skewEven, Under: true,
		Steps: []budgetStep{{0, stepStart, 0}, {0, stepStart, 0}, {0, stepStart, 0}}})
}
