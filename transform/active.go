package transform

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// activeEnv is what a requireActive expression sees: the record's environment plus the
// identifier being asked about. It is a type of its own rather than a field of env so that
// identifier stays a compile error in every other expression, where it would always be "".
type activeEnv struct {
	env
	Identifier string `expr:"identifier"`
}

// activeCheck is a compiled ActiveSpec.
type activeCheck struct {
	prog *vm.Program
	opts []expr.Option // what prog was compiled with, for errors
}

// requireActive compiles spec.RequireActive. Its problems are named requireActive.table or
// requireActive.expression; like every compile error they quote the expression as written
// (the operator's configuration), never a record's data.
func (c *compiler) requireActive(a *ActiveSpec, exprOpts []expr.Option) *activeCheck {
	if a == nil {
		return nil
	}
	table := strings.TrimSpace(a.Table)
	field, code := "requireActive.expression", a.Expression
	switch {
	case table == "":
		c.add("requireActive.table", errors.New("a table is required (the lookup table of active interactions)"))
		return nil
	case c.tables == nil:
		c.add("requireActive.table", errors.New("no tables are configured (add one under tables:)"))
		return nil
	}
	exists, multi := c.tables.Table(table)
	if !exists {
		c.add("requireActive.table", fmt.Errorf("no table named %q", table))
		return nil
	}
	if strings.TrimSpace(code) == "" {
		field = "requireActive.table"
		if multi {
			code = fmt.Sprintf("len(%s(%s, identifier)) > 0", fnLookupAll, strconv.Quote(table))
		} else {
			code = fmt.Sprintf("%s(%s, identifier) != nil", fnLookup, strconv.Quote(table))
		}
	}
	opts := append(append([]expr.Option{expr.Env(activeEnv{}), expr.Patch(memberPatcher{})}, helpers()...), exprOpts...)
	prog, err := compileExpr(code, opts, c.tables, expr.AsBool())
	if err != nil {
		c.add(field, err)
		return nil
	}
	return &activeCheck{prog: prog, opts: opts}
}

// active keeps the identifiers of ids that p's requireActive finds active, in order, and
// reports how many it dropped. Lookups that find nothing here do not count as a lookup miss:
// an interaction absent from the table of active ones is simply not active.
func (r *Runner) active(ids []string) (kept []string, inactive int, err error) {
	a := r.p.active
	missed := r.lk.missed
	defer func() {
		r.lk.missed = missed
		r.aenv = activeEnv{}
	}()
	r.aenv.env = r.env
	kept = ids[:0]
	for _, id := range ids {
		r.aenv.Identifier = id
		out, err := r.vm.Run(a.prog, &r.aenv)
		if err != nil {
			return nil, 0, r.p.fail("requireActive.expression", evalError(err, a.prog, &operandTypes{opts: a.opts, env: &r.aenv}))
		}
		if ok, _ := out.(bool); ok { // AsBool made it a bool; nil became false
			kept = append(kept, id)
		} else {
			inactive++
		}
	}
	return kept, inactive, nil
}

// dataTime converts the recordTime expression's result. Its errors name the expression (the
// operator's configuration) and the result's type, never the value, which is record data.
func dataTime(code string, out any) (time.Time, error) {
	bad := func(what string) error {
		return fmt.Errorf("recordTime %q: want milliseconds since the Unix epoch, a time or an RFC 3339 string, got %s", code, what)
	}
	switch v := out.(type) {
	case nil:
		return time.Time{}, nil
	case time.Time:
		return v, nil
	case string:
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			// time.Parse quotes its input: leave its message out.
			return time.Time{}, bad("a string that is not RFC 3339")
		}
		return t, nil
	case int:
		return time.UnixMilli(int64(v)), nil
	case int32:
		return time.UnixMilli(int64(v)), nil
	case int64:
		return time.UnixMilli(v), nil
	case uint32:
		return time.UnixMilli(int64(v)), nil
	case uint64:
		if v > math.MaxInt64 {
			return time.Time{}, bad("a uint64 out of range")
		}
		return time.UnixMilli(int64(v)), nil
	case float64:
		return floatMillis(v, bad)
	case float32:
		return floatMillis(float64(v), bad)
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return time.UnixMilli(i), nil
		}
		f, err := v.Float64()
		if err != nil {
			return time.Time{}, bad("a json.Number that is not a number")
		}
		return floatMillis(f, bad)
	}
	if isNil(out) {
		return time.Time{}, nil
	}
	return time.Time{}, bad(fmt.Sprintf("%T", out))
}

// floatMillis is f milliseconds since the epoch; JSON numbers arrive as float64 when they have
// a fraction.
func floatMillis(f float64, bad func(string) error) (time.Time, error) {
	// ±2^53 ms is ±285,000 years: beyond it the float is not an instant anyone meant.
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<53 {
		return time.Time{}, bad("a float64 out of range")
	}
	ms := math.Floor(f)
	return time.UnixMilli(int64(ms)).Add(time.Duration(math.Round((f - ms) * 1e6))), nil
}
