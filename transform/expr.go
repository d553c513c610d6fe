package transform

import (
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// Expr is one compiled expression over a record, outside any pipeline: the key, value fields,
// id and delete condition of a lookup table. It sees the same environment and helpers as a
// pipeline's expressions (value, key, headers, after, op, ...), but not lookup or lookupAll.
type Expr struct {
	prog *vm.Program
	opts []expr.Option // what prog was compiled with, for errors
}

// CompileExpr compiles code. A compile error is expr's *file.Error (with its position), so
// callers can report it at the config line of the key that holds code.
func CompileExpr(code string, opts ...Option) (*Expr, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	base := append(append([]expr.Option{expr.Env(env{}), expr.Patch(memberPatcher{})}, helpers()...), o.exprOpts...)
	prog, err := compileExpr(code, base, nil)
	if err != nil {
		return nil, err
	}
	return &Expr{prog: prog, opts: base}, nil
}

// Evaluator evaluates Exprs on one record at a time, reusing its VM. It is not safe for
// concurrent use: the goroutine that reads a table's topic owns one.
type Evaluator struct {
	vm  vm.VM
	env env
}

// Set makes rec the record that Eval reads. rec's value is retained until the next Set or
// Reset.
func (ev *Evaluator) Set(rec *Record) { ev.env.set(rec) }

// Reset drops the current record.
func (ev *Evaluator) Reset() { ev.env = env{} }

// Deleted reports whether the current record is a tombstone (nil value) or a Debezium delete
// (op "d"). For a Debezium delete, after reads the before image from here on, so a table's key
// and id expressions, written against after, find the row the delete removes.
func (ev *Evaluator) Deleted() bool {
	if ev.env.Op == "d" && ev.env.After == nil {
		ev.env.After = ev.env.Before
	}
	return ev.env.Value == nil || ev.env.Op == "d"
}

// Eval runs e on the current record. Errors never quote the record's data.
func (ev *Evaluator) Eval(e *Expr) (any, error) {
	out, err := ev.vm.Run(e.prog, &ev.env)
	if err != nil {
		return nil, evalError(err, e.prog, &operandTypes{opts: e.opts, env: &ev.env})
	}
	return out, nil
}
