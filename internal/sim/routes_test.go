package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/augment-connector/augment-connector/internal/api"
)

func TestApplyOperator(t *testing.T) {
	tests := []struct {
		op, value, operand string
		want               bool
		how                string
	}{
		{OpEquals, "VIP", "VIP", true, "string comparison"},
		{OpEquals, "vip", "VIP", false, "string comparison"},
		{OpEquals, "1250.750", "1250.75", false, "string comparison"},
		{OpNotEquals, "shipped", "cancelled", true, "string comparison"},
		{OpNotEquals, "true", "true", false, "string comparison"},
		{OpGreaterThan, "10001", "10000", true, "numeric comparison"},
		{OpGreaterThan, "9", "10000", false, "numeric comparison"}, // as strings "9" > "10000"
		{OpGreaterThan, "299.99", "500", false, "numeric comparison"},
		{OpLessThan, "-12.5", "0", true, "numeric comparison"},
		{OpLessThan, "0", "0", false, "numeric comparison"},
		{OpLessThan, "1e3", "999", false, "numeric comparison"},
		{OpGreaterThan, "beta", "alpha", true, "string comparison"},
		{OpGreaterThan, "$1,250.75", "1000", false, "string comparison"}, // not a number: "$" sorts before "1"
		{OpLessThan, "Inf", "0", false, "string comparison"},
		{OpLessThan, "0x10", "9", true, "string comparison"},
		{OpContains, "Billing Inquiry", "Billing", true, "substring test"},
		{OpContains, "Billing Inquiry", "billing", false, "substring test"},
		{"matches", "a", "a", false, "unknown operator"},
	}
	for _, tt := range tests {
		got, how := ApplyOperator(tt.op, tt.value, tt.operand)
		if got != tt.want || how != tt.how {
			t.Errorf("ApplyOperator(%q, %q, %q) = %v (%s), want %v (%s)", tt.op, tt.value, tt.operand, got, how, tt.want, tt.how)
		}
	}
}

func TestEvaluateRoute(t *testing.T) {
	vars := []api.Variable{
		{Name: "_customerTier", Value: "VIP", IVR: true},
		{Name: "_accountBalance", Value: "1250.75", IVR: true, DataType: "currency"},
		{Name: "_orderStatus", Value: "cancelled"}, // not ivr: invisible to the IVR
		{Name: "_accountPin", Value: "1234", IVR: true, Privacy: true},
	}
	route := func(v, op, operand string) Route {
		return Route{Variable: v, Operator: op, Operand: operand, TrueExit: "yes", FalseExit: "no"}
	}
	tests := []struct {
		route Route
		want  RouteResult
	}{
		{route("_customerTier", OpEquals, "VIP"), RouteResult{Found: true, Value: "VIP", Result: true, Exit: "yes",
			Reason: `_customerTier equals "VIP" is true (string comparison)`}},
		{route("_accountBalance", OpLessThan, "0"), RouteResult{Found: true, Value: "1250.75", Result: false, Exit: "no",
			Reason: `_accountBalance less than "0" is false (numeric comparison)`}},
		{route("_orderStatus", OpEquals, "cancelled"), RouteResult{Exit: "no",
			Reason: "_orderStatus is not set with ivr:true, so the test is false"}},
		{route("_missing", OpNotEquals, "x"), RouteResult{Exit: "no",
			Reason: "_missing is not set with ivr:true, so the test is false"}},
		{route("_accountPin", OpEquals, "1234"), RouteResult{Found: true, Value: "1234", Private: true, Result: true, Exit: "yes",
			Reason: `_accountPin equals "1234" is true (string comparison)`}},
	}
	for _, tt := range tests {
		tt.want.Route = tt.route
		if diff := cmp.Diff(tt.want, EvaluateRoute(tt.route, vars)); diff != "" {
			t.Errorf("EvaluateRoute(%+v) (-want +got):\n%s", tt.route, diff)
		}
	}
}

func TestParseRoutes(t *testing.T) {
	good := `
routes:
  - name: VIP routing
    variable: _customerTier
    operator: equals
    operand: VIP
    trueExit: Priority queue
    falseExit: Standard queue
  - variable: _accountBalance
    operator: "  Greater   Than "
    operand: "10000"
    trueExit: VIP support
    falseExit: Standard queue
`
	got, err := ParseRoutes([]byte(good))
	if err != nil {
		t.Fatalf("ParseRoutes: %v", err)
	}
	want := []Route{
		{Name: "VIP routing", Variable: "_customerTier", Operator: OpEquals, Operand: "VIP", TrueExit: "Priority queue", FalseExit: "Standard queue"},
		{Variable: "_accountBalance", Operator: OpGreaterThan, Operand: "10000", TrueExit: "VIP support", FalseExit: "Standard queue"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	if got, err := ParseRoutes(nil); err != nil || len(got) != 0 {
		t.Errorf("empty file: %v, %v", got, err)
	}
	bad := []struct {
		yaml string
		want []string // every problem is reported
	}{
		{"routes:\n  - variable: customerTier\n    operator: is\n    trueExit: a\n", []string{"must start with underscore", `got "is"`, "trueExit and falseExit are required"}},
		{"routes:\n  - variable: _a\n    operator: equals\n    trueExit: a\n    falseExit: b\n  - variable: _b\n    operator: like\n    trueExit: a\n    falseExit: b\n", []string{"route 2", `got "like"`}},
		{"routes:\n  - variable: _a\n    operatr: equals\n", []string{"line 3", "operatr"}},
		{"- just a list\n", []string{"decoding routes"}},
	}
	for _, tt := range bad {
		_, err := ParseRoutes([]byte(tt.yaml))
		if err == nil {
			t.Errorf("ParseRoutes(%q) accepted it", tt.yaml)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParseRoutes(%q) error %q, want it to mention %q", tt.yaml, err, w)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadRoutes(path); err != nil || len(got) != 2 {
		t.Errorf("LoadRoutes: %v, %v", got, err)
	}
	if _, err := LoadRoutes(path + ".missing"); err == nil {
		t.Error("LoadRoutes of a missing file succeeded")
	}
}
