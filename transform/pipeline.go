package transform

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/augment-connector/augment-connector/internal/api"
)

// Option configures Compile.
type Option func(*options)

type options struct {
	exprOpts []expr.Option
	tables   Tables
}

// WithFunctions adds expr options, typically expr.Function, to every expression of the pipeline:
// the way later features (a lookup(table, key) for joins) make functions available. A function
// with the name of a helper or a builtin replaces it. Options that replace the environment
// (expr.Env) are not supported.
func WithFunctions(fns ...expr.Option) Option {
	return func(o *options) { o.exprOpts = append(o.exprOpts, fns...) }
}

// Outcome says what became of a record.
type Outcome uint8

// The outcomes of Apply. The zero Outcome is none of them.
const (
	// Write: the record produced variables for one or more identifiers.
	Write Outcome = iota + 1
	// Filtered: the filter returned false (or nil).
	Filtered
	// Skipped: a delete or tombstone under OnDeleteSkip, no identifier, no active identifier
	// (RequireActive), or no variables.
	Skipped
)

func (o Outcome) String() string {
	switch o {
	case Write:
		return "write"
	case Filtered:
		return "filtered"
	case Skipped:
		return "skipped"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Reasons of a Filtered or Skipped result; a fixed set, so they can label metrics.
const (
	ReasonFiltered     = "filtered"
	ReasonDelete       = "delete"
	ReasonTombstone    = "tombstone"
	ReasonNoIdentifier = "no identifier"
	ReasonNoVariables  = "no variables"
	// ReasonInactive: requireActive found none of the record's identifiers active.
	ReasonInactive = "inactive"
)

// Result is what Apply made of one record. For Write, Identifiers holds at least one identifier
// (distinct, in the order the expression gave them) and Variables at least one valid variable,
// in the spec's order; every identifier receives the same variables.
type Result struct {
	Outcome     Outcome
	Reason      string
	Identifiers []string
	Variables   []api.Variable
	// LookupMiss names the first table whose lookup(table, key) found no row for a non-empty
	// key while this record was evaluated (filter, identifier or variables), or is "". The
	// outcome is still what the expressions made of the nil; the connector applies the
	// pipeline's onLookupMiss policy. lookupAll finding nothing is not a miss: a customer on
	// no call is the usual case.
	LookupMiss string
	// DataTime is when the record's data changed, from the pipeline's recordTime expression
	// (Debezium's source.ts_ms, say); zero when it has none, and the connector then uses the
	// record's Kafka timestamp. The record's age, which the connector's stale and not-found
	// policies read, is counted from it.
	DataTime time.Time
	// Inactive counts the identifiers requireActive left out of Identifiers (their call is not
	// active). Which ones is not said: an identifier may be private.
	Inactive int
}

// Pipeline is a compiled Spec. It is immutable; Apply is safe for concurrent use. A worker that
// applies many records in a row does better with its own Runner.
type Pipeline struct {
	name           string
	processDeletes bool
	onLookupMiss   string      // one of the LookupMiss constants, never ""
	filter         *vm.Program // nil: every record passes
	identifier     *vm.Program
	vars           []variable
	recordTime     *vm.Program   // nil: no recordTime, DataTime stays zero
	active         *activeCheck  // nil: no requireActive
	tables         Tables        // nil: the pipeline has no lookups
	exprOpts       []expr.Option // the options its expressions were compiled with, for errors
	runners        sync.Pool     // of *Runner, for Pipeline.Apply
}

// variable is one compiled VariableSpec. tmpl holds the name and the literal attributes; each
// non-nil program overrides its attribute per record.
type variable struct {
	field                 string // "variables[_name]", for errors
	index                 int    // position in the spec
	tmpl                  api.Variable
	value                 *vm.Program
	ivr, display, privacy *vm.Program
	displayName, dataType *vm.Program
}

// Compile checks spec and compiles each of its expressions once
// (https://expr-lang.org/docs/language-definition). It reports every problem at once as
// *CompileErrors.
//
// # Environment
//
// Expressions see value, key, headers, topic, partition, offset, timestamp (time.Time), and op,
// before, after and source. For a Debezium envelope (a map with an "op" and an "after" or
// "before") these are the envelope's parts; for any other map value after is the value itself
// and op is "", so one pipeline reads after.x from either shape. A misspelt top-level name is a
// compile error.
//
// # Missing data
//
// A missing key reads as nil, and so does a key of a nil after (a processed delete): after.tier
// never fails. One level deeper, a nil in the middle of a path fails the record with "cannot
// fetch tier from <nil>"; write after.customer?.tier where customer may be absent. A value that
// is nil leaves its variable out for that record; a nil or empty identifier skips the record.
//
// # Helpers
//
// Besides expr's builtins:
//   - formatNumber(x, decimals): x (a number, an Avro decimal, or a numeric string) with exactly
//     decimals digits after the point and no thousands separators: formatNumber(1250.7, 2) is
//     "1250.70". The API and the agent format by dataType, so the value stays plain.
//   - formatDate(t, layout): t in a Go time layout, "2006-01-02" when layout is omitted. t is a
//     time.Time (Avro timestamp and date logical types), an RFC 3339 string (Debezium
//     ZonedTimestamp), or milliseconds since the Unix epoch (Debezium Timestamp); for Debezium
//     Date (days) write formatDate(after.d * 86400000).
//   - string(x): x as text the way a variable's value is formatted (below); maps and lists as
//     JSON; nil as "". Replaces expr's builtin.
//   - lower(s), upper(s), trim(s), trim(s, cutset): as expr's builtins, but nil gives nil and a
//     non-string is first formatted as string(x) does.
//   - coalesce(a, b, ...): the first argument that is neither nil nor "", or nil. (expr's a ?? b
//     skips only nil.)
//
// Every helper except string returns nil for a nil first argument, so
// formatNumber(after.balance, 2) leaves the variable out when the column is absent.
// WithFunctions adds more.
//
// # Record time and active interactions
//
// RecordTime, when set, runs after the filter; its result becomes Result.DataTime (see
// Spec.RecordTime for the types it may be). RequireActive runs once per identifier, after the
// identifier expression and before the variables, with identifier bound to it (a name only its
// expression sees); identifiers it finds inactive are dropped and counted in Result.Inactive,
// and a record left with none is Skipped with ReasonInactive.
//
// # Values
//
// A variable's value is formatted as text: strings as they are, integers in decimal, floats
// without an exponent (1250.75, 15000000000), bools as "true"/"false", time.Time as RFC 3339,
// []byte as text, Avro decimals (*big.Rat) exactly. Another type (a map, a list) is an error:
// format it with string() or toJSON(). The identifier may be a string, a number, or a list of
// them (the record fans out to each distinct non-empty one).
func Compile(spec Spec, opts ...Option) (*Pipeline, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	c := &compiler{base: append(append([]expr.Option{expr.Env(env{}), expr.Patch(memberPatcher{})}, helpers()...), o.exprOpts...), tables: o.tables}
	p := &Pipeline{name: spec.Name, tables: o.tables, exprOpts: c.base, onLookupMiss: LookupMissSkip}

	switch spec.OnDelete {
	case "", OnDeleteSkip:
	case OnDeleteProcess:
		p.processDeletes = true
	default:
		c.add("onDelete", fmt.Errorf("must be %q or %q, got %q", OnDeleteSkip, OnDeleteProcess, spec.OnDelete))
	}
	switch spec.OnLookupMiss {
	case "":
	case LookupMissSkip, LookupMissRetry, LookupMissDeadLetter:
		p.onLookupMiss = spec.OnLookupMiss
	default:
		c.add("onLookupMiss", fmt.Errorf("must be %q, %q or %q, got %q", LookupMissSkip, LookupMissRetry, LookupMissDeadLetter, spec.OnLookupMiss))
	}
	if strings.TrimSpace(spec.Filter) != "" {
		p.filter = c.compile("filter", spec.Filter, expr.AsBool())
	}
	if strings.TrimSpace(spec.Identifier) == "" {
		c.add("identifier", errors.New("an expression is required"))
	} else {
		p.identifier = c.compile("identifier", spec.Identifier)
	}
	if len(spec.Variables) == 0 {
		c.add("variables", errors.New("at least one variable is required"))
	}
	seen := make(map[string]int, len(spec.Variables))
	for i, vs := range spec.Variables {
		p.vars = append(p.vars, c.variable(i, vs, seen))
	}
	if strings.TrimSpace(spec.RecordTime) != "" {
		p.recordTime = c.compile("recordTime", spec.RecordTime)
	}
	p.active = c.requireActive(spec.RequireActive, o.exprOpts)
	if len(c.errs) > 0 {
		return nil, &CompileErrors{Pipeline: spec.Name, Errs: c.errs}
	}
	p.runners.New = func() any { return p.NewRunner() }
	return p, nil
}

// Name is the pipeline's name from its Spec.
func (p *Pipeline) Name() string { return p.name }

// OnLookupMiss is what a record whose lookup found no row does: one of the LookupMiss
// constants, LookupMissSkip when the Spec left it empty.
func (p *Pipeline) OnLookupMiss() string { return p.onLookupMiss }

// MayBePrivate reports whether a variable of p may be private: its privacy is true, or an
// expression decides it per record. The connector keeps no value in the dead letters of such a
// pipeline (unless deadLetter.includePrivateValues says otherwise), so the answer must come
// from the pipeline as compiled, not from a second reading of its configuration.
func (p *Pipeline) MayBePrivate() bool {
	for i := range p.vars {
		if p.vars[i].tmpl.Privacy || p.vars[i].privacy != nil {
			return true
		}
	}
	return false
}

// compiler collects every problem instead of stopping at the first.
type compiler struct {
	base   []expr.Option
	tables Tables
	errs   []FieldError
}

func (c *compiler) add(field string, err error) {
	c.errs = append(c.errs, FieldError{Field: field, Err: err})
}

func (c *compiler) compile(field, code string, opts ...expr.Option) *vm.Program {
	if strings.TrimSpace(code) == "" {
		c.add(field, errors.New("an expression is required"))
		return nil
	}
	prog, err := compileExpr(code, c.base, c.tables, opts...)
	if err != nil {
		c.add(field, err)
		return nil
	}
	return prog
}

// compileExpr compiles code with the base options, checking its calls of lookup and lookupAll
// against tables.
func compileExpr(code string, base []expr.Option, tables Tables, opts ...expr.Option) (*vm.Program, error) {
	check := &tableChecker{tables: tables}
	all := append(base[:len(base):len(base)], expr.Patch(check))
	prog, err := expr.Compile(code, append(all, opts...)...)
	if err != nil {
		return nil, err
	}
	if err := check.err(code); err != nil {
		return nil, err
	}
	return prog, nil
}

func (c *compiler) variable(i int, vs VariableSpec, seen map[string]int) variable {
	f := fmt.Sprintf("variables[%d]", i)
	v := variable{field: "variables[" + vs.Name + "]", index: i, tmpl: api.Variable{Name: vs.Name}}
	if rule := api.ValidateName(vs.Name); rule != "" {
		c.add(f+".name", errors.New(rule))
	} else if j, dup := seen[vs.Name]; dup {
		c.add(f+".name", fmt.Errorf("duplicate of variables[%d].name %q", j, vs.Name))
	} else {
		seen[vs.Name] = i
	}
	v.value = c.compile(f+".value", vs.Value)
	v.ivr = c.boolAttr(f+".ivr", vs.IVR, &v.tmpl.IVR)
	v.display = c.boolAttr(f+".display", vs.Display, &v.tmpl.Display)
	v.privacy = c.boolAttr(f+".privacy", vs.Privacy, &v.tmpl.Privacy)
	v.displayName = c.stringAttr(f+".displayName", vs.DisplayName, &v.tmpl.DisplayName, func(s string) error {
		if n := utf8.RuneCountInString(s); n > api.MaxDisplayNameLen {
			return fmt.Errorf("must be at most %d characters, got %d", api.MaxDisplayNameLen, n)
		}
		return nil
	})
	v.dataType = c.stringAttr(f+".dataType", vs.DataType, &v.tmpl.DataType, func(s string) error {
		if s != "" && !api.ValidDataType(s) {
			return fmt.Errorf("must be one of text, number, phone, date, time, currency, got %q", s)
		}
		return nil
	})
	return v
}

// boolAttr compiles a bool attribute's expression, or stores its literal in dst.
func (c *compiler) boolAttr(field string, a Attr, dst *bool) *vm.Program {
	if a.Expr != "" {
		return c.compile(field, a.Expr, expr.AsBool())
	}
	switch l := a.Literal.(type) {
	case nil:
	case bool:
		*dst = l
	default:
		c.add(field, fmt.Errorf("must be a boolean, got %T", a.Literal))
	}
	return nil
}

// stringAttr compiles a string attribute's expression, or checks its literal and stores it in
// dst.
func (c *compiler) stringAttr(field string, a Attr, dst *string, check func(string) error) *vm.Program {
	if a.Expr != "" {
		return c.compile(field, a.Expr, expr.AsKind(reflect.String))
	}
	switch l := a.Literal.(type) {
	case nil:
	case string:
		if err := check(l); err != nil {
			c.add(field, err)
			return nil
		}
		*dst = l
	default:
		c.add(field, fmt.Errorf("must be a string, got %T", a.Literal))
	}
	return nil
}

// Apply applies the pipeline to rec with a pooled Runner; it is safe for concurrent use.
// An error is always an *Error: the record can never succeed.
func (p *Pipeline) Apply(rec *Record) (Result, error) {
	r := p.runners.Get().(*Runner)
	res, err := r.Apply(rec)
	p.runners.Put(r)
	return res, err
}

// Runner applies one pipeline, reusing an expression VM and environment from record to record.
// A Runner is not safe for concurrent use: each partition worker makes its own with NewRunner.
type Runner struct {
	p   *Pipeline
	vm  vm.VM
	env env
	// aenv is env with the identifier a requireActive expression asks about.
	aenv activeEnv
	// lk and its bound functions are made once, so a record's lookups allocate no closures.
	lk          lookups
	lookupFn    func(string, any) map[string]any
	lookupAllFn func(string, any) []any
}

// NewRunner returns a Runner of p for one goroutine.
func (p *Pipeline) NewRunner() *Runner {
	r := &Runner{p: p, lk: lookups{tables: p.tables}}
	if p.tables != nil {
		r.lookupFn, r.lookupAllFn = r.lk.lookup, r.lk.lookupAll
	}
	return r
}

// Apply runs the pipeline on rec: delete handling, filter, identifier, then each variable in
// order, as Compile describes.
//
// An error is always an *Error: the record can never succeed and belongs in the dead-letter
// topic. rec is not retained.
func (r *Runner) Apply(rec *Record) (Result, error) {
	r.lk.missed = ""
	res, err := r.apply(rec)
	res.LookupMiss = r.lk.missed
	return res, err
}

func (r *Runner) apply(rec *Record) (Result, error) {
	// Do not keep the record alive through the environment of a pooled or idle Runner.
	defer func() { r.env = env{} }()
	r.env.set(rec)
	r.env.Lookup, r.env.LookupAll = r.lookupFn, r.lookupAllFn
	p := r.p

	if !p.processDeletes {
		switch {
		case rec.Value == nil:
			return Result{Outcome: Skipped, Reason: ReasonTombstone}, nil
		case r.env.Op == "d":
			return Result{Outcome: Skipped, Reason: ReasonDelete}, nil
		}
	}
	if p.filter != nil {
		out, err := r.vm.Run(p.filter, &r.env)
		if err != nil {
			return Result{}, p.fail("filter", r.evalError(err, p.filter))
		}
		if pass, _ := out.(bool); !pass {
			return Result{Outcome: Filtered, Reason: ReasonFiltered}, nil
		}
	}
	// res carries DataTime and Inactive into every outcome from here on: the connector reads
	// the record's age whatever became of it.
	var res Result
	if p.recordTime != nil {
		out, err := r.vm.Run(p.recordTime, &r.env)
		if err != nil {
			return Result{}, p.fail("recordTime", r.evalError(err, p.recordTime))
		}
		if res.DataTime, err = dataTime(p.recordTime.Source().String(), out); err != nil {
			return Result{}, p.fail("recordTime", err)
		}
	}

	out, err := r.vm.Run(p.identifier, &r.env)
	if err != nil {
		return Result{}, p.fail("identifier", r.evalError(err, p.identifier))
	}
	ids, err := identifiers(out)
	if err != nil {
		return Result{}, p.fail("identifier", err)
	}
	for i, id := range ids {
		if err := api.CheckIdentifier(id); err != nil {
			if len(ids) > 1 {
				err = fmt.Errorf("element %d: %w", i, err)
			}
			return Result{}, p.fail("identifier", err)
		}
	}
	if len(ids) == 0 {
		res.Outcome, res.Reason = Skipped, ReasonNoIdentifier
		return res, nil
	}
	if p.active != nil {
		// Before the variables: a record none of whose calls is active costs nothing more.
		if ids, res.Inactive, err = r.active(ids); err != nil {
			return Result{}, err
		}
		if len(ids) == 0 {
			res.Outcome, res.Reason = Skipped, ReasonInactive
			return res, nil
		}
	}

	var vars []api.Variable
	for i := range p.vars {
		v, ok, err := r.variable(&p.vars[i])
		if err != nil {
			return Result{}, err
		}
		if !ok {
			continue
		}
		if vars == nil {
			vars = make([]api.Variable, 0, len(p.vars)-i)
		}
		vars = append(vars, v)
	}
	if len(vars) == 0 {
		res.Outcome, res.Reason = Skipped, ReasonNoVariables
		return res, nil
	}
	res.Outcome, res.Identifiers, res.Variables = Write, ids, vars
	return res, nil
}

// variable builds one variable for the current record; ok is false when its value is nil.
// Privacy is decided first, so that the errors of a private variable never carry data.
func (r *Runner) variable(v *variable) (_ api.Variable, ok bool, _ error) {
	out := v.tmpl
	// private: the value may be private, so errors must not quote data. When privacy is an
	// expression, assume so until it has answered.
	private := out.Privacy || v.privacy != nil
	var err error
	if v.privacy != nil {
		if out.Privacy, err = r.runBool(v.privacy); err != nil {
			return out, false, r.varFail(v, "privacy", err, true)
		}
		private = out.Privacy
	}
	res, err := r.vm.Run(v.value, &r.env)
	if err != nil {
		return out, false, r.varFail(v, "value", r.evalError(err, v.value), private)
	}
	if res == nil {
		return out, false, nil
	}
	if out.Value, err = formatScalar(res); err != nil {
		if isNil(res) {
			return out, false, nil
		}
		return out, false, r.varFail(v, "value", fmt.Errorf("formatting: %w", err), false)
	}
	for _, a := range [...]struct {
		name string
		prog *vm.Program
		dst  *bool
	}{{"ivr", v.ivr, &out.IVR}, {"display", v.display, &out.Display}} {
		if a.prog == nil {
			continue
		}
		if *a.dst, err = r.runBool(a.prog); err != nil {
			return out, false, r.varFail(v, a.name, err, private)
		}
	}
	for _, a := range [...]struct {
		name string
		prog *vm.Program
		dst  *string
	}{{"displayName", v.displayName, &out.DisplayName}, {"dataType", v.dataType, &out.DataType}} {
		if a.prog == nil {
			continue
		}
		if *a.dst, err = r.runString(a.prog); err != nil {
			return out, false, r.varFail(v, a.name, err, private)
		}
	}
	if verr := api.ValidateVariable(v.index, &out); verr != nil {
		// ValidationError names lengths and rules, never the value.
		return out, false, r.varFail(v, verr.Field, verr, false)
	}
	return out, true, nil
}

func (r *Runner) runBool(prog *vm.Program) (bool, error) {
	out, err := r.vm.Run(prog, &r.env)
	if err != nil {
		return false, r.evalError(err, prog)
	}
	b, _ := out.(bool) // AsBool made it a bool; nil became false
	return b, nil
}

func (r *Runner) runString(prog *vm.Program) (string, error) {
	out, err := r.vm.Run(prog, &r.env)
	if err != nil {
		return "", r.evalError(err, prog)
	}
	switch s := out.(type) {
	case nil:
		return "", nil
	case string:
		return s, nil
	}
	if isNil(out) {
		return "", nil
	}
	return "", fmt.Errorf("want a string, got %T", out)
}

// evalError is evalError for a program of this Runner's pipeline, on the current record.
func (r *Runner) evalError(err error, prog *vm.Program) error {
	return evalError(err, prog, &operandTypes{opts: r.p.exprOpts, env: &r.env})
}

// varFail wraps err for attribute attr of v, withholding its message when the variable is
// private.
func (r *Runner) varFail(v *variable, attr string, err error, private bool) error {
	if private {
		err = ErrWithheld
	}
	return r.p.fail(v.field+"."+attr, err)
}

func (p *Pipeline) fail(field string, err error) error {
	return &Error{Pipeline: p.name, Field: field, Err: err}
}

// identifiers turns the identifier expression's result into distinct non-empty identifiers, in
// order. Its errors name types only.
func identifiers(out any) ([]string, error) {
	switch v := out.(type) {
	case nil:
		return nil, nil
	case string:
		if v == "" {
			return nil, nil
		}
		return []string{v}, nil
	case []string:
		ids := newIDs(len(v))
		for _, s := range v {
			ids.add(s)
		}
		return ids.list, nil
	case []any:
		ids := newIDs(len(v))
		for i, e := range v {
			s, err := identifier(e)
			if err != nil {
				if isNil(e) {
					continue
				}
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			ids.add(s)
		}
		return ids.list, nil
	}
	if isNil(out) {
		return nil, nil
	}
	s, err := identifier(out)
	if err != nil || s == "" {
		return nil, err
	}
	return []string{s}, nil
}

// identifier formats one identifier: a string or a number.
func identifier(x any) (string, error) {
	switch x.(type) {
	case string, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return formatScalar(x)
	}
	return "", fmt.Errorf("want a string, a number or a list of them, got %T", x)
}

// idSet collects distinct non-empty identifiers in order. Fan-out lists are usually short, where
// a linear scan beats a map; a long list gets a map so that it stays linear.
type idSet struct {
	list []string
	seen map[string]struct{}
}

const idSetScanMax = 16

func newIDs(n int) idSet {
	s := idSet{list: make([]string, 0, n)}
	if n > idSetScanMax {
		s.seen = make(map[string]struct{}, n)
	}
	return s
}

func (s *idSet) add(id string) {
	if id == "" {
		return
	}
	if s.seen != nil {
		if _, dup := s.seen[id]; dup {
			return
		}
		s.seen[id] = struct{}{}
	} else if slices.Contains(s.list, id) {
		return
	}
	s.list = append(s.list, id)
}
