//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augment-connector/augment-connector/connector"
)

// ---------------------------------------------------------------------------------------------
// Workload

// Event is one change of a call's data, produced as a JSON record keyed by its identifier.
type Event struct {
	ID      string
	Seq     int // 1, 2, ... per identifier, in produce order
	Tier    string
	Balance string
	Pin     string // the privacy:true variable: "pv" and 16 hex digits, unique per event
	VIP     bool   // every event of every tenth identifier: what the replay scenario breaks on

	// Set once produced.
	Partition int32
	Offset    int64
}

// pinPattern matches every privacy value the workload makes, so logs and metrics can be
// searched for all of them at once.
var pinPattern = regexp.MustCompile(`pv[0-9a-f]{16}`)

// Workload is a seeded list of events over a set of identifiers. The expectation of a run
// (Expected) is folded from these events alone, never from what the connector did.
type Workload struct {
	Events []Event
	byID   map[string][]int // identifier -> indexes of its events, by Seq-1
}

// NewWorkload returns n events over ids identifiers, the same for a seed.
func NewWorkload(seed uint64, n, ids int) *Workload {
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	tiers := []string{"bronze", "silver", "gold", "platinum"}
	w := &Workload{Events: make([]Event, n), byID: make(map[string][]int)}
	for k := range w.Events {
		i := rng.IntN(ids)
		id := fmt.Sprintf("call-%05d", i)
		if i%4 == 0 {
			id = fmt.Sprintf("%08x%04x@pc%02d.example.com", uint32(i)*2654435761, i, i%17)
		}
		w.byID[id] = append(w.byID[id], k)
		w.Events[k] = Event{
			ID:      id,
			Seq:     len(w.byID[id]),
			Tier:    tiers[rng.IntN(len(tiers))],
			Balance: fmt.Sprintf("%d.%02d", rng.IntN(100_000), rng.IntN(100)),
			Pin:     fmt.Sprintf("pv%016x", rng.Uint64()),
			VIP:     i%10 == 0,
		}
	}
	return w
}

func (ev *Event) value() []byte {
	b, err := json.Marshal(map[string]any{"id": ev.ID, "seq": ev.Seq, "tier": ev.Tier, "balance": ev.Balance, "pin": ev.Pin, "vip": ev.VIP})
	if err != nil {
		panic(err) // strings, ints and a bool always marshal
	}
	return b
}

// vars are the variables the pipeline must make of ev (the harness's _inst aside).
func (ev *Event) vars() map[string]string {
	return map[string]string{"_tier": ev.Tier, "_balance": ev.Balance, "_seq": strconv.Itoa(ev.Seq), "_pin": ev.Pin}
}

// event returns identifier id's event with sequence number seq, or nil.
func (w *Workload) event(id string, seq int) *Event {
	idx := w.byID[id]
	if seq < 1 || seq > len(idx) {
		return nil
	}
	return &w.Events[idx[seq-1]]
}

// Expected folds the events for which keep is true (all when nil): per identifier, the last
// value of each name.
func (w *Workload) Expected(keep func(*Event) bool) map[string]map[string]string {
	out := make(map[string]map[string]string)
	for i := range w.Events {
		ev := &w.Events[i]
		if keep != nil && !keep(ev) {
			continue
		}
		if out[ev.ID] == nil {
			out[ev.ID] = make(map[string]string)
		}
		for k, v := range ev.vars() {
			out[ev.ID][k] = v
		}
	}
	return out
}

// Produce produces events [from, to) in order and waits for the acknowledgements, setting
// their Partition and Offset. It may run on any goroutine.
func (e *Env) Produce(w *Workload, from, to int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	recs := make([]*kgo.Record, 0, to-from)
	for i := from; i < to; i++ {
		ev := &w.Events[i]
		recs = append(recs, &kgo.Record{Topic: e.Topic, Key: []byte(ev.ID), Value: ev.value()})
	}
	if err := e.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("producing events %d..%d: %w", from, to, err)
	}
	for i, r := range recs {
		w.Events[from+i].Partition, w.Events[from+i].Offset = r.Partition, r.Offset
	}
	return nil
}

// ProduceOver produces every event in batches spread evenly over d, as a live stream, and
// sends the outcome on the returned channel. The events must not be read until it has.
func (e *Env) ProduceOver(w *Workload, d time.Duration) <-chan error {
	done := make(chan error, 1)
	const batch = 250
	n := len(w.Events)
	steps := max(1, (n+batch-1)/batch)
	every := d / time.Duration(steps)
	go func() {
		start := time.Now()
		for k := range steps {
			if wait := time.Until(start.Add(time.Duration(k) * every)); wait > 0 {
				time.Sleep(wait)
			}
			if err := e.Produce(w, k*batch, min(n, (k+1)*batch)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

// ---------------------------------------------------------------------------------------------
// Verification

// partitionLosses reads from each process's log when it released partitions without
// committing: they were lost (its session expired), so they are redelivered from the committed
// offsets. The log's timestamps have millisecond precision; each is moved to the end of its
// millisecond, so a write that reached the simulator before the release returned counts as
// before it.
func partitionLosses(procs []*Proc) map[string][]time.Time {
	out := make(map[string][]time.Time)
	for _, p := range procs {
		b, err := os.ReadFile(p.LogPath)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, `"msg":"partitions released"`) {
				continue
			}
			var l struct {
				TS        string `json:"ts"`
				Committed bool   `json:"committed"`
			}
			if json.Unmarshal([]byte(line), &l) != nil || l.Committed {
				continue
			}
			at, err := time.Parse("2006-01-02T15:04:05.000Z0700", l.TS)
			if err != nil {
				p.t.Errorf("%s: unreadable log time %q: %v", p.Name, l.TS, err)
				continue
			}
			out[p.Name] = append(out[p.Name], at.Add(time.Millisecond))
		}
	}
	return out
}

// countBefore counts the times in ts before t.
func countBefore(ts []time.Time, t time.Time) int {
	n := 0
	for _, x := range ts {
		if x.Before(t) {
			n++
		}
	}
	return n
}

// VerifyOptions say what a scenario expects beyond "everything written once, in order".
type VerifyOptions struct {
	// DeadLetter is true for the events that must be in the dead-letter topic (nil: none).
	DeadLetter func(*Event) bool
	// Unwritten is true for the events that must never have been written (dead-lettered and
	// not replayed); nil: none.
	Unwritten func(*Event) bool
	// Timeout bounds the wait for the group to commit every end offset; default 2m.
	Timeout time.Duration
	// MayRepeat, when set, says whether a write that arrived at prev may have been applied
	// after its client gave up on it (an API slower than the client's timeout): the same
	// lifetime's next write of that identifier may then repeat its _seq (the retry of an
	// uncertain attempt: at-least-once, same values), never go below it. Counted in
	// Result.Repeats. nil: a lifetime's writes of an identifier strictly increase.
	MayRepeat func(prev time.Time) bool
}

// Result is what Verify found, for the scenario's result line.
type Result struct {
	Events       int
	Writes       int // successful POSTs
	Duplicates   int // successful POSTs carrying a _seq its identifier already had written
	Repeats      int // of them, repeats within one lifetime that MayRepeat allowed
	Lost         int // events never written (Unwritten ones aside)
	DeadLettered int
	Elapsed      time.Duration // since the Env was made
}

// Verify waits until the group has committed the end of the input topic, then checks:
//
//  1. Final state: every identifier's variables at the simulator equal the last value the
//     workload produced for each name (the _inst marker aside).
//  2. Committed offsets equal end offsets (the wait), and lost = 0: every event's identifier
//     was written with its _seq or a later one.
//  3. Order. Every write carries exactly the values of the event its _seq names. Within one
//     process lifetime (the _inst each request carries), an identifier's writes carry strictly
//     increasing _seq: partition order (with VerifyOptions.MayRepeat, a write may repeat the
//     previous _seq, the retry of an attempt the API applied after the client gave up). Across lifetimes a write may go back (a duplicate,
//     at-least-once) only to an event that was not committed when the write happened, by the
//     last commit observation taken before it (see commitWatch). A process whose partitions
//     were lost (its session expired, e.g. in a broker outage) has them redelivered from the
//     committed offsets like a restarted one, so each loss, read from its log, starts a new
//     lifetime for this check.
//  4. Commits: at every observation, each committed offset is at or above the previous one,
//     and every event below it was already written (or is dead-lettered): nothing is
//     committed that was not written.
//  5. Dead letters: the dead-letter topic holds exactly the DeadLetter events, once each.
//  6. Secrets: no process's log, stdout or /metrics scrape, and no dead-letter header, holds
//     the tenant token or any event's privacy value.
func (e *Env) Verify(w *Workload, o VerifyOptions) Result {
	t := e.T
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	isDead := func(ev *Event) bool { return o.DeadLetter != nil && o.DeadLetter(ev) }
	isUnwritten := func(ev *Event) bool { return o.Unwritten != nil && o.Unwritten(ev) }
	e.WaitCommitted(e.Group, e.Topic, o.Timeout)
	for _, p := range e.Procs() {
		p.Scrape()
	}
	snaps := e.watch.Snapshots()
	st := e.Sim.Stats()
	if st.JournalFirstSeq > 1 {
		t.Fatalf("the simulator's journal dropped entries (first held %d): raise its size", st.JournalFirstSeq)
	}
	journal := e.Sim.Journal(0)
	res := Result{Events: len(w.Events), Elapsed: time.Since(e.started)}

	// 3. Order, duplicates, and the values each write carries.
	maxW := make(map[string]int)               // identifier -> highest _seq written so far
	perLife := make(map[string]map[string]int) // _inst and epoch -> identifier -> last _seq
	lastAt := make(map[string]time.Time)       // _inst and epoch, identifier -> its last write's arrival
	losses := partitionLosses(e.Procs())       // _inst -> when it lost partitions
	writtenAt := make(map[string][]writeMark)  // identifier -> (journal seq, max _seq so far)
	si := -1                                   // last snapshot taken before the entry
	var bad int
	report := func(format string, args ...any) {
		if bad++; bad <= 10 {
			t.Errorf(format, args...)
		}
	}
	for _, en := range journal {
		if en.Method != "POST" || en.Status != 200 {
			continue
		}
		for si+1 < len(snaps) && snaps[si+1].JournalSeq < en.Seq {
			si++
		}
		res.Writes++
		vars := make(map[string]string, len(en.Variables))
		for _, v := range en.Variables {
			vars[v.Name] = v.Value
		}
		seq, err := strconv.Atoi(vars["_seq"])
		ev := w.event(en.Identifier, seq)
		if err != nil || ev == nil {
			report("write %d to %q carries _seq %q, which no event has", en.Seq, en.Identifier, vars["_seq"])
			continue
		}
		inst := vars["_inst"]
		delete(vars, "_inst")
		if n := countBefore(losses[inst], en.Time); n > 0 {
			inst += fmt.Sprintf(" (after losing its partitions %d times)", n)
		}
		if diff := cmp.Diff(ev.vars(), vars); diff != "" {
			report("write %d to %q carries values that are not event _seq %d's (-event +write):\n%s", en.Seq, en.Identifier, seq, diff)
		}
		if perLife[inst] == nil {
			perLife[inst] = make(map[string]int)
		}
		if last, ok := perLife[inst][en.Identifier]; ok && seq <= last {
			if seq == last && o.MayRepeat != nil && o.MayRepeat(lastAt[inst+"\x00"+en.Identifier]) {
				res.Repeats++
			} else {
				report("process %s wrote %q with _seq %d after _seq %d: out of partition order within one lifetime", inst, en.Identifier, seq, last)
			}
		}
		perLife[inst][en.Identifier] = seq
		lastAt[inst+"\x00"+en.Identifier] = en.Time
		if seq <= maxW[en.Identifier] {
			res.Duplicates++
			var committed int64 = -1
			if si >= 0 {
				if c, ok := snaps[si].Offsets[ev.Partition]; ok {
					committed = c
				}
			}
			if ev.Offset < committed {
				report("process %s wrote %q back to _seq %d (offset %d/%d) after _seq %d, though offset %d was committed before: a committed record was redelivered",
					inst, en.Identifier, seq, ev.Partition, ev.Offset, maxW[en.Identifier], committed)
			}
		} else {
			maxW[en.Identifier] = seq
			writtenAt[en.Identifier] = append(writtenAt[en.Identifier], writeMark{journal: en.Seq, seq: seq})
		}
	}

	// 4. Commits never ahead of writes, never backwards.
	byPart := make(map[int32][]*Event)
	for i := range w.Events {
		ev := &w.Events[i]
		byPart[ev.Partition] = append(byPart[ev.Partition], ev)
	}
	for _, evs := range byPart {
		slices.SortFunc(evs, func(a, b *Event) int { return int(a.Offset - b.Offset) })
	}
	checked := make(map[int32]int) // partition -> index in byPart of the first event not checked
	prev := make(map[int32]int64)  // partition -> last committed offset seen
	for _, s := range snaps {
		for p, c := range s.Offsets {
			if c < prev[p] {
				report("the committed offset of partition %d went back from %d to %d at %s: a stale commit", p, prev[p], c, s.At.Format("15:04:05.000"))
			}
			prev[p] = max(prev[p], c)
			evs := byPart[p]
			for checked[p] < len(evs) && evs[checked[p]].Offset < c {
				ev := evs[checked[p]]
				checked[p]++
				if isDead(ev) {
					continue
				}
				if writtenBy(writtenAt[ev.ID], s.JournalSeq) < ev.Seq {
					report("offset %d of partition %d (%q _seq %d) was committed by %s but not written by then", ev.Offset, p, ev.ID, ev.Seq, s.At.Format("15:04:05.000"))
				}
			}
		}
	}

	// 2. Lost.
	for i := range w.Events {
		ev := &w.Events[i]
		if isUnwritten(ev) {
			if maxW[ev.ID] >= ev.Seq {
				report("event %q _seq %d should never have been written, but was", ev.ID, ev.Seq)
			}
			continue
		}
		if maxW[ev.ID] < ev.Seq {
			if res.Lost++; res.Lost <= 5 {
				t.Errorf("lost: event %q _seq %d (offset %d/%d) was never written (highest written: %d)", ev.ID, ev.Seq, ev.Partition, ev.Offset, maxW[ev.ID])
			}
		}
	}
	if res.Lost > 0 {
		t.Errorf("%d events lost", res.Lost)
	}

	// 1. Final state.
	want := w.Expected(func(ev *Event) bool { return !isUnwritten(ev) })
	got := make(map[string]map[string]string)
	for _, s := range e.Sim.Interactions() {
		ia, ok := e.Sim.Interaction(s.Tenant, s.InteractionID)
		if !ok || len(ia.Variables) == 0 {
			continue
		}
		m := make(map[string]string)
		for _, v := range ia.Variables {
			if v.Name != "_inst" {
				m[v.Name] = v.Value
			}
		}
		got[s.InteractionID] = m
	}
	mismatches := 0
	for id := range mergeKeys(want, got) {
		if diff := cmp.Diff(want[id], got[id]); diff != "" {
			if mismatches++; mismatches <= 5 {
				t.Errorf("final state of %q (-want +got):\n%s", id, diff)
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("final state: %d of %d identifiers differ", mismatches, len(want))
	}

	// 5. Dead letters, and 6. secrets.
	headers := e.checkDeadLetters(w, isDead, &res)
	e.checkSecrets(w, headers)
	if bad > 10 {
		t.Errorf("%d order and commit violations in all", bad)
	}
	return res
}

// writeMark says that by journal entry journal, an identifier had _seq seq written.
type writeMark struct {
	journal uint64
	seq     int
}

// writtenBy returns the highest _seq written by journal entry j.
func writtenBy(marks []writeMark, j uint64) int {
	i, _ := slices.BinarySearchFunc(marks, j+1, func(m writeMark, j uint64) int { return int(int64(m.journal) - int64(j)) })
	if i == 0 {
		return 0
	}
	return marks[i-1].seq
}

func mergeKeys(a, b map[string]map[string]string) map[string]struct{} {
	out := make(map[string]struct{}, len(a))
	for k := range a {
		out[k] = struct{}{}
	}
	for k := range b {
		out[k] = struct{}{}
	}
	return out
}

// checkDeadLetters reads the dead-letter topic and checks it holds exactly the events isDead
// selects, once each. It returns the dead letters' header values for the secrets check.
func (e *Env) checkDeadLetters(w *Workload, isDead func(*Event) bool, res *Result) []string {
	t := e.T
	t.Helper()
	want := make(map[[2]int64]bool)
	for i := range w.Events {
		if ev := &w.Events[i]; isDead(ev) {
			want[[2]int64{int64(ev.Partition), ev.Offset}] = true
		}
	}
	recs := e.ReadTopic(e.DLQ)
	var headers []string
	seen := make(map[[2]int64]bool)
	for _, r := range recs {
		h := make(map[string]string)
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
			headers = append(headers, string(kv.Value))
		}
		p, _ := strconv.Atoi(h[connector.HeaderPartition])
		off, _ := strconv.ParseInt(h[connector.HeaderOffset], 10, 64)
		k := [2]int64{int64(p), off}
		switch {
		case h[connector.HeaderTopic] != e.Topic:
			t.Errorf("dead letter %d/%d names source topic %q", r.Partition, r.Offset, h[connector.HeaderTopic])
		case !want[k]:
			t.Errorf("dead letter of %d/%d (%s: %s) is of a record that should have been written", p, off, h[connector.HeaderClass], h[connector.HeaderMessage])
		case seen[k]:
			t.Errorf("record %d/%d was dead-lettered twice", p, off)
		}
		seen[k] = true
	}
	res.DeadLettered = len(recs)
	if missing := len(want) - len(seen); len(seen) <= len(want) && missing > 0 {
		t.Errorf("%d records that must be dead-lettered are not in %s (%d are)", missing, e.DLQ, len(seen))
	}
	return headers
}

// ReadTopic reads every record of topic up to its current end (none if it does not exist).
func (e *Env) ReadTopic(topic string) []*kgo.Record {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	ends, err := e.adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		return nil // not created: nothing was dead-lettered
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	if n == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Broker.Seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		e.T.Fatalf("creating consumer: %v", err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for int64(len(out)) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			e.T.Fatalf("reading %s: %d records of %d after %s", topic, len(out), n, opTimeout)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// checkSecrets searches every process's log, stdout and /metrics scrapes, and the given
// dead-letter header values, for the tenant token and every event's privacy value.
func (e *Env) checkSecrets(w *Workload, headers []string) {
	t := e.T
	t.Helper()
	pins := make(map[string]bool, len(w.Events))
	for i := range w.Events {
		pins[w.Events[i].Pin] = true
	}
	search := func(where, text string) {
		if strings.Contains(text, e.Token) {
			t.Errorf("secrets: the tenant token appears in %s", where)
		}
		n := 0
		for _, m := range pinPattern.FindAllString(text, -1) {
			if pins[m] {
				n++
			}
		}
		if n > 0 {
			t.Errorf("secrets: %d privacy:true values appear in %s", n, where)
		}
	}
	var logBytes, scrapes int
	for _, p := range e.Procs() {
		b, err := os.ReadFile(p.LogPath)
		if err != nil {
			t.Errorf("reading %s: %v", p.LogPath, err)
		}
		logBytes += len(b)
		search(p.Name+"'s log", string(b))
		if !p.Running() {
			search(p.Name+"'s stdout", p.Stdout())
		}
		p.mu.Lock()
		for i, s := range p.scrapes {
			search(fmt.Sprintf("%s's /metrics scrape %d", p.Name, i+1), s)
		}
		scrapes += len(p.scrapes)
		p.mu.Unlock()
	}
	search("the dead letters' headers", strings.Join(headers, "\n"))
	if logBytes == 0 {
		t.Errorf("secrets: no log captured to search")
	}
	t.Logf("secrets: searched %d bytes of logs of %d processes, %d /metrics scrapes, %d dead-letter headers for the token and %d privacy values",
		logBytes, len(e.Procs()), scrapes, len(headers), len(pins))
}

// Report logs the scenario's result line: CHAOS name broker=... events=... then extra
// key=value fields, duplicates, lost and elapsed.
func (e *Env) Report(r Result, extra string) {
	e.T.Helper()
	if extra != "" {
		extra += " "
	}
	e.T.Logf("CHAOS %s broker=%s events=%d %swrites=%d duplicates=%d lost=%d dead_lettered=%d elapsed=%s",
		e.Name, e.Broker.Kind, r.Events, extra, r.Writes, r.Duplicates, r.Lost, r.DeadLettered, r.Elapsed.Round(100*time.Millisecond))
}
