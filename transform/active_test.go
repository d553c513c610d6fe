package transform

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRecordTime(t *testing.T) {
	want := time.Date(2024, 7, 10, 10, 30, 0, 0, time.UTC)
	ms := want.UnixMilli()
	for _, tc := range []struct {
		name    string
		expr    string
		value   map[string]any
		want    time.Time
		wantErr string // a part of the error; the value must never appear in it
	}{
		{name: "Debezium source.ts_ms, int64", expr: "source.ts_ms",
			value: map[string]any{"op": "u", "after": map[string]any{"c": "c1"}, "source": map[string]any{"ts_ms": ms}}, want: want},
		{name: "int", expr: "after.t", value: map[string]any{"c": "c1", "t": int(ms)}, want: want},
		{name: "float64 from JSON", expr: "after.t", value: map[string]any{"c": "c1", "t": float64(ms) + 0.5}, want: want.Add(500 * time.Microsecond)},
		{name: "json.Number", expr: "after.t", value: map[string]any{"c": "c1", "t": json.Number("1720607400000")}, want: want},
		{name: "time.Time (Avro timestamp-millis)", expr: "after.t", value: map[string]any{"c": "c1", "t": want}, want: want},
		{name: "RFC 3339 string", expr: "after.t", value: map[string]any{"c": "c1", "t": "2024-07-10T12:30:00+02:00"}, want: want},
		{name: "nil leaves DataTime zero", expr: "after.t", value: map[string]any{"c": "c1"}},
		{name: "empty string leaves DataTime zero", expr: "after.t", value: map[string]any{"c": "c1", "t": ""}},
		{name: "a string that is no time", expr: "after.t", value: map[string]any{"c": "c1", "t": "secret-4821"},
			wantErr: `pipeline "test": recordTime: recordTime "after.t": want milliseconds since the Unix epoch, a time or an RFC 3339 string, got a string that is not RFC 3339`},
		{name: "a bool", expr: "after.t", value: map[string]any{"c": "c1", "t": true}, wantErr: "got bool"},
		{name: "a map", expr: "after.t", value: map[string]any{"c": "c1", "t": map[string]any{"secret": "4821"}}, wantErr: "got map[string]interface {}"},
		{name: "an evaluation error quotes no data", expr: "after.t + 1", value: map[string]any{"c": "c1", "t": "secret-4821"}, wantErr: "recordTime: evaluating: operator + failed on string and int"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, Spec{Identifier: "after.c", RecordTime: tc.expr, Variables: []VariableSpec{{Name: "_c", Value: "after.c"}}})
			res, err := p.Apply(&Record{Value: tc.value, Timestamp: ts})
			if tc.wantErr != "" {
				var terr *Error
				if !errors.As(err, &terr) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want an *Error containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "4821") {
					t.Fatalf("error %q quotes the record's data", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != Write || !res.DataTime.Equal(tc.want) {
				t.Fatalf("outcome %v, DataTime %v; want write, %v", res.Outcome, res.DataTime, tc.want)
			}
		})
	}
}

func TestRecordTimeOnEveryOutcomeAfterTheFilter(t *testing.T) {
	p := mustCompile(t, Spec{Filter: "after.keep", Identifier: "after.c", RecordTime: "after.t", Variables: []VariableSpec{{Name: "_c", Value: "after.x"}}})
	want := time.UnixMilli(1720607400000)
	for _, tc := range []struct {
		name    string
		value   map[string]any
		outcome Outcome
		dt      time.Time
	}{
		{"filtered: not evaluated", map[string]any{"keep": false, "t": "not a time"}, Filtered, time.Time{}},
		{"no identifier", map[string]any{"keep": true, "t": want.UnixMilli()}, Skipped, want},
		{"no variables", map[string]any{"keep": true, "c": "c1", "t": want.UnixMilli()}, Skipped, want},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := p.Apply(&Record{Value: tc.value})
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tc.outcome || !res.DataTime.Equal(tc.dt) {
				t.Fatalf("outcome %v, DataTime %v; want %v, %v", res.Outcome, res.DataTime, tc.outcome, tc.dt)
			}
		})
	}
}

// activeTables: customers (single-valued) holds the active calls by call id; calls
// (many-valued) holds each customer's calls.
func activeTables() *fakeTables {
	return &fakeTables{
		customers: map[string]map[string]any{"c1": {"agent": "a"}, "c3": {"agent": "b"}},
		calls: map[string][]any{
			"7": {map[string]any{"call": "c1"}, map[string]any{"call": "c2"}},
		},
	}
}

func TestRequireActive(t *testing.T) {
	tables := activeTables()
	type out struct {
		Outcome  Outcome
		Reason   string
		IDs      []string
		Inactive int
		Miss     string
	}
	vars := []VariableSpec{{Name: "_tier", Value: "after.tier"}}
	for _, tc := range []struct {
		name   string
		spec   Spec
		record map[string]any
		want   out
	}{
		{
			name:   "default expression: the one identifier is active",
			spec:   Spec{Identifier: "after.call", RequireActive: &ActiveSpec{Table: "customers"}, Variables: vars},
			record: map[string]any{"call": "c1", "tier": "gold"},
			want:   out{Outcome: Write, IDs: []string{"c1"}},
		},
		{
			name:   "default expression: not in the table is inactive, and no lookup miss",
			spec:   Spec{Identifier: "after.call", RequireActive: &ActiveSpec{Table: "customers"}, Variables: vars},
			record: map[string]any{"call": "c2", "tier": "gold"},
			want:   out{Outcome: Skipped, Reason: ReasonInactive, Inactive: 1},
		},
		{
			name:   "partly inactive: the active ones are kept in order",
			spec:   Spec{Identifier: "after.calls", RequireActive: &ActiveSpec{Table: "customers"}, Variables: vars},
			record: map[string]any{"calls": []any{"c3", "c2", "c1", "c4"}, "tier": "gold"},
			want:   out{Outcome: Write, IDs: []string{"c3", "c1"}, Inactive: 2},
		},
		{
			name:   "all inactive",
			spec:   Spec{Identifier: "after.calls", RequireActive: &ActiveSpec{Table: "customers"}, Variables: vars},
			record: map[string]any{"calls": []any{"c2", "c4"}, "tier": "gold"},
			want:   out{Outcome: Skipped, Reason: ReasonInactive, Inactive: 2},
		},
		{
			name: "an expression over a many-valued table and the record",
			spec: Spec{Identifier: `"c1"`, Variables: vars, RequireActive: &ActiveSpec{Table: "calls",
				Expression: `identifier in map(lookupAll("calls", after.id), .call)`}},
			record: map[string]any{"id": 7, "tier": "gold"},
			want:   out{Outcome: Write, IDs: []string{"c1"}},
		},
		{
			name: "the expression's lookup finding nothing is no miss",
			spec: Spec{Identifier: "after.call", Variables: vars, RequireActive: &ActiveSpec{Table: "customers",
				Expression: `lookup("customers", identifier)?.agent == "a"`}},
			record: map[string]any{"call": "c9", "tier": "gold"},
			want:   out{Outcome: Skipped, Reason: ReasonInactive, Inactive: 1},
		},
		{
			name: "a miss of the identifier expression is still reported",
			spec: Spec{Identifier: `lookup("customers", after.other) == nil ? after.call : ""`, Variables: vars,
				RequireActive: &ActiveSpec{Table: "customers"}},
			record: map[string]any{"call": "c9", "other": "x", "tier": "gold"},
			want:   out{Outcome: Skipped, Reason: ReasonInactive, Inactive: 1, Miss: "customers"},
		},
		{
			name:   "a nil result is inactive",
			spec:   Spec{Identifier: "after.call", Variables: vars, RequireActive: &ActiveSpec{Table: "customers", Expression: "after.active"}},
			record: map[string]any{"call": "c1", "tier": "gold"},
			want:   out{Outcome: Skipped, Reason: ReasonInactive, Inactive: 1},
		},
		{
			name:   "no identifier: requireActive is not asked",
			spec:   Spec{Identifier: "after.call", RequireActive: &ActiveSpec{Table: "customers"}, Variables: vars},
			record: map[string]any{"tier": "gold"},
			want:   out{Outcome: Skipped, Reason: ReasonNoIdentifier},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Name = "p"
			p, err := Compile(tc.spec, WithTables(tables))
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Apply(&Record{Value: tc.record})
			if err != nil {
				t.Fatal(err)
			}
			got := out{Outcome: res.Outcome, Reason: res.Reason, IDs: res.Identifiers, Inactive: res.Inactive, Miss: res.LookupMiss}
			if res.Outcome == Write {
				got.Reason = ""
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequireActiveErrors(t *testing.T) {
	vars := []VariableSpec{{Name: "_tier", Value: "after.tier"}}
	for _, tc := range []struct {
		name   string
		active ActiveSpec
		tables Tables
		want   string // the one problem
	}{
		{"no table", ActiveSpec{}, activeTables(), "requireActive.table: a table is required"},
		{"no tables configured", ActiveSpec{Table: "customers"}, nil, "requireActive.table: no tables are configured"},
		{"unknown table", ActiveSpec{Table: "custmers"}, activeTables(), `requireActive.table: no table named "custmers"`},
		{"not a bool", ActiveSpec{Table: "customers", Expression: `"yes"`}, activeTables(), "requireActive.expression: expected bool, but got string"},
		{"identifier is a string", ActiveSpec{Table: "customers", Expression: `identifier + 1 > 0`}, activeTables(), "requireActive.expression: invalid operation: + (mismatched types string and int)"},
		{"misspelt name", ActiveSpec{Table: "customers", Expression: `identifer != ""`}, activeTables(), "requireActive.expression: unknown name identifer"},
		{"lookup of a wrong table", ActiveSpec{Table: "customers", Expression: `lookup("calls", identifier) != nil`}, activeTables(), `requireActive.expression: lookup: table "calls" maps a key to several rows`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []Option
			if tc.tables != nil {
				opts = append(opts, WithTables(tc.tables))
			}
			_, err := Compile(Spec{Name: "p", Identifier: "after.call", RequireActive: &tc.active, Variables: vars}, opts...)
			if got := problems(err); len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
				t.Fatalf("problems %q, want one starting with %q", got, tc.want)
			}
		})
	}
}

func TestIdentifierIsOnlyForRequireActive(t *testing.T) {
	_, err := Compile(Spec{Name: "p", Identifier: "identifier", Variables: []VariableSpec{{Name: "_x", Value: "1"}}})
	if got := problems(err); len(got) != 1 || !strings.HasPrefix(got[0], "identifier: unknown name identifier") {
		t.Fatalf("problems %q", got)
	}
}

func TestRequireActiveRuntimeErrorQuotesNoData(t *testing.T) {
	p, err := Compile(Spec{Name: "p", Identifier: "after.call", Variables: []VariableSpec{{Name: "_x", Value: "1"}},
		RequireActive: &ActiveSpec{Table: "customers", Expression: `int(identifier) > 0`}}, WithTables(activeTables()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Apply(&Record{Value: map[string]any{"call": "secret-4821"}})
	var terr *Error
	if !errors.As(err, &terr) || terr.Field != "requireActive.expression" {
		t.Fatalf("error %v, want an *Error of requireActive.expression", err)
	}
	if msg := err.Error(); strings.Contains(msg, "4821") || !strings.Contains(msg, "int() failed on string") {
		t.Fatalf("error %q: want the operation and its operand types, never the data", msg)
	}
}
