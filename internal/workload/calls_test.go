package workload

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

// TestCalls checks the call events against a replay of their own JSON: starts for live
// customers, ends of active calls, customer events fanning out to exactly the active calls of
// their customer, no customer deleted while on a call, and FinalState leaving out ended calls.
func TestCalls(t *testing.T) {
	o := DefaultOptions()
	o.CallRatio = 0.2
	o.Framing = FramingJSON
	g, err := NewGenerator(3, o)
	if err != nil {
		t.Fatal(err)
	}
	evs := g.Generate(4000)
	active := map[string]int64{} // call -> customer, replayed from the events
	var starts, ends, fanouts int
	for i, ev := range evs {
		switch ev.Topic {
		case InteractionsTopic:
			var ce CallEvent
			if err := json.Unmarshal(ev.Value, &ce); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			if !bytes.Equal(ev.Key, []byte(ce.InteractionID)) {
				t.Fatalf("event %d: key %q, want the call id %q", i, ev.Key, ce.InteractionID)
			}
			switch ce.Event {
			case "started":
				starts++
				if _, dup := active[ce.InteractionID]; dup || ev.Identifier != ce.InteractionID || ev.Vars["_customerId"] == "" {
					t.Fatalf("event %d: start %+v with identifier %q, vars %v", i, ce, ev.Identifier, ev.Vars)
				}
				active[ce.InteractionID] = ce.CustomerID
			case "ended":
				ends++
				if _, ok := active[ce.InteractionID]; !ok || ev.Ends != ce.InteractionID || ev.Vars != nil {
					t.Fatalf("event %d: end of %q, which is not active (Ends %q)", i, ce.InteractionID, ev.Ends)
				}
				delete(active, ce.InteractionID)
			default:
				t.Fatalf("event %d: unknown call event %q", i, ce.Event)
			}
		case CustomersTopic:
			var env struct {
				Op     string         `json:"op"`
				After  map[string]any `json:"after"`
				Before map[string]any `json:"before"`
			}
			if ev.Value == nil {
				continue
			}
			if err := json.Unmarshal(ev.Value, &env); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			row := env.After
			if env.Op == "d" {
				row = env.Before
			}
			id := int64(row["id"].(float64))
			var want []string
			for call, cust := range active {
				if cust == id {
					want = append(want, call)
				}
			}
			slices.Sort(want)
			got := slices.Sorted(slices.Values(ev.Also))
			if env.Op == "d" {
				if len(want) > 0 {
					t.Fatalf("event %d: customer %d deleted while on calls %v", i, id, want)
				}
				continue
			}
			if !slices.Equal(got, want) {
				t.Fatalf("event %d: customer %d fans out to %v, want its active calls %v", i, id, got, want)
			}
			fanouts += len(got)
		}
	}
	if starts < 100 || ends < 50 || fanouts < 100 {
		t.Fatalf("a thin stream: %d starts, %d ends, %d fan-out writes", starts, ends, fanouts)
	}
	final := FinalState(evs)
	for i, ev := range evs {
		if ev.Ends != "" {
			if _, ok := final[ev.Ends]; ok {
				t.Fatalf("event %d: ended call %q is in the final state", i, ev.Ends)
			}
		}
	}
	for call := range active {
		if final[call]["_customerId"] == "" {
			t.Errorf("active call %q has no final customer variables", call)
		}
	}
}

// TestCallsOff: with CallRatio 0 (the default) there are no call events and no fan-out, and
// turning calls on does change the stream.
func TestCallsOff(t *testing.T) {
	o := DefaultOptions()
	o.Framing = FramingJSON
	a, err := NewGenerator(9, o)
	if err != nil {
		t.Fatal(err)
	}
	o.CallRatio = 0.3
	b, err := NewGenerator(9, o)
	if err != nil {
		t.Fatal(err)
	}
	plain, withCalls := a.Generate(500), b.Generate(500)
	for _, ev := range plain {
		if ev.Topic == InteractionsTopic || len(ev.Also) > 0 || ev.Ends != "" {
			t.Fatalf("a call event or fan-out with CallRatio 0: %+v", ev)
		}
	}
	if slices.EqualFunc(plain, withCalls, func(x, y Event) bool { return bytes.Equal(x.Value, y.Value) }) {
		t.Fatal("CallRatio 0.3 made the same stream as 0")
	}
}
