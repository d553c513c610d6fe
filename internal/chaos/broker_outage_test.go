//go:build chaos

package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/augment-connector/augment-connector/internal/sim"
)

// TestChaosBrokerOutage stops the broker for 30 s while the connector has work in hand and
// starts it again (kfake: same port, same data directory; KAFKA_BROKERS: scripts/kafka.sh
// stop and start, which keep the broker's data). The connector must ride it out, reconnect,
// and finish with everything written and committed, nothing committed that was not written.
//
// With KAFKA_BROKERS the broker is shared by every scenario, so this one runs alone (not in
// parallel): stopping the broker must not break the others' setup.
func TestChaosBrokerOutage(t *testing.T) {
	if os.Getenv(kafkatest.EnvBrokers) == "" {
		t.Parallel()
	}
	const (
		events = 10_000
		ids    = 1_000
	)
	down := scaled(t, 30*time.Second)
	e := NewEnv(t, "broker-outage", EnvOptions{})
	w := NewWorkload(13, events, ids)
	cfg := e.WriteConfig("broker-outage", ConfigOptions{})
	p := e.StartConnector(cfg)
	// Slow writes, so the broker goes while the connector has written records it has not
	// committed yet and records it has not written: both must survive the outage.
	lat := sim.Duration(20 * time.Millisecond)
	if _, err := e.Sim.PatchFaults(sim.FaultPatch{Latency: &lat}); err != nil {
		t.Fatal(err)
	}

	// The first half at once; the broker goes half a second later, with the connector busy.
	if err := e.Produce(w, 0, events/2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	before := e.CommittedTotal()
	stopped := time.Now()
	brokerStop(e)
	time.Sleep(down)
	brokerStart(e)
	if _, err := e.Sim.PatchFaults(sim.FaultPatch{Reset: true}); err != nil {
		t.Fatal(err)
	}
	if !p.Running() {
		t.Fatalf("the connector exited during the broker outage (%v); log:\n%s", p.exitErr, tail(p.LogPath))
	}
	started := time.Now()
	recovered := e.WaitRecovered(before, 2*time.Minute)
	if err := e.Produce(w, events/2, events); err != nil {
		t.Fatal(err)
	}
	r := e.Verify(w, VerifyOptions{})
	if code, took := p.Term(30 * time.Second); code != 0 {
		t.Errorf("the connector exited with %d after SIGTERM (%s)", code, took)
	}
	e.Report(r, fmt.Sprintf("broker_down=%s committed_before=%d recover=%s",
		started.Sub(stopped).Round(100*time.Millisecond), before, recovered.Round(100*time.Millisecond)))
}

// brokerStop stops the scenario's broker: the kfake process, or the real broker of
// scripts/kafka.sh (keeping its data).
func brokerStop(e *Env) {
	e.T.Helper()
	if e.Broker.External() {
		kafkaScript(e.T, "stop")
		return
	}
	e.Broker.Stop()
}

// brokerStart starts the broker brokerStop stopped.
func brokerStart(e *Env) {
	e.T.Helper()
	if e.Broker.External() {
		kafkaScript(e.T, "start")
		return
	}
	e.Broker.Start()
}

func kafkaScript(t *testing.T, cmd string) {
	t.Helper()
	c := exec.Command("bash", filepath.Join(repoRoot(), "scripts", "kafka.sh"), cmd)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("scripts/kafka.sh %s: %v\n%s", cmd, err, out)
	}
}
