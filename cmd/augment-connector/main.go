// Command augment-connector consumes customer CDC topics and writes interaction variables to
// the 8x8 Contact Center Data Augmentation API.
//
//	augment-connector run --config FILE      run the connector
//	augment-connector check --config FILE    validate a config offline (exit 1 on problems)
//	augment-connector demo [--events N]      everything in one process, on an embedded default
//	augment-connector sim [flags]            the Data Augmentation API simulator
//	augment-connector version                print the version
//
// main is wiring only: it parses flags, builds the parts and runs them; the logic lives in
// the packages, and only main exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/app"
	"github.com/augment-connector/augment-connector/internal/config"
	"github.com/augment-connector/augment-connector/internal/demo"
	"github.com/augment-connector/augment-connector/internal/ops"
	"github.com/augment-connector/augment-connector/internal/sim"
)

// Set at link time: -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = ""
	date    = ""
)

const usage = `usage: augment-connector <command> [flags]

commands:
  run --config FILE     consume and write, until SIGTERM
  check --config FILE [--sample FILE] [--live]
                        validate a config offline, and show what sample records would send;
                        --live also checks brokers, topics, group, registry, dead-letter topic
                        and tokens; exit 1 when there are problems
  demo [--events N]     run a broker, registry, simulator, producer and the connector in one process
  test FILE...          run pipeline tests (YAML: input records, table rows and the expected
                        requests, skips or dead letters) offline; exit 1 when one fails
  replay --config FILE [--from DLQ_TOPIC]
                        re-process dead-lettered records through their pipelines, then exit
  get --config FILE [--tenant NAME] IDENTIFIER
                        read an interaction through the API (privacy values masked)
  sim [flags]           serve the Data Augmentation API simulator (sim --help)
  version               print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks an error of the command line: exit code 2.
var errUsage = errors.New("usage")

// errBadFlags marks flags the flag package refused and has already reported with the
// command's usage: exit code 2, and nothing more to print.
var errBadFlags = errors.New("invalid flags")

// parseFlags parses args into fs, marking a refusal as errBadFlags.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("%w: %w", errBadFlags, err)
	}
	return err
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stderr)
	case "check":
		err = cmdCheck(ctx, args[1:], stdout, stderr)
	case "demo":
		err = demo.RunCommand(ctx, args[1:], stdout, stderr)
	case "replay":
		err = cmdReplay(ctx, args[1:], stdout, stderr)
	case "test":
		err = cmdTest(ctx, args[1:], stdout, stderr)
	case "get":
		err = cmdGet(ctx, args[1:], stdout, stderr)
	case "sim":
		err = sim.RunCommand(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errBadFlags):
		return 2
	case errors.Is(err, errTestsFailed):
		return 1
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, err)
		return 2
	case errors.As(err, new(config.Errors)):
		// One problem a line, each starting file:line: so that editors and CI logs link them.
		fmt.Fprintln(stderr, err)
		return 1
	default:
		fmt.Fprintln(stderr, "augment-connector:", err)
		return 1
	}
}

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one exits at once,
// committing nothing more (what was committed was written).
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
		case <-done:
			return
		}
		cancel()
		select {
		case <-ch:
			fmt.Fprintln(os.Stderr, "augment-connector: second signal, exiting at once")
			os.Exit(1)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}

func versionString() string {
	v := version
	if commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	if commit != "" {
		v += " " + commit
	}
	if date != "" {
		v += " " + date
	}
	return "augment-connector " + v
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/augment-connector/config.yaml", "config file")
	logFormat := fs.String("log-format", "", "json or console (overrides logging.format)")
	metricsListen := fs.String("metrics-listen", "", "address of /metrics, /healthz and /readyz (overrides metrics.listen; default :9090)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	compiled, err := app.Load(*path)
	if err != nil {
		return err
	}
	cfg := compiled.Config
	if *logFormat != "" {
		cfg.Logging.Format = *logFormat
	}
	log, err := newLogger(cfg.Logging.Level, cfg.Logging.Format, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	opts, err := compiled.Options(log)
	if err != nil {
		return err
	}
	flush, err := startTracing(ctx, cfg, &opts, log)
	if err != nil {
		return err
	}
	defer flush() // after Run returned, before the logger's Sync
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts.Metrics = connector.NewMetrics(reg)
	c, err := connector.New(opts)
	if err != nil {
		return err
	}
	reg.MustRegister(c.Collector())
	if compiled.Tables != nil {
		reg.MustRegister(compiled.Tables.Collector())
	}
	if *metricsListen != "" {
		cfg.Metrics.Listen = *metricsListen
	}
	// The endpoints outlive ctx until Run returns, so /readyz says "shutting down" meanwhile.
	opsCtx, stopOps := context.WithCancel(context.WithoutCancel(ctx))
	defer stopOps()
	if cfg.Metrics.Listen != "" {
		addr, done, err := ops.Serve(opsCtx, cfg.Metrics.Listen, ops.Handler(reg, c.Health))
		if err != nil {
			return err
		}
		defer func() { stopOps(); <-done }()
		log.Info("serving metrics and health", zap.String("addr", addr))
	}
	log.Info("starting", zap.String("version", versionString()), zap.Int("pipelines", len(opts.Pipelines)))
	if err := c.Run(ctx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// startTracing sets opts.TracerProvider when cfg enables tracing, and returns what exports
// the spans still buffered: the caller defers it once Run returned.
func startTracing(ctx context.Context, cfg *config.Config, opts *connector.Options, log *zap.Logger) (flush func(), err error) {
	tp, err := app.TracerProvider(ctx, &cfg.Tracing, versionString())
	if err != nil || tp == nil {
		return func() {}, err
	}
	opts.TracerProvider = tp
	log.Info("tracing", zap.String("endpoint", cfg.Tracing.Endpoint), zap.Float64("sampleRatio", cfg.Tracing.SampleRatio))
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("exporting the last spans failed", zap.Error(err))
		}
	}, nil
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file to check")
	sample := fs.String("sample", "", "NDJSON file of records to run through the pipelines offline, printing the requests each would produce or its dead-letter reason")
	live := fs.Bool("live", false, "also check the environment: brokers, topics, group, registry subjects, the dead-letter topic (one marked write) and each tenant's token (one GET, which counts against its budget)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("%w: check needs --config FILE", errUsage)
	}
	compiled, err := app.Load(*path)
	if err != nil {
		return err
	}
	cfg := compiled.Config
	// Warnings go to stderr, file:line first like errors, so an insecure setting that loads is
	// still seen by whoever checks the file (and by CI logs), without failing the check.
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stderr, "warning:", w)
	}
	// How the pipelines use the API: what the API accepts but agents or the IVR may not want.
	for _, w := range compiled.Lint() {
		fmt.Fprintln(stderr, "warning:", w)
	}
	tablesNote := ""
	if n := len(cfg.Tables); n > 0 {
		tablesNote = fmt.Sprintf("%d tables, ", n)
	}
	fmt.Fprintf(stdout, "%s: ok (%d pipelines, %s%d tenants)\n", *path, len(cfg.Pipelines), tablesNote, len(cfg.Tenants))
	for _, name := range slices.Sorted(maps.Keys(cfg.Tenants)) {
		t := cfg.Tenants[name]
		fmt.Fprintf(stdout, "tenant %s: POST %s/{identifier}\n", name, connector.BaseEndpoint(t.BaseURL()))
	}
	if *sample != "" {
		problems, err := compiled.CheckSamples(ctx, *sample, stdout)
		if err != nil {
			return err
		}
		if problems > 0 {
			return fmt.Errorf("%s: %d records would be dead-lettered", *sample, problems)
		}
	}
	if *live {
		if failed := compiled.CheckLive(ctx, stdout, nopLogger()); failed > 0 {
			return fmt.Errorf("%d live check(s) failed", failed)
		}
	}
	return nil
}

// newLogger builds the process's zap logger: JSON by default, console on request.
func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("logging.level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "", "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("logging.format: %q is not json or console", format)
	}
	// Locked: the connector and the Kafka client log from many goroutines at once.
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}
