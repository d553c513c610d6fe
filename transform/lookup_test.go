package transform

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeTables is a Tables of two maps: customers (one row a key) and calls (several).
type fakeTables struct {
	customers map[string]map[string]any
	calls     map[string][]any
}

func (f *fakeTables) Table(name string) (exists, multi bool) {
	switch name {
	case "customers":
		return true, false
	case "calls":
		return true, true
	}
	return false, false
}

func (f *fakeTables) Lookup(_, key string) map[string]any { return f.customers[key] }
func (f *fakeTables) LookupAll(_, key string) []any       { return f.calls[key] }

func TestLookupCompileErrors(t *testing.T) {
	tables := &fakeTables{}
	for _, tc := range []struct {
		name   string
		tables Tables
		ident  string
		want   string
	}{
		{"no tables", nil, `lookup("customers", after.id)?.call`, "lookup: no tables are configured"},
		{"unknown table", tables, `lookup("custmers", after.id)?.call`, `lookup: no table named "custmers"`},
		{"single read as multi", tables, `lookupAll("customers", after.id)`, `lookupAll: table "customers" maps a key to one row; use lookup`},
		{"multi read as single", tables, `lookup("calls", after.id)`, `lookup: table "calls" maps a key to several rows (it has an id); use lookupAll`},
		{"table not a literal", tables, `lookup(after.t, after.id)`, "lookup: the table must be a string literal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []Option{}
			if tc.tables != nil {
				opts = append(opts, WithTables(tc.tables))
			}
			_, err := Compile(Spec{Name: "p", Identifier: tc.ident, Variables: []VariableSpec{{Name: "_x", Value: "1"}}}, opts...)
			if err == nil {
				t.Fatal("compiled; want an error")
			}
			if got := problems(err); len(got) != 1 || !strings.HasPrefix(got[0], "identifier: "+tc.want) {
				t.Fatalf("problems %q, want one starting with %q", got, "identifier: "+tc.want)
			}
		})
	}
}

func TestLookupApply(t *testing.T) {
	tables := &fakeTables{
		customers: map[string]map[string]any{"7": {"tier": "gold", "balance": 12.5}},
		calls:     map[string][]any{"7": []any{map[string]any{"call": "c1"}, map[string]any{"call": "c2"}}},
	}
	join, err := Compile(Spec{
		Name:       "call-start",
		Identifier: "after.call",
		Variables: []VariableSpec{
			{Name: "_tier", Value: `lookup("customers", after.customer).tier`},
			{Name: "_balance", Value: `formatNumber(lookup("customers", after.customer)?.balance, 2)`},
		},
	}, WithTables(tables))
	if err != nil {
		t.Fatal(err)
	}
	fanout, err := Compile(Spec{
		Name:       "crm",
		Identifier: `map(lookupAll("calls", after.id), .call)`,
		Variables:  []VariableSpec{{Name: "_tier", Value: "after.tier"}},
	}, WithTables(tables))
	if err != nil {
		t.Fatal(err)
	}
	type out struct {
		Outcome Outcome
		IDs     []string
		Vars    map[string]string
		Miss    string
	}
	for _, tc := range []struct {
		name string
		p    *Pipeline
		rec  map[string]any
		want out
	}{
		{"hit, numeric key meets a string key", join, map[string]any{"call": "c9", "customer": int64(7)},
			out{Write, []string{"c9"}, map[string]string{"_tier": "gold", "_balance": "12.50"}, ""}},
		{"miss is reported, variables left out", join, map[string]any{"call": "c9", "customer": "8"},
			out{Skipped, nil, nil, "customers"}},
		{"no key is not a miss", join, map[string]any{"call": "c9"},
			out{Skipped, nil, nil, ""}},
		{"lookupAll fans out", fanout, map[string]any{"id": 7, "tier": "silver"},
			out{Write, []string{"c1", "c2"}, map[string]string{"_tier": "silver"}, ""}},
		{"lookupAll finding nothing skips, no miss", fanout, map[string]any{"id": 8, "tier": "silver"},
			out{Skipped, nil, nil, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.p.Apply(&Record{Value: tc.rec})
			if err != nil {
				t.Fatal(err)
			}
			got := out{Outcome: res.Outcome, IDs: res.Identifiers, Miss: res.LookupMiss}
			for _, v := range res.Variables {
				if got.Vars == nil {
					got.Vars = map[string]string{}
				}
				got.Vars[v.Name] = v.Value
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFormatKey(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
		ok   bool
	}{{"a", "a", true}, {int64(42), "42", true}, {42.0, "42", true}, {nil, "", false}, {"", "", false}, {map[string]any{}, "", false}} {
		got, ok := FormatKey(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("FormatKey(%#v) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
