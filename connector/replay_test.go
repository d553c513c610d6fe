package connector_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/api"
	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/augment-connector/augment-connector/internal/sim"
)

// TestIntegrationReplay dead-letters the writes to interactions that are not registered yet,
// registers them, replays the dead-letter topic and checks every record is then written,
// the replay's progress is committed, and a record that fails again goes to the replay's own
// dead-letter topic naming its original source.
func TestIntegrationReplay(t *testing.T) {
	k := plainCluster(t)
	e := startSim(t, sim.Config{}) // no AutoCreate: unknown interactions answer 404
	topic := kafkatest.UniqueName(t, "calls")
	dlq := kafkatest.UniqueName(t, "dlq")
	failed := kafkatest.UniqueName(t, "failed")
	group := kafkatest.UniqueName(t, "group")
	k.createTopic(topic, 2)

	evs := genEvents(11, 60, 6)
	want := expectedState(evs)
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	// Half the interactions exist from the start; the others only after the first run.
	late := map[string]bool{}
	for i, id := range ids {
		if i%2 == 0 {
			late[id] = true
			continue
		}
		if err := e.srv.CreateInteraction(simTenant, api.Interaction{InteractionID: id}); err != nil {
			t.Fatal(err)
		}
	}
	recs := records(topic, evs)
	// One record that will fail again on replay: its interaction never exists.
	ghost := &kgo.Record{Topic: topic, Key: []byte("ghost"), Value: []byte(`{"id":"ghost@pc1.example.com","tier":"gold","seq":1}`)}
	recs = append(recs, ghost)
	k.produce(recs)

	opts := baseOptions(t, k, group, e, callPipeline(t, "calls", topic))
	opts.DeadLetterTopic = dlq
	to := opts.Tenants[simTenant]
	to.NotFoundGrace = 200 * time.Millisecond
	opts.Tenants[simTenant] = to
	r := startConnector(t, opts)
	k.waitCommitted(group, topic, 30*time.Second, r)
	if err := r.stop(t, 15*time.Second); err != nil {
		t.Fatalf("first run: %v", err)
	}
	lateRecords := int64(1) // the ghost
	for _, ev := range evs {
		if late[ev.ID] {
			lateRecords++
		}
	}
	// A 404 dead-letters every record the request carried; each late record is there once.
	if n := sum(k.end(dlq)); n != lateRecords {
		t.Fatalf("dead-letter topic holds %d records, want %d (records of late interactions + the ghost)", n, lateRecords)
	}

	// check --live proved it may write to the dead-letter topic: replay skips that record.
	k.produce([]*kgo.Record{{Topic: dlq, Headers: []kgo.RecordHeader{{Key: connector.HeaderCheck, Value: []byte("live")}}}})

	for id := range late {
		if err := e.srv.CreateInteraction(simTenant, api.Interaction{InteractionID: id}); err != nil {
			t.Fatal(err)
		}
	}
	replayGroup := kafkatest.UniqueName(t, "replay")
	ropts := baseOptions(t, k, replayGroup, e, callPipeline(t, "calls", topic))
	ropts.ReplayFrom = dlq
	ropts.DeadLetterTopic = failed
	ropts.Tenants[simTenant] = to
	rr := startConnector(t, ropts)
	k.waitCommitted(replayGroup, dlq, 30*time.Second, rr)
	if err := rr.stop(t, 15*time.Second); err != nil {
		t.Fatalf("replay: %v", err)
	}

	checkState(t, "after replay", want, e.state())
	ends := k.end(dlq)
	for p, o := range ends {
		if o == 0 {
			delete(ends, p) // nothing to replay there, nothing to commit
		}
	}
	if diff := cmp.Diff(ends, k.committed(replayGroup, dlq)); diff != "" {
		t.Errorf("replay's committed offsets differ from the dead-letter topic's end (-end +committed):\n%s", diff)
	}
	again := k.readTopic(failed, 1, 20*time.Second)
	if len(again) != 1 {
		t.Fatalf("replay-failed topic holds %d records, want 1", len(again))
	}
	h := headers(again[0])
	if h[connector.HeaderTopic] != topic || h[connector.HeaderOffset] != strconv.FormatInt(ghost.Offset, 10) || h[connector.HeaderClass] != "not_found" {
		t.Errorf("the ghost's second dead letter names %v, want source %s@%d and class not_found", h, topic, ghost.Offset)
	}
	if string(again[0].Value) != string(ghost.Value) {
		t.Errorf("the ghost's second dead letter changed its value")
	}
}
