package connector

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Freshness: how old the work still pending is, as operators see it (issue 15, "Operators see
// it"). The gauges read it at scrape time (gaugeCollector.collectFreshness); nothing here runs
// on the record path.

// oldestPending returns the data time (see dataTime) of the oldest record the coalescer still
// holds: queued, lingering or carried by a request in flight (a carried contribution stays in
// its identifier's pending list until the request finishes), riders included (each
// contribution keeps its riders' oldest time, oldestAt), and false when it holds none.
//
// It scans every identifier's pending list under q.mu: O(identifiers + pending
// contributions), bounded by MaxPendingRecords. It is called once per scrape, so the cost is
// paid every scrape interval, not per record; but the tenant's adds and takes wait for it
// meanwhile: 16 ms at the default bound, 1,000,000 records pending on 100,000 identifiers
// (BenchmarkCoalescerOldestPending, 2 shared cores; 0.25 s when it scanned the riders too).
func (q *coalescer) oldestPending() (oldest time.Time, ok bool) {
	older := func(t time.Time) {
		if !t.IsZero() && (!ok || t.Before(oldest)) {
			oldest, ok = t, true
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, it := range q.idents {
		for _, c := range it.pending {
			older(c.oldestAt)
		}
	}
	return oldest, ok
}

// oldestPending returns the Kafka timestamp of the partition's first record not yet done: the
// record at its watermark, which the group's committed offset will point at once the commit
// catches up (so consumer_lag_seconds and group_lag_seconds measure the same record). It
// reports false when every fetched record is done. The done prefix is trimmed by markDone, so
// this looks at the head only, in O(1) but for transaction markers (done at once, no
// timestamp) and records done out of order behind the head.
//
// Only fetched records are seen: while fetching is paused (or before the first fetch), the
// records not yet fetched are not, and consumer_lag_records shows them instead.
func (p *partition) oldestPending() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.revoked {
		return time.Time{}, false
	}
	for _, r := range p.recs {
		if !r.done && !r.kr.Timestamp.IsZero() {
			return r.kr.Timestamp, true
		}
	}
	return time.Time{}, false
}

// ageSeconds is now minus t in seconds, 0 when nothing is pending (ok false) or t is in the
// future (a producer's clock ahead of ours: the record is not late).
func ageSeconds(now, t time.Time, ok bool) float64 {
	if !ok {
		return 0
	}
	if d := now.Sub(t); d > 0 {
		return d.Seconds()
	}
	return 0
}

// collectFreshness reports the age gauges: the oldest pending record per tenant, and the
// consumer lag in seconds per partition this member owns (owned, the snapshot Collect read).
func (g *gaugeCollector) collectFreshness(ch chan<- prometheus.Metric, owned map[string]map[int32]*partition) {
	c := g.c
	now := c.opts.Now()
	for name, t := range c.tenants {
		oldest, ok := t.co.oldestPending()
		ch <- prometheus.MustNewConstMetric(g.oldestPendingAge, prometheus.GaugeValue, ageSeconds(now, oldest, ok), name)
	}
	for topic, ps := range owned {
		for id, p := range ps {
			oldest, ok := p.oldestPending()
			ch <- prometheus.MustNewConstMetric(g.lagSeconds, prometheus.GaugeValue, ageSeconds(now, oldest, ok), topic, strconv.Itoa(int(id)))
		}
	}
}
