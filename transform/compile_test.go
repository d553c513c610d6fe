package transform

import (
	"errors"
	"strings"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The package starts no goroutines; the concurrency test does, and must stop them.
	goleak.VerifyTestMain(m)
}

// problems renders each problem as "field: first line of its message", the part a table can
// assert exactly; expr's source snippets follow on later lines.
func problems(err error) []string {
	var ce *CompileErrors
	if !errors.As(err, &ce) {
		return []string{"not *CompileErrors: " + err.Error()}
	}
	var out []string
	for _, fe := range ce.Errs {
		msg, _, _ := strings.Cut(fe.Err.Error(), "\n")
		out = append(out, fe.Field+": "+msg)
	}
	return out
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		want []string
	}{
		{
			name: "empty spec",
			spec: Spec{Name: "p"},
			want: []string{
				"identifier: an expression is required",
				"variables: at least one variable is required",
			},
		},
		{
			name: "every kind of problem at once",
			spec: Spec{
				Name:       "orders",
				OnDelete:   "drop",
				Filter:     `after.total`, // dynamic: accepted, checked per record
				Identifier: `afer.callId`,
				Variables: []VariableSpec{
					{Name: "customerTier", Value: `after.tier`},
					{Name: "_thisNameIsWayTooLongForTheAPI", Value: `after.x`},
					{Name: "_tier", Value: ``},
					{Name: "_tier", Value: `after.tier +`},
					{Name: "_bal", Value: `after.bal`,
						DataType:    Attr{Literal: "money"},
						DisplayName: Attr{Literal: "An Agent-Facing Label Of 31 Chr"},
						IVR:         Attr{Literal: "yes"},
						Privacy:     Attr{Expr: `"true"`},
					},
					{Name: "_x", Value: `1`,
						DisplayName: Attr{Expr: `42`},
						DataType:    Attr{Literal: true},
						Display:     Attr{Expr: `after.show`},
					},
					{Name: "", Value: `2`},
					{Name: "_a-b", Value: `lookup("t", after.id)`},
				},
			},
			want: []string{
				`onDelete: must be "skip" or "process", got "drop"`,
				"identifier: unknown name afer (1:1)",
				"variables[0].name: must start with underscore",
				"variables[1].name: must be at most 25 characters",
				"variables[2].value: an expression is required",
				`variables[3].name: duplicate of variables[2].name "_tier"`,
				"variables[3].value: unexpected token EOF (1:12)",
				"variables[4].ivr: must be a boolean, got string",
				"variables[4].privacy: expected bool, but got string",
				"variables[4].displayName: must be at most 30 characters, got 31",
				`variables[4].dataType: must be one of text, number, phone, date, time, currency, got "money"`,
				"variables[5].displayName: expected string, but got int",
				"variables[5].dataType: must be a string, got bool",
				"variables[6].name: name is required",
				"variables[7].name: must be alphanumeric after the underscore",
				"variables[7].value: lookup: no tables are configured (add one under tables:) (1:1)",
			},
		},
		{
			name: "onLookupMiss",
			spec: Spec{Name: "p", OnLookupMiss: "ignore", Identifier: `key`, Variables: []VariableSpec{{Name: "_a", Value: `1`}}},
			want: []string{`onLookupMiss: must be "skip", "retry" or "deadLetter", got "ignore"`},
		},
		{
			name: "filter of a static non-bool type",
			spec: Spec{Name: "p", Filter: `topic + "y"`, Identifier: `key`, Variables: []VariableSpec{{Name: "_a", Value: `1`}}},
			want: []string{"filter: expected bool, but got string"},
		},
		{
			name: "misspelt top-level name in an attribute",
			spec: Spec{Name: "p", Identifier: `key`, Variables: []VariableSpec{{Name: "_a", Value: `1`, IVR: Attr{Expr: `aftr.vip`}}}},
			want: []string{"variables[0].ivr: unknown name aftr (1:1)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.spec)
			if err == nil {
				t.Fatalf("Compile succeeded with %+v", p)
			}
			if diff := cmp.Diff(tc.want, problems(err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompileErrorsMessage(t *testing.T) {
	_, err := Compile(Spec{Name: "orders", Identifier: `afer.callId`})
	want := "compiling pipeline \"orders\": 2 problems\n" +
		"  identifier: unknown name afer (1:1)\n" +
		"     | afer.callId\n" +
		"     | ^\n" +
		"  variables: at least one variable is required"
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	var fe *file.Error
	if !errors.As(err, &fe) || fe.Line != 1 {
		t.Errorf("errors.As(*file.Error) = %v, %+v; want the identifier's expr error", fe != nil, fe)
	}
}

func TestCompileValid(t *testing.T) {
	_, err := Compile(Spec{
		Name:       "ok",
		Filter:     `op in ["c", "u", "r"] && after?.tier != nil`,
		Identifier: `after.callId`,
		OnDelete:   OnDeleteProcess,
		Variables: []VariableSpec{
			{Name: "_tier", Value: `after.tier`, IVR: Attr{Literal: true}, DisplayName: Attr{Literal: "Customer Tier"}, DataType: Attr{Literal: "text"}},
			{Name: "_pin", Value: `after.pin`, Privacy: Attr{Literal: true}, Display: Attr{Literal: false}},
			{Name: "_when", Value: `formatDate(timestamp, "15:04")`, DataType: Attr{Expr: `"time"`}, DisplayName: Attr{Expr: `headers.label`}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWithFunctions(t *testing.T) {
	table := map[string]string{"42": "Gold"}
	tierOf := expr.Function("tierOf", func(args ...any) (any, error) {
		v, ok := table[args[1].(string)]
		if !ok {
			return nil, nil
		}
		return v, nil
	}, new(func(string, string) any))
	spec := Spec{Name: "p", Identifier: `after.callId`, Variables: []VariableSpec{{Name: "_tier", Value: `tierOf("tiers", after.customer)`}}}

	if _, err := Compile(spec); err == nil {
		t.Fatal("Compile without WithFunctions accepted an unknown function")
	}
	p, err := Compile(spec, WithFunctions(tierOf))
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Apply(&Record{Value: map[string]any{"callId": "c1", "customer": "42"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Variables) != 1 || got.Variables[0].Value != "Gold" {
		t.Errorf("Apply = %+v, want _tier Gold", got)
	}
}

// TestOnLookupMiss: the policy compiled is the one given, skip when none is.
func TestOnLookupMiss(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", LookupMissSkip},
		{LookupMissSkip, LookupMissSkip},
		{LookupMissRetry, LookupMissRetry},
		{LookupMissDeadLetter, LookupMissDeadLetter},
	} {
		p, err := Compile(Spec{Name: "p", OnLookupMiss: tc.in, Identifier: `key`, Variables: []VariableSpec{{Name: "_a", Value: `1`}}})
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if got := p.OnLookupMiss(); got != tc.want {
			t.Errorf("OnLookupMiss() of %q = %q, want %q", tc.in, got, tc.want)
		}
	}
}
