package connector

import (
	"sync/atomic"
)

// flow is the connector's flow control: it counts the records fetched and not yet done and
// the bytes they hold (connector-wide and per tenant), and says when fetching must pause and
// may resume, so memory stays under the configured bound whatever the backlog (docs/DESIGN.md,
// "Invariants"). Every change of the counts goes through admit, charge, done and drop; the
// Kafka calls that pause and resume stay with the poll loop, which asks pauseAll,
// belowLowWater and pauseTenants. The counts are atomics: the poll loop, the workers, the senders,
// the revoke callback and the metrics scrape use them without a lock.
type flow struct {
	maxRecords int64
	maxBytes   int64

	records atomic.Int64 // records fetched and not yet done
	bytes   atomic.Int64 // what they count against maxBytes (see recOverhead, contributionCost)
	paused  atomic.Bool  // every topic is paused: a connector-wide bound was reached

	// Per tenant, when the pipelines write to more than one (not when replaying, where each
	// record names its own pipeline): see pauseTenants.
	tenants []*tenantFlow
	byTopic map[string]*tenantFlow
}

// tenantFlow is what one tenant's records hold, and whether its topics are paused for it.
type tenantFlow struct {
	name   string
	topics []string
	bytes  atomic.Int64
	paused atomic.Bool
}

// newFlow bounds the pending records and bytes; topicTenant maps each consumed topic to the
// tenant its pipeline writes to (nil when replaying).
func newFlow(maxRecords int, maxBytes int64, topicTenant map[string]string) *flow {
	f := &flow{maxRecords: int64(maxRecords), maxBytes: maxBytes, byTopic: make(map[string]*tenantFlow)}
	byName := make(map[string]*tenantFlow)
	for topic, name := range topicTenant {
		tf := byName[name]
		if tf == nil {
			tf = &tenantFlow{name: name}
			byName[name] = tf
			f.tenants = append(f.tenants, tf)
		}
		tf.topics = append(tf.topics, topic)
		f.byTopic[topic] = tf
	}
	return f
}

// owner is the per-tenant count that a record of topic charges (nil when replaying).
func (f *flow) owner(topic string) *atomic.Int64 {
	if tf := f.byTopic[topic]; tf != nil {
		return &tf.bytes
	}
	return nil
}

// admit counts n fetched records holding bytes (owner: their tenant's count, may be nil).
func (f *flow) admit(owner *atomic.Int64, n int, bytes int64) {
	f.records.Add(int64(n))
	f.bytes.Add(bytes)
	if owner != nil {
		owner.Add(bytes)
	}
}

// charge adds n bytes to what r counts against the pending bound (n < 0 releases them).
func (f *flow) charge(r *rec, n int64) {
	r.size.Add(n)
	f.bytes.Add(n)
	if r.owner != nil {
		r.owner.Add(n)
	}
}

// done releases a record that is done: it leaves the pending records with all it held.
func (f *flow) done(r *rec) {
	f.records.Add(-1)
	f.charge(r, -r.size.Load())
}

// drop releases the records of a revoked partition that were never done.
func (f *flow) drop(rs []*rec) {
	for _, r := range rs {
		f.charge(r, -r.size.Load())
	}
	f.records.Add(-int64(len(rs)))
}

// pending reports the records not yet done.
func (f *flow) pending() int64 { return f.records.Load() }

// pollRoom is how many records the next poll may take, between 1 and most: no more than the
// pending bound has room for, so a full poll on top of a nearly full bound cannot overshoot it.
func (f *flow) pollRoom(most int) int {
	return int(max(1, min(int64(most), f.maxRecords-f.records.Load())))
}

// globalBytesBound reports whether maxBytes pauses every topic at once: with one tenant (or
// when replaying). With more, each tenant's share pauses its own topics (tenants), which keeps
// the sum within the bound too; a connector-wide pause there would let a stuck tenant holding
// three quarters of the bound stop every other tenant for good.
func (f *flow) globalBytesBound() bool { return len(f.tenants) < 2 }

// pauseAll reports whether every topic must pause: the pending records, or (see
// globalBytesBound) bytes, reached their bound, or unprocessed records queued for the workers
// reached maxUnprocessed.
func (f *flow) pauseAll(unprocessed int) bool {
	return f.records.Load() >= f.maxRecords || (f.globalBytesBound() && f.bytes.Load() >= f.maxBytes) ||
		unprocessed >= maxUnprocessed
}

// belowLowWater reports whether pending work fell to three quarters of its bounds, so fetching
// resumes in steps instead of flapping.
func (f *flow) belowLowWater(unprocessed int) bool {
	return f.records.Load() <= f.maxRecords*3/4 && (!f.globalBytesBound() || f.bytes.Load() <= f.maxBytes*3/4) &&
		unprocessed <= maxUnprocessed/2
}

// pauseTenants pauses the topics of each tenant whose records hold its share of maxBytes (the bound
// divided among the tenants) and resumes them once they hold three quarters of it, so a tenant
// that falls behind (a tight budget, a refused token, a slow API) stops taking memory from the
// others, whose topics keep flowing. pause is called for each tenant that must pause, with
// what it holds; resume for each that may resume, unless every topic is paused. With one
// tenant the connector-wide bound is the tenant's. It reports whether any tenant's topics are
// paused.
func (f *flow) pauseTenants(pause func(tf *tenantFlow, bytes int64), resume func(tf *tenantFlow)) bool {
	if len(f.tenants) < 2 {
		return false
	}
	share := f.maxBytes / int64(len(f.tenants))
	anyPaused := false
	for _, tf := range f.tenants {
		b := tf.bytes.Load()
		switch {
		case !tf.paused.Load() && b >= share:
			pause(tf, b)
			tf.paused.Store(true)
		case tf.paused.Load() && b <= share*3/4:
			tf.paused.Store(false)
			if !f.paused.Load() {
				resume(tf)
			}
		}
		anyPaused = anyPaused || tf.paused.Load()
	}
	return anyPaused
}

// topicPaused reports whether fetching is paused for topic's tenant.
func (f *flow) topicPaused(topic string) bool {
	tf := f.byTopic[topic]
	return tf != nil && tf.paused.Load()
}

// resumable returns the topics, of those consumed, whose tenant is not paused.
func (f *flow) resumable(topics []string) []string {
	if len(f.tenants) < 2 {
		return topics
	}
	out := make([]string, 0, len(topics))
	for _, topic := range topics {
		if !f.topicPaused(topic) {
			out = append(out, topic)
		}
	}
	return out
}
