// Package demo runs everything in one process on an embedded default: an in-process Kafka
// cluster (kfake), a schema registry (srfake), the Data Augmentation API simulator with its
// web pages, a producer of realistic Debezium CDC events (internal/workload) and the connector
// with the shipped demo pipelines. It is `augment-connector demo`, and the quickest way to see
// what the connector does; with --events N it is also an end-to-end check that exits non-zero
// unless every event was written, verified and committed.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/app"
	"github.com/augment-connector/augment-connector/internal/config"
	"github.com/augment-connector/augment-connector/internal/offsets"
	"github.com/augment-connector/augment-connector/internal/ops"
	"github.com/augment-connector/augment-connector/internal/sim"
	"github.com/augment-connector/augment-connector/internal/workload"
)

//go:embed config.yaml
var configTemplate string

//go:embed routes.yaml
var routesYAML []byte

// tenantID is the demo tenant's id at the simulator.
const tenantID = "demo"

// Coordination is the demo's budget.coordination: the budget ledger, as in production (its
// config allows the one-broker cluster's unsafe ledger topic).
const Coordination = config.CoordinationKafka

// ConfigValues fill the embedded config's placeholders.
type ConfigValues struct {
	Brokers           string
	Registry          string
	API               string
	TenantID          string
	Token             string
	RequestsPerMinute int
	// Joins adds the demo's joins (workload.DemoJoins): the lookup tables, the call-start
	// pipeline of the interactions topic, and the customers pipeline's fan-out to the
	// customer's active calls. The interactions topic must then exist.
	Joins bool
	// Coordination is budget.coordination; empty: Coordination.
	Coordination string
}

// Config renders the embedded demo config with v and the demo pipelines, and loads it.
func Config(v ConfigValues) (*config.Config, error) {
	if v.Coordination == "" {
		v.Coordination = Coordination
	}
	var b bytes.Buffer
	if err := template.Must(template.New("demo").Parse(configTemplate)).Execute(&b, v); err != nil {
		return nil, fmt.Errorf("rendering demo config: %w", err)
	}
	b.WriteString("\n")
	if !v.Joins {
		b.WriteString(workload.DemoPipelines)
		return config.Parse(b.Bytes(), "demo-config.yaml")
	}
	// The joins file holds tables: then pipelines:; its pipelines continue the demo's list.
	pipelines := workload.DemoPipelines
	if strings.Count(pipelines, workload.DemoCustomersIdentifier) < 1 {
		return nil, errors.New("demo pipelines: the customers identifier to extend with the joins is missing")
	}
	pipelines = strings.Replace(pipelines, workload.DemoCustomersIdentifier, workload.DemoCustomersJoinIdentifier, 1)
	tables, joinPipelines, ok := strings.Cut(workload.DemoJoins, "\npipelines:\n")
	if !ok {
		return nil, errors.New("demo joins: no pipelines key")
	}
	b.WriteString(strings.TrimRight(pipelines, "\n"))
	b.WriteString("\n")
	b.WriteString(joinPipelines)
	b.WriteString("\n")
	b.WriteString(tables)
	b.WriteString("\n")
	return config.Parse(b.Bytes(), "demo-config.yaml")
}

// RunCommand is `augment-connector demo`.
func RunCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.Int("events", 0, "produce this many events, wait until all are written and committed, print a summary and exit (0: run until interrupted)")
	listen := fs.String("listen", "127.0.0.1:8080", "address of the simulator and its web pages")
	rate := fs.Float64("rate", 5, "events per second when running until interrupted")
	rpm := fs.Int("requests-per-minute", 6000, "the tenant's budget, at the simulator and in the connector (the real API's is 100)")
	seed := fs.Uint64("seed", 1, "seed of the event generator")
	calls := fs.Float64("calls", 0.15, "fraction of events that start or end a call on the interactions topic (joined with the customers table); 0 turns the joins off")
	timeout := fs.Duration("timeout", 5*time.Minute, "with --events: give up after this long")
	level := fs.String("log-level", "warn", "connector log level: debug, info, warn, error")
	metricsListen := fs.String("metrics-listen", "", "also serve the connector's /metrics, /healthz and /readyz on this address (as run does)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *calls < 0 || *calls > 1 {
		return fmt.Errorf("--calls must be within [0, 1], got %v", *calls)
	}
	lvl, err := zapcore.ParseLevel(*level)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	encCfg := zap.NewDevelopmentEncoderConfig()
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(encCfg), zapcore.AddSync(stderr), lvl))
	defer func() { _ = log.Sync() }()

	wopts := workload.DefaultOptions()
	wopts.CallRatio = *calls
	topics := []string{workload.CustomersTopic, workload.OrdersTopic, workload.FlatTopic}
	if *calls > 0 {
		topics = append(topics, workload.InteractionsTopic)
	}

	// The broker.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, topics...))
	if err != nil {
		return fmt.Errorf("starting kafka: %w", err)
	}
	defer cluster.Close()
	seeds := cluster.ListenAddrs()

	// The schema registry, with the shipped schemas.
	reg := srfake.New()
	defer reg.Close()
	srCl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		return fmt.Errorf("schema registry client: %w", err)
	}
	if wopts.IDs, err = workload.Register(ctx, srCl, wopts); err != nil {
		return fmt.Errorf("registering schemas: %w", err)
	}

	// The API simulator.
	token := randomToken()
	routes, err := sim.ParseRoutes(routesYAML)
	if err != nil {
		return fmt.Errorf("demo routes: %w", err)
	}
	simSrv, err := sim.New(sim.Config{
		Tenants:    []sim.Tenant{{ID: tenantID, Token: token}},
		AutoCreate: true,
		RateLimit:  *rpm,
		PlainHTTP:  true,
		Routes:     routes,
	})
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	apiURL, err := simSrv.Start(ctx, *listen)
	if err != nil {
		return fmt.Errorf("starting the simulator: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = simSrv.Shutdown(sctx)
	}()

	// The connector, from the embedded config.
	cfg, err := Config(ConfigValues{
		Brokers: strings.Join(seeds, ", "), Registry: reg.URL(), API: apiURL,
		TenantID: tenantID, Token: token, RequestsPerMinute: *rpm, Joins: *calls > 0,
	})
	if err != nil {
		return err
	}
	compiled, err := app.Compile(cfg)
	if err != nil {
		return err
	}
	copts, err := compiled.Options(log)
	if err != nil {
		return err
	}
	metrics := prometheus.NewRegistry()
	copts.Metrics = connector.NewMetrics(metrics)
	conn, err := connector.New(copts)
	if err != nil {
		return err
	}
	metrics.MustRegister(conn.Collector())
	if compiled.Tables != nil {
		metrics.MustRegister(compiled.Tables.Collector())
	}
	if *metricsListen != "" {
		opsCtx, stopOps := context.WithCancel(context.WithoutCancel(ctx))
		addr, done, err := ops.Serve(opsCtx, *metricsListen, ops.Handler(metrics, conn.Health))
		if err != nil {
			stopOps()
			return err
		}
		defer func() { stopOps(); <-done }()
		fmt.Fprintf(stdout, "  metrics: http://%s/metrics\n", addr)
	}
	runCtx, stopConnector := context.WithCancel(ctx)
	defer stopConnector()
	runErr := make(chan error, 1)
	go func() { runErr <- conn.Run(runCtx) }()

	producer, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(workload.CustomersTopic))
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	defer producer.Close()
	gen, err := workload.NewGenerator(*seed, wopts)
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "augment-connector demo\n  simulator and Agent Workspace pages: %s/\n  kafka: %s   schema registry: %s\n  tenant %q, %d requests/minute\n",
		apiURL, strings.Join(seeds, ","), reg.URL(), tenantID, *rpm)

	if *events <= 0 {
		err := trickle(ctx, producer, gen, *rate, conn, simSrv, stdout)
		stopConnector()
		if rerr := <-runErr; rerr != nil {
			return rerr
		}
		return err
	}

	start := time.Now()
	evs := gen.Generate(*events)
	adm := kadm.NewClient(producer)
	// With joins, produce in rounds, each waiting for the previous one to be written: a call
	// started in one round must receive its customer's changes of later rounds through the
	// activeInteractions table. Produced at once, the customers table would often hold a
	// customer's last row before the call's start is read, and the check could not tell a
	// join that fans out from one that does not.
	rounds := 1
	if *calls > 0 {
		rounds = joinRounds
	}
	var committed, end int64
	var waitErr error
	for i := range rounds {
		part := evs[i*len(evs)/rounds : (i+1)*len(evs)/rounds]
		if err := produce(ctx, producer, part); err != nil {
			return err
		}
		if i == rounds-1 {
			fmt.Fprintf(stdout, "  produced %d events; waiting until all are written and committed\n", len(evs))
		}
		if committed, end, waitErr = waitCommitted(ctx, adm, cfg.Kafka.GroupID, topics, *timeout, runErr); waitErr != nil {
			break
		}
	}
	stopConnector()
	if rerr := <-runErr; rerr != nil && waitErr == nil {
		waitErr = rerr
	}
	st := conn.Stats()
	simStats := simSrv.Stats()
	mismatches := verify(simSrv, workload.FinalState(evs))
	fmt.Fprintf(stdout, "events=%d written=%d requests=%d committed=%d end=%d filtered=%d skipped=%d dead_lettered=%d mismatches=%d elapsed=%s\n",
		len(evs), st.Done-st.Filtered-st.Skipped-st.DeadLettered, simStats.ByStatus[200], committed, end,
		st.Filtered, st.Skipped, st.DeadLettered, len(mismatches), time.Since(start).Round(time.Millisecond))
	switch {
	case waitErr != nil:
		return waitErr
	case committed != end || committed != int64(len(evs)):
		return fmt.Errorf("committed %d of %d events", committed, len(evs))
	case st.DeadLettered > 0:
		return fmt.Errorf("%d events were dead-lettered", st.DeadLettered)
	case len(mismatches) > 0:
		for _, m := range mismatches[:min(5, len(mismatches))] {
			fmt.Fprintln(stderr, "mismatch:", m)
		}
		return fmt.Errorf("%d variables differ from the expected final state", len(mismatches))
	}
	return nil
}

// joinRounds is how many rounds demo --events produces in when calls are on.
const joinRounds = 5

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func record(ev workload.Event) *kgo.Record {
	return &kgo.Record{Topic: ev.Topic, Key: ev.Key, Value: ev.Value}
}

func produce(ctx context.Context, cl *kgo.Client, evs []workload.Event) error {
	const batch = 1000
	for i := 0; i < len(evs); i += batch {
		rs := make([]*kgo.Record, 0, batch)
		for _, ev := range evs[i:min(i+batch, len(evs))] {
			rs = append(rs, record(ev))
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			return fmt.Errorf("producing events: %w", err)
		}
	}
	return nil
}

// trickle produces events at rate per second until ctx ends, printing progress.
func trickle(ctx context.Context, cl *kgo.Client, gen *workload.Generator, rate float64, conn *connector.Connector, s *sim.Server, w io.Writer) error {
	if rate <= 0 {
		rate = 1
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	report := time.NewTicker(5 * time.Second)
	defer report.Stop()
	fmt.Fprintln(w, "  producing events; Ctrl-C to stop")
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-report.C:
			st := conn.Stats()
			fmt.Fprintf(w, "  consumed=%d done=%d dead_lettered=%d requests=%d interactions=%d\n",
				st.Consumed, st.Done, st.DeadLettered, s.Stats().ByStatus[200], len(s.Interactions()))
		case <-tick.C:
			if err := cl.ProduceSync(ctx, record(gen.Next())).FirstErr(); err != nil && ctx.Err() == nil {
				return fmt.Errorf("producing: %w", err)
			}
		}
	}
}

// waitCommitted waits until the group's committed offsets reach the end offsets of topics.
func waitCommitted(ctx context.Context, adm *kadm.Client, group string, topics []string, timeout time.Duration, runErr <-chan error) (committed, end int64, err error) {
	deadline := time.Now().Add(timeout)
	for {
		var lags offsets.Lags
		lags, err = offsets.Lag(ctx, adm, group, topics...)
		if committed, end, _ = lags.Totals(); err == nil && committed == end {
			return committed, end, nil
		}
		if time.Now().After(deadline) {
			return committed, end, fmt.Errorf("timed out after %s: committed %d of %d", timeout, committed, end)
		}
		select {
		case <-ctx.Done():
			return committed, end, ctx.Err()
		case rerr := <-runErr:
			if rerr == nil {
				rerr = errors.New("connector stopped early")
			}
			return committed, end, rerr
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// verify compares the simulator's state with the expected final variables.
func verify(s *sim.Server, want map[string]map[string]string) []string {
	var out []string
	for id, vars := range want {
		ia, ok := s.Interaction(tenantID, id)
		if !ok {
			out = append(out, fmt.Sprintf("%s: interaction missing", id))
			continue
		}
		got := make(map[string]string, len(ia.Variables))
		for _, v := range ia.Variables {
			got[v.Name] = v.Value
		}
		for name, val := range vars {
			if got[name] != val {
				out = append(out, fmt.Sprintf("%s %s: got %q, want %q", id, name, got[name], val))
			}
		}
	}
	sort.Strings(out)
	return out
}
