package connector

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/internal/kafkatest"
)

// TestGroupLagReporter: against a cluster (kfake, or KAFKA_BROKERS), the member assigned
// partition 0 of the alphabetically first source topic publishes the group's lag in records
// and in seconds for every partition of the source topics, those it does not own included
// (a partition never committed counts from its log start, one caught up has 0); a member
// without that partition publishes nothing, and a member that loses it stops publishing.
func TestGroupLagReporter(t *testing.T) {
	seeds := kafkatest.Brokers(t)
	first, second := kafkatest.UniqueName(t, "a"), kafkatest.UniqueName(t, "b")
	group := kafkatest.UniqueName(t, "g")
	kafkatest.CreateTopic(t, seeds, first, 2)
	kafkatest.CreateTopic(t, seeds, second, 1)

	pcl := kafkatest.Client(t, seeds, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	// Records 100 s, 99 s, ... before the clock, per partition.
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	produce := func(topic string, p int32, n int) {
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte("x"),
				Timestamp: now.Add(time.Duration(i-100) * time.Second)})
		}
		if err := pcl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatalf("producing: %v", err)
		}
	}
	produce(first, 0, 5)
	produce(first, 1, 3)
	produce(second, 0, 4)
	cl := kafkatest.Client(t, seeds)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var offs kadm.Offsets
	offs.AddOffset(first, 0, 2, -1) // 3 behind: the record at offset 2 is 98 s old
	offs.AddOffset(first, 1, 3, -1) // caught up
	if err := kadm.NewClient(cl).CommitAllOffsets(ctx, group, offs); err != nil {
		t.Fatalf("committing: %v", err)
	}

	// owned is what this member is assigned; the test moves it.
	var owned atomic.Pointer[map[string]map[int32]*partition]
	assign := func(topic string, ids ...int32) {
		m := map[string]map[int32]*partition{topic: {}}
		for _, id := range ids {
			m[topic][id] = newPartition(topic, id)
		}
		owned.Store(&m)
	}
	assign(first, 1) // not the holder
	g := newGroupLag(group, []string{second, first}, []kgo.Opt{kgo.SeedBrokers(seeds...)}, func() time.Time { return now },
		zap.NewNop(), func() map[string]map[int32]*partition { return *owned.Load() })
	c := &Connector{opts: Options{Now: func() time.Time { return now }}, groupLag: g}
	coll := newGaugeCollector(c)

	rows, err := g.readLag(ctx, cl)
	if err != nil {
		t.Fatalf("reading the lag: %v", err)
	}
	type row struct {
		Topic     string
		Partition int32
		Records   int64
		Age       float64
	}
	var got []row
	for _, r := range rows {
		got = append(got, row{r.topic, r.partition, r.records, ageSeconds(now, r.at, !r.at.IsZero())})
	}
	want := []row{{first, 0, 3, 98}, {first, 1, 0, 0}, {second, 0, 4, 100}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("rows (-want +got):\n%s", diff)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.run(runCtx, cl)
	}()
	defer func() {
		stop()
		<-done
	}()
	series := func() map[string]float64 {
		return collectGroupLagSeries(t, coll)
	}
	time.Sleep(2 * groupLagRoleCheck)
	if s := series(); len(s) != 0 {
		t.Fatalf("a member without partition 0 of %s publishes %v", first, s)
	}

	assign(first, 0, 1) // the role arrives: published at once (at the next role check)
	wantSeries := map[string]float64{
		"group_lag_records/" + first + "/0":  3,
		"group_lag_records/" + first + "/1":  0,
		"group_lag_records/" + second + "/0": 4,
		"group_lag_seconds/" + first + "/0":  98,
		"group_lag_seconds/" + first + "/1":  0,
		"group_lag_seconds/" + second + "/0": 100,
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := series()
		if cmp.Equal(wantSeries, s) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("holder's series (-want +got):\n%s", cmp.Diff(wantSeries, s))
		}
		time.Sleep(100 * time.Millisecond)
	}

	assign(second, 0) // the role moves away: nothing published at once
	if s := series(); len(s) != 0 {
		t.Fatalf("a member that lost the role publishes %v", s)
	}
}

// collectGroupLagSeries collects coll's group lag series as name/topic/partition: value.
func collectGroupLagSeries(t *testing.T, coll *gaugeCollector) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 100)
	coll.collectGroupLag(ch)
	close(ch)
	out := make(map[string]float64)
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{}
		for _, l := range pb.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		name := "group_lag_records"
		if m.Desc() == coll.groupLagSeconds {
			name = "group_lag_seconds"
		}
		out[name+"/"+labels["topic"]+"/"+labels["partition"]] = pb.GetGauge().GetValue()
	}
	return out
}
