package connector

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/internal/ledger"
)

// ledgerMember is what the connector needs of the budget ledger's member (*ledger.Member,
// through realMember; a fake in tests): one process's part in the cluster-wide budget.
type ledgerMember interface {
	Run(ctx context.Context) error
	Register(acct ledger.Account)
	Acquire(ctx context.Context, key string, fresh func() bool, wake <-chan struct{}) (ledgerClaim, error)
	Throttled(key string, retryAfter time.Duration)
	Ready() error
	Status(key string) ledger.Status
}

// ledgerClaim is one granted attempt (*ledger.Claim).
type ledgerClaim interface {
	Start() (timeout time.Duration, ok bool)
	Finish(u ledger.Use)
}

var _ ledgerClaim = (*ledger.Claim)(nil)

// realMember is *ledger.Member as a ledgerMember: Go has no covariant results, so Acquire's
// *ledger.Claim is returned as a ledgerClaim here; everything else is the member's own.
type realMember struct{ *ledger.Member }

func (m realMember) Acquire(ctx context.Context, key string, fresh func() bool, wake <-chan struct{}) (ledgerClaim, error) {
	c, err := m.Member.Acquire(ctx, key, fresh, wake)
	if err != nil {
		return nil, err
	}
	return c, nil
}

var _ ledgerMember = realMember{}

// ledgerLink holds the connector's member once Run has started it: the tenants' budgets are
// built by New, the member (which needs a Kafka client) by Run, before any tenant sends.
// Until then a budget reports its configured limit and nothing used.
type ledgerLink struct {
	m atomic.Pointer[memberBox]
}

type memberBox struct{ ledgerMember }

func (l *ledgerLink) set(m ledgerMember) { l.m.Store(&memberBox{m}) }

// member returns the member, or nil before Run started it.
func (l *ledgerLink) member() ledgerMember {
	if b := l.m.Load(); b != nil {
		return b.ledgerMember
	}
	return nil
}

// AccountKey is a tenant's identity in the budget ledger: its 8x8 tenant id and the API's
// host, so two deployments that name the tenant differently (or a replay, or a staging
// connector) share one budget. It never carries the token.
func AccountKey(baseURL, tenantID string) string {
	host := baseURL
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" {
		host = u.Host
	}
	return tenantID + "@" + strings.ToLower(host)
}

// ledgerWaitLog is how long a tenant waits on the ledger before a log line says why, and how
// often (per tenant) such a line is written at most.
const (
	ledgerWaitLogAfter = 10 * time.Second
	ledgerWaitLogEvery = time.Minute
)

// ledgerBudget is a tenant's share of the cluster-wide budget (coordination kafka): every
// attempt is one claim granted by the ledger. SetShare is ignored (the ledger shares the
// budget among every member, replay and deployment writing to the account); NoteFresh is not
// needed (the member asks fresh again at every refresh of its demand).
type ledgerBudget struct {
	link   *ledgerLink
	key    string
	limit  int // the configured requestsPerMinute, reported until the ledger has granted
	tenant string
	log    *zap.Logger
	now    func() time.Time

	// A wait longer than logAfter is logged, then every logEvery at most (ledgerWaitLogAfter,
	// ledgerWaitLogEvery; a test shortens them).
	logAfter, logEvery time.Duration
	lastLog            atomic.Int64 // unix nanos of the last "waiting on the ledger" line
}

func newLedgerBudget(link *ledgerLink, key, tenant string, limit int, log *zap.Logger, now func() time.Time) *ledgerBudget {
	return &ledgerBudget{link: link, key: key, limit: limit, tenant: tenant, log: log, now: now,
		logAfter: ledgerWaitLogAfter, logEvery: ledgerWaitLogEvery}
}

func (b *ledgerBudget) Reserve(ctx context.Context, fresh func() bool, wake <-chan struct{}) (reservation, error) {
	m := b.link.member()
	if m == nil {
		return nil, fmt.Errorf("the budget ledger is not running")
	}
	if fresh == nil {
		fresh = func() bool { return true }
	}
	start := b.now()
	// A wait longer than logAfter is logged (with why), then every logEvery at most.
	var mu sync.Mutex
	waiting := true
	var logTimer *time.Timer
	mu.Lock() // the callback reads logTimer
	logTimer = time.AfterFunc(b.logAfter, func() {
		mu.Lock()
		defer mu.Unlock()
		if !waiting {
			return
		}
		b.logWait(m, b.now().Sub(start))
		logTimer.Reset(b.logEvery)
	})
	mu.Unlock()
	stopLog := func() {
		mu.Lock()
		defer mu.Unlock()
		waiting = false
		logTimer.Stop()
	}
	c, err := m.Acquire(ctx, b.key, fresh, wake)
	stopLog()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	return &ledgerReservation{c: c}, nil
}

// logWait says, at most once per logEvery (a minute) per tenant, why a write of the tenant has
// waited on the ledger: the ledger is not ready, or the cluster-wide budget is in use.
func (b *ledgerBudget) logWait(m ledgerMember, waited time.Duration) {
	now := b.now()
	last := b.lastLog.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < b.logEvery {
		return
	}
	if !b.lastLog.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	st := m.Status(b.key)
	why := fmt.Sprintf("the tenant's cluster-wide budget is in use (%d of %d requests in the rolling minute)", st.Used, b.limitOf(st))
	if err := m.Ready(); err != nil {
		why = "the budget ledger is not available: " + err.Error()
	}
	b.log.Warn("a write has waited on the budget ledger for "+waited.Round(time.Second).String()+": "+why,
		zap.String("account", b.key), zap.Int("claims_held", st.Mine), zap.Int("claims_waiting", st.Waiting),
		zap.Duration("ledger_lag", st.Lag))
}

func (b *ledgerBudget) limitOf(st ledger.Status) int {
	if st.Limit > 0 {
		return st.Limit
	}
	return b.limit
}

func (b *ledgerBudget) Throttled(retryAfter time.Duration) {
	if m := b.link.member(); m != nil {
		m.Throttled(b.key, retryAfter)
	}
}

func (b *ledgerBudget) NoteFresh(time.Time) {}
func (b *ledgerBudget) SetShare(float64)    {}

// Limit reports the cluster-wide limit of the latest grant (the configured one before any).
func (b *ledgerBudget) Limit() int { return b.limitOf(b.status()) }

// InUse reports the slots held cluster-wide at ledger time.
func (b *ledgerBudget) InUse() int { return b.status().Used }

// ledgerParallel is how many claims a tenant waits for at once: the member's standing demand
// counts the callers waiting (up to 32), so as many ready interactions as that are asked for
// together and a round trip through Kafka is paid once for all of them.
const ledgerParallel = 32

// Parallel implements budget.
func (b *ledgerBudget) Parallel() int { return ledgerParallel }

func (b *ledgerBudget) status() ledger.Status {
	if m := b.link.member(); m != nil {
		return m.Status(b.key)
	}
	return ledger.Status{}
}

// ledgerReservation is one claim.
type ledgerReservation struct {
	c    ledgerClaim
	once sync.Once
}

func (r *ledgerReservation) Begin() (time.Duration, bool) { return r.c.Start() }

// End reports the claim's use: answered → finished, uncertain → uncertain, unused (never
// sent, or expired before Begin) → returned.
func (r *ledgerReservation) End(how use, _ time.Time) {
	r.once.Do(func() { r.c.Finish(ledgerUse(how)) })
}

func ledgerUse(how use) ledger.Use {
	switch how {
	case useAnswered:
		return ledger.UseFinished
	case useUncertain:
		return ledger.UseUncertain
	default:
		return ledger.UseReturned
	}
}
