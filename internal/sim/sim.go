// Package sim simulates the 8x8 Contact Center Data Augmentation API
// (docs/DESIGN.md, "The API contract"): POST and GET /api/v1/interaction/data/{identifier}
// with the contract's bodies and error codes, Basic-auth tenants, the rolling per-tenant rate
// limit, and interactions that exist only once created.
//
// It is the project's only ground truth for the remote API, so it is strict where the contract
// is: the same validation as the connector (package api), every authenticated request counted
// against the limit, nothing applied from a request with one invalid variable. Around that it
// adds what a test needs and the real API cannot give: injectable faults (latency, 500s, dropped
// connections, outages, revoked tokens, forced 429s), a journal of every request, counters, and
// server-rendered pages that show what an agent and an IVR script would see.
//
// The /sim/* admin endpoints and the pages have no authentication: the simulator listens on
// loopback by default and its journal holds values as received, private ones included. The
// admin requests that change state need a Host header naming the simulator and, for POSTs, a
// JSON Content-Type, so a web page the developer visits cannot change them (see guardAdmin).
package sim

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Defaults of Config.
const (
	DefaultJournalSize  = 100000
	DefaultMaxBodyBytes = 1 << 20
	// RateWindow is the rolling window of the rate limit.
	RateWindow = 60 * time.Second
)

// Errors of the in-process API, for callers to branch on.
var (
	// ErrUnknownTenant is returned when a tenant is not configured.
	ErrUnknownTenant = errors.New("unknown tenant")
	// ErrInteractionExists is returned by CreateInteraction for an identifier already in use.
	ErrInteractionExists = errors.New("interaction already exists")
	// ErrInteractionNotFound is returned by EndInteraction for an unknown or ended identifier.
	ErrInteractionNotFound = errors.New("interaction not found")
	// ErrStarted is returned by Start when the server already listens.
	ErrStarted = errors.New("server already started")
)

// Tenant is one tenant's credential: HTTP Basic username (the tenant ID) and password (the
// action token).
type Tenant struct {
	ID    string `yaml:"id"`
	Token string `yaml:"token"`
}

// Config configures a Server. The zero value of each field is usable except Tenants, which
// needs at least one entry.
type Config struct {
	// Tenants that may authenticate; the first is the default tenant of admin calls that name
	// none.
	Tenants []Tenant
	// AutoCreate makes a POST to an unknown identifier create the interaction instead of
	// answering 404.
	AutoCreate bool
	// RateLimit is the number of requests a tenant may make in any rolling RateWindow; every
	// authenticated request counts, whatever its outcome (a 429 too). 0 turns the limit off; the
	// CLI's default is api.DefaultRequestsPerMinute.
	RateLimit int
	// RetryAfter adds a Retry-After header (whole seconds until the oldest request in the window
	// leaves it) to the rate limit's 429s.
	RetryAfter bool
	// JournalSize is how many requests the journal keeps (default DefaultJournalSize); the
	// counters of Stats cover every request.
	JournalSize int
	// MaxBodyBytes bounds a POST body (default DefaultMaxBodyBytes); a larger one gets a 400.
	MaxBodyBytes int64
	// Routes are the IVR Test Variable rules the interaction page evaluates.
	Routes []Route
	// Faults are the faults in force at start; PatchFaults and POST /sim/faults change them.
	Faults Faults
	// Seed seeds the random source of the faults, so a run can be repeated.
	Seed uint64
	// PlainHTTP serves HTTP instead of HTTPS.
	PlainHTTP bool
	// CertPEM and KeyPEM are the server's certificate chain and key. When both are empty and
	// PlainHTTP is false, New makes a CA and a certificate for 127.0.0.1, ::1 and localhost.
	CertPEM, KeyPEM []byte
	// Clock is the time source (default time.Now); tests inject one to move the rate window
	// and outages without sleeping.
	Clock func() time.Time
	// Logger receives start-up and per-request debug lines (default: none). It never receives
	// a token or a variable's value.
	Logger *zap.Logger
	// AdminHosts are host:port values the Host header of a state-changing admin request
	// (POST /sim/faults, POST and DELETE /sim/interactions) may also be, besides the listen
	// address and loopback names with its port: the name the simulator is reached by, like
	// sim:8443 in a compose network. Anything else gets a 403, so a web page the developer
	// visits cannot change faults through DNS rebinding.
	AdminHosts []string
}

// Server is one simulated API. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	clock   func() time.Time
	log     *zap.Logger
	tenants map[string]*tenant
	order   []*tenant // as configured; order[0] is the default tenant
	journal *journal
	pages   *template.Template
	handler http.Handler

	tlsConfig *tls.Config // nil with PlainHTTP
	caPEM     []byte      // the generated CA, nil otherwise

	// sleep waits out injected latency; tests replace it to observe the delay without waiting.
	sleep func(ctx context.Context, d time.Duration) error

	faultsMu sync.Mutex
	faults   faultState
	rng      *rand.Rand // guarded by faultsMu

	life   sync.Mutex // guards srv and served
	srv    *http.Server
	served chan struct{} // closed when the serving goroutine returns
	// addr is the address Start listens on, for the admin Host check; nil before Start.
	addr atomic.Pointer[string]
}

// tenant is one tenant's credential, rate window and interactions.
type tenant struct {
	id        string
	tokenHash [sha256.Size]byte

	mu           sync.Mutex
	window       window
	interactions map[string]*interaction
}

// New checks cfg and builds a Server; it starts nothing (see Start and Handler).
func New(cfg Config) (*Server, error) {
	if len(cfg.Tenants) == 0 {
		return nil, errors.New("configuring tenants: at least one tenant is required")
	}
	if cfg.RateLimit < 0 {
		return nil, fmt.Errorf("configuring rate limit: must be 0 (off) or more, got %d", cfg.RateLimit)
	}
	if cfg.JournalSize < 0 || cfg.MaxBodyBytes < 0 {
		return nil, errors.New("configuring limits: journal size and body size must not be negative")
	}
	if cfg.JournalSize == 0 {
		cfg.JournalSize = DefaultJournalSize
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if err := cfg.Faults.validate(); err != nil {
		return nil, err
	}
	for i, r := range cfg.Routes {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("configuring route %d: %w", i+1, err)
		}
	}
	s := &Server{
		cfg:     cfg,
		clock:   cfg.Clock,
		log:     cfg.Logger,
		tenants: make(map[string]*tenant, len(cfg.Tenants)),
		journal: newJournal(cfg.JournalSize),
		sleep:   sleepContext,
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.faults.Faults = cfg.Faults
	for i, t := range cfg.Tenants {
		if t.ID == "" || t.Token == "" {
			return nil, fmt.Errorf("configuring tenant %d: id and token are required", i+1)
		}
		if _, dup := s.tenants[t.ID]; dup {
			return nil, fmt.Errorf("configuring tenant %d: duplicate id %q", i+1, t.ID)
		}
		tn := &tenant{
			id:           t.ID,
			tokenHash:    sha256.Sum256([]byte(t.Token)),
			window:       window{limit: cfg.RateLimit},
			interactions: make(map[string]*interaction),
		}
		s.tenants[t.ID] = tn
		s.order = append(s.order, tn)
	}
	if !cfg.PlainHTTP {
		if err := s.setupTLS(); err != nil {
			return nil, err
		}
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s.pages = pages
	s.handler = s.routes()
	return s, nil
}

// Handler returns the simulator's HTTP handler: the API, the admin endpoints and the pages.
// Use it with httptest, or call Start to listen.
func (s *Server) Handler() http.Handler { return s.handler }

// CACertPEM returns the PEM of the CA that signed the generated server certificate, for a client
// to trust; nil with PlainHTTP or a given certificate.
func (s *Server) CACertPEM() []byte { return s.caPEM }

// Start listens on addr (host:port; port 0 picks one) and serves in a goroutine until Shutdown
// or Close. It returns the base URL, https:// unless PlainHTTP. ctx bounds only the listen.
func (s *Server) Start(ctx context.Context, addr string) (string, error) {
	s.life.Lock()
	defer s.life.Unlock()
	if s.srv != nil {
		return "", ErrStarted
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listening on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	s.srv, s.served = srv, make(chan struct{})
	listening := ln.Addr().String()
	s.addr.Store(&listening)
	refusing := &refusingListener{Listener: ln, refuse: s.refusing}
	scheme := "https"
	if s.tlsConfig == nil {
		scheme = "http"
	}
	url := scheme + "://" + ln.Addr().String()
	go func() {
		defer close(s.served)
		var err error
		if s.tlsConfig == nil {
			err = srv.Serve(refusing)
		} else {
			err = srv.ServeTLS(refusing, "", "")
		}
		if !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serving", zap.Error(err))
		}
	}()
	s.log.Info("simulator listening", zap.String("url", url), zap.Int("tenants", len(s.order)),
		zap.Bool("autoCreate", s.cfg.AutoCreate), zap.Int("rateLimit", s.cfg.RateLimit))
	if host, _, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			s.log.Warn("listening beyond loopback: /sim/journal shows variable values, private ones included, without authentication")
		}
	}
	return url, nil
}

// The bounds of one request on a listening simulator. A slow client must not hold a
// connection forever, but WriteTimeout also bounds the injected latency and a large journal's
// download, so it is generous: a fault of more than 5 minutes' latency is cut off.
const (
	readTimeout  = time.Minute
	writeTimeout = 5 * time.Minute
)

// Shutdown stops listening and waits, up to ctx, for requests in flight; then it waits for the
// serving goroutine. Without Start it does nothing.
func (s *Server) Shutdown(ctx context.Context) error {
	s.life.Lock()
	srv, served := s.srv, s.served
	s.life.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("shutting down: %w", err), srv.Close())
	}
	<-served
	return err
}

// Close stops listening and closes every connection at once, then waits for the serving
// goroutine.
func (s *Server) Close() error {
	s.life.Lock()
	srv, served := s.srv, s.served
	s.life.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-served
	return err
}

// tenantOrDefault resolves an admin call's tenant; "" is the default tenant.
func (s *Server) tenantOrDefault(id string) (*tenant, error) {
	if id == "" {
		return s.order[0], nil
	}
	t := s.tenants[id]
	if t == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTenant, id)
	}
	return t, nil
}

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refusingListener closes each new connection at once while a "refuse" outage lasts, so a client
// that dials then sees its connection fail, as it would against a service that is down.
type refusingListener struct {
	net.Listener
	refuse func() bool
}

func (l *refusingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || !l.refuse() {
			return c, err
		}
		_ = c.Close()
	}
}
