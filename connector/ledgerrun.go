package connector

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/internal/ledger"
)

// Defaults of BudgetOptions for BudgetKafka.
const (
	defaultClaimValidity     = 2 * time.Second
	defaultMaxRequestTimeout = 30 * time.Second
	defaultUnavailableAfter  = 10 * time.Second
)

// ledgerHooks build the member and check the topic: ledger.NewMember and ledger.EnsureTopic,
// or a test's fakes.
type ledgerHooks struct {
	newMember   func(cl *kgo.Client, cfg ledger.MemberConfig, log *zap.Logger) (ledgerMember, error)
	ensureTopic func(ctx context.Context, cl *kgo.Client, o ledger.TopicOptions) ([]string, error)
}

var realLedger = ledgerHooks{
	newMember: func(cl *kgo.Client, cfg ledger.MemberConfig, log *zap.Logger) (ledgerMember, error) {
		m, err := ledger.NewMember(cl, cfg, log)
		if err != nil {
			return nil, err
		}
		return realMember{m}, nil
	},
	ensureTopic: ledger.EnsureTopic,
}

// budgetDefaults checks and completes opts.Budget, and prepares the ledger link for
// BudgetKafka.
func (c *Connector) budgetDefaults() error {
	b := &c.opts.Budget
	switch b.Coordination {
	case "", BudgetLocal:
		b.Coordination = BudgetLocal
		return nil
	case BudgetKafka:
	default:
		return fmt.Errorf("budget coordination %q: want %q or %q", b.Coordination, BudgetKafka, BudgetLocal)
	}
	if b.Topic == "" {
		b.Topic = ledger.DefaultTopic
	}
	if b.ClaimValidity <= 0 {
		b.ClaimValidity = defaultClaimValidity
	}
	if b.MaxRequestTimeout <= 0 {
		b.MaxRequestTimeout = defaultMaxRequestTimeout
	}
	if b.UnavailableAfter <= 0 {
		b.UnavailableAfter = defaultUnavailableAfter
	}
	for _, name := range slices.Sorted(maps.Keys(c.opts.Tenants)) {
		to := c.opts.Tenants[name]
		to.defaults()
		if to.RequestTimeout > b.MaxRequestTimeout {
			return fmt.Errorf("tenant %q: its request timeout %v is above the budget ledger's maxRequestTimeout %v, which bounds how long the ledger holds an uncertain attempt",
				name, to.RequestTimeout, b.MaxRequestTimeout)
		}
	}
	if b.MemberID == "" {
		b.MemberID = defaultMemberID()
	}
	if c.opts.ledgerHooks == nil {
		c.opts.ledgerHooks = &realLedger
	}
	c.ledger = &ledgerLink{}
	return nil
}

// defaultMemberID is the host name (a pod's name) and a random per-process suffix, so a
// restarted pod is a new member of the ledger.
func defaultMemberID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "augment-connector"
	}
	return host + "-" + strings.ToLower(rand.Text()[:8])
}

// startLedger connects this process to the budget ledger (BudgetKafka): a Kafka client of its
// own (the consumer's brokers, TLS and SASL, no group), the topic checked or created, the
// tenants' accounts registered and the member's Run started. stop ends Run (the member
// returns its unused grants on the way out) and closes the client; it waits for both and may
// be called more than once.
func (c *Connector) startLedger(ctx context.Context) (stop func(), err error) {
	b := c.opts.Budget
	h := c.opts.ledgerHooks
	log := c.log.Named("ledger")
	// No linger: a use report or a demand waits for nothing but the member's own 5 ms batching.
	cl, err := kgo.NewClient(append(slices.Clone(c.opts.KafkaOpts), kgo.ProducerLinger(0), kgo.WithLogger(newKgoLogger(log.Named("kgo"))))...)
	if err != nil {
		return nil, fmt.Errorf("creating the budget ledger's kafka client: %w", err)
	}
	topicCtx, cancel := context.WithTimeout(ctx, c.opts.PingTimeout)
	warnings, err := h.ensureTopic(topicCtx, cl, ledger.TopicOptions{Topic: b.Topic, AllowUnsafe: b.AllowUnsafeTopic})
	cancel()
	for _, w := range warnings {
		log.Warn("budget ledger topic: "+w, zap.String("topic", b.Topic), zap.String("key", "budget.ledger.allowUnsafeTopic"))
	}
	if err != nil {
		cl.Close()
		hint := ""
		if !b.AllowUnsafeTopic {
			hint = " (if the check found the topic unsafe: budget.ledger.allowUnsafeTopic: true accepts it, for one-node test clusters only)"
		}
		return nil, fmt.Errorf("budget ledger topic %q: %w%s", b.Topic, err, hint)
	}
	m, err := h.newMember(cl, ledger.MemberConfig{
		Topic:             b.Topic,
		ID:                b.MemberID,
		ClaimValidity:     b.ClaimValidity,
		MaxRequestTimeout: b.MaxRequestTimeout,
		Unavailable:       b.UnavailableAfter,
		Now:               c.opts.Now,
		// A one-node test cluster (kfake) may not stamp LogAppendTime; safe on one machine.
		AllowProducerTimestamps: b.AllowUnsafeTopic,
	}, log)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("budget ledger (budget.coordination: kafka): %w", err)
	}
	for _, t := range c.tenants {
		m.Register(ledger.Account{Key: AccountKey(t.opts.BaseURL, t.opts.TenantID), Limit: t.opts.RequestsPerMinute, RequestTimeout: t.opts.RequestTimeout})
	}
	c.ledger.set(m)
	log.Info("joined the budget ledger", zap.String("topic", b.Topic), zap.String("member", b.MemberID))
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := m.Run(runCtx)
		if runCtx.Err() != nil {
			return // stopped
		}
		if err == nil {
			err = errors.New("returned early")
		}
		c.fail(fmt.Errorf("budget ledger member: %w", err))
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancelRun()
			<-done
			cl.Close()
		})
	}, nil
}
