package connector

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/augment-connector/augment-connector/transform"
)

// Metrics are the connector's Prometheus metrics. Create them with NewMetrics on a registry of
// the caller's (no global registry), and pass them in Options. Labels are bounded: pipeline,
// tenant, reason or class from fixed sets, topic and partition; never an identifier.
type Metrics struct {
	consumed      *prometheus.CounterVec
	filtered      *prometheus.CounterVec
	skipped       *prometheus.CounterVec
	deadLettered  *prometheus.CounterVec
	requests      *prometheus.CounterVec
	reqDuration   *prometheus.HistogramVec
	reqVariables  *prometheus.HistogramVec
	coalesced     *prometheus.CounterVec
	budgetWait    *prometheus.CounterVec
	commits       *prometheus.CounterVec
	commitLatency prometheus.Histogram
	e2eLatency    *prometheus.HistogramVec
	unconfirmed   *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them, with the gauges read from c at scrape
// time, on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "augment_connector"
	m := &Metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "records_consumed_total",
			Help: "Records fetched from Kafka."}, []string{"pipeline"}),
		filtered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "records_filtered_total",
			Help: "Records whose filter expression was false."}, []string{"pipeline"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "records_skipped_total",
			Help: "Records that write nothing (delete, tombstone, no identifier, no variables)."}, []string{"pipeline", "reason"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "records_dead_lettered_total",
			Help: "Records written to the dead-letter topic, by error class."}, []string{"pipeline", "class"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "api_requests_total",
			Help: "Attempts to write to the Data Augmentation API, by status class (2xx, 4xx, 5xx, error) and code (the HTTP status: 200, 400, 401, 404, 429, 500, ...; error when none arrived)."}, []string{"tenant", "status_class", "code"}),
		reqDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "api_request_duration_seconds",
			Help: "Duration of one API attempt.", Buckets: prometheus.ExponentialBuckets(0.002, 2, 14)}, []string{"tenant"}),
		reqVariables: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "api_request_variables",
			Help: "Variables carried by one request.", Buckets: []float64{1, 2, 4, 8, 16, 32, 50}}, []string{"tenant"}),
		coalesced: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "variables_coalesced_total",
			Help: "Variable values superseded by a newer value of the same name before being sent."}, []string{"tenant"}),
		budgetWait: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "budget_wait_seconds_total",
			Help: "Time spent waiting for the tenant's rate budget."}, []string{"tenant"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "commits_total",
			Help: "Offset commits, by result (ok, error)."}, []string{"result"}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "commit_duration_seconds",
			Help: "Duration of one offset commit.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		e2eLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "produce_to_write_seconds",
			Help:    "Time from a record's timestamp to the successful write that carried it.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300}}, []string{"tenant"}),
		unconfirmed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "api_unconfirmed_writes_total",
			Help: "2xx answers whose body did not confirm the write (empty, not JSON, or without \"status\":\"success\"); counted as written."}, []string{"tenant"}),
	}
	reg.MustRegister(m.consumed, m.filtered, m.skipped, m.deadLettered, m.requests, m.reqDuration,
		m.reqVariables, m.coalesced, m.budgetWait, m.commits, m.commitLatency, m.e2eLatency, m.unconfirmed)
	return m
}

// allClasses are the dead-letter classes, for initLabels.
var allClasses = []deadLetterClass{classDecode, classTransform, classLookupMiss, classReplay, classAPIRejected,
	classForbidden, classNotFound, classRetriesExhausted, classStale}

// initLabels creates every series of the counters whose labels are known up front (each
// pipeline with each skip reason and dead-letter class, each tenant with each status class) at
// 0, so that a scrape shows them before the first event (rate() and increase() then see the
// first one, and dashboards and alerts find the series) instead of only after it.
func (m *Metrics) initLabels(pipelines []Pipeline, tenants map[string]TenantOptions) {
	if m == nil {
		return
	}
	for _, p := range pipelines {
		m.consumed.WithLabelValues(p.Name)
		m.filtered.WithLabelValues(p.Name)
		for _, r := range []string{transform.ReasonDelete, transform.ReasonTombstone, transform.ReasonNoIdentifier,
			transform.ReasonNoVariables, ReasonLookupMiss, ReasonStale, ReasonGone, transform.ReasonInactive} {
			m.skipped.WithLabelValues(p.Name, r)
		}
		for _, c := range allClasses {
			m.deadLettered.WithLabelValues(p.Name, string(c))
		}
	}
	for name := range tenants {
		for _, code := range []int{200, 400, 401, 403, 404, 429, 500, 0} {
			m.requests.WithLabelValues(name, statusClass(code), statusCode(code))
		}
		m.coalesced.WithLabelValues(name)
		m.budgetWait.WithLabelValues(name)
		m.unconfirmed.WithLabelValues(name)
	}
	m.commits.WithLabelValues("ok")
	m.commits.WithLabelValues("error")
}

// statusCode is an attempt's status as a label value: the HTTP status when it is one (a
// bounded set), error when no answer arrived.
func statusCode(status int) string {
	if status < 100 || status > 599 {
		return "error"
	}
	return strconv.Itoa(status)
}

// statusClass maps an attempt's status to a bounded label value.
func statusClass(status int) string {
	if status == 0 {
		return "error"
	}
	return strconv.Itoa(status/100) + "xx"
}

// The methods below accept a nil *Metrics, so the connector runs without metrics in tests.

func (m *Metrics) recordConsumed(pipeline string, n int) {
	if m != nil {
		m.consumed.WithLabelValues(pipeline).Add(float64(n))
	}
}

func (m *Metrics) recordFiltered(pipeline string) {
	if m != nil {
		m.filtered.WithLabelValues(pipeline).Inc()
	}
}

func (m *Metrics) recordSkipped(pipeline, reason string) {
	if m != nil {
		m.skipped.WithLabelValues(pipeline, reason).Inc()
	}
}

func (m *Metrics) recordSkippedN(pipeline, reason string, n int) {
	if m != nil {
		m.skipped.WithLabelValues(pipeline, reason).Add(float64(n))
	}
}

func (m *Metrics) recordDeadLettered(pipeline string, class deadLetterClass) {
	if m != nil {
		m.deadLettered.WithLabelValues(pipeline, string(class)).Inc()
	}
}

func (m *Metrics) recordAttempt(tenant string, status int, d time.Duration) {
	if m != nil {
		m.requests.WithLabelValues(tenant, statusClass(status), statusCode(status)).Inc()
		m.reqDuration.WithLabelValues(tenant).Observe(d.Seconds())
	}
}

func (m *Metrics) recordRequest(tenant string, vars, superseded int) {
	if m != nil {
		m.reqVariables.WithLabelValues(tenant).Observe(float64(vars))
		if superseded > 0 {
			m.coalesced.WithLabelValues(tenant).Add(float64(superseded))
		}
	}
}

func (m *Metrics) recordUnconfirmed(tenant string) {
	if m != nil {
		m.unconfirmed.WithLabelValues(tenant).Inc()
	}
}

func (m *Metrics) recordBudgetWait(tenant string, d time.Duration) {
	if m != nil && d > 0 {
		m.budgetWait.WithLabelValues(tenant).Add(d.Seconds())
	}
}

func (m *Metrics) recordCommit(err error, d time.Duration) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.commits.WithLabelValues(result).Inc()
	m.commitLatency.Observe(d.Seconds())
}

func (m *Metrics) recordWritten(tenant string, produced time.Time, now time.Time) {
	if m != nil && !produced.IsZero() {
		m.e2eLatency.WithLabelValues(tenant).Observe(now.Sub(produced).Seconds())
	}
}

// gaugeCollector reports the connector's state at scrape time: pending work, paused
// partitions, budget in use and limit per tenant, consumer lag per partition, and how old the
// pending work is (freshness.go, grouplag.go).
type gaugeCollector struct {
	c *Connector

	pendingRecords, pendingBytes, paused, budgetUsed, budgetLimit, lag, blocked *prometheus.Desc
	// budget.coordination kafka only.
	claimsHeld, claimsWaiting, ledgerLag, ledgerReady *prometheus.Desc
	// Freshness (freshness.go, grouplag.go).
	oldestPendingAge, lagSeconds, groupLagRecords, groupLagSeconds *prometheus.Desc
}

func newGaugeCollector(c *Connector) *gaugeCollector {
	const ns = "augment_connector"
	return &gaugeCollector{
		c:              c,
		pendingRecords: prometheus.NewDesc(ns+"_pending_records", "Records fetched and not yet done.", nil, nil),
		pendingBytes:   prometheus.NewDesc(ns+"_pending_bytes", "Bytes of the records fetched and not yet done.", nil, nil),
		paused:         prometheus.NewDesc(ns+"_partitions_paused", "Assigned partitions whose fetching is paused because pending work reached its bound.", nil, nil),
		budgetUsed: prometheus.NewDesc(ns+"_budget_used_requests",
			"API attempts in the tenant's current rolling minute: this replica's (budget.coordination local), or the whole cluster's as the budget ledger holds them (kafka: every replica, replay and deployment writing to the account).", []string{"tenant"}, nil),
		budgetLimit: prometheus.NewDesc(ns+"_budget_limit_requests",
			"The tenant's requests per rolling minute: this replica's share (budget.coordination local), or the cluster-wide limit the budget ledger grants under (kafka).", []string{"tenant"}, nil),
		claimsHeld: prometheus.NewDesc(ns+"_budget_claims_held",
			"Grants of the budget ledger this member holds (granted, not yet finished), per tenant (budget.coordination kafka).", []string{"tenant"}, nil),
		claimsWaiting: prometheus.NewDesc(ns+"_budget_claims_waiting",
			"Attempts of this member waiting for a grant of the budget ledger, per tenant (budget.coordination kafka).", []string{"tenant"}, nil),
		ledgerLag: prometheus.NewDesc(ns+"_ledger_lag_seconds",
			"How far this member's read of the budget ledger is behind its latest append, per tenant (budget.coordination kafka).", []string{"tenant"}, nil),
		ledgerReady: prometheus.NewDesc(ns+"_ledger_ready",
			"1 while the budget ledger is available to this member, 0 while writes wait on it (budget.coordination kafka).", nil, nil),
		blocked: prometheus.NewDesc(ns+"_tenant_blocked", "1 while the tenant refuses the action token (401/403).", []string{"tenant"}, nil),
		lag:     prometheus.NewDesc(ns+"_consumer_lag_records", "High watermark minus committed offset, per assigned partition.", []string{"topic", "partition"}, nil),
		oldestPendingAge: prometheus.NewDesc(ns+"_oldest_pending_record_age_seconds",
			"Now minus the timestamp of the tenant's oldest record queued or in flight to the API (not yet written or dead-lettered); 0 when none.", []string{"tenant"}, nil),
		lagSeconds: prometheus.NewDesc(ns+"_consumer_lag_seconds",
			"Now minus the timestamp of the oldest record fetched and not yet done, per assigned partition; 0 when none. Records not yet fetched (fetching paused) are not seen: consumer_lag_records shows them.", []string{"topic", "partition"}, nil),
		groupLagRecords: prometheus.NewDesc(ns+"_group_lag_records",
			"End offset minus the group's committed offset, for every partition of the source topics; published by one member of the group only (the one assigned the lowest partition of the first source topic).", []string{"topic", "partition"}, nil),
		groupLagSeconds: prometheus.NewDesc(ns+"_group_lag_seconds",
			"Now minus the timestamp of the record at the group's committed offset, for every lagging partition of the source topics (0 when none lags); published by the same one member as group_lag_records.", []string{"topic", "partition"}, nil),
	}
}

func (g *gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.pendingRecords, g.pendingBytes, g.paused, g.budgetUsed, g.budgetLimit, g.blocked, g.lag,
		g.claimsHeld, g.claimsWaiting, g.ledgerLag, g.ledgerReady, g.oldestPendingAge, g.lagSeconds, g.groupLagRecords, g.groupLagSeconds} {
		ch <- d
	}
}

func (g *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	c := g.c
	ch <- prometheus.MustNewConstMetric(g.pendingRecords, prometheus.GaugeValue, float64(c.flow.records.Load()))
	ch <- prometheus.MustNewConstMetric(g.pendingBytes, prometheus.GaugeValue, float64(c.flow.bytes.Load()))
	owned := c.poll.ownedPartitions()
	paused := 0.0
	for topic, ps := range owned {
		if c.flow.paused.Load() || c.flow.topicPaused(topic) {
			paused += float64(len(ps))
		}
	}
	ch <- prometheus.MustNewConstMetric(g.paused, prometheus.GaugeValue, paused)
	for name, t := range c.tenants {
		ch <- prometheus.MustNewConstMetric(g.budgetUsed, prometheus.GaugeValue, float64(t.budget.InUse()), name)
		ch <- prometheus.MustNewConstMetric(g.budgetLimit, prometheus.GaugeValue, float64(t.budget.Limit()), name)
		b := 0.0
		if t.blockedNow() {
			b = 1
		}
		ch <- prometheus.MustNewConstMetric(g.blocked, prometheus.GaugeValue, b, name)
	}
	if c.ledger != nil {
		g.collectLedger(ch)
	}
	for topic, ps := range owned {
		for id, p := range ps {
			ch <- prometheus.MustNewConstMetric(g.lag, prometheus.GaugeValue, float64(p.lag()), topic, strconv.Itoa(int(id)))
		}
	}
	g.collectFreshness(ch, owned)
	g.collectGroupLag(ch)
}

// collectLedger reports the budget ledger's gauges (budget.coordination kafka).
func (g *gaugeCollector) collectLedger(ch chan<- prometheus.Metric) {
	m := g.c.ledger.member()
	ready := 0.0
	if m != nil && m.Ready() == nil {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(g.ledgerReady, prometheus.GaugeValue, ready)
	if m == nil {
		return
	}
	for name, t := range g.c.tenants {
		st := m.Status(AccountKey(t.opts.BaseURL, t.opts.TenantID))
		ch <- prometheus.MustNewConstMetric(g.claimsHeld, prometheus.GaugeValue, float64(st.Mine), name)
		ch <- prometheus.MustNewConstMetric(g.claimsWaiting, prometheus.GaugeValue, float64(st.Waiting), name)
		ch <- prometheus.MustNewConstMetric(g.ledgerLag, prometheus.GaugeValue, st.Lag.Seconds(), name)
	}
}
