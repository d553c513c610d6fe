package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augment-connector/augment-connector/internal/api"
)

func runBacklog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backlog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.Int("events", 300_000, "queued records")
	nIDs := fs.Int("ids", 20_000, "distinct interaction ids")
	limit := fs.Int("limit", 6000, "requests per minute, at the simulator and in the connector")
	maxPending := fs.Int("max-pending", 0, "the connector's maxPendingRecords (0: its default)")
	maxPendingMiB := fs.Int64("max-pending-mib", 0, "the connector's maxPendingBytes in MiB (0: its default)")
	seed := fs.Uint64("seed", 1, "seed of the record generator")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
	level := fs.String("log-level", "warn", "connector log level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events < 1 || *nIDs < 1 || *limit < 1 {
		return fmt.Errorf("--events, --ids and --limit must be at least 1")
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	env, err := newEnv(ctx, log, envOptions{rateLimit: *limit, journalSize: 1000})
	if err != nil {
		return err
	}
	defer env.Close()

	rng := rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))
	progress(stderr, "producing %d records for %d interactions", *events, *nIDs)
	batch := make([]*kgo.Record, 0, 10_000)
	for i := range *events {
		ix := interactionID(rng.IntN(*nIDs))
		batch = append(batch, &kgo.Record{Key: []byte(ix), Value: env.encode(randomRow(rng, int64(i+1), ix))})
		if len(batch) == cap(batch) || i == *events-1 {
			if err := env.produceAll(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	batch = nil

	resetPeakRSS()
	sampler := startHeapSampler(200*time.Millisecond, nil)
	simBefore := env.sim.Stats()
	start := time.Now()
	rc, err := env.startConnector(ctx, connOptions{requestsPerMinute: *limit, maxPending: *maxPending, maxPendingBytes: *maxPendingMiB << 20})
	if err != nil {
		return err
	}
	// Sample the connector's pending records: the bound must hold.
	var peakPending, peakPendingBytes float64
	var wg sync.WaitGroup
	stopSampling := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			peakPending = max(peakPending, rc.gauge("augment_connector_pending_records"))
			peakPendingBytes = max(peakPendingBytes, rc.gauge("augment_connector_pending_bytes"))
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	}()
	_, waitErr := env.waitCommitted(ctx, rc, int64(*events), *timeout)
	elapsed := time.Since(start)
	close(stopSampling)
	wg.Wait()
	peakHeap, _ := sampler.Stop()
	peakRSS := procStatusKB("VmHWM")
	st := rc.c.Stats()
	stopErr := rc.Stop()
	simAfter := env.sim.Stats()

	requests := simAfter.ByStatus[200] - simBefore.ByStatus[200]
	// The least the budget allows: every identifier needs ceil(4/50) = 1 request.
	need := *nIDs * ((4 + api.MaxVariablesPerRequest - 1) / api.MaxVariablesPerRequest)
	minS := float64(need) / float64(*limit) * 60
	// With an empty window at the start, the first `limit` requests go at once.
	floorS := float64((need+*limit-1) / *limit - 1) * 60
	fmt.Fprintf(stdout, "scenario=backlog events=%d ids=%d limit=%d drain_s=%.1f min_s=%.1f floor_s=%.1f drain_over_min=%.2f "+
		"requests=%d requests_needed=%d vars_per_request=%.2f status_429=%d non200=%d peak_pending_records=%.0f "+
		"peak_pending_mb=%.0f peak_rss_mb=%.0f peak_heap_mb=%.0f dead_lettered=%d\n",
		*events, *nIDs, *limit, elapsed.Seconds(), minS, floorS, elapsed.Seconds()/minS,
		requests, need, float64(simAfter.VariablesSet-simBefore.VariablesSet)/max(float64(requests), 1),
		simAfter.ByStatus[429], (simAfter.Total-simBefore.Total)-requests, peakPending, peakPendingBytes/(1<<20),
		float64(peakRSS)/1024, float64(peakHeap)/(1<<20), st.DeadLettered)
	switch {
	case waitErr != nil:
		return waitErr
	case stopErr != nil:
		return fmt.Errorf("stopping the connector: %w", stopErr)
	case simAfter.ByStatus[429] > 0:
		return fmt.Errorf("%d requests answered 429", simAfter.ByStatus[429])
	case st.DeadLettered > 0:
		return fmt.Errorf("%d records dead-lettered", st.DeadLettered)
	}
	return nil
}
