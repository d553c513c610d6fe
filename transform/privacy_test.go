package transform

import (
	"fmt"
	"strings"
	"testing"
)

// TestRuntimeErrorsQuoteNoData: a filter, an identifier, a variable and a table's key expression
// that fail at runtime on a private value (issue 12 point 4). expr's own messages quote the
// operand ("invalid operation: int(123-45-6789)", "invalid date 123-45-6789"); the rebuilt ones
// keep the operation, the operand types, the position and the expression, never the value.
func TestRuntimeErrorsQuoteNoData(t *testing.T) {
	const ssn = "123-45-6789"
	rec := &Record{Topic: "calls", Value: cdc("c", nil, map[string]any{
		"id": "int-1", "ssn": ssn, "list": []any{ssn}, "n": 7, "m": map[string]any{ssn: nil},
	})}
	for _, tc := range []struct {
		name string
		spec Spec   // a pipeline, or
		key  string // a table's key expression, evaluated on its own
		want string
	}{
		{
			name: "filter int()",
			spec: Spec{Filter: `int(after.ssn) > 0`, Identifier: `after.id`},
			want: `pipeline "test": filter: evaluating: int() failed on string (1:1 in "int(after.ssn) > 0")`,
		},
		{
			name: "filter date()",
			spec: Spec{Filter: `date(after.ssn) < now()`, Identifier: `after.id`},
			want: `pipeline "test": filter: evaluating: date() failed on string (1:1 in "date(after.ssn) < now()")`,
		},
		{
			name: "identifier",
			spec: Spec{Identifier: `"c-" + string(int(after.ssn))`},
			want: `pipeline "test": identifier: evaluating: int() failed on string (1:15 in "\"c-\" + string(int(after.ssn))")`,
		},
		{
			name: "identifier, index out of range",
			spec: Spec{Identifier: `after.list[after.n]`},
			want: `pipeline "test": identifier: evaluating: member access failed on []interface {} (1:11 in "after.list[after.n]")`,
		},
		{
			name: "identifier, computed member of nil",
			spec: Spec{Identifier: `after.m[after.ssn].x`},
			want: `pipeline "test": identifier: evaluating: cannot fetch x from <nil> (1:20 in "after.m[after.ssn].x")`,
		},
		{
			name: "public variable",
			spec: Spec{Identifier: `after.id`, Variables: []VariableSpec{{Name: "_v", Value: `float(after.ssn)`}}},
			want: `pipeline "test": variables[_v].value: evaluating: float() failed on string (1:1 in "float(after.ssn)")`,
		},
		{
			name: "table key",
			key:  `int(after.ssn) + 1`,
			want: `evaluating: int() failed on string (1:1 in "int(after.ssn) + 1")`,
		},
		{
			name: "table key, operator",
			key:  `after.ssn * 2`,
			want: `evaluating: operator * failed on string and int (1:11 in "after.ssn * 2")`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.key != "" {
				e, cerr := CompileExpr(tc.key)
				if cerr != nil {
					t.Fatal(cerr)
				}
				var ev Evaluator
				ev.Set(rec)
				_, err = ev.Eval(e)
			} else {
				if len(tc.spec.Variables) == 0 {
					tc.spec.Variables = []VariableSpec{{Name: "_v", Value: `"x"`}}
				}
				_, err = mustCompile(t, tc.spec).Apply(rec)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error = %s\nwant    %s", got, tc.want)
			}
			if s := fmt.Sprintf("%v|%+v|%s", err, err, err); strings.Contains(s, ssn) || strings.Contains(s, "7 (array") {
				t.Errorf("error quotes the record's data: %s", s)
			}
		})
	}
}

// TestDataTypeErrorQuotesNoData: a dataType computed from the record that is not one of the
// contract's names fails the record; the rule names the length, never the text, which here is
// the private value itself.
func TestDataTypeErrorQuotesNoData(t *testing.T) {
	const ssn = "123-45-6789"
	for _, privacy := range []bool{true, false} {
		t.Run(fmt.Sprint("privacy=", privacy), func(t *testing.T) {
			p := mustCompile(t, Spec{Identifier: `after.id`, Variables: []VariableSpec{{
				Name: "_ssn", Value: `after.ssn`, Privacy: Attr{Literal: privacy}, DataType: Attr{Expr: `after.ssn`},
			}}})
			_, err := p.Apply(&Record{Value: cdc("c", nil, map[string]any{"id": "int-1", "ssn": ssn})})
			want := `pipeline "test": variables[_ssn].dataType: invalid: must be one of text, number, phone, date, time, currency (got a string of 11 bytes)`
			if err == nil || err.Error() != want {
				t.Fatalf("error = %v\nwant    %s", err, want)
			}
			if strings.Contains(fmt.Sprintf("%v|%+v", err, err), ssn) {
				t.Errorf("error quotes the value: %v", err)
			}
		})
	}
}

// TestMayBePrivate: a pipeline may be private when a variable's privacy is true or an
// expression. (These cases were config's HasPrivateVariable test.)
func TestMayBePrivate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		privacy []Attr
		want    bool
	}{
		{"no privacy", []Attr{{}, {Literal: false}}, false},
		{"literal true", []Attr{{}, {Literal: true}}, true},
		{"expression", []Attr{{Expr: `after.vip`}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := Spec{Identifier: "key"}
			for i, a := range tc.privacy {
				spec.Variables = append(spec.Variables, VariableSpec{Name: fmt.Sprintf("_v%d", i), Value: "after.x", Privacy: a})
			}
			if got := mustCompile(t, spec).MayBePrivate(); got != tc.want {
				t.Errorf("MayBePrivate() = %v, want %v", got, tc.want)
			}
		})
	}
}
