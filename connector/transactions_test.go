package connector_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/augment-connector/augment-connector/internal/sim"
)

// produceTxn produces recs in one transaction of cl and commits or aborts it.
func produceTxn(t *testing.T, cl *kgo.Client, recs []*kgo.Record, commit bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatalf("beginning a transaction: %v", err)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing in a transaction: %v", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("ending a transaction (commit %v): %v", commit, err)
	}
}

// Under read_committed (the config's default), records of an aborted transaction are never
// written, those of committed ones are, and the group's committed offset reaches the end
// offset although the last offset of every partition is a transaction marker, which kgo never
// hands over as a record to process.
func TestIntegrationTransactions(t *testing.T) {
	k := plainCluster(t)
	e := startSim(t, sim.Config{AutoCreate: true})
	topic := kafkatest.UniqueName(t, "calls")
	group := kafkatest.UniqueName(t, "group")
	k.createTopic(topic, 3)

	txn, err := kgo.NewClient(append(slices.Clone(k.opts), kgo.TransactionalID(kafkatest.UniqueName(t, "txn")))...)
	if err != nil {
		t.Fatalf("creating the transactional producer: %v", err)
	}
	defer txn.Close()

	committed1 := genEvents(7, 300, 40)
	// The aborted transaction writes identifiers of its own and new values of committed ones.
	var aborted []callEvent
	for i := range 60 {
		id := callID(i % 40)
		if i%2 == 0 {
			id = fmt.Sprintf("aborted-%03d", i)
		}
		aborted = append(aborted, callEvent{ID: id, Seq: 1000 + i, Tier: "aborted", Balance: "0.00"})
	}
	committed2 := genEvents(8, 200, 40)
	for i := range committed2 {
		committed2[i].Seq += 500 // after committed1's, so the fold below is the order produced
	}
	produceTxn(t, txn, records(topic, committed1), true)
	produceTxn(t, txn, records(topic, aborted), false)
	produceTxn(t, txn, records(topic, committed2), true)

	opts := baseOptions(t, k, group, e, callPipeline(t, "calls", topic))
	opts.KafkaOpts = append(opts.KafkaOpts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	r := startConnector(t, opts)
	k.waitCommitted(group, topic, 60*time.Second, r)
	if err := r.stop(t, 15*time.Second); err != nil {
		t.Fatalf("Run returned %v after a graceful shutdown, want nil", err)
	}
	if diff := cmp.Diff(k.end(topic), k.committed(group, topic)); diff != "" {
		t.Errorf("committed offsets differ from end offsets (-end +committed):\n%s", diff)
	}
	checkState(t, "final state", expectedState(slices.Concat(committed1, committed2)), e.state())
	for _, en := range e.srv.Journal(0) {
		for _, v := range en.Variables {
			if v.Name == "_tier" && v.Value == "aborted" {
				t.Fatalf("a record of the aborted transaction was written: %s %+v", en.Identifier, en.Variables)
			}
		}
	}
}
