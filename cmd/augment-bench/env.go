package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/offsets"
	"github.com/augment-connector/augment-connector/internal/sim"
	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// benchTenant is the simulator's and the connector's tenant.
const benchTenant = "bench"

// partitions is the partition count of the bench topic.
const partitions = 6

// Labels put on the goroutines of each part of the process, so a CPU profile can be split by
// part: `go tool pprof -tags FILE`. Goroutines inherit the labels of the goroutine that starts
// them, so everything kfake, the simulator's server and the connector start carries theirs.
const (
	partKafka     = "kafka"
	partSim       = "sim"
	partConnector = "connector"
)

// benchEnv is everything a scenario runs against, in this process: a Kafka cluster (kfake, or
// the brokers in KAFKA_BROKERS), a schema registry (srfake), the API simulator on loopback
// plain HTTP behind a listener that counts connections, and a producer.
type benchEnv struct {
	log      *zap.Logger
	seeds    []string
	cluster  *kfake.Cluster // nil with KAFKA_BROKERS
	registry *srfake.Registry
	srClient *sr.Client
	schemaID int
	topic    string
	group    string
	producer *kgo.Client
	adm      *kadm.Client
	sim      *sim.Server
	simURL   string
	httpSrv  *http.Server
	served   chan struct{}
	ln       *countingListener
	token    string
	codec    *goavro.Codec
}

type envOptions struct {
	rateLimit    int // simulator's per-tenant limit; 0: off
	journalSize  int
	noAutoCreate bool // a POST to an unknown interaction gets a 404, as from the real API
}

// newEnv starts the cluster, the registry and the simulator. Close stops them all.
func newEnv(ctx context.Context, log *zap.Logger, o envOptions) (_ *benchEnv, err error) {
	e := &benchEnv{log: log, token: randomHex(16)}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	suffix := randomHex(4)
	e.topic = "bench.flat.customers." + suffix
	e.group = "augment-bench-" + suffix

	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		for _, s := range strings.Split(env, ",") {
			if s = strings.TrimSpace(s); s != "" {
				e.seeds = append(e.seeds, s)
			}
		}
	} else {
		pprof.Do(ctx, pprof.Labels("part", partKafka), func(context.Context) {
			e.cluster, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, e.topic))
		})
		if err != nil {
			return nil, fmt.Errorf("starting kfake: %w", err)
		}
		e.seeds = e.cluster.ListenAddrs()
	}
	e.producer, err = kgo.NewClient(kgo.SeedBrokers(e.seeds...), kgo.DefaultProduceTopic(e.topic),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return nil, fmt.Errorf("creating producer: %w", err)
	}
	e.adm = kadm.NewClient(e.producer)
	if e.cluster == nil {
		resp, err := e.adm.CreateTopics(ctx, partitions, -1, nil, e.topic)
		if err != nil {
			return nil, fmt.Errorf("creating topic: %w", err)
		}
		for _, r := range resp {
			if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				return nil, fmt.Errorf("creating topic: %w", r.Err)
			}
		}
	}

	e.registry = srfake.New()
	if e.srClient, err = sr.NewClient(sr.URLs(e.registry.URL())); err != nil {
		return nil, fmt.Errorf("creating registry client: %w", err)
	}
	ss, err := e.srClient.CreateSchema(ctx, e.topic+"-value", sr.Schema{Schema: schemas.CustomerFlat, Type: sr.TypeAvro})
	if err != nil {
		return nil, fmt.Errorf("registering the flat customer schema: %w", err)
	}
	e.schemaID = ss.ID
	if e.codec, err = goavro.NewCodec(schemas.CustomerFlat); err != nil {
		return nil, fmt.Errorf("compiling the flat customer schema: %w", err)
	}

	e.sim, err = sim.New(sim.Config{
		Tenants:     []sim.Tenant{{ID: benchTenant, Token: e.token}},
		AutoCreate:  !o.noAutoCreate,
		RateLimit:   o.rateLimit,
		PlainHTTP:   true,
		JournalSize: o.journalSize,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the simulator: %w", err)
	}
	var lc net.ListenConfig
	raw, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	e.ln = &countingListener{Listener: raw}
	e.simURL = "http://" + raw.Addr().String()
	e.httpSrv = &http.Server{Handler: e.sim.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	e.served = make(chan struct{})
	go pprof.Do(context.WithoutCancel(ctx), pprof.Labels("part", partSim), func(context.Context) {
		defer close(e.served)
		if err := e.httpSrv.Serve(e.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("simulator server", zap.Error(err))
		}
	})
	return e, nil
}

// Close stops everything newEnv started.
func (e *benchEnv) Close() {
	if e.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = e.httpSrv.Shutdown(ctx)
		cancel()
		<-e.served
	}
	if e.producer != nil {
		e.producer.Close()
	}
	if e.registry != nil {
		e.registry.Close()
	}
	if e.cluster != nil {
		e.cluster.Close()
	}
}

// countingListener counts accepted connections: new TCP connections to the simulator.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// row is one flat customer record's content that the bench pipeline reads.
type row struct {
	id          int64
	interaction string
	first, last string
	tier        string
	cents       int64
	reason      string
}

var tiers = []string{"Bronze", "Silver", "Gold", "VIP"}

// encode serializes r as a Confluent-framed customer-flat.avsc record (about 85 bytes).
func (e *benchEnv) encode(r row) []byte {
	b, _ := (&sr.ConfluentHeader{}).AppendEncode(make([]byte, 0, 128), e.schemaID, nil)
	native := map[string]any{
		"id":                  r.id,
		"interaction_id":      goavro.Union("string", r.interaction),
		"first_name":          r.first,
		"last_name":           r.last,
		"phone":               goavro.Union("string", "+16175550123"),
		"tier":                r.tier,
		"balance":             big.NewRat(r.cents, 100),
		"last_contact_reason": goavro.Union("string", r.reason),
		"account_pin":         nil,
		"updated_at":          time.UnixMilli(1_767_258_000_000 + r.id),
		"birth_date":          nil,
		"visits":              int32(r.id % 50),
	}
	out, err := e.codec.BinaryFromNative(b, native)
	if err != nil {
		panic(fmt.Sprintf("encoding a bench record: %v", err)) // our own values and schema: a bug
	}
	return out
}

// wantVars is what the bench pipeline makes of r.
func wantVars(r row) map[string]string {
	sign, c := "", r.cents
	if c < 0 {
		sign, c = "-", -c
	}
	return map[string]string{
		"_customerTier":      r.tier,
		"_accountBalance":    fmt.Sprintf("%s%d.%02d", sign, c/100, c%100),
		"_customerName":      r.first + " " + r.last,
		"_lastContactReason": r.reason,
	}
}

// benchPipeline is the pipeline of every scenario: four variables per record.
func benchPipeline() (*transform.Pipeline, error) {
	t := transform.Attr{Literal: true}
	return transform.Compile(transform.Spec{
		Name:       "bench",
		Identifier: "after.interaction_id",
		Variables: []transform.VariableSpec{
			{Name: "_customerTier", Value: "after.tier", IVR: t, Display: t, DisplayName: transform.Attr{Literal: "Customer Tier"}},
			{Name: "_accountBalance", Value: "formatNumber(after.balance, 2)", IVR: t, Display: t,
				DisplayName: transform.Attr{Literal: "Account Balance"}, DataType: transform.Attr{Literal: "currency"}},
			{Name: "_customerName", Value: `after.first_name + " " + after.last_name`, Display: t,
				DisplayName: transform.Attr{Literal: "Customer Name"}},
			{Name: "_lastContactReason", Value: "after.last_contact_reason", Display: t,
				DisplayName: transform.Attr{Literal: "Last Contact Reason"}},
		},
	})
}

type connOptions struct {
	requestsPerMinute int
	concurrency       int
	commitInterval    time.Duration
	maxPending        int
	maxPendingBytes   int64
}

// runningConnector is a connector running on its own goroutine.
type runningConnector struct {
	c      *connector.Connector
	cancel context.CancelFunc
	done   chan error
	reg    *prometheus.Registry
}

// startConnector builds the connector with the bench pipeline and runs it, its goroutines
// labelled partConnector. Stop ends it.
func (e *benchEnv) startConnector(ctx context.Context, o connOptions) (*runningConnector, error) {
	pl, err := benchPipeline()
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	c, err := connector.New(connector.Options{
		KafkaOpts: []kgo.Opt{kgo.SeedBrokers(e.seeds...)},
		Group:     e.group,
		Pipelines: []connector.Pipeline{{
			Name: "bench", Topics: []string{e.topic}, Tenant: benchTenant,
			Decoder:   schemas.NewRegistryDecoder(e.srClient),
			Transform: pl,
		}},
		Tenants: map[string]connector.TenantOptions{benchTenant: {
			BaseURL: e.simURL, TenantID: benchTenant, Token: e.token,
			RequestsPerMinute: o.requestsPerMinute, Concurrency: o.concurrency,
		}},
		IsTransientDecodeError: schemas.IsTransient,
		CommitInterval:         o.commitInterval,
		MaxPendingRecords:      o.maxPending,
		MaxPendingBytes:        o.maxPendingBytes,
		Logger:                 e.log,
		Metrics:                connector.NewMetrics(reg),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the connector: %w", err)
	}
	reg.MustRegister(c.Collector())
	rctx, cancel := context.WithCancel(ctx)
	rc := &runningConnector{c: c, cancel: cancel, done: make(chan error, 1), reg: reg}
	go pprof.Do(rctx, pprof.Labels("part", partConnector), func(ctx context.Context) {
		rc.done <- c.Run(ctx)
	})
	return rc, nil
}

// Stop shuts the connector down gracefully and returns Run's error.
func (rc *runningConnector) Stop() error {
	rc.cancel()
	return <-rc.done
}

// gauge reads one of the connector's gauges (without labels) from its registry.
func (rc *runningConnector) gauge(name string) float64 {
	mfs, err := rc.reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// produceAll produces recs (already encoded) and waits until every one is acknowledged.
func (e *benchEnv) produceAll(ctx context.Context, recs []*kgo.Record) error {
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for _, r := range recs {
		wg.Add(1)
		e.producer.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("producing: %w", *p)
	}
	return nil
}

// waitCommitted waits until the connector has done want records (a cheap check) and then
// until the committed offsets reach the end offsets. It returns when they did, ctx ended, the
// timeout passed or the connector stopped.
func (e *benchEnv) waitCommitted(ctx context.Context, rc *runningConnector, want int64, timeout time.Duration) (doneAt time.Time, err error) {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if doneAt.IsZero() && rc.c.Stats().Done >= want {
			doneAt = time.Now()
		}
		if !doneAt.IsZero() {
			lags, err := offsets.Lag(ctx, e.adm, e.group, e.topic)
			if committed, end, _ := lags.Totals(); err == nil && committed == end && end >= want {
				return doneAt, nil
			}
		}
		if time.Now().After(deadline) {
			st := rc.c.Stats()
			return doneAt, fmt.Errorf("timed out after %s: %d of %d records done", timeout, st.Done, want)
		}
		select {
		case <-ctx.Done():
			return doneAt, ctx.Err()
		case err := <-rc.done:
			rc.done <- err // Stop reads it again
			if err == nil {
				err = errors.New("connector stopped early")
			}
			return doneAt, err
		case <-tick.C:
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
