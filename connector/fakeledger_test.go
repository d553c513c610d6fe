package connector

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/internal/ledger"
)

// fakeMember stands in for *ledger.Member until the real one is built (internal/ledger,
// member.go): it grants claims at most one per grantEvery, records every Finish, and can be
// told to expire claims or to be unavailable.
type fakeMember struct {
	grantEvery time.Duration
	timeout    time.Duration // what Start allows; default 5s

	mu          sync.Mutex
	accounts    map[string]ledger.Account
	nextGrant   time.Time
	expireNext  int // the next n claims are already expired at Start
	ready       error
	acquired    int
	waiting     int
	finishes    []ledger.Use
	doubles     int // Finish called again on a finished claim
	outstanding int
	throttled   []throttle
	running     bool
	stoppedOut  int // claims outstanding when Run returned (-1: never stopped)
	ran         bool
}

type throttle struct {
	key        string
	retryAfter time.Duration
}

func newFakeMember(grantEvery time.Duration) *fakeMember {
	return &fakeMember{grantEvery: grantEvery, timeout: 5 * time.Second, accounts: map[string]ledger.Account{}, stoppedOut: -1}
}

func (f *fakeMember) Run(ctx context.Context) error {
	f.mu.Lock()
	f.running, f.ran = true, true
	f.mu.Unlock()
	<-ctx.Done()
	f.mu.Lock()
	f.running = false
	f.stoppedOut = f.outstanding
	f.mu.Unlock()
	return nil
}

func (f *fakeMember) Register(a ledger.Account) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts[a.Key] = a
}

func (f *fakeMember) Acquire(ctx context.Context, key string, fresh func() bool, wake <-chan struct{}) (ledgerClaim, error) {
	f.mu.Lock()
	f.waiting++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.waiting--
		f.mu.Unlock()
	}()
	for {
		f.mu.Lock()
		now := time.Now()
		wait := f.nextGrant.Sub(now)
		if f.ready == nil && wait <= 0 {
			f.nextGrant = now.Add(f.grantEvery)
			f.acquired++
			f.outstanding++
			expired := f.expireNext > 0
			if expired {
				f.expireNext--
			}
			f.mu.Unlock()
			return &fakeClaim{f: f, expired: expired}, nil
		}
		f.mu.Unlock()
		if wait <= 0 {
			wait = 10 * time.Millisecond
		}
		tm := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			tm.Stop()
			return nil, ctx.Err()
		case <-wake:
		case <-tm.C:
		}
		tm.Stop()
	}
}

func (f *fakeMember) Throttled(key string, retryAfter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttled = append(f.throttled, throttle{key, retryAfter})
}

func (f *fakeMember) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeMember) setReady(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = err
}

func (f *fakeMember) Status(key string) ledger.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return ledger.Status{Used: f.acquired, Limit: f.accounts[key].Limit, Mine: f.outstanding, Waiting: f.waiting, Lag: 20 * time.Millisecond}
}

// uses returns the Finish calls so far, in order.
func (f *fakeMember) uses() []ledger.Use {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ledger.Use(nil), f.finishes...)
}

type fakeClaim struct {
	f        *fakeMember
	expired  bool
	finished bool // guarded by f.mu
}

func (c *fakeClaim) Start() (time.Duration, bool) {
	if c.expired {
		return 0, false
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	return c.f.timeout, true
}

func (c *fakeClaim) Finish(u ledger.Use) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if c.finished {
		c.f.doubles++
		return
	}
	c.finished = true
	c.f.outstanding--
	c.f.finishes = append(c.f.finishes, u)
}

// fakeLedgerHooks make a connector in coordination kafka use f, with a topic check that
// returns warnings (and, when topicErr is set, fails).
func fakeLedgerHooks(f *fakeMember, warnings []string, topicErr error) *ledgerHooks {
	return &ledgerHooks{
		newMember: func(*kgo.Client, ledger.MemberConfig, *zap.Logger) (ledgerMember, error) { return f, nil },
		ensureTopic: func(context.Context, *kgo.Client, ledger.TopicOptions) ([]string, error) {
			return warnings, topicErr
		},
	}
}
