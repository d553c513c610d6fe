package demo

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// metricName finds the metric names a dashboard or a rule reads.
var metricName = regexp.MustCompile(`augment_connector_[a-z0-9_]+`)

// referenced returns the metric names the chart's dashboard and alert rules read.
func referenced(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, f := range []string{"../../helm/augment-connector/files/dashboard.json", "../../helm/augment-connector/files/alerts.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, metricName.FindAllString(string(b), -1)...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// scraped returns the metric names of one scrape of url (sample names, so a histogram's
// _bucket, _sum and _count).
func scraped(url string) (map[string]bool, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		out[name] = true
	}
	return out, sc.Err()
}

// TestDashboardAndAlertsReadRealMetrics runs the demo (the budget ledger, joins, the
// simulator) with its metrics served, and checks that every metric the chart's Grafana
// dashboard and PrometheusRule read appears in a scrape of it: a renamed metric, or a panel
// written for one that does not exist, fails here rather than on an operator's empty graph.
func TestDashboardAndAlertsReadRealMetrics(t *testing.T) {
	want := referenced(t)
	if len(want) < 15 {
		t.Fatalf("found only %d metric names in the dashboard and rules: %v", len(want), want)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var runErr error
	go func() {
		defer wg.Done()
		runErr = RunCommand(ctx, []string{"--listen", "127.0.0.1:0", "--metrics-listen", addr, "--rate", "40"}, io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		wg.Wait()
		if runErr != nil && ctx.Err() == nil {
			t.Errorf("demo: %v", runErr)
		}
	}()
	var missing []string
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		got, err := scraped("http://" + addr + "/metrics")
		if err != nil {
			continue // not serving yet
		}
		missing = missing[:0]
		for _, n := range want {
			if !got[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 {
			return
		}
	}
	t.Fatalf("metrics read by the dashboard or the alert rules but absent from the running demo's /metrics: %v", missing)
}
