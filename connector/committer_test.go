package connector

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// TestCommitterRelease: releasing partitions drops their undone records from the pending
// bound and marks them revoked in the same step, so no later commit (on the timer or at
// shutdown) carries their watermarks; a loss commits nothing, a revoke commits (here, with a
// client outside any group, the commit fails and says so).
func TestCommitterRelease(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		commit  bool
		wantErr bool
	}{
		{name: "lost: nothing committed", commit: false},
		{name: "revoked: the watermark is committed", commit: true, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlow(100, 1<<20, nil)
			p := newPartition("t", 0)
			q := &committer{owned: func() map[string]map[int32]*partition { return map[string]map[int32]*partition{"t": {0: p}} },
				flow: f, log: zap.NewNop(), committed: new(atomic.Int64), now: time.Now}
			recs := newTestRecs(p, 0, 1, 2)
			f.admit(nil, len(recs), 0)
			p.markDone(recs[0])
			f.done(recs[0])
			err := q.release(ctx, cl, []*partition{p}, tc.commit)
			if (err != nil) != tc.wantErr {
				t.Fatalf("release: error %v, want one: %v", err, tc.wantErr)
			}
			if got := f.pending(); got != 0 {
				t.Errorf("%d records pending after the release, want 0", got)
			}
			if err := q.all(ctx, cl); err != nil {
				t.Errorf("a commit after the release tried the released partition: %v", err)
			}
			if q.committed.Load() != 0 {
				t.Errorf("%d commits counted as done, want 0", q.committed.Load())
			}
		})
	}
}
