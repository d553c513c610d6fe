package connector_test

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/augment-connector/augment-connector/internal/sim"
)

// TestGroupLagOneReporter: of two members of a group, exactly one (the one assigned partition
// 0 of the first topic) publishes group_lag_records and group_lag_seconds, for every partition
// (those of the other member included); when it leaves, the other takes the role over and
// publishes them for every partition.
func TestGroupLagOneReporter(t *testing.T) {
	k := plainCluster(t)
	topic := kafkatest.UniqueName(t, "grouplag")
	k.createTopic(topic, 4)
	k.produce(records(topic, genEvents(7, 200, 20)))
	e := startSim(t, sim.Config{AutoCreate: true})
	group := kafkatest.UniqueName(t, "g")

	type member struct {
		r   *runner
		reg *prometheus.Registry
	}
	start := func(id string) member {
		opts := baseOptions(t, k, group, e, callPipeline(t, "calls", topic))
		opts.KafkaOpts = append(opts.KafkaOpts, kgo.ClientID(id))
		r := startConnector(t, opts)
		reg := prometheus.NewRegistry()
		reg.MustRegister(r.c.Collector())
		return member{r, reg}
	}
	// partitions returns the partitions a member publishes the group lag of, per metric.
	partitions := func(m member) (records, seconds []string) {
		mfs, err := m.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, s := range mf.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() != "partition" {
						continue
					}
					switch mf.GetName() {
					case "augment_connector_group_lag_records":
						records = append(records, l.GetValue())
					case "augment_connector_group_lag_seconds":
						seconds = append(seconds, l.GetValue())
					}
				}
			}
		}
		slices.Sort(records)
		slices.Sort(seconds)
		return records, seconds
	}
	all := []string{"0", "1", "2", "3"}
	publishesAll := func(m member) bool {
		r, s := partitions(m)
		return slices.Equal(r, all) && slices.Equal(s, all)
	}
	publishesNone := func(m member) bool {
		r, s := partitions(m)
		return len(r) == 0 && len(s) == 0
	}

	a, b := start("member-a"), start("member-b")
	var holder, other member
	waitFor(t, 30*time.Second, "both members with partitions, one of them publishing the group lag of all four", func() bool {
		owners, ok := k.owners(group)
		if !ok || len(owners) != 2 || len(owners["member-a"]) == 0 || len(owners["member-b"]) == 0 {
			return false
		}
		switch {
		case slices.Contains(owners["member-a"], 0) && publishesAll(a) && publishesNone(b):
			holder, other = a, b
		case slices.Contains(owners["member-b"], 0) && publishesAll(b) && publishesNone(a):
			holder, other = b, a
		default:
			return false
		}
		return true
	})
	if err := holder.r.stop(t, 30*time.Second); err != nil {
		t.Fatalf("stopping the holder: %v", err)
	}
	waitFor(t, 30*time.Second, "the remaining member publishing the group lag of all four", func() bool {
		return publishesAll(other)
	})
}
