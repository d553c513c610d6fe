package offsets

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/augment-connector/augment-connector/internal/kafkatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestLag follows one group through nothing committed, a partial commit and a full one, and
// checks Reached against an end read before more records arrived.
func TestLag(t *testing.T) {
	seeds := kafkatest.Brokers(t)
	topic := kafkatest.UniqueName(t, "offsets")
	group := kafkatest.UniqueName(t, "group")
	kafkatest.CreateTopic(t, seeds, topic, 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produce := func(partition int32, n int) {
		t.Helper()
		for i := range n {
			r := &kgo.Record{Topic: topic, Partition: partition, Value: fmt.Appendf(nil, "v%d", i)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("producing: %v", err)
			}
		}
	}
	commit := func(at map[int32]int64) {
		t.Helper()
		var os kadm.Offsets
		for p, o := range at {
			os.AddOffset(topic, p, o, -1)
		}
		if err := kafkatest.Retry(ctx, func() error {
			resp, err := adm.CommitOffsets(ctx, group, os)
			if err != nil {
				return err
			}
			return resp.Error()
		}); err != nil {
			t.Fatalf("committing: %v", err)
		}
	}

	produce(0, 3)
	produce(1, 2)
	ends, err := Ends(ctx, adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Lags{{topic, 0, -1, 3}, {topic, 1, -1, 2}}, ends); diff != "" {
		t.Errorf("Ends (-want +got):\n%s", diff)
	}

	tests := []struct {
		name     string
		commit   map[int32]int64 // committed before reading
		more     int             // records produced to partition 1 before reading
		want     Lags
		wantLag  int64
		caughtUp bool // Lag reached itself
		reached  bool // Lag reached ends
	}{
		{name: "nothing committed", want: Lags{{topic, 0, -1, 3}, {topic, 1, -1, 2}}, wantLag: 5},
		{name: "one partition", commit: map[int32]int64{0: 3}, want: Lags{{topic, 0, 3, 3}, {topic, 1, -1, 2}}, wantLag: 2},
		{name: "both partitions", commit: map[int32]int64{1: 2}, want: Lags{{topic, 0, 3, 3}, {topic, 1, 2, 2}}, caughtUp: true, reached: true},
		// Records that arrived after ends was read do not undo having reached it.
		{name: "more records", more: 2, want: Lags{{topic, 0, 3, 3}, {topic, 1, 2, 4}}, wantLag: 2, reached: true},
	}
	for _, tt := range tests {
		if tt.commit != nil {
			commit(tt.commit)
		}
		produce(1, tt.more)
		got, err := Lag(ctx, adm, group, topic)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: Lag (-want +got):\n%s", tt.name, diff)
		}
		if _, _, lag := got.Totals(); lag != tt.wantLag {
			t.Errorf("%s: total lag %d, want %d", tt.name, lag, tt.wantLag)
		}
		if c := got.Reached(got); c != tt.caughtUp {
			t.Errorf("%s: caught up = %v, want %v", tt.name, c, tt.caughtUp)
		}
		if r := got.Reached(ends); r != tt.reached {
			t.Errorf("%s: reached ends = %v, want %v", tt.name, r, tt.reached)
		}
	}
}

func TestTotalsAndReached(t *testing.T) {
	l := Lags{{"a", 0, -1, 4}, {"a", 1, 2, 5}, {"b", 0, 0, 0}}
	committed, end, lag := l.Totals()
	if committed != 2 || end != 9 || lag != 7 {
		t.Errorf("Totals = %d, %d, %d; want 2, 9, 7", committed, end, lag)
	}
	tests := []struct {
		name string
		ends Lags
		want bool
	}{
		{name: "empty partitions need nothing", ends: Lags{{"b", 0, -1, 0}}, want: true},
		{name: "committed up to the end", ends: Lags{{"a", 1, -1, 2}}, want: true},
		{name: "short of the end", ends: Lags{{"a", 1, -1, 3}}, want: false},
		{name: "nothing committed", ends: Lags{{"a", 0, -1, 1}}, want: false},
		{name: "partition unknown to the group", ends: Lags{{"c", 0, -1, 1}}, want: false},
	}
	for _, tt := range tests {
		if got := l.Reached(tt.ends); got != tt.want {
			t.Errorf("%s: Reached = %v, want %v", tt.name, got, tt.want)
		}
	}
}
