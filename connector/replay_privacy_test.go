package connector_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/api"
	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/augment-connector/augment-connector/internal/sim"
	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// TestIntegrationReplayPrivateDeadLetters (issue 12 point 4): the dead letters of pipelines
// with a private variable carry no value, only the source coordinates and
// augment.value.omitted: privacy; a tombstone's carries augment.source.tombstone. The replay
// re-reads each value-less dead letter from its source offset and writes it to the simulator;
// where retention removed the source record, the replay dead-letters it again with class
// replay instead of skipping it as a tombstone and committing (the bug this fixes). The real
// tombstone is processed as one, not re-read.
func TestIntegrationReplayPrivateDeadLetters(t *testing.T) {
	k := plainCluster(t)
	e := startSim(t, sim.Config{}) // no AutoCreate: unknown interactions answer 404
	kept := kafkatest.UniqueName(t, "kept")
	gone := kafkatest.UniqueName(t, "gone")
	tombs := kafkatest.UniqueName(t, "tombs")
	dlq := kafkatest.UniqueName(t, "dlq")
	failed := kafkatest.UniqueName(t, "failed")
	group := kafkatest.UniqueName(t, "group")
	k.createTopic(kept, 2)
	k.createTopic(gone, 1)
	k.createTopic(tombs, 1)

	evsKept, evsGone := genEvents(21, 8, 4), genEvents(22, 5, 4)
	k.produce(records(kept, evsKept))
	k.produce(records(gone, evsGone))
	k.produce([]*kgo.Record{{Topic: tombs, Key: []byte("k1")}})

	pipelines := func() []connector.Pipeline {
		a, b := callPipeline(t, "kept", kept), callPipeline(t, "gone", gone)
		a.Private, b.Private = true, true
		// Processes deletes and fails on one: int() of a string key.
		p, err := transform.Compile(transform.Spec{Name: "tombs", OnDelete: transform.OnDeleteProcess,
			Identifier: `string(int(key))`, Variables: []transform.VariableSpec{{Name: "_a", Value: `"x"`}}})
		if err != nil {
			t.Fatal(err)
		}
		c := connector.Pipeline{Name: "tombs", Topics: []string{tombs}, Tenant: simTenant, Decoder: schemas.NewJSONDecoder(), Transform: p, Private: true}
		return []connector.Pipeline{a, b, c}
	}
	opts := baseOptions(t, k, group, e, pipelines()...)
	opts.DeadLetterTopic = dlq
	to := opts.Tenants[simTenant]
	to.NotFoundGrace = 200 * time.Millisecond
	opts.Tenants[simTenant] = to
	r := startConnector(t, opts)
	for _, topic := range []string{kept, gone, tombs} {
		k.waitCommitted(group, topic, 30*time.Second, r)
	}
	if err := r.stop(t, 15*time.Second); err != nil {
		t.Fatalf("first run: %v", err)
	}
	want := len(evsKept) + len(evsGone) + 1
	letters := k.readTopic(dlq, want, 20*time.Second)
	if len(letters) != want {
		t.Fatalf("dead-letter topic holds %d records, want %d", len(letters), want)
	}
	for _, dl := range letters {
		h := headers(dl)
		if len(dl.Value) != 0 {
			t.Errorf("dead letter of %s@%s carries a value", h[connector.HeaderTopic], h[connector.HeaderOffset])
		}
		if _, err := strconv.ParseInt(h[connector.HeaderOffset], 10, 64); err != nil || h[connector.HeaderPartition] == "" {
			t.Errorf("dead letter without source coordinates: %v", h)
		}
		if h[connector.HeaderTopic] == tombs {
			if h[connector.HeaderTombstone] != "true" || h[connector.HeaderValueOmitted] != "" {
				t.Errorf("tombstone's dead letter: headers %v, want %s: true and no %s", h, connector.HeaderTombstone, connector.HeaderValueOmitted)
			}
			continue
		}
		if h[connector.HeaderValueOmitted] != connector.OmittedPrivacy || h[connector.HeaderTombstone] != "" {
			t.Errorf("private dead letter: headers %v, want %s: %s and no %s", h, connector.HeaderValueOmitted, connector.OmittedPrivacy, connector.HeaderTombstone)
		}
	}

	// The interactions exist now; retention removed the records of gone.
	for id := range expectedState(append(append([]callEvent(nil), evsKept...), evsGone...)) {
		if err := e.srv.CreateInteraction(simTenant, api.Interaction{InteractionID: id}); err != nil {
			t.Fatal(err)
		}
	}
	var del kadm.Offsets
	for p, o := range k.end(gone) {
		del.Add(kadm.Offset{Topic: gone, Partition: p, At: o})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := k.adm.DeleteRecords(ctx, del)
	if err != nil {
		t.Fatalf("deleting the records of %s: %v", gone, err)
	}
	if err := resp.Error(); err != nil {
		t.Fatalf("deleting the records of %s: %v", gone, err)
	}

	replayGroup := kafkatest.UniqueName(t, "replay")
	ropts := baseOptions(t, k, replayGroup, e, pipelines()...)
	ropts.ReplayFrom = dlq
	ropts.DeadLetterTopic = failed
	ropts.SourceReadTimeout = 20 * time.Second
	ropts.Tenants[simTenant] = to
	rr := startConnector(t, ropts)
	k.waitCommitted(replayGroup, dlq, 60*time.Second, rr)
	if err := rr.stop(t, 15*time.Second); err != nil {
		t.Fatalf("replay: %v", err)
	}

	checkState(t, "after replay", expectedState(evsKept), e.state())
	if st := rr.c.Stats(); st.Skipped != 0 {
		t.Errorf("replay skipped %d records; a value-less dead letter must never pass for a tombstone", st.Skipped)
	}
	again := k.readTopic(failed, len(evsGone)+1, 20*time.Second)
	if len(again) != len(evsGone)+1 {
		t.Fatalf("replay-failed topic holds %d records, want %d", len(again), len(evsGone)+1)
	}
	for _, dl := range again {
		h := headers(dl)
		switch h[connector.HeaderTopic] {
		case gone:
			if h[connector.HeaderClass] != "replay" || !strings.Contains(h[connector.HeaderMessage], "gone") || len(dl.Value) != 0 {
				t.Errorf("dead letter of a removed source record: class %q, message %q, %d bytes of value; want class replay, a reason, no value",
					h[connector.HeaderClass], h[connector.HeaderMessage], len(dl.Value))
			}
		case tombs:
			if h[connector.HeaderClass] != "transform" || h[connector.HeaderTombstone] != "true" {
				t.Errorf("the tombstone failed again with headers %v, want class transform and %s: true", h, connector.HeaderTombstone)
			}
		default:
			t.Errorf("unexpected dead letter of the replay: %v", h)
		}
	}
}
