package connector

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/augment-connector/augment-connector/transform"
)

type nopDecoder struct{}

func (nopDecoder) Decode(context.Context, []byte) (any, error) { return nil, nil }

type nopTransform struct{}

func (nopTransform) Apply(*transform.Record) (transform.Result, error) {
	return transform.Result{Outcome: transform.Filtered}, nil
}

// newBareConnector is a connector with one pipeline reading topic for tenant "a", ready for
// its rebalance callbacks to be called directly (no Kafka client).
func newBareConnector(t *testing.T, opts Options, topic string) *Connector {
	t.Helper()
	opts.Pipelines = []Pipeline{{Name: "p", Topics: []string{topic}, Tenant: "a", Decoder: nopDecoder{}, Transform: nopTransform{}}}
	opts.Tenants = map[string]TenantOptions{"a": {BaseURL: "http://127.0.0.1:1", RequestsPerMinute: 100}}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.poll.workCtx = ctx
	return c
}

// TestRebalanceHoldsNoLockDuringMetadata checks that the metadata request of the budget shares
// is made with neither the poller's mu nor the committer's mu held, on assign and on revoke: a slow answer used
// to stall the commit loop, the metrics scrape and dispatch for up to its 5 s timeout.
func TestRebalanceHoldsNoLockDuringMetadata(t *testing.T) {
	c := newBareConnector(t, Options{}, "t")
	entered := make(chan struct{})
	unblock := make(chan struct{})
	c.poll.partitionCounts = func(ctx context.Context, _ *kgo.Client, topics []string) (map[string]int, error) {
		entered <- struct{}{}
		<-unblock
		return map[string]int{"t": 4}, nil
	}
	locksFree := func(when string) {
		t.Helper()
		if !c.poll.mu.TryLock() {
			t.Errorf("%s: the poller's mu is held during the metadata request", when)
		} else {
			c.poll.mu.Unlock()
		}
		if !c.commits.mu.TryLock() {
			t.Errorf("%s: the committer's mu is held during the metadata request", when)
		} else {
			c.commits.mu.Unlock()
		}
	}
	ctx := context.Background()

	done := make(chan struct{})
	go func() { defer close(done); c.poll.assigned(ctx, nil, map[string][]int32{"t": {0}}) }()
	<-entered
	locksFree("assign")
	unblock <- struct{}{}
	<-done
	if got, want := c.tenants["a"].budget.Limit(), 25; got != want {
		t.Errorf("after assigning 1 of 4 partitions: limit %d, want %d", got, want)
	}

	done = make(chan struct{})
	go func() { defer close(done); c.poll.revoked(ctx, nil, map[string][]int32{"t": {0}}) }()
	<-entered
	locksFree("revoke")
	unblock <- struct{}{}
	<-done
	if got, want := c.tenants["a"].budget.Limit(), 1; got != want {
		t.Errorf("after revoking every partition: limit %d, want %d (the floor)", got, want)
	}
}

// TestRevokeLogsCommitError checks that a commit failing on revoke is logged and counted, not
// dropped: the next owner redelivers the records, which is allowed but must not be silent.
func TestRevokeLogsCommitError(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	reg := prometheus.NewRegistry()
	c := newBareConnector(t, Options{Logger: zap.New(core), Metrics: NewMetrics(reg)}, "t")
	c.poll.partitionCounts = func(context.Context, *kgo.Client, []string) (map[string]int, error) {
		return nil, errors.New("no metadata in this test")
	}
	// A client outside any group: its commits fail at once.
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	c.poll.assigned(ctx, cl, map[string][]int32{"t": {0}})
	p := c.poll.ownedPartitions()["t"][0]
	r := &rec{kr: record{Topic: "t", Partition: 0, Offset: 7}, part: p}
	p.add(r)
	p.markDone(r)

	c.poll.revoked(ctx, cl, map[string][]int32{"t": {0}})

	found := false
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "committing the revoked partitions failed") {
			found = true
			if _, ok := e.ContextMap()["error"]; !ok {
				t.Errorf("log line %q carries no error", e.Message)
			}
		}
	}
	if !found {
		t.Errorf("no log line for the failed commit on revoke; got %v", logs.All())
	}
	var m dto.Metric
	if err := c.metrics.commits.WithLabelValues("error").Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 1 {
		t.Errorf("commits_total{result=error} = %v, want 1", got)
	}
}
