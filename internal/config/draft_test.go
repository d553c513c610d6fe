package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDraft: a file that does not load (here an unknown key) still gives its pipelines and
// tables, and places a key at the line Load reports it at.
func TestDraft(t *testing.T) {
	const data = `kafka:
  brokerz: [x]
tables:
  - {name: customers, topic: crm.customers, key: after.id, value: {tier: after.tier}, id: after.cid}
pipelines:
  - name: customers
    filter: ${FILTER}
    identifier: after.id +
    variables:
      - name: _a
        value: after.a
        ivr: {expr: "${VIP}"}
      - value: after.b
`
	if _, err := Parse([]byte(data), "d.yaml"); err == nil {
		t.Fatal("the draft's file loads")
	}
	d := ReadDraft("d.yaml", []byte(data))
	if d == nil {
		t.Fatal("no draft")
	}
	if len(d.Tables) != 1 || d.Tables[0].Name != "customers" || d.Tables[0].ID != "after.cid" {
		t.Errorf("tables = %+v", d.Tables)
	}
	if len(d.Pipelines) != 1 || d.Pipelines[0].Identifier != "after.id +" || len(d.Pipelines[0].Variables) != 2 {
		t.Errorf("pipelines = %+v", d.Pipelines)
	}
	tests := []struct {
		path string
		want *Error // nil: not placed
	}{
		{path: "pipelines[0].identifier", want: &Error{File: "d.yaml", Line: 8, Path: "pipelines[0].identifier", Msg: "m"}},
		{path: "pipelines[0].variables[0].value", want: &Error{File: "d.yaml", Line: 11, Path: "pipelines[0].variables[0].value", Msg: "m"}},
		{path: "pipelines[0].variables[1]", want: &Error{File: "d.yaml", Line: 13, Path: "pipelines[0].variables[1]", Msg: "m"}},
		{path: "pipelines[0].filter"},             // from the environment
		{path: "pipelines[0].variables[0].ivr"},   // from the environment, one level down
		{path: "pipelines[0].variables[1].name"},  // absent
		{path: "pipelines[0].variables[2].value"}, // no such variable
		{path: "pipelines[1].identifier"},         // no such pipeline
		{path: "pipelines[0]..identifier"},        // malformed
		{path: "pipelines[0].identifier[0]"},      // not a list
		{path: "pipelines[x].identifier"},         // malformed index
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, d.ErrorAt(tt.path, "m")); diff != "" {
			t.Errorf("ErrorAt(%q) (-want +got):\n%s", tt.path, diff)
		}
	}
	for _, data := range []string{"", "a: [", "- a\n", "pipelines: {a: 1}\n", "kafka: {}\n"} {
		if d := ReadDraft("d.yaml", []byte(data)); d != nil {
			t.Errorf("ReadDraft(%q) = %+v, want nil", data, d)
		}
	}
	if d := ReadDraft("d.yaml", []byte("tables: []\npipelines: []\n")); d == nil || d.Tables == nil || len(d.Tables) != 0 {
		t.Errorf("an empty tables list: %+v, want empty and not nil", d)
	}
}

func TestErrorsHasAndMerge(t *testing.T) {
	es := Errors{
		{File: "f", Line: 3, Path: "pipelines[0].variables[1].name", Msg: "a"},
		{File: "f", Line: 9, Path: "tenants.main", Msg: "b"},
		{File: "f", Msg: "2 more problems not shown"},
	}
	for path, want := range map[string]bool{
		"pipelines[0]":                   true,
		"pipelines[0].variables":         true,
		"pipelines[0].variables[1].name": true,
		"pipelines[0].variables[1].nam":  false,
		"pipelines[1]":                   false,
		"tenants.main":                   true,
		"tenants.mai":                    false,
	} {
		if got := es.Has(path); got != want {
			t.Errorf("Has(%q) = %v, want %v", path, got, want)
		}
	}
	got := es.Merge(Errors{{File: "f", Line: 5, Msg: "c"}, {File: "f", Line: 1, Msg: "d"}})
	var msgs []string
	for _, e := range got {
		msgs = append(msgs, e.Msg)
	}
	if diff := cmp.Diff([]string{"d", "a", "c", "b", "2 more problems not shown"}, msgs); diff != "" {
		t.Errorf("Merge (-want +got):\n%s", diff)
	}
	if got := es.Merge(nil); len(got) != len(es) {
		t.Errorf("Merge(nil) = %v", got)
	}
}
