package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/augment-connector/augment-connector/internal/api"
)

func TestJournalRingIsBounded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.JournalSize = 5 })
	h.create("", "int-1")
	for i := range 12 {
		h.post("int-1", body(api.Variable{Name: "_n", Value: fmt.Sprint(i + 1)}))
	}
	h.call("GET", "int-1", tenant1, "wrong", "")
	tests := []struct {
		since uint64
		want  []uint64
	}{
		{0, []uint64{9, 10, 11, 12, 13}},
		{10, []uint64{11, 12, 13}},
		{3, []uint64{9, 10, 11, 12, 13}}, // older entries are gone
		{13, nil},
		{99, nil},
	}
	for _, tt := range tests {
		var got []uint64
		for _, e := range h.s.Journal(tt.since) {
			got = append(got, e.Seq)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Journal(%d) seqs (-want +got):\n%s", tt.since, diff)
		}
	}
	if cap(h.s.journal.entries) > 8 {
		t.Errorf("journal ring capacity %d for a size of 5", cap(h.s.journal.entries))
	}
	last := h.s.Journal(11)
	want := []Entry{
		{Seq: 12, Time: h.clock.Now(), Method: "POST", Tenant: "t1", Identifier: "int-1", Status: 200, Variables: []api.Variable{{Name: "_n", Value: "12"}}},
		{Seq: 13, Time: h.clock.Now(), Method: "GET", Tenant: "t1", Identifier: "int-1", Status: 401, Message: api.MsgAuthFailed},
	}
	if diff := cmp.Diff(want, last); diff != "" {
		t.Errorf("last entries (-want +got):\n%s", diff)
	}
	// The counters cover every request, not only those the ring still holds.
	wantStats := Stats{
		Total: 13, ByStatus: map[int]uint64{200: 12, 401: 1}, VariablesSet: 12,
		ByTenant:        map[string]TenantStats{"t1": {Total: 13, ByStatus: map[int]uint64{200: 12, 401: 1}, VariablesSet: 12}},
		JournalFirstSeq: 9, JournalLastSeq: 13,
	}
	if diff := cmp.Diff(wantStats, h.s.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	var fromHTTP Stats
	if err := json.Unmarshal(h.admin("GET", "/sim/stats", "").body, &fromHTTP); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantStats, fromHTTP); diff != "" {
		t.Errorf("GET /sim/stats (-want +got):\n%s", diff)
	}
}

func TestJournalEndpoint(t *testing.T) {
	h := newHarness(t, nil)
	h.create("", "int-1")
	pin := api.Variable{Name: "_accountPin", Value: "1234", Privacy: true, IVR: true}
	h.post("int-1", body(pin))
	h.call("POST", "int-1", "unknown", "x", body(pin))
	h.post("int-1", `{"variables":[{"name":"bad","value":"1"}]}`)

	r := h.admin("GET", "/sim/journal", "")
	if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q", ct)
	}
	var got []Entry
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	now := h.clock.Now()
	want := []Entry{
		// The journal is a test oracle: it keeps private values as received.
		{Seq: 1, Time: now, Method: "POST", Tenant: "t1", Identifier: "int-1", Status: 200, Variables: []api.Variable{pin}},
		// An unknown tenant's name is not kept.
		{Seq: 2, Time: now, Method: "POST", Identifier: "int-1", Status: 401, Message: api.MsgAuthFailed},
		{Seq: 3, Time: now, Method: "POST", Tenant: "t1", Identifier: "int-1", Status: 400,
			Message:   `Invalid variable name: must start with underscore (variable 1, name "bad")`,
			Variables: []api.Variable{{Name: "bad", Value: "1"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("journal (-want +got):\n%s", diff)
	}
	r = h.admin("GET", "/sim/journal?since=2", "")
	if n := bytes.Count(r.body, []byte("\n")); n != 1 || !bytes.Contains(r.body, []byte(`"seq":3`)) {
		t.Errorf("since=2: %s", r.body)
	}
	if r := h.admin("GET", "/sim/journal?since=x", ""); r.status != 400 {
		t.Errorf("since=x: %d", r.status)
	}
	// Callers get copies: changing one does not change the journal.
	h.s.Journal(0)[0].Variables[0].Value = "changed"
	if v := h.s.Journal(0)[0].Variables[0].Value; v != "1234" {
		t.Errorf("journal value changed to %q through a returned entry", v)
	}
}
