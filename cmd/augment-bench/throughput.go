package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// writeHeapProfile writes the in-use heap profile to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var (
	firstNames = []string{"Maria", "John", "Aiko", "Liam", "Fatima", "Noah", "Olga", "Mateo", "Chen", "Amara"}
	lastNames  = []string{"Garcia", "Smith", "Tanaka", "O'Brien", "Haddad", "Müller", "Ivanova", "Rossi"}
	reasons    = []string{"Billing inquiry", "Technical support", "Order status", "Cancellation request", "Address change"}
)

// interactionID is the i-th identifier, in the contract's style ("int-" + 11 hex digits + "-"
// + 6 characters).
func interactionID(i int) string {
	return fmt.Sprintf("int-%011x-%06d", 0x19b7a2c4b1d+i, i)
}

func randomRow(rng *rand.Rand, id int64, interaction string) row {
	return row{
		id:          id,
		interaction: interaction,
		first:       firstNames[rng.IntN(len(firstNames))],
		last:        lastNames[rng.IntN(len(lastNames))],
		tier:        tiers[rng.IntN(len(tiers))],
		cents:       int64(rng.IntN(2_050_000)) - 50_000,
		reason:      reasons[rng.IntN(len(reasons))],
	}
}

func runThroughput(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("throughput", flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.Int("events", 200_000, "records to produce before the connector starts")
	nIDs := fs.Int("ids", 10_000, "distinct interaction ids the records are drawn from")
	distinct := fs.Bool("distinct", false, "every record its own interaction id: nothing coalesces")
	concurrency := fs.Int("concurrency", 32, "the tenant's requests in flight")
	rpm := fs.Int("requests-per-minute", 100_000_000, "the tenant's budget in the connector, high enough never to bind (the simulator's limit is off; the pacer spends it at most at this rate per minute, and its log grows only with use)")
	commitEvery := fs.Duration("commit-interval", 200*time.Millisecond, "the connector's commit interval (production default 1s); the run ends at the first commit after the last write")
	maxPending := fs.Int("max-pending", 0, "the connector's maxPendingRecords (0: its default)")
	maxPendingMiB := fs.Int64("max-pending-mib", 0, "the connector's maxPendingBytes in MiB (0: its default)")
	seed := fs.Uint64("seed", 1, "seed of the record generator")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up after this long")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the connector phase to this file (goroutines labelled part=kafka|sim|connector)")
	memprofile := fs.String("memprofile", "", "write a heap profile (in use) to this file, --memprofile-at after the connector starts")
	memprofileAt := fs.Duration("memprofile-at", time.Second, "when to write --memprofile")
	level := fs.String("log-level", "warn", "connector log level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *events < 1 || *nIDs < 1 {
		return fmt.Errorf("--events and --ids must be at least 1")
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	env, err := newEnv(ctx, log, envOptions{rateLimit: 0, journalSize: 1000})
	if err != nil {
		return err
	}
	defer env.Close()

	// Produce everything first, streaming (the producer's buffer bounds what waits).
	rng := rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))
	ids := make([]string, *nIDs)
	for i := range ids {
		ids[i] = interactionID(i)
	}
	progress(stderr, "producing %d records to %s (%d partitions)", *events, env.topic, partitions)
	start := time.Now()
	var totalBytes int64
	batch := make([]*kgo.Record, 0, 10_000)
	for i := range *events {
		var ix string
		if *distinct {
			ix = interactionID(*nIDs + i)
		} else {
			ix = ids[rng.IntN(len(ids))]
		}
		v := env.encode(randomRow(rng, int64(i+1), ix))
		totalBytes += int64(len(v))
		batch = append(batch, &kgo.Record{Key: []byte(ix), Value: v})
		if len(batch) == cap(batch) || i == *events-1 {
			if err := env.produceAll(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	produceTime := time.Since(start)
	progress(stderr, "produced in %s (%.0f records/s, %.1f bytes/record); starting the connector", produceTime.Round(time.Millisecond),
		float64(*events)/produceTime.Seconds(), float64(totalBytes)/float64(*events))

	// The connector phase: everything below is measured.
	batch = nil
	runtime.GC()
	debug.FreeOSMemory()
	peakReset := resetPeakRSS()
	rssStart := procStatusKB("VmRSS")
	simBefore := env.sim.Stats()
	connsBefore := env.ln.accepted.Load()
	mallocsBefore := mallocs()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return fmt.Errorf("creating the CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("starting the CPU profile: %w", err)
		}
	}
	sampler := startHeapSampler(100*time.Millisecond, nil)
	cpuBefore := cpuTime()
	start = time.Now()
	rc, err := env.startConnector(ctx, connOptions{requestsPerMinute: *rpm, concurrency: *concurrency,
		commitInterval: *commitEvery, maxPending: *maxPending, maxPendingBytes: *maxPendingMiB << 20})
	if err != nil {
		return err
	}
	if *memprofile != "" {
		t := time.AfterFunc(*memprofileAt, func() {
			if err := writeHeapProfile(*memprofile); err != nil {
				log.Warn("writing the heap profile", zap.Error(err))
			}
		})
		defer t.Stop()
	}
	doneAt, waitErr := env.waitCommitted(ctx, rc, int64(*events), *timeout)
	elapsed := time.Since(start)
	cpu := cpuTime() - cpuBefore
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	allocs := mallocs() - mallocsBefore
	peakHeap, peakRSSSampled := sampler.Stop()
	peakRSS := procStatusKB("VmHWM")
	if !peakReset {
		peakRSS = peakRSSSampled
	}
	conns := env.ln.accepted.Load() - connsBefore
	simAfter := env.sim.Stats()
	st := rc.c.Stats()
	stopErr := rc.Stop()

	requests := simAfter.ByStatus[200] - simBefore.ByStatus[200]
	non200 := (simAfter.Total - simBefore.Total) - requests
	written := doneAt.Sub(start)
	n := float64(*events)
	fmt.Fprintf(stdout, "scenario=throughput events=%d ids=%d distinct=%t partitions=%d vars_per_event=4 record_bytes=%.0f "+
		"elapsed_s=%.2f written_s=%.2f events_per_s=%.0f requests=%d requests_per_s=%.0f vars_per_request=%.1f non200=%d "+
		"cpu_s=%.2f cpu_us_per_event=%.1f cpu_cores=%.2f rss_start_mb=%.0f peak_rss_mb=%.0f peak_heap_mb=%.0f allocs_per_event=%.1f "+
		"sim_new_conns=%d dead_lettered=%d concurrency=%d commit_interval=%s gomaxprocs=%d\n",
		*events, *nIDs, *distinct, partitions, float64(totalBytes)/n,
		elapsed.Seconds(), written.Seconds(), n/elapsed.Seconds(), requests, float64(requests)/elapsed.Seconds(),
		float64(simAfter.VariablesSet-simBefore.VariablesSet)/max(float64(requests), 1), non200,
		cpu.Seconds(), float64(cpu.Microseconds())/n, cpu.Seconds()/elapsed.Seconds(),
		float64(rssStart)/1024, float64(peakRSS)/1024, float64(peakHeap)/(1<<20), float64(allocs)/n,
		conns, st.DeadLettered, *concurrency, *commitEvery, runtime.GOMAXPROCS(0))
	switch {
	case waitErr != nil:
		return waitErr
	case stopErr != nil:
		return fmt.Errorf("stopping the connector: %w", stopErr)
	case st.DeadLettered > 0:
		return fmt.Errorf("%d records dead-lettered", st.DeadLettered)
	case non200 > 0:
		return fmt.Errorf("%d requests were not answered 200", non200)
	}
	return nil
}
