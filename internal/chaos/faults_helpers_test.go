//go:build chaos

package chaos

// Helpers of the fault scenarios (API outage, 429s and a revoked token, poison records, broker
// outage): producing records encoded by the scenario, a schema registry that can go down,
// reading a child's /readyz, its log lines and its memory.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// ProduceEncoded is Produce with the record values made by enc instead of JSON.
func (e *Env) ProduceEncoded(w *Workload, from, to int, enc func(ev *Event) []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*opTimeout)
	defer cancel()
	recs := make([]*kgo.Record, 0, to-from)
	for i := from; i < to; i++ {
		ev := &w.Events[i]
		recs = append(recs, &kgo.Record{Topic: e.Topic, Key: []byte(ev.ID), Value: enc(ev)})
	}
	if err := e.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("producing events %d..%d: %w", from, to, err)
	}
	for i, r := range recs {
		w.Events[from+i].Partition, w.Events[from+i].Offset = r.Partition, r.Offset
	}
	return nil
}

// AddEvent appends an event of a new identifier (Seq 1) to the workload and returns its
// index: a record the scenario makes itself (a poison record), which Verify then knows by
// its identifier, partition and offset.
func (w *Workload) AddEvent(ev Event) int {
	if len(w.byID[ev.ID]) > 0 {
		panic("AddEvent: identifier " + ev.ID + " already has events")
	}
	ev.Seq = 1
	w.Events = append(w.Events, ev)
	w.byID[ev.ID] = []int{len(w.Events) - 1}
	return len(w.Events) - 1
}

// useRegistry turns a config written by WriteConfig into one whose pipeline decodes
// Confluent-framed Avro with the schemas of the registry at url.
func useRegistry(t *testing.T, path, url string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading config: %v", err)
	}
	s := string(b)
	if !strings.Contains(s, "decode: {format: json}") {
		t.Fatalf("config %s has no JSON decode to replace", path)
	}
	s = strings.Replace(s, "decode: {format: json}", "decode: {format: avro-registry}", 1)
	s += "schemaRegistry:\n  urls: [" + url + "]\n"
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatalf("writing config: %v", err)
	}
}

// registry is an in-process schema registry (srfake) behind a proxy of its own that Stop
// takes down (connections refused) and Start brings back on the same address, so a scenario
// can make the registry unreachable while the schemas it holds survive.
type registry struct {
	t    *testing.T
	fake *srfake.Registry
	URL  string // of the proxy: what the connector uses
	addr string

	mu  sync.Mutex
	srv *http.Server
	// done is closed when the current server's Serve returned.
	done chan struct{}
}

func startRegistry(t *testing.T) *registry {
	t.Helper()
	fake := srfake.New()
	t.Cleanup(fake.Close)
	r := &registry{t: t, fake: fake, addr: "127.0.0.1:0"}
	r.Start()
	r.URL = "http://" + r.addr
	t.Cleanup(r.Stop)
	return r
}

// FakeURL is the registry itself, reachable when the proxy is down (to register schemas).
func (r *registry) FakeURL() string { return r.fake.URL() }

// Start serves the proxy (again) on its address.
func (r *registry) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		return
	}
	target, err := url.Parse(r.fake.URL())
	if err != nil {
		r.t.Fatalf("registry url: %v", err)
	}
	var ln net.Listener
	for range 50 { // the port was just released: retry briefly
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("registry proxy listening on %s: %v", r.addr, err)
	}
	r.addr = ln.Addr().String()
	srv := &http.Server{Handler: httputil.NewSingleHostReverseProxy(target), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	r.srv, r.done = srv, done
}

// Stop closes the proxy's listener and connections: the registry is unreachable.
func (r *registry) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv == nil {
		return
	}
	_ = r.srv.Close()
	<-r.done
	r.srv = nil
}

// get fetches path from the process's metrics and health server.
func (p *Proc) get(path string) (int, string, error) {
	p.mu.Lock()
	addr := p.metricsAddr
	p.mu.Unlock()
	if addr == "" {
		return 0, "", errors.New("no metrics address")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// Metric returns the sum of the samples of a metric family (every label set) in a fresh
// scrape of /metrics, kept for the secrets check like every scrape.
func (p *Proc) Metric(name string) (float64, error) {
	code, body, err := p.get("/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("/metrics answered %d", code)
	}
	p.mu.Lock()
	p.scrapes = append(p.scrapes, body)
	p.mu.Unlock()
	var sum float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	if !found {
		return 0, fmt.Errorf("no metric %s", name)
	}
	return sum, nil
}

// logLine is one JSON log line of a child.
type logLine struct {
	TS    string `json:"ts"` // zap's ISO 8601: 2006-01-02T15:04:05.000Z0700
	Level string `json:"level"`
	Msg   string `json:"msg"`
	Time  time.Time
	raw   string
}

// LogLines returns the process's JSON log lines (others skipped).
func (p *Proc) LogLines() []logLine {
	b, _ := os.ReadFile(p.LogPath)
	var out []logLine
	for _, l := range bytes.Split(b, []byte("\n")) {
		var ll logLine
		if json.Unmarshal(l, &ll) == nil && ll.Msg != "" {
			ll.Time, _ = time.Parse("2006-01-02T15:04:05.000Z0700", ll.TS)
			ll.raw = string(l)
			out = append(out, ll)
		}
	}
	return out
}

// memKB reads a field (VmRSS, VmHWM) of the process's /proc status, in KiB.
func (p *Proc) memKB(field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc status", field)
}

// scaled returns d, or d times CHAOS_OUTAGE_SCALE (a number between 0 and 1) for local runs
// that shorten the outages; CI leaves it unset and runs the durations.
func scaled(t *testing.T, d time.Duration) time.Duration {
	s := os.Getenv("CHAOS_OUTAGE_SCALE")
	if s == "" {
		return d
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f > 1 {
		t.Fatalf("CHAOS_OUTAGE_SCALE=%q: want a number in (0, 1]", s)
	}
	return time.Duration(float64(d) * f)
}
