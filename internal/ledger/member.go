package ledger

// This file is the contract between the ledger's Kafka member (being built) and the
// connector's ledger-backed budget. The bodies are being written on their own branch; until
// they land, NewMember refuses to start, so nothing can run on an unfinished ledger.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// MemberConfig is how one process takes part in the ledger.
type MemberConfig struct {
	// Topic is the ledger topic (one partition, LogAppendTime), shared by every deployment
	// writing to the same accounts. Default DefaultTopic.
	Topic string
	// ID identifies this process in the ledger: pod name plus a per-process random id, so a
	// restarted pod is a new member.
	ID string
	// ClaimValidity bounds how long after publishing the demand that earned a grant the
	// member may still start an attempt with it (default 2 s).
	ClaimValidity time.Duration
	// Epsilon covers steps of the broker's clock (default 250 ms).
	Epsilon time.Duration
	// MaxRequestTimeout is the largest request timeout any deployment writing to the ledger
	// uses: it bounds how far back a (re)starting member reads (RebuildFrom). Default 30 s.
	MaxRequestTimeout time.Duration
	// Unavailable is how long the ledger may be unreachable (no record read back) before
	// Ready reports it (default 10 s). Writes wait meanwhile; nothing is lost.
	Unavailable time.Duration
	// Sequencer is the sequencer's policy (DefaultSequencerConfig when zero).
	Sequencer SequencerConfig
	// Now is the clock (time.Now when nil). Durations are measured on its monotonic part.
	Now func() time.Time
}

// DefaultTopic is the ledger topic's default name: not tied to a consumer group, since every
// deployment writing to the same 8x8 accounts must share it.
const DefaultTopic = "augment-connector.budget"

// Account is one tenant's budget as the member knows it. Key is the account's identity in
// the ledger (the 8x8 tenant id and API host, never a config name, so two deployments that
// name it differently share it); Limit and RequestTimeout travel with every demand, and the
// sequencer grants under the smallest limit and the largest timeout demanded.
type Account struct {
	Key            string
	Limit          int
	RequestTimeout time.Duration
}

// Member is one process's part in the ledger: it publishes standing demand, reads grants
// back, reports use, and sequences when it holds the current epoch. Create it with
// NewMember, start Run, and take claims with Acquire.
type Member struct {
	cfg MemberConfig
	cl  *kgo.Client
	log *zap.Logger
}

// NewMember returns a member writing and reading cfg.Topic through cl (a client of its own,
// with no consumer group: the member assigns itself the ledger's partition). It checks
// nothing on the broker; EnsureTopic does.
func NewMember(cl *kgo.Client, cfg MemberConfig, log *zap.Logger) (*Member, error) {
	return nil, errors.New("ledger: the Kafka member is not built yet")
}

// Run appends the member's hello, rebuilds from the ledger, and then reads the ledger,
// publishes demand, reports use and sequences until ctx ends. On the way out it returns its
// unused grants and withdraws its demand (best effort, within a second). It owns every
// goroutine it starts and returns only when they have stopped.
func (m *Member) Run(ctx context.Context) error { return errors.New("ledger: not built") }

// Register makes acct known to the member (before or after Run starts); registering a key
// again updates its limit and timeout.
func (m *Member) Register(acct Account) {}

// Acquire blocks until the ledger grants this member one attempt for acct.Key and returns
// its claim. fresh reports whether the waiting request is a brand-new interaction's first
// write (asked again at each refresh of the demand); wake (may be nil) ends a wait early so
// the caller can ask fresh again. If ctx ends first, nothing is held.
func (m *Member) Acquire(ctx context.Context, key string, fresh func() bool, wake <-chan struct{}) (*Claim, error) {
	return nil, errors.New("ledger: not built")
}

// Throttled reports a 429 for key with its Retry-After (0: none): the tripwire. The
// sequencer reduces the budget for a while and grants nothing before Retry-After passed.
func (m *Member) Throttled(key string, retryAfter time.Duration) {}

// Ready returns nil, or why writes are waiting on the ledger (unreachable longer than
// Unavailable, topic deleted, clock disagreeing with the log by more than ε).
func (m *Member) Ready() error { return errors.New("ledger: not built") }

// Status is what the member knows of an account now.
type Status struct {
	Used    int // slots held cluster-wide at ledger time: the tenant's budget used
	Limit   int // the limit of the latest grant (0: none yet)
	Mine    int // claims this member holds (granted, not finished)
	Waiting int // callers blocked in Acquire
	// Lag is how far the member's read of the ledger is behind its latest append.
	Lag time.Duration
}

// Status reports key's state.
func (m *Member) Status(key string) Status { return Status{} }

// Claim is one granted attempt: one slot. Call Start just before writing the request, then
// Finish exactly once.
type Claim struct {
	m    *Member
	key  string
	slot Slot
}

// Start reports whether the claim may still be used (it expires ClaimValidity after the
// demand that earned it was published, by the member's monotonic clock) and, if so, the
// longest the attempt may take: the caller must abandon it by then. A claim that may not be
// used must be finished as UseReturned and a new one acquired.
func (c *Claim) Start() (timeout time.Duration, ok bool) { return 0, false }

// Finish reports the claim's use: UseFinished (an answer arrived), UseUncertain (timeout or
// network error after the request may have been sent) or UseReturned (never sent). The
// report is appended with a linger of about 10 ms; a second Finish does nothing.
func (c *Claim) Finish(u Use) {}

// TopicOptions are what EnsureTopic checks and creates.
type TopicOptions struct {
	Topic string
	// Replication is the replication factor to create with (default: 3, or the number of
	// brokers when fewer and AllowUnsafe).
	Replication int16
	// AllowUnsafe accepts a topic (or a cluster) that cannot keep a record read back once
	// acknowledged: fewer than 3 replicas, min.insync.replicas below 2, unclean leader
	// election. For a one-node test broker only; every accepted risk is returned as a
	// warning.
	AllowUnsafe bool
}

// EnsureTopic creates the ledger topic when missing (one partition, LogAppendTime,
// cleanup.policy=delete, retention one hour, short segments) and checks an existing one's
// settings. It returns an error naming each unsafe setting (unless AllowUnsafe) and the
// warnings accepted.
func EnsureTopic(ctx context.Context, cl *kgo.Client, o TopicOptions) (warnings []string, err error) {
	return nil, errors.New("ledger: not built")
}
