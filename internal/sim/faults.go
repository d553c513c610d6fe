package sim

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Faults are the standing faults: they apply to every API request while set.
type Faults struct {
	// Latency delays every API response; LatencyJitter adds a uniform random extra in
	// [0, LatencyJitter).
	Latency, LatencyJitter time.Duration
	// ErrorRate is the probability, from 0 to 1, that a request gets a 500 (nothing applied).
	ErrorRate float64
	// DropRate is the probability that the connection is closed without a response (nothing
	// applied).
	DropRate float64
}

func (f Faults) validate() error {
	switch {
	case f.Latency < 0 || f.LatencyJitter < 0:
		return errors.New("configuring faults: latency and jitter must not be negative")
	case !(f.ErrorRate >= 0 && f.ErrorRate <= 1):
		return fmt.Errorf("configuring faults: errorRate must be from 0 to 1, got %v", f.ErrorRate)
	case !(f.DropRate >= 0 && f.DropRate <= 1):
		return fmt.Errorf("configuring faults: dropRate must be from 0 to 1, got %v", f.DropRate)
	}
	return nil
}

// Outage modes.
const (
	// OutageError answers every API request with a 500.
	OutageError = "500"
	// OutageRefuse closes every new connection at once and every request's connection without
	// a response, as a service that is down.
	OutageRefuse = "refuse"
)

// Duration is a time.Duration in JSON: written as a string ("1.5s"), read from a string or from
// a number of milliseconds.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("parsing duration: %w", err)
		}
		*d = Duration(v)
		return nil
	}
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("parsing duration: want a string like \"250ms\" or a number of milliseconds, got %s", b)
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}

// FaultPatch changes the faults at run time (POST /sim/faults, PatchFaults). Absent fields keep
// their value; Reset clears every fault before the rest applies.
type FaultPatch struct {
	Reset         bool      `json:"reset,omitempty"`
	Latency       *Duration `json:"latency,omitempty"`
	LatencyJitter *Duration `json:"latencyJitter,omitempty"`
	ErrorRate     *float64  `json:"errorRate,omitempty"`
	DropRate      *float64  `json:"dropRate,omitempty"`
	// Outage starts an outage of Seconds from now; Seconds 0 ends the current one.
	Outage *Outage `json:"outage,omitempty"`
	// Revoke makes a tenant's credential fail (401) until Restore names it.
	Revoke  string `json:"revoke,omitempty"`
	Restore string `json:"restore,omitempty"`
	// Force429 answers the tenant's next Count requests with a 429; Count 0 cancels.
	Force429 *Force429 `json:"force429,omitempty"`
}

// Outage is an outage to start: Mode is OutageError or OutageRefuse.
type Outage struct {
	Mode    string  `json:"mode"`
	Seconds float64 `json:"seconds"`
}

// Force429 forces 429s on a tenant's next Count requests ("" is the default tenant), with a
// Retry-After of RetryAfter seconds when it is above 0. They count against the rate limit.
type Force429 struct {
	Tenant     string `json:"tenant"`
	Count      int    `json:"count"`
	RetryAfter int    `json:"retryAfter,omitempty"`
}

// FaultStatus is the faults in force (GET /sim/faults).
type FaultStatus struct {
	Latency       Duration      `json:"latency"`
	LatencyJitter Duration      `json:"latencyJitter"`
	ErrorRate     float64       `json:"errorRate"`
	DropRate      float64       `json:"dropRate"`
	Outage        *OutageStatus `json:"outage"`
	Revoked       []string      `json:"revoked"`
	Force429      []Force429    `json:"force429"`
}

// OutageStatus is the outage in force.
type OutageStatus struct {
	Mode             string    `json:"mode"`
	Until            time.Time `json:"until"`
	RemainingSeconds float64   `json:"remainingSeconds"`
}

// faultState is every fault, guarded by Server.faultsMu.
type faultState struct {
	Faults
	outageMode  string
	outageUntil time.Time
	revoked     map[string]bool
	force429    map[string]Force429 // Count is what remains
}

// PatchFaults applies p and returns the faults now in force. An invalid patch changes nothing.
func (s *Server) PatchFaults(p FaultPatch) (FaultStatus, error) {
	if err := s.checkPatch(p); err != nil {
		return FaultStatus{}, err
	}
	now := s.clock()
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	f := &s.faults
	if p.Reset {
		*f = faultState{}
	}
	if p.Latency != nil {
		f.Latency = time.Duration(*p.Latency)
	}
	if p.LatencyJitter != nil {
		f.LatencyJitter = time.Duration(*p.LatencyJitter)
	}
	if p.ErrorRate != nil {
		f.ErrorRate = *p.ErrorRate
	}
	if p.DropRate != nil {
		f.DropRate = *p.DropRate
	}
	if p.Outage != nil {
		f.outageMode = p.Outage.Mode
		f.outageUntil = now.Add(time.Duration(p.Outage.Seconds * float64(time.Second)))
	}
	if p.Revoke != "" {
		if f.revoked == nil {
			f.revoked = make(map[string]bool)
		}
		f.revoked[p.Revoke] = true
	}
	if p.Restore != "" {
		delete(f.revoked, p.Restore)
	}
	if p.Force429 != nil {
		fc := *p.Force429
		if fc.Tenant == "" {
			fc.Tenant = s.order[0].id
		}
		if f.force429 == nil {
			f.force429 = make(map[string]Force429)
		}
		if fc.Count > 0 {
			f.force429[fc.Tenant] = fc
		} else {
			delete(f.force429, fc.Tenant)
		}
	}
	return s.faultStatusLocked(now), nil
}

func (s *Server) checkPatch(p FaultPatch) error {
	next := Faults{}
	if p.Latency != nil {
		next.Latency = time.Duration(*p.Latency)
	}
	if p.LatencyJitter != nil {
		next.LatencyJitter = time.Duration(*p.LatencyJitter)
	}
	if p.ErrorRate != nil {
		next.ErrorRate = *p.ErrorRate
	}
	if p.DropRate != nil {
		next.DropRate = *p.DropRate
	}
	if err := next.validate(); err != nil {
		return err
	}
	if o := p.Outage; o != nil {
		if o.Mode != OutageError && o.Mode != OutageRefuse {
			return fmt.Errorf("configuring faults: outage mode must be %q or %q, got %q", OutageError, OutageRefuse, o.Mode)
		}
		if !(o.Seconds >= 0) {
			return fmt.Errorf("configuring faults: outage seconds must not be negative, got %v", o.Seconds)
		}
	}
	for _, id := range []string{p.Revoke, p.Restore} {
		if id != "" && s.tenants[id] == nil {
			return fmt.Errorf("configuring faults: %w: %q", ErrUnknownTenant, id)
		}
	}
	if fc := p.Force429; fc != nil {
		if _, err := s.tenantOrDefault(fc.Tenant); err != nil {
			return fmt.Errorf("configuring faults: %w", err)
		}
		if fc.Count < 0 || fc.RetryAfter < 0 {
			return errors.New("configuring faults: force429 count and retryAfter must not be negative")
		}
	}
	return nil
}

// FaultStatus returns the faults in force.
func (s *Server) FaultStatus() FaultStatus {
	now := s.clock()
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	return s.faultStatusLocked(now)
}

func (s *Server) faultStatusLocked(now time.Time) FaultStatus {
	f := &s.faults
	st := FaultStatus{
		Latency:       Duration(f.Latency),
		LatencyJitter: Duration(f.LatencyJitter),
		ErrorRate:     f.ErrorRate,
		DropRate:      f.DropRate,
		Revoked:       []string{},
		Force429:      []Force429{},
	}
	if f.outageMode != "" && now.Before(f.outageUntil) {
		st.Outage = &OutageStatus{Mode: f.outageMode, Until: f.outageUntil, RemainingSeconds: f.outageUntil.Sub(now).Seconds()}
	}
	for id := range f.revoked {
		st.Revoked = append(st.Revoked, id)
	}
	slices.Sort(st.Revoked)
	for _, fc := range f.force429 {
		st.Force429 = append(st.Force429, fc)
	}
	slices.SortFunc(st.Force429, func(a, b Force429) int { return cmp.Compare(a.Tenant, b.Tenant) })
	return st
}

// outage returns the mode of the outage in force at now, or "".
func (s *Server) outage(now time.Time) string {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	return s.outageLocked(now)
}

func (s *Server) outageLocked(now time.Time) string {
	if s.faults.outageMode != "" && now.Before(s.faults.outageUntil) {
		return s.faults.outageMode
	}
	return ""
}

// refusing reports whether new connections are to be closed at once.
func (s *Server) refusing() bool { return s.outage(s.clock()) == OutageRefuse }

// before returns what applies to a request before it is authenticated: its latency (drawn from
// the seeded source), the outage in force, and whether the tenant it claims is revoked.
func (s *Server) before(now time.Time, claimed string) (delay time.Duration, outage string, revoked bool) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	f := &s.faults
	delay = f.Latency
	if j := f.LatencyJitter; j > 0 {
		delay += time.Duration(s.rng.Int64N(int64(j)))
	}
	return delay, s.outageLocked(now), f.revoked[claimed]
}

// Verdicts of a request's faults after authentication, in the order they are checked.
type verdict int

const (
	verdictNone verdict = iota
	verdictForce429
	verdictDrop
	verdictError
)

// judge decides an admitted request's fault: a forced 429 (consuming one), a dropped connection
// or a 500, the last two drawn from the seeded source.
func (s *Server) judge(tenantID string) (v verdict, retryAfter int) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	f := &s.faults
	if fc, ok := f.force429[tenantID]; ok {
		if fc.Count--; fc.Count > 0 {
			f.force429[tenantID] = fc
		} else {
			delete(f.force429, tenantID)
		}
		return verdictForce429, fc.RetryAfter
	}
	if f.DropRate > 0 && s.rng.Float64() < f.DropRate {
		return verdictDrop, 0
	}
	if f.ErrorRate > 0 && s.rng.Float64() < f.ErrorRate {
		return verdictError, 0
	}
	return verdictNone, 0
}
