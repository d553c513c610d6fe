// Package ledger is the cluster-wide budget ledger (issue 14). Its pure core is the records
// of the one-partition ledger topic (record.go), the state machine every member folds them
// into (state.go) and the sequencer's grant policy (sequencer.go): they do no I/O and start
// no goroutines, and time is always a value passed in (a log time in Unix milliseconds),
// never read from a clock, so every rule is testable deterministically. The Kafka plumbing
// around them is Member (member.go), which feeds the core the records in log order with
// their log append times and appends what it decides, and EnsureTopic (topic.go).
// docs/LEDGER.md has the formats, the member loop and the safety argument.
package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Window is the API's rate-limit window: a tenant's requests are counted over any rolling
// 60 seconds.
const Window = time.Minute

// recordVersion is the first byte of every encoded record. A reader skips (and counts) a
// record of another version instead of guessing at its meaning: a member of a newer
// release must bump it when a field changes meaning, and old members then ignore the record.
const recordVersion = 1

// Kind says what a record is.
type Kind uint8

// The record kinds. The values are part of the wire format: never renumber them.
const (
	// KindHello announces a member; its log append time is the member's ledger time
	// reference for a rebuild (see RebuildFrom).
	KindHello Kind = 1
	// KindDemand is a member's standing demand for a tenant's slots.
	KindDemand Kind = 2
	// KindGrant is the sequencer's grant of slots to one member. A grant with no slots is
	// the sequencer's heartbeat: it proves the epoch is alive and lets a rebuilding member
	// learn the current epoch (see State).
	KindGrant Kind = 3
	// KindReport is a member's use report for slots it was granted.
	KindReport Kind = 4
	// KindTakeover makes its writer the sequencer of epoch Epoch if Previous is the
	// current epoch at its offset.
	KindTakeover Kind = 5
	// KindThrottled is the tripwire: a member got a 429 for Tenant while its ledger showed
	// budget left, so another client spends from the tenant's budget. The sequencer reading
	// it calls Sequencer.Throttled with RetryAfter. Added after the first release: a member
	// that does not know it skips it as malformed (and counts it), which only means it does
	// not react to the tripwire while it sequences.
	KindThrottled Kind = 6
)

func (k Kind) String() string {
	switch k {
	case KindHello:
		return "hello"
	case KindDemand:
		return "demand"
	case KindGrant:
		return "grant"
	case KindReport:
		return "report"
	case KindTakeover:
		return "takeover"
	case KindThrottled:
		return "throttled"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Use is what a use report says about its slots.
type Use uint8

// The use states. The values are part of the wire format.
const (
	// UseStarted: an attempt with the slot is on its way. It changes no hold: the slot is
	// held as if unreported until a final report comes.
	UseStarted Use = 1
	// UseFinished: the attempt's answer (any status) arrived, so the API has seen it.
	UseFinished Use = 2
	// UseUncertain: the attempt timed out or failed on the network; it may reach the API
	// at any time until grant + claimValidity + requestTimeout.
	UseUncertain Use = 3
	// UseReturned: the slot was never used and never will be.
	UseReturned Use = 4
)

func (u Use) String() string {
	switch u {
	case UseStarted:
		return "started"
	case UseFinished:
		return "finished"
	case UseUncertain:
		return "uncertain"
	case UseReturned:
		return "returned"
	}
	return fmt.Sprintf("use(%d)", uint8(u))
}

// Slot names one granted attempt. Slot numbers are chosen by the sequencer of Epoch, so a
// stale sequencer and its successor can never name the same slot.
type Slot struct {
	Epoch uint64 `json:"e"`
	N     uint64 `json:"n"`
}

// Params are the rules a grant was made under. Every grant carries them, so a member
// computes a slot's hold from the grant alone, whatever its own configuration: members of
// two releases (a rolling deploy) cannot disagree on what is held.
type Params struct {
	// Limit is the tenant's requests per Window.
	Limit int `json:"limit"`
	// ClaimValidity bounds how long after publishing the demand that earned a grant a
	// member may still start an attempt with it.
	ClaimValidity time.Duration `json:"claim"`
	// RequestTimeout bounds how long after its start an attempt may reach the API.
	RequestTimeout time.Duration `json:"timeout"`
	// Epsilon covers steps of the broker's clock between the records of a slot.
	Epsilon time.Duration `json:"eps"`
}

// horizon is the longest a slot granted under p is ever held after its grant:
// claimValidity + requestTimeout + Window + ε.
func (p Params) horizon() time.Duration {
	return p.ClaimValidity + p.RequestTimeout + Window + p.Epsilon
}

func (p Params) validate() error {
	if p.Limit < 1 {
		return fmt.Errorf("limit %d < 1", p.Limit)
	}
	if p.ClaimValidity < 0 || p.RequestTimeout < 0 || p.Epsilon < 0 {
		return errors.New("negative duration")
	}
	return nil
}

// Record is one record of the ledger topic, keyed by Tenant. Which fields are set depends
// on Kind; Decode rejects a record whose fields do not fit its kind.
type Record struct {
	Kind   Kind   `json:"k"`
	Tenant string `json:"t,omitempty"`
	// Member is the writer (hello, demand, report, takeover) or, for a grant, the member
	// the slots are granted to (empty for a heartbeat).
	Member string `json:"m,omitempty"`

	// Demand: Want slots wanted beyond the grants this member has read up to offset Seen
	// (-1: none), Fresh of them for brand-new interactions, Seq the member's own counter,
	// which lets it find the publication time of the demand that earned a grant.
	Want  int    `json:"w,omitempty"`
	Fresh int    `json:"f,omitempty"`
	Seen  int64  `json:"seen,omitempty"`
	Seq   uint64 `json:"seq,omitempty"`
	// Demand: the account parameters the member's configuration gives the tenant. The
	// sequencer grants under the smallest Limit and the largest Timeout among the live
	// demands, so two deployments configured differently for one account never exceed the
	// smaller limit. 0 (a member of an older release): no opinion.
	Limit   int           `json:"lim,omitempty"`
	Timeout time.Duration `json:"to,omitempty"`

	// Throttled: the 429's Retry-After (0: none).
	RetryAfter time.Duration `json:"ra,omitempty"`

	// Grant and takeover: the sequencer epoch. Takeover: Previous = Epoch - 1.
	Epoch    uint64 `json:"e,omitempty"`
	Previous uint64 `json:"prev,omitempty"`
	// Grant: the parameters it was made under.
	Params *Params `json:"p,omitempty"`

	// Grant and report: the slots named.
	Slots []Slot `json:"s,omitempty"`
	// Report: what happened to Slots.
	Use Use `json:"u,omitempty"`
}

// ErrMalformed is returned (wrapped) by Decode for a record that cannot be read: a reader
// skips it and counts it, never stops on it.
var ErrMalformed = errors.New("malformed ledger record")

// Encode returns r's wire form: a version byte, then JSON. JSON keeps records readable with
// any Kafka tool; at the ledger's rate (a few hundred records a second) its size is no
// concern.
func Encode(r Record) ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("encoding %s record: %w", r.Kind, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding %s record: %w", r.Kind, err)
	}
	return append([]byte{recordVersion}, b...), nil
}

// Decode reads a record written by Encode. Every failure wraps ErrMalformed.
func Decode(b []byte) (Record, error) {
	if len(b) == 0 {
		return Record{}, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if b[0] != recordVersion {
		return Record{}, fmt.Errorf("%w: version %d, want %d", ErrMalformed, b[0], recordVersion)
	}
	var r Record
	if err := json.Unmarshal(b[1:], &r); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(r.Slots) == 0 {
		r.Slots = nil // "s":[] names no slot, as an absent "s" does: one form, so a re-encoding is equal
	}
	if err := r.validate(); err != nil {
		return Record{}, fmt.Errorf("%w: %s record: %w", ErrMalformed, r.Kind, err)
	}
	return r, nil
}

// validate checks that r's fields fit its kind, so State never sees a record it must guess
// about.
func (r Record) validate() error {
	switch r.Kind {
	case KindHello:
		if r.Member == "" {
			return errors.New("no member")
		}
	case KindDemand:
		if r.Tenant == "" || r.Member == "" {
			return errors.New("no tenant or member")
		}
		if r.Want < 0 || r.Fresh < 0 || r.Fresh > r.Want || r.Seen < -1 {
			return fmt.Errorf("want %d, fresh %d, seen %d", r.Want, r.Fresh, r.Seen)
		}
		if r.Limit < 0 || r.Timeout < 0 {
			return fmt.Errorf("limit %d, timeout %s", r.Limit, r.Timeout)
		}
	case KindGrant:
		if r.Epoch == 0 {
			return errors.New("epoch 0")
		}
		if r.Params == nil {
			return errors.New("no parameters")
		}
		if err := r.Params.validate(); err != nil {
			return err
		}
		if len(r.Slots) > 0 && (r.Tenant == "" || r.Member == "") {
			return errors.New("slots without tenant or member")
		}
		for _, s := range r.Slots {
			if s.Epoch != r.Epoch {
				return fmt.Errorf("slot of epoch %d in a grant of epoch %d", s.Epoch, r.Epoch)
			}
		}
	case KindReport:
		if r.Tenant == "" || r.Member == "" || len(r.Slots) == 0 {
			return errors.New("no tenant, member or slots")
		}
		if r.Use < UseStarted || r.Use > UseReturned {
			return fmt.Errorf("unknown use %d", r.Use)
		}
	case KindTakeover:
		if r.Member == "" {
			return errors.New("no member")
		}
		if r.Epoch == 0 || r.Epoch != r.Previous+1 {
			return fmt.Errorf("epoch %d after %d", r.Epoch, r.Previous)
		}
	case KindThrottled:
		if r.Tenant == "" || r.Member == "" {
			return errors.New("no tenant or member")
		}
		if r.RetryAfter < 0 {
			return fmt.Errorf("retry-after %s", r.RetryAfter)
		}
	default:
		return fmt.Errorf("unknown kind %d", r.Kind)
	}
	return nil
}
