package workload

import (
	"encoding/json"
	"fmt"
	"slices"
)

// CallEvent is the JSON value of an InteractionsTopic record: a call that started for a
// customer, or ended. An ended event carries only the call's id, as a platform's usually does.
type CallEvent struct {
	Event         string `json:"event"` // "started" or "ended"
	InteractionID string `json:"interaction_id"`
	CustomerID    int64  `json:"customer_id,omitempty"`
	ANI           string `json:"ani,omitempty"`
}

// callEndRatio is the probability that a call event ends an active call rather than starting
// one, when both are possible: calls last a few events.
const callEndRatio = 0.4

// callState tracks the active calls.
type callState struct {
	next       int
	byCustomer map[int64][]string
	customerOf map[string]int64
	active     []string
}

func newCallState() callState {
	return callState{byCustomer: make(map[int64][]string), customerOf: make(map[string]int64)}
}

// of returns a copy of customer id's active calls, in the order they started.
func (s *callState) of(id int64) []string { return slices.Clone(s.byCustomer[id]) }

// callEvent starts a call for a live customer or ends an active one; ok is false when neither
// is possible (no live customer and no active call).
func (g *Generator) callEvent() (Event, bool) {
	s := &g.calls
	end := len(s.active) > 0 && (len(g.custPool.live) == 0 || g.rng.Float64() < callEndRatio)
	if !end && len(g.custPool.live) == 0 {
		return Event{}, false
	}
	ev := Event{Topic: g.o.InteractionsTopic}
	var ce CallEvent
	if end {
		i := g.rng.IntN(len(s.active))
		call := s.active[i]
		s.active = slices.Delete(s.active, i, i+1)
		cust := s.customerOf[call]
		delete(s.customerOf, call)
		s.byCustomer[cust] = slices.DeleteFunc(s.byCustomer[cust], func(c string) bool { return c == call })
		if len(s.byCustomer[cust]) == 0 {
			delete(s.byCustomer, cust)
		}
		ce = CallEvent{Event: "ended", InteractionID: call}
		ev.Ends = call
	} else {
		cust := g.custPool.pick(g.rng, true)
		s.next++
		call := fmt.Sprintf("call-%06d", s.next)
		s.active = append(s.active, call)
		s.customerOf[call] = cust
		s.byCustomer[cust] = append(s.byCustomer[cust], call)
		c := &g.customers[cust]
		ce = CallEvent{Event: "started", InteractionID: call, CustomerID: cust, ANI: c.phone}
		ev.Identifier = call
		ev.Vars = c.vars()
	}
	ev.Key = []byte(ce.InteractionID)
	b, err := json.Marshal(ce)
	if err != nil {
		panic(fmt.Sprintf("workload: encoding a call event: %v", err)) // a bug: the struct always encodes
	}
	ev.Value = b
	return ev, true
}
