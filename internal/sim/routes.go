package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/augment-connector/augment-connector/internal/api"
)

// Operators of the IVR's Test Variable node.
const (
	OpEquals      = "equals"
	OpNotEquals   = "not equals"
	OpGreaterThan = "greater than"
	OpLessThan    = "less than"
	OpContains    = "contains"
)

// Route is one Test Variable node of an IVR script: test an ivr:true variable against an
// operand and leave by the true or the false exit (a queue name).
type Route struct {
	Name      string `yaml:"name" json:"name,omitempty"`
	Variable  string `yaml:"variable" json:"variable"`
	Operator  string `yaml:"operator" json:"operator"`
	Operand   string `yaml:"operand" json:"operand"`
	TrueExit  string `yaml:"trueExit" json:"trueExit"`
	FalseExit string `yaml:"falseExit" json:"falseExit"`
}

func (r Route) validate() error {
	var errs []error
	if rule := api.ValidateName(r.Variable); rule != "" {
		errs = append(errs, fmt.Errorf("variable %q: %s", r.Variable, rule))
	}
	switch r.Operator {
	case OpEquals, OpNotEquals, OpGreaterThan, OpLessThan, OpContains:
	default:
		errs = append(errs, fmt.Errorf("operator must be one of %q, %q, %q, %q, %q, got %q",
			OpEquals, OpNotEquals, OpGreaterThan, OpLessThan, OpContains, r.Operator))
	}
	if r.TrueExit == "" || r.FalseExit == "" {
		errs = append(errs, errors.New("trueExit and falseExit are required"))
	}
	return errors.Join(errs...)
}

// routesFile is the YAML of --routes: {routes: [{name, variable, operator, operand, trueExit,
// falseExit}, ...]}.
type routesFile struct {
	Routes []Route `yaml:"routes"`
}

// ParseRoutes reads routes from YAML strictly (an unknown key is an error, with its line) and
// reports every invalid route at once.
func ParseRoutes(data []byte) ([]Route, error) {
	var f routesFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decoding routes: %w", err)
	}
	var errs []error
	for i := range f.Routes {
		r := &f.Routes[i]
		r.Operator = strings.ToLower(strings.Join(strings.Fields(r.Operator), " "))
		if err := r.validate(); err != nil {
			errs = append(errs, fmt.Errorf("route %d: %w", i+1, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("checking routes: %w", err)
	}
	return f.Routes, nil
}

// LoadRoutes reads a routes file (see ParseRoutes).
func LoadRoutes(path string) ([]Route, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading routes: %w", err)
	}
	return ParseRoutes(data)
}

// RouteResult is the outcome of one route for one interaction.
type RouteResult struct {
	Route   Route
	Found   bool   // the interaction has the variable with ivr:true
	Value   string // its value, when found
	Private bool   // the value is privacy:true (the page masks it)
	Result  bool
	Exit    string
	Reason  string // why, in a sentence, without the value
}

// EvaluateRoute runs a Test Variable node on an interaction's variables. Only ivr:true
// variables are visible to the IVR; a variable it cannot see takes the false exit.
func EvaluateRoute(r Route, vars []api.Variable) RouteResult {
	res := RouteResult{Route: r}
	for _, v := range vars {
		if v.Name == r.Variable && v.IVR {
			res.Found, res.Value, res.Private = true, v.Value, v.Privacy
		}
	}
	switch {
	case !res.Found:
		res.Reason = r.Variable + " is not set with ivr:true, so the test is false"
	default:
		var how string
		res.Result, how = ApplyOperator(r.Operator, res.Value, r.Operand)
		res.Reason = fmt.Sprintf("%s %s %q is %v (%s)", r.Variable, r.Operator, r.Operand, res.Result, how)
	}
	res.Exit = r.FalseExit
	if res.Result {
		res.Exit = r.TrueExit
	}
	return res
}

// ApplyOperator applies an operator of the Test Variable node. greater than and less than
// compare numbers when both sides parse as numbers, else strings; equals and not equals compare
// strings exactly; contains looks for the operand in the value. how says which comparison was
// made.
func ApplyOperator(op, value, operand string) (result bool, how string) {
	switch op {
	case OpEquals:
		return value == operand, "string comparison"
	case OpNotEquals:
		return value != operand, "string comparison"
	case OpContains:
		return strings.Contains(value, operand), "substring test"
	case OpGreaterThan, OpLessThan:
		a, aok := parseNumber(value)
		b, bok := parseNumber(operand)
		if aok && bok {
			if op == OpGreaterThan {
				return a > b, "numeric comparison"
			}
			return a < b, "numeric comparison"
		}
		if op == OpGreaterThan {
			return value > operand, "string comparison"
		}
		return value < operand, "string comparison"
	}
	return false, "unknown operator"
}

// parseNumber reads a finite decimal number ("1250.75", "-3", "1e4"); hexadecimal, infinities
// and NaN are not numbers to an IVR.
func parseNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "xXpP_") {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}
