package tables

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// setMetrics are the tables' counters; the gauges are read from the stores at scrape time.
type setMetrics struct {
	lookups, misses atomic.Int64
	records         map[string]map[string]*atomic.Int64 // table -> action -> count
}

var actions = []string{actionPut, actionDelete, actionNoKey, actionExpired, actionError}

func (m *setMetrics) init(s *Set) {
	m.records = make(map[string]map[string]*atomic.Int64, len(s.order))
	for _, name := range s.order {
		m.records[name] = make(map[string]*atomic.Int64, len(actions))
		for _, a := range actions {
			m.records[name][a] = new(atomic.Int64)
		}
	}
}

func (m *setMetrics) record(table, action string) {
	if c := m.records[table][action]; c != nil {
		c.Add(1)
	}
}

// Metric descriptions. Labels are table names and fixed actions, never a key or a value.
var (
	descEntries = prometheus.NewDesc("augment_connector_table_entries",
		"Entries of a lookup table (members, for a many-valued one).", []string{"table"}, nil)
	descBytes = prometheus.NewDesc("augment_connector_table_bytes",
		"Estimated bytes of a lookup table's entries (what maxBytes counts).", []string{"table"}, nil)
	descMaxEntries = prometheus.NewDesc("augment_connector_table_max_entries",
		"The table's maxEntries bound (0: none).", []string{"table"}, nil)
	descFull = prometheus.NewDesc("augment_connector_table_full",
		"1 when the table's bound refused an entry: the connector stops with an error.", []string{"table"}, nil)
	descRecords = prometheus.NewDesc("augment_connector_table_records_total",
		"Records read into a lookup table, by what they did (put, delete, no key, expired, error).", []string{"table", "action"}, nil)
	descCaughtUp = prometheus.NewDesc("augment_connector_tables_caught_up",
		"1 once the lookup tables reached the end offsets their topics had at start-up.", nil, nil)
	descLookups = prometheus.NewDesc("augment_connector_table_lookups_total",
		"Calls of lookup and lookupAll.", nil, nil)
	descMisses = prometheus.NewDesc("augment_connector_table_lookup_misses_total",
		"Calls of lookup that found no row for a key.", nil, nil)
)

// Collector returns a Prometheus collector of the tables' metrics.
func (s *Set) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Set }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEntries, descBytes, descMaxEntries, descFull, descRecords, descCaughtUp, descLookups, descMisses} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	for _, name := range s.order {
		st := s.stores[name]
		n, b, full := st.stats()
		ch <- prometheus.MustNewConstMetric(descEntries, prometheus.GaugeValue, float64(n), name)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(b), name)
		ch <- prometheus.MustNewConstMetric(descMaxEntries, prometheus.GaugeValue, float64(st.maxEntries), name)
		ch <- prometheus.MustNewConstMetric(descFull, prometheus.GaugeValue, boolGauge(full), name)
		for _, a := range actions {
			ch <- prometheus.MustNewConstMetric(descRecords, prometheus.CounterValue, float64(s.metrics.records[name][a].Load()), name, a)
		}
	}
	ch <- prometheus.MustNewConstMetric(descCaughtUp, prometheus.GaugeValue, boolGauge(s.Loading() == ""))
	ch <- prometheus.MustNewConstMetric(descLookups, prometheus.CounterValue, float64(s.metrics.lookups.Load()))
	ch <- prometheus.MustNewConstMetric(descMisses, prometheus.CounterValue, float64(s.metrics.misses.Load()))
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
