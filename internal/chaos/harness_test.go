//go:build chaos

package chaos

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/augment-connector/augment-connector/internal/sim"
	"github.com/augment-connector/augment-connector/internal/sim/simtest"
)

// bins are the binaries TestMain builds once for every scenario.
var bins struct {
	connector, kfake string
}

// TestMain builds the real augment-connector binary and the standalone kfake once. Set
// CHAOS_RACE=1 to build the connector with the race detector (slower: about 3x the CPU).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: creating the binaries' directory:", err)
		os.Exit(1)
	}
	bins.connector = filepath.Join(dir, "augment-connector")
	bins.kfake = filepath.Join(dir, "kfake")
	race := os.Getenv("CHAOS_RACE") == "1"
	build := func(out, pkg string, race bool) error {
		args := []string{"build", "-o", out}
		if race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir = repoRoot()
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd.Run()
	}
	code := 1
	if err := build(bins.connector, "./cmd/augment-connector", race); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: building augment-connector:", err)
	} else if err := build(bins.kfake, "./internal/cmd/kfake", false); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: building kfake:", err)
	} else {
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the module's root: this file is internal/chaos/harness_test.go.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// opTimeout bounds one round trip of the test's own Kafka client.
const opTimeout = 30 * time.Second

// ---------------------------------------------------------------------------------------------
// Broker

// Broker is the cluster a scenario runs against: the broker of KAFKA_BROKERS, or a kfake
// process the harness started, which Stop and Start can take down and bring back on the same
// port with the same data (topics, records, committed offsets).
type Broker struct {
	Seeds []string
	// Kind is "kfake" or "kafka" (KAFKA_BROKERS), for the result lines.
	Kind string

	t       *testing.T
	dataDir string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// startBroker returns the scenario's broker; a kfake process is stopped at cleanup.
func startBroker(t *testing.T) *Broker {
	t.Helper()
	if os.Getenv(kafkatest.EnvBrokers) != "" {
		return &Broker{Seeds: kafkatest.Brokers(t), Kind: "kafka", t: t}
	}
	dir := t.TempDir()
	b := &Broker{Kind: "kfake", t: t, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "kfake.log")}
	b.start("127.0.0.1:0")
	t.Cleanup(func() {
		if b.cmd != nil {
			b.Stop()
		}
	})
	return b
}

// External reports whether the broker is KAFKA_BROKERS, which the harness cannot stop.
func (b *Broker) External() bool { return b.cmd == nil && b.dataDir == "" }

func (b *Broker) start(listen string) {
	b.t.Helper()
	logf, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.t.Fatalf("opening kfake log: %v", err)
	}
	defer logf.Close()
	cmd := exec.Command(bins.kfake, "--listen", listen, "--data-dir", b.dataDir, "--partitions", "6")
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.t.Fatalf("kfake stdout: %v", err)
	}
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("starting kfake: %v", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.t.Fatalf("kfake printed no address (%v); see %s", err, b.logPath)
	}
	b.Seeds = []string{strings.TrimSpace(line)}
	b.cmd, b.exited = cmd, make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(b.exited)
	}()
}

// Stop stops a kfake broker with SIGTERM (it saves its state) and waits for it to exit.
func (b *Broker) Stop() {
	b.t.Helper()
	if b.External() {
		b.t.Fatal("cannot stop the broker of KAFKA_BROKERS")
	}
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(30 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
		b.t.Errorf("kfake did not stop within 30s of SIGTERM")
	}
	b.cmd = nil
}

// Start starts a stopped kfake broker again, on the same address with the same data.
func (b *Broker) Start() {
	b.t.Helper()
	if b.External() {
		b.t.Fatal("cannot start the broker of KAFKA_BROKERS")
	}
	if b.cmd != nil {
		return
	}
	b.start(b.Seeds[0])
}

// ---------------------------------------------------------------------------------------------
// Env

// Env is one scenario's world: a broker, a topic and group of its own, the simulator
// in-process over HTTPS, the connector processes started, and a watcher of committed offsets.
type Env struct {
	T      *testing.T
	Name   string // scenario name, for result lines and instance names
	Dir    string
	Broker *Broker
	Sim    *sim.Server
	SimURL string
	CAFile string
	Token  string

	Topic, Group, DLQ string
	Partitions        int32
	// Ledger is the budget ledger topic a config with a budget section names (unique per Env;
	// the connector creates it).
	Ledger string

	cl  *kgo.Client
	adm *kadm.Client

	mu      sync.Mutex
	procs   []*Proc
	seq     int // instances started, for unique names
	watch   *commitWatch
	started time.Time
}

// EnvOptions shape an Env; zero values take the defaults.
type EnvOptions struct {
	Partitions int32      // of the input topic; default 6
	Sim        sim.Config // its Tenants, AutoCreate and JournalSize are set by the harness
}

// simTenant is the tenant id at the simulator and the tenant name in the config.
const simTenant = "acme"

// NewEnv starts the broker, the simulator and the commit watcher of a scenario, and creates
// its input topic.
func NewEnv(t *testing.T, name string, o EnvOptions) *Env {
	t.Helper()
	if o.Partitions == 0 {
		o.Partitions = 6
	}
	e := &Env{T: t, Name: name, Dir: t.TempDir(), Partitions: o.Partitions, Token: "tok-" + rand.Text(), started: time.Now()}
	e.Broker = startBroker(t)
	e.Topic = kafkatest.UniqueName(t, "chaos")
	e.Group = kafkatest.UniqueName(t, "chaos-group")
	e.DLQ = kafkatest.UniqueName(t, "chaos-dlq")
	e.Ledger = kafkatest.UniqueName(t, "chaos-ledger")
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Broker.Seeds...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatalf("creating kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	e.cl, e.adm = cl, kadm.NewClient(cl)
	e.createTopic(e.Topic, o.Partitions)

	cfg := o.Sim
	cfg.Tenants = []sim.Tenant{{ID: simTenant, Token: e.Token}}
	cfg.AutoCreate = true
	if cfg.JournalSize == 0 {
		cfg.JournalSize = 2_000_000
	}
	s, url := simtest.Start(t, cfg)
	e.Sim, e.SimURL = s, url
	e.CAFile = filepath.Join(e.Dir, "sim-ca.pem")
	if err := os.WriteFile(e.CAFile, s.CACertPEM(), 0o644); err != nil {
		t.Fatalf("writing the simulator's CA: %v", err)
	}
	e.watch = startCommitWatch(e)
	// Registered after the sim and the broker, so it runs before they stop.
	t.Cleanup(e.stopAll)
	return e
}

func (e *Env) createTopic(topic string, partitions int32) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	err := kafkatest.Retry(ctx, func() error {
		resp, err := e.adm.CreateTopic(ctx, partitions, -1, nil, topic)
		if err != nil {
			return err
		}
		return resp.Err
	})
	if err != nil {
		e.T.Fatalf("creating topic %q: %v", topic, err)
	}
}

// Committed returns group's committed offsets of topic (partitions without one left out).
func (e *Env) Committed(group, topic string) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	resps, err := e.adm.FetchOffsetsForTopics(ctx, group, topic)
	if err == nil {
		err = resps.Error()
	}
	// kfake answers a group that never committed with this error, Kafka with offsets of -1.
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64)
	for p, r := range resps[topic] {
		if r.At >= 0 {
			out[p] = r.At
		}
	}
	return out, nil
}

// End returns the end offsets of topic.
func (e *Env) End(topic string) map[int32]int64 {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	out, err := kafkatest.ListEnd(ctx, e.adm, topic)
	if err != nil {
		e.T.Fatal(err)
	}
	return out
}

// WaitCommitted waits until group has committed topic's end offsets on every partition with
// records, failing the test after timeout. It returns how long it waited.
func (e *Env) WaitCommitted(group, topic string, timeout time.Duration) time.Duration {
	e.T.Helper()
	start := time.Now()
	end := e.End(topic)
	var committed map[int32]int64
	var err error
	for {
		committed, err = e.Committed(group, topic)
		if err == nil && caughtUp(committed, end) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			e.T.Fatalf("after %s: group %s committed %v of %s, end %v (last error: %v)", timeout, group, committed, topic, end, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func caughtUp(committed, end map[int32]int64) bool {
	for p, o := range end {
		if o > 0 && committed[p] != o {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------------------------
// Connector configuration and processes

// ConfigOptions are the knobs of a connector config written by WriteConfig; zero values take
// the defaults shown.
type ConfigOptions struct {
	ShutdownTimeout   time.Duration // 15s
	CommitInterval    time.Duration // 200ms
	MaxPendingRecords int           // 20000
	RequestsPerMinute int           // 1,000,000: the budget is not what these scenarios test
	Concurrency       int           // 32
	RequestTimeout    time.Duration // 5s
	// TierValue is the expression of _tier; default after.tier. The replay scenario breaks it.
	TierValue string
	// Filter is the pipeline's filter (default none) and Identifier its identifier (default
	// after.id). PinAttrs are YAML attributes added to the _pin variable, such as
	// `dataType: {expr: "..."}`. The secrets scenario feeds the privacy value through them.
	Filter, Identifier, PinAttrs string
	// Tables are YAML lines under a top-level tables: key (indented by the harness).
	Tables []string
	// IncludePrivateValues sets deadLetter.includePrivateValues: the dead letters of the
	// pipeline (its _pin is privacy: true) then keep the record's value.
	IncludePrivateValues bool
	// TenantExtra and ConnectorExtra are YAML lines added under the tenant and under
	// connector (indented by the harness), for settings this struct does not name.
	TenantExtra, ConnectorExtra []string
	// Coordination is the budget's coordination, "local" or "kafka" (issue 14; "" is kafka,
	// the binary's default): the config's budget section names it and, for kafka, the Env's
	// own ledger topic (allowUnsafeTopic: the test brokers have one node). Every scenario
	// thus runs with the budget ledger unless it asks for local.
	Coordination string
	// ExtraTopics are more input topics of the pipeline, after the Env's Topic.
	ExtraTopics []string
}

var configTmpl = template.Must(template.New("config").Parse(`# written by the chaos harness
kafka:
  brokers: [{{.Brokers}}]
  groupId: {{.Group}}
  clientId: augment-connector-chaos
  fetchMaxWait: 100ms
  sessionTimeout: 6s
  heartbeatInterval: 500ms
  rebalanceTimeout: 20s
  dialTimeout: 3s
{{- if .GroupProtocol}}
  groupProtocol: {{.GroupProtocol}}
{{- end}}
tenants:
  {{.Tenant}}:
    baseURL: {{.URL}}
    tenantId: {{.Tenant}}
    token: ${CHAOS_TOKEN}
    caFile: {{.CAFile}}
    requestsPerMinute: {{.O.RequestsPerMinute}}
    concurrency: {{.O.Concurrency}}
    requestTimeout: {{.O.RequestTimeout}}
    notFoundGrace: 5s
{{- range .O.TenantExtra}}
    {{.}}
{{- end}}
pipelines:
  - name: calls
    topics: [{{.Topic}}{{range .O.ExtraTopics}}, {{.}}{{end}}]
    tenant: {{.Tenant}}
    decode: {format: json}
{{- if .O.Filter}}
    filter: '{{.O.Filter}}'
{{- end}}
    identifier: '{{.O.Identifier}}'
    variables:
      - {name: _tier, value: '{{.O.TierValue}}', ivr: true, display: true, displayName: Tier}
      - {name: _balance, value: after.balance, display: true, dataType: currency}
      - {name: _seq, value: after.seq, dataType: number}
      - {name: _pin, value: after.pin, ivr: true, privacy: true{{if .O.PinAttrs}}, {{.O.PinAttrs}}{{end}}}
      # Which process lifetime wrote a request: CHAOS_INSTANCE is unique per process start.
      - {name: _inst, value: '"${CHAOS_INSTANCE}"'}
{{- if .O.Tables}}
tables:
{{- range .O.Tables}}
  {{.}}
{{- end}}
{{- end}}
deadLetter:
  topic: {{.DLQ}}
{{- if .O.IncludePrivateValues}}
  includePrivateValues: true
{{- end}}
budget:
  coordination: {{.O.Coordination}}
{{- if eq .O.Coordination "kafka"}}
  ledger:
    topic: {{.Ledger}}
    allowUnsafeTopic: true
{{- end}}
connector:
  shutdownTimeout: {{.O.ShutdownTimeout}}
  commitInterval: {{.O.CommitInterval}}
  maxPendingRecords: {{.O.MaxPendingRecords}}
{{- range .O.ConnectorExtra}}
  {{.}}
{{- end}}
logging:
  level: info
  format: json
metrics:
  listen: ""
`))

// WriteConfig writes a connector config for this Env to Dir/name.yaml and returns its path.
func (e *Env) WriteConfig(name string, o ConfigOptions) string {
	e.T.Helper()
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 15 * time.Second
	}
	if o.CommitInterval == 0 {
		o.CommitInterval = 200 * time.Millisecond
	}
	if o.MaxPendingRecords == 0 {
		o.MaxPendingRecords = 20000
	}
	if o.RequestsPerMinute == 0 {
		o.RequestsPerMinute = 1_000_000
	}
	if o.Concurrency == 0 {
		o.Concurrency = 32
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 5 * time.Second
	}
	if o.Coordination == "" {
		o.Coordination = "kafka"
	}
	if o.TierValue == "" {
		o.TierValue = "after.tier"
	}
	if o.Identifier == "" {
		o.Identifier = "after.id"
	}
	var buf bytes.Buffer
	err := configTmpl.Execute(&buf, map[string]any{
		"Brokers": strings.Join(e.Broker.Seeds, ", "), "Group": e.Group, "Tenant": simTenant,
		"URL": e.SimURL, "CAFile": e.CAFile, "Topic": e.Topic, "DLQ": e.DLQ, "Ledger": e.Ledger, "O": o,
		// KAFKA_GROUP_PROTOCOL (classic or consumer) picks the group protocol, as in the
		// integration tests: CI runs the rebalance, crash and shutdown scenarios with both.
		"GroupProtocol": os.Getenv("KAFKA_GROUP_PROTOCOL"),
	})
	if err != nil {
		e.T.Fatalf("rendering config: %v", err)
	}
	path := filepath.Join(e.Dir, name+".yaml")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		e.T.Fatalf("writing config: %v", err)
	}
	return path
}

// Proc is one augment-connector child process: one lifetime of an instance.
type Proc struct {
	Name    string // unique per process start; the _inst its writes carry
	Started time.Time
	LogPath string

	t       *testing.T
	cmd     *exec.Cmd
	stdout  bytes.Buffer
	exited  chan struct{}
	exitErr error
	ended   time.Time

	mu          sync.Mutex
	metricsAddr string
	scrapes     []string // /metrics bodies, for the secrets check
}

// StartConnector starts `augment-connector run --config config` with its metrics on an
// ephemeral port, and waits until it serves them.
func (e *Env) StartConnector(config string) *Proc {
	e.T.Helper()
	return e.startProc(config, "run", "--config", config, "--metrics-listen", "127.0.0.1:0")
}

// StartCommand starts the binary with args (replay, for one), without waiting for metrics.
func (e *Env) StartCommand(config string, args ...string) *Proc {
	e.T.Helper()
	return e.startProc(config, args...)
}

func (e *Env) startProc(config string, args ...string) *Proc {
	e.T.Helper()
	e.mu.Lock()
	e.seq++
	name := fmt.Sprintf("%s-%d", e.Name, e.seq)
	e.mu.Unlock()
	p := &Proc{Name: name, t: e.T, LogPath: filepath.Join(e.Dir, name+".log"), exited: make(chan struct{})}
	logf, err := os.Create(p.LogPath)
	if err != nil {
		e.T.Fatalf("creating log file: %v", err)
	}
	cmd := exec.Command(bins.connector, args...)
	cmd.Env = append(os.Environ(), "CHAOS_TOKEN="+e.Token, "CHAOS_INSTANCE="+name)
	cmd.Stdout, cmd.Stderr = &p.stdout, logf
	p.Started = time.Now()
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		e.T.Fatalf("starting %s: %v", name, err)
	}
	p.cmd = cmd
	go func() {
		p.exitErr = cmd.Wait()
		p.ended = time.Now()
		_ = logf.Close()
		close(p.exited)
	}()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	if args[0] == "run" {
		p.waitMetricsAddr()
	}
	return p
}

// waitMetricsAddr reads the address of /metrics from the log line run writes when it serves.
func (p *Proc) waitMetricsAddr() {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(p.LogPath)
		for _, line := range bytes.Split(b, []byte("\n")) {
			var l struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &l) == nil && l.Msg == "serving metrics and health" && l.Addr != "" {
				p.mu.Lock()
				p.metricsAddr = l.Addr
				p.mu.Unlock()
				return
			}
		}
		select {
		case <-p.exited:
			p.t.Fatalf("%s exited before serving metrics (%v); log:\n%s", p.Name, p.exitErr, tail(p.LogPath))
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.t.Fatalf("%s did not log its metrics address within 30s", p.Name)
}

// Scrape reads the process's /metrics and keeps the body for the secrets check. A process
// that is gone is not scraped.
func (p *Proc) Scrape() {
	p.mu.Lock()
	addr := p.metricsAddr
	p.mu.Unlock()
	if addr == "" || !p.Running() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return // it may be dying; the scrapes taken before count
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p.mu.Lock()
	p.scrapes = append(p.scrapes, string(b))
	p.mu.Unlock()
}

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Kill scrapes the metrics, then sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	p.t.Helper()
	p.Scrape()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Term scrapes the metrics, sends SIGTERM and waits up to within for the exit. It returns
// the exit code and how long the exit took.
func (p *Proc) Term(within time.Duration) (code int, took time.Duration) {
	p.t.Helper()
	p.Scrape()
	sent := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.Wait(within), time.Since(sent)
}

// Wait waits up to within for the process to exit and returns its exit code, killing it and
// failing the test when it does not exit in time.
func (p *Proc) Wait(within time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(within):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		p.t.Errorf("%s did not exit within %s; killed. Log tail:\n%s", p.Name, within, tail(p.LogPath))
	}
	return p.cmd.ProcessState.ExitCode()
}

// Stdout is what the process printed on stdout (after it exited).
func (p *Proc) Stdout() string {
	<-p.exited
	return p.stdout.String()
}

// tail returns the last lines of a log file, for failure messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Procs returns every process started so far.
func (e *Env) Procs() []*Proc {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*Proc(nil), e.procs...)
}

// stopAll kills what is still running at cleanup, and stops the commit watcher.
func (e *Env) stopAll() {
	for _, p := range e.Procs() {
		if p.Running() {
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.exited
		}
	}
	e.watch.stop()
}

// ---------------------------------------------------------------------------------------------
// Commit watch

// commitSnap is one observation of the group's committed offsets: Offsets were read before
// JournalSeq was, so every commit in Offsets happened before the journal held JournalSeq.
type commitSnap struct {
	At         time.Time
	Offsets    map[int32]int64
	JournalSeq uint64
}

// commitWatch polls the committed offsets of the scenario's group every 100ms, so the checks
// can see what was committed when (the only view of commits there is from outside).
type commitWatch struct {
	e      *Env
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	snaps []commitSnap
}

func startCommitWatch(e *Env) *commitWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &commitWatch{e: e, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			w.poll()
		}
	}()
	return w
}

func (w *commitWatch) poll() {
	offs, err := w.e.Committed(w.e.Group, w.e.Topic)
	if err != nil {
		return // the broker may be down (an outage scenario): no observation
	}
	s := commitSnap{At: time.Now(), Offsets: offs, JournalSeq: w.e.Sim.Stats().JournalLastSeq}
	w.mu.Lock()
	w.snaps = append(w.snaps, s)
	w.mu.Unlock()
}

func (w *commitWatch) stop() {
	w.cancel()
	<-w.done
}

// Snapshots returns the observations so far, after taking one more.
func (w *commitWatch) Snapshots() []commitSnap {
	w.poll()
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]commitSnap(nil), w.snaps...)
}

// total is the sum of a snapshot's offsets: how far the group has come.
func total(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// WaitRecovered waits until the group's committed offsets pass from (their sum), returning
// how long it took; it fails the test after timeout. When the group has caught up with the
// input topic and its end has not moved for a second (the stream has ended), it returns too:
// there is nothing left to commit.
func (e *Env) WaitRecovered(from int64, timeout time.Duration) time.Duration {
	e.T.Helper()
	start := time.Now()
	var lastEnd int64 = -1
	endSince := start
	for {
		end := total(e.End(e.Topic))
		if end != lastEnd {
			lastEnd, endSince = end, time.Now()
		}
		if offs, err := e.Committed(e.Group, e.Topic); err == nil {
			if c := total(offs); c > from || (c == end && time.Since(endSince) > time.Second) {
				return time.Since(start)
			}
		}
		if time.Since(start) > timeout {
			e.T.Fatalf("the group's commits did not pass %d within %s", from, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CommittedTotal is the sum of the group's committed offsets now (0 on error).
func (e *Env) CommittedTotal() int64 {
	offs, _ := e.Committed(e.Group, e.Topic)
	return total(offs)
}
