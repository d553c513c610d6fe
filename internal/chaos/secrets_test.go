//go:build chaos

package chaos

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/connector"
)

// TestChaosSecrets (issue 12 point 4) feeds the privacy:true value, the PIN, through every
// expression whose runtime error reaches a log line or a dead-letter header, and makes each
// fail on it. For the events of every tenth identifier (VIP), by the PIN's last digit: the
// filter (int() of the PIN, 0-4), the identifier (5-9) or the _pin variable's dataType
// expression (the PIN itself as dataType, a-f); and, for any event, a lookup table on the same
// topic whose key (PIN ending in c) or value field (ending in e) fails.
// expr's own messages quote the operand ("invalid operation: int(pv...)") and the dataType
// rule quoted the dataType: the secret scan of Verify (every log, /metrics scrape and
// dead-letter header, for the token and every PIN) must find none. The dead letters of this
// pipeline (it has a privacy variable) carry no value, only the source coordinates and
// augment.value.omitted: privacy; `replay` then re-reads each from its source offset and
// writes it, and the final state is the whole expectation. (The poison scenario checks the
// other side: with deadLetter.includePrivateValues the original bytes are kept.)
func TestChaosSecrets(t *testing.T) {
	const (
		events = 1_500
		ids    = 150
	)
	e := NewEnv(t, "secrets", EnvOptions{})
	w := NewWorkload(47, events, ids)
	// Every event of every tenth identifier fails, so that the replay's late writes of them
	// restore the expected final state; which expression fails depends on the PIN.
	dead := func(ev *Event) bool { return ev.VIP }
	if err := e.Produce(w, 0, events); err != nil {
		t.Fatal(err)
	}
	broken := e.WriteConfig("broken", ConfigOptions{
		Filter:     `!(after.vip && after.pin matches "[0-4]$") || int(after.pin) > 0`,
		Identifier: `after.vip && after.pin matches "[5-9]$" ? string(int(after.pin)) : after.id`,
		PinAttrs:   `dataType: {expr: 'after.vip && after.pin matches "[a-f]$" ? after.pin : "text"'}`,
		Tables: []string{
			"- name: pins",
			"  topic: " + e.Topic,
			"  decode: {format: json}",
			`  key: 'after.pin endsWith "c" ? int(after.pin) : after.id'`,
			"  value:",
			`    n: 'after.pin endsWith "e" ? int(after.pin) : after.seq'`,
		},
	})
	fixed := e.WriteConfig("fixed", ConfigOptions{})

	// 1. Records failing on their PIN are dead-lettered, the rest written; no secret anywhere.
	p := e.StartConnector(broken)
	r1 := e.Verify(w, VerifyOptions{DeadLetter: dead, Unwritten: dead})
	if code, took := p.Term(30 * time.Second); code != 0 {
		t.Errorf("%s exited with %d after SIGTERM (%s)", p.Name, code, took)
	}
	tableErrs := 0
	for _, l := range p.LogLines() {
		if l.Msg == "a table record cannot be used; skipped" {
			tableErrs++
		}
	}
	if tableErrs == 0 {
		t.Error("no table record failed on its PIN: the table part tests nothing")
	}
	fields := map[string]int{}
	for _, dl := range e.ReadTopic(e.DLQ) {
		h := map[string]string{}
		for _, kv := range dl.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if len(dl.Value) != 0 {
			t.Errorf("dead letter of %s/%s carries %d bytes of value without includePrivateValues", h[connector.HeaderPartition], h[connector.HeaderOffset], len(dl.Value))
		}
		if h[connector.HeaderValueOmitted] != connector.OmittedPrivacy {
			t.Errorf("dead letter of %s/%s: %s = %q, want %q", h[connector.HeaderPartition], h[connector.HeaderOffset], connector.HeaderValueOmitted, h[connector.HeaderValueOmitted], connector.OmittedPrivacy)
		}
		msg := h[connector.HeaderMessage]
		for _, f := range []string{"filter: evaluating: int() failed on string", "identifier: evaluating: int() failed on string", "variables[_pin].dataType: invalid"} {
			if strings.Contains(msg, f) {
				fields[f]++
			}
		}
	}
	if len(fields) != 3 {
		t.Errorf("dead letters by failing expression: %v; want the filter's, the identifier's and the dataType's", fields)
	}

	// 2. Replay with the fixed config: every value-less dead letter is re-read from its source.
	start := time.Now()
	rp := e.StartCommand(fixed, "replay", "--config", fixed, "--from", e.DLQ)
	if code := rp.Wait(3 * time.Minute); code != 0 {
		t.Fatalf("replay exited with %d; log tail:\n%s", code, tail(rp.LogPath))
	}
	took := time.Since(start)
	m := regexp.MustCompile(`replayed=(\d+) written=(\d+) filtered=(\d+) skipped=(\d+) dead_lettered=(\d+)`).FindStringSubmatch(rp.Stdout())
	if m == nil {
		t.Fatalf("replay printed no summary: %q", rp.Stdout())
	}
	if n, _ := strconv.Atoi(m[1]); n != r1.DeadLettered {
		t.Errorf("replay: replayed %s, want the %d dead letters", m[1], r1.DeadLettered)
	}
	if m[4] != "0" || m[5] != "0" {
		t.Errorf("replay: skipped %s and dead-lettered %s again; want 0 (a value-less dead letter is re-read, not taken for a tombstone)", m[4], m[5])
	}

	// 3. Everything written now, and still no secret in any log (the replay's included).
	r := e.Verify(w, VerifyOptions{DeadLetter: dead})
	e.Report(r, fmt.Sprintf("dead_lettered_on_pin=%d table_errors=%d replayed=%s replay_took=%s",
		r1.DeadLettered, tableErrs, m[1], took.Round(10*time.Millisecond)))
}
