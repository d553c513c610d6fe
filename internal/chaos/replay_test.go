//go:build chaos

package chaos

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestChaosReplay runs a connector whose config is broken for one identifier in ten (its _tier
// expression fails on their records), so those records are dead-lettered and the rest written;
// then, with the config fixed, `augment-connector replay --from DLQ` re-processes the dead
// letters: every one is written, the replay commits its own progress on the dead-letter
// topic, nothing fails again, and the final state is the whole expectation.
func TestChaosReplay(t *testing.T) {
	const (
		events = 6_000
		ids    = 600
	)
	e := NewEnv(t, "replay", EnvOptions{})
	w := NewWorkload(31, events, ids)
	if err := e.Produce(w, 0, events); err != nil {
		t.Fatal(err)
	}
	vip := func(ev *Event) bool { return ev.VIP }
	// Dead letters with their values, as before issue 12 point 4 (the pipeline's _pin is
	// privacy: true); TestChaosSecrets replays value-less ones, re-read from the source.
	broken := e.WriteConfig("broken", ConfigOptions{TierValue: `after.vip ? int(after.tier) : after.tier`, IncludePrivateValues: true})
	fixed := e.WriteConfig("fixed", ConfigOptions{IncludePrivateValues: true})

	// 1. The broken config: VIP records dead-lettered, the rest written.
	p := e.StartConnector(broken)
	r1 := e.Verify(w, VerifyOptions{DeadLetter: vip, Unwritten: vip})
	if code, took := p.Term(30 * time.Second); code != 0 {
		t.Errorf("%s exited with %d after SIGTERM (%s)", p.Name, code, took)
	}
	if r1.DeadLettered == 0 {
		t.Fatal("the broken config dead-lettered nothing: the scenario tests nothing")
	}

	// 2. Replay with the fixed config.
	start := time.Now()
	rp := e.StartCommand(fixed, "replay", "--config", fixed, "--from", e.DLQ)
	if code := rp.Wait(2 * time.Minute); code != 0 {
		t.Fatalf("replay exited with %d; log tail:\n%s", code, tail(rp.LogPath))
	}
	took := time.Since(start)
	out := rp.Stdout()
	m := regexp.MustCompile(`replayed=(\d+) written=(\d+) .*dead_lettered=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("replay printed no summary: %q", out)
	}
	if n, _ := strconv.Atoi(m[1]); n != r1.DeadLettered {
		t.Errorf("replay: replayed %s, want the %d dead letters", m[1], r1.DeadLettered)
	}
	if m[3] != "0" {
		t.Errorf("replay: %s records failed again", m[3])
	}
	// Its own progress: the replay group has committed the end of the dead-letter topic.
	e.WaitCommitted(e.Group+"-replay", e.DLQ, 10*time.Second)
	if again := e.ReadTopic(e.DLQ + ".replay-failed"); len(again) != 0 {
		t.Errorf("%d records failed again", len(again))
	}

	// 3. Everything written now; the dead-letter topic still holds exactly the VIP records.
	r := e.Verify(w, VerifyOptions{DeadLetter: vip})
	e.Report(r, fmt.Sprintf("replayed=%s replay_took=%s", m[1], took.Round(10*time.Millisecond)))
}
