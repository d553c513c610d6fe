package connector_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/kafkatest"
	"github.com/augment-connector/augment-connector/internal/ops"
	"github.com/augment-connector/augment-connector/internal/sim"
	"github.com/augment-connector/augment-connector/internal/sim/simtest"
	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// TestMetricsDuringRun scrapes the connector's metrics while it works through a workload and
// checks that the counters match the workload and that lag falls to zero.
func TestMetricsDuringRun(t *testing.T) {
	seeds := kafkatest.Brokers(t)
	topic := kafkatest.UniqueName(t, "metrics")
	kafkatest.CreateTopic(t, seeds, topic, 3)

	srv, url := simtest.Start(t, sim.Config{Tenants: []sim.Tenant{{ID: "t1", Token: "metrics-secret-token"}}, AutoCreate: true, PlainHTTP: true})

	const n, filtered = 300, 60
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		kind := "customer"
		if i < filtered {
			kind = "noise"
		}
		id := fmt.Sprintf("int-%d", i%50)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(id),
			Value: []byte(fmt.Sprintf(`{"kind":%q,"id":%q,"tier":"T%d"}`, kind, id, i))})
	}
	kafkatest.ProduceSync(t, seeds, recs...)

	pl, err := transform.Compile(transform.Spec{
		Name:       "p",
		Filter:     `after.kind == "customer"`,
		Identifier: "after.id",
		Variables:  []transform.VariableSpec{{Name: "_tier", Value: "after.tier", Display: transform.Attr{Literal: true}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := connector.NewMetrics(reg)
	group := kafkatest.UniqueName(t, "g")
	c, err := connector.New(connector.Options{
		KafkaOpts: []kgo.Opt{kgo.SeedBrokers(seeds...)},
		Group:     group,
		Pipelines: []connector.Pipeline{{Name: "p", Topics: []string{topic}, Tenant: "main", Decoder: schemas.NewJSONDecoder(), Transform: pl}},
		Tenants: map[string]connector.TenantOptions{"main": {
			BaseURL: url, TenantID: "t1", Token: "metrics-secret-token", RequestsPerMinute: 100_000,
		}},
		CommitInterval: 100 * time.Millisecond,
		Metrics:        m,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(c.Collector())
	// The endpoints as `run` serves them, scraped over HTTP below.
	ep := httptest.NewServer(ops.Handler(reg, c.Health))
	defer ep.Close()
	scrape := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(ep.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := scrape("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not connected") {
		t.Fatalf("/readyz before Run = %d %s, want 503 naming the missing connection", code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		committed := kafkatest.CommittedOffsets(t, seeds, group, topic)
		sum := int64(0)
		for _, o := range committed {
			sum += o
		}
		if sum == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %d of %d", sum, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The lag gauge reads the connector's own view of its commits.
	waitLag := time.Now().Add(5 * time.Second)
	for {
		lag := 0.0
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, mf := range mfs {
			if mf.GetName() == "augment_connector_consumer_lag_records" {
				for _, mm := range mf.GetMetric() {
					lag += mm.GetGauge().GetValue()
					seen++
				}
			}
		}
		if seen == 3 && lag == 0 {
			break
		}
		if time.Now().After(waitLag) {
			t.Fatalf("consumer lag = %v over %d partitions, want 0 over 3", lag, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ok := 0
	for _, e := range srv.Journal(0) {
		if e.Status == 200 {
			ok++
		}
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"augment_connector_records_consumed_total", map[string]string{"pipeline": "p"}, n},
		{"augment_connector_records_filtered_total", map[string]string{"pipeline": "p"}, filtered},
		{"augment_connector_api_requests_total", map[string]string{"tenant": "main", "status_class": "2xx", "code": "200"}, float64(ok)},
		{"augment_connector_pending_records", nil, 0},
		{"augment_connector_budget_limit_requests", map[string]string{"tenant": "main"}, 100_000},
		{"augment_connector_api_request_variables", map[string]string{"tenant": "main"}, float64(ok)}, // histogram count
	} {
		if got, found := gathered(t, reg, tc.name, tc.labels); !found || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.name, tc.labels, got, found, tc.want)
		}
	}
	if code, body := scrape("/readyz"); code != 200 {
		t.Errorf("/readyz while running = %d %s, want 200", code, body)
	}
	if code, _ := scrape("/healthz"); code != 200 {
		t.Errorf("/healthz while running = %d, want 200", code)
	}
	code, body := scrape("/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		fmt.Sprintf("augment_connector_records_consumed_total{pipeline=\"p\"} %d\n", n),
		fmt.Sprintf("augment_connector_records_filtered_total{pipeline=\"p\"} %d\n", filtered),
		fmt.Sprintf("augment_connector_consumer_lag_records{partition=\"0\",topic=%q} 0\n", topic),
		"augment_connector_partitions_paused 0\n",
		`augment_connector_commits_total{result="ok"}`,
		`augment_connector_produce_to_write_seconds_count{tenant="main"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	var text strings.Builder
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		text.WriteString(mf.String())
	}
	if strings.Contains(text.String(), "metrics-secret-token") || strings.Contains(text.String(), "int-") {
		t.Error("metrics contain the token or an identifier")
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
}

// gathered returns the value of the series of name with exactly labels (a counter's or
// gauge's value, a histogram's count).
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !sameLabels(m.GetLabel(), labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func sameLabels(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, l := range got {
		if want[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}
