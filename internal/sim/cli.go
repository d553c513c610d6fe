package sim

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"

	"github.com/augment-connector/augment-connector/internal/api"
)

// shutdownTimeout bounds the wait for requests in flight when the command stops.
const shutdownTimeout = 5 * time.Second

// errNoCA is returned when --ca-out is given without a generated certificate.
var errNoCA = errors.New("--ca-out needs the generated certificate: not with --cert/--key or --plain-http")

// tenantFlags collects repeated --tenant ID:TOKEN values.
// hostFlags collects repeated --admin-host values.
type hostFlags []string

func (f *hostFlags) String() string { return strings.Join(*f, ",") }

func (f *hostFlags) Set(v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return fmt.Errorf("want host:port, got %q", v)
	}
	*f = append(*f, v)
	return nil
}

type tenantFlags []Tenant

func (f *tenantFlags) String() string {
	ids := make([]string, len(*f))
	for i, t := range *f {
		ids[i] = t.ID + ":***"
	}
	return strings.Join(ids, ",")
}

func (f *tenantFlags) Set(v string) error {
	id, token, ok := strings.Cut(v, ":")
	if !ok || id == "" || token == "" {
		// The value holds a token: it is not echoed.
		return errors.New("want ID:TOKEN")
	}
	*f = append(*f, Tenant{ID: id, Token: token})
	return nil
}

// RunCommand runs the simulator as `augment-connector sim [flags]`: it parses args, listens,
// prints the URL to stdout, logs to stderr, and serves until ctx is cancelled, then shuts down
// gracefully. A bad flag returns an error (flag.ErrHelp for -h).
func RunCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		tenants     tenantFlags
		listen      = fs.String("listen", "127.0.0.1:8443", "`host:port` to listen on")
		tenantsFile = fs.String("tenants-file", "", "YAML `file` of tenants: a list of {id, token}")
		autoCreate  = fs.Bool("auto-create", false, "create an unknown interaction on its first POST instead of answering 404")
		rateLimit   = fs.Int("rate-limit", api.DefaultRequestsPerMinute, "requests per rolling 60 s per tenant, every authenticated request counted; 0 = off")
		retryAfter  = fs.Bool("retry-after", false, "add Retry-After to the rate limit's 429s")
		plainHTTP   = fs.Bool("plain-http", false, "serve plain HTTP instead of HTTPS")
		certFile    = fs.String("cert", "", "PEM certificate `file` (chain) to serve instead of a generated one")
		keyFile     = fs.String("key", "", "PEM private key `file` of --cert")
		caOut       = fs.String("ca-out", "", "write the generated CA certificate (PEM) to `file`, for clients to trust")
		routesFile  = fs.String("routes", "", "YAML `file` of IVR Test Variable routes for the interaction page")
		journalSize = fs.Int("journal-size", DefaultJournalSize, "requests the journal keeps")
		latency     = fs.Duration("latency", 0, "added latency of every API response")
		jitter      = fs.Duration("latency-jitter", 0, "random extra latency, uniform in [0, jitter)")
		errorRate   = fs.Float64("error-rate", 0, "probability (0-1) of a 500")
		dropRate    = fs.Float64("drop-rate", 0, "probability (0-1) of closing the connection without a response")
		seed        = fs.Uint64("seed", 1, "seed of the faults' random source")
		verbose     = fs.Bool("v", false, "log every API request (never values or tokens)")
	)
	fs.Var(&tenants, "tenant", "tenant credential `ID:TOKEN` (repeatable)")
	var adminHosts hostFlags
	fs.Var(&adminHosts, "admin-host", "`host:port` the Host header of admin POSTs and DELETEs may also be, besides the listen address and localhost with its port (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("parsing arguments: unexpected %q", fs.Arg(0))
	}

	cfg := Config{
		Tenants:     tenants,
		AutoCreate:  *autoCreate,
		RateLimit:   *rateLimit,
		RetryAfter:  *retryAfter,
		JournalSize: *journalSize,
		PlainHTTP:   *plainHTTP,
		Seed:        *seed,
		AdminHosts:  adminHosts,
		Faults:      Faults{Latency: *latency, LatencyJitter: *jitter, ErrorRate: *errorRate, DropRate: *dropRate},
	}
	if *tenantsFile != "" {
		more, err := loadTenants(*tenantsFile)
		if err != nil {
			return err
		}
		cfg.Tenants = append(cfg.Tenants, more...)
	}
	if *routesFile != "" {
		routes, err := LoadRoutes(*routesFile)
		if err != nil {
			return err
		}
		cfg.Routes = routes
	}
	if (*certFile == "") != (*keyFile == "") {
		return errors.New("configuring TLS: --cert and --key go together")
	}
	if *certFile != "" {
		if *plainHTTP {
			return errors.New("configuring TLS: --cert/--key and --plain-http exclude each other")
		}
		var err error
		if cfg.CertPEM, err = os.ReadFile(*certFile); err != nil {
			return fmt.Errorf("reading certificate: %w", err)
		}
		if cfg.KeyPEM, err = os.ReadFile(*keyFile); err != nil {
			return fmt.Errorf("reading key: %w", err)
		}
	}
	if *caOut != "" && (*certFile != "" || *plainHTTP) {
		return errNoCA
	}
	level := zapcore.InfoLevel
	if *verbose {
		level = zapcore.DebugLevel
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(zapcore.AddSync(stderr)), level))
	defer func() { _ = log.Sync() }()
	cfg.Logger = log.Named("sim")

	s, err := New(cfg)
	if err != nil {
		return err
	}
	if *caOut != "" {
		if err := os.WriteFile(*caOut, s.CACertPEM(), 0o644); err != nil {
			return fmt.Errorf("writing CA certificate: %w", err)
		}
	}
	url, err := s.Start(ctx, *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "simulator listening on %s\n", url)
	if *caOut != "" {
		fmt.Fprintf(stdout, "CA certificate written to %s\n", *caOut)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		return err
	}
	log.Info("simulator stopped", zap.Uint64("requests", s.Stats().Total))
	return nil
}

// loadTenants reads a tenants file: a YAML list of {id, token}, strictly.
func loadTenants(path string) ([]Tenant, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading tenants: %w", err)
	}
	var tenants []Tenant
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&tenants); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decoding tenants file %s: %w", path, err)
	}
	return tenants, nil
}
