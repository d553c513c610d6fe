package connector_test

import (
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/augment-connector/augment-connector/internal/sim"
)

// TestIntegrationPendingBoundHolds checks that records read and not done never exceed
// MaxPendingRecords while the API is down and a backlog far larger than the bound waits:
// a poll takes only what the bound has room for (it once took up to 10,000 records at a
// time, whatever the bound), and everything is written once the API is back.
func TestIntegrationPendingBoundHolds(t *testing.T) {
	k := plainCluster(t)
	e := startSim(t, sim.Config{AutoCreate: true})
	topic := kafkatest.UniqueName(t, "calls")
	group := kafkatest.UniqueName(t, "group")
	k.createTopic(topic, 3)
	if _, err := e.srv.PatchFaults(sim.FaultPatch{Outage: &sim.Outage{Mode: sim.OutageError, Seconds: 60}}); err != nil {
		t.Fatal(err)
	}
	evs := genEvents(9, 20_000, 2_000)
	k.produce(records(topic, evs))

	const bound = 100
	opts := baseOptions(t, k, group, e, callPipeline(t, "calls", topic))
	opts.MaxPendingRecords = bound
	r := startConnector(t, opts)
	waitFor(t, 30*time.Second, "the first records to be consumed", func() bool { return r.c.Stats().Consumed > 0 })
	var most int64
	for range 30 {
		st := r.c.Stats()
		most = max(most, st.Consumed-st.Done)
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("at most %d records pending with a bound of %d", most, bound)
	if most > bound {
		t.Errorf("%d records pending while the API was down; the bound is %d", most, bound)
	}
	if most == 0 {
		t.Errorf("no record pending while the API was down")
	}

	if _, err := e.srv.PatchFaults(sim.FaultPatch{Outage: &sim.Outage{Mode: sim.OutageError}}); err != nil {
		t.Fatal(err)
	}
	k.waitCommitted(group, topic, time.Minute, r)
	if err := r.stop(t, 15*time.Second); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	checkState(t, "final state", expectedState(evs), e.state())
}
