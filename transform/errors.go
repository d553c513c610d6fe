package transform

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	exprcompiler "github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/augment-connector/augment-connector/internal/api"
)

// FieldError is one problem Compile found: Field names the part of the spec, such as "filter",
// "identifier", "variables[2].value" or "variables[2].dataType"; Err says what is wrong (for an
// expression, expr's *file.Error with the position and a snippet of the source).
type FieldError struct {
	Field string
	Err   error
}

func (e FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// CompileErrors lists every problem of a pipeline's spec, so that an operator fixes a
// configuration in one round instead of one error per restart.
type CompileErrors struct {
	Pipeline string
	Errs     []FieldError
}

func (e *CompileErrors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "compiling pipeline %q: %d problem", e.Pipeline, len(e.Errs))
	if len(e.Errs) != 1 {
		b.WriteByte('s')
	}
	for _, fe := range e.Errs {
		b.WriteString("\n  ")
		b.WriteString(fe.Field)
		b.WriteString(": ")
		// expr's messages end with a snippet of the source on further lines; indent them under
		// their field.
		b.WriteString(strings.ReplaceAll(fe.Err.Error(), "\n", "\n    "))
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As access to each problem's error.
func (e *CompileErrors) Unwrap() []error {
	errs := make([]error, len(e.Errs))
	for i, fe := range e.Errs {
		errs[i] = fe.Err
	}
	return errs
}

// Error is returned by Apply for a record that can never succeed: retrying it gives the same
// answer, so the caller dead-letters it. Field names the failing part, such as "filter",
// "identifier" or "variables[_customerTier].value".
//
// Its message never contains a value of a privacy variable: an evaluation error of such a
// variable is replaced by ErrWithheld, and validation errors (*api.ValidationError) and
// conversion errors name lengths and types, not values.
type Error struct {
	Pipeline string
	Field    string
	Err      error
}

func (e *Error) Error() string {
	msg := e.Err.Error()
	var verr *api.ValidationError
	if errors.As(e.Err, &verr) {
		// The field already names the variable; the rule is the useful part.
		msg = "invalid: " + verr.Rule
	}
	return fmt.Sprintf("pipeline %q: %s: %s", e.Pipeline, e.Field, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrWithheld stands in for the evaluation error of a variable whose privacy is true (or could
// not be decided): expr's runtime messages may quote the data they failed on.
var ErrWithheld = errors.New("evaluation failed (message withheld: privacy variable)")

// evalError rebuilds expr's runtime error without the data it failed on. expr formats its
// operands into many messages ("invalid operation: int(123-45-6789)", "index out of range: 5",
// "invalid date ...") and the message reaches the warning log, the augment.error.message
// dead-letter header and check --sample, so it must never carry a value of the record. What is
// kept: the operation that failed (from the expression's syntax tree), the Go types of its
// operands, and the position. A helper's error (helperError) names types only and is kept as
// it is. The error a helper function returned stays reachable with errors.As.
//
// ev re-evaluates the failing node's operands to learn their types; it is nil when that is not
// possible, and the message then names the operation only.
func evalError(err error, prog *vm.Program, ev *operandTypes) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		// vm.Run returns a *file.Error for every failure of a compiled program; anything else
		// is not from the record's data, but name its type only to be safe.
		return &evaluationError{msg: fmt.Sprintf("evaluating: %T", err), err: err}
	}
	var he *helperError
	if errors.As(fe.Prev, &he) {
		return &evaluationError{msg: fmt.Sprintf("evaluating: %s (%d:%d)", he.err.Error(), fe.Line, fe.Column+1), err: fe.Prev}
	}
	op := "evaluation failed"
	if n := nodeAt(prog, fe.From); n != nil {
		op = describe(n, ev)
	} else if strings.HasPrefix(fe.Message, "invalid operation: bool(") && prog != nil {
		// The result's conversion to a bool (a filter, ivr or display): expr formats only the
		// type here, but rebuild it like the others.
		op = "want a bool"
		if t := ev.types([]ast.Node{prog.Node()}); t != "" {
			op += ", got " + t
		}
	}
	return &evaluationError{msg: fmt.Sprintf("evaluating: %s (%d:%d in %q)", op, fe.Line, fe.Column+1, sourceLine(prog, fe.Line)), err: withoutMessage{fe.Prev}}
}

// sourceLine is line n (from 1) of the expression as compiled: the operator's configuration,
// never the record.
func sourceLine(prog *vm.Program, n int) string {
	if prog == nil {
		return ""
	}
	lines := strings.Split(prog.Source().String(), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return strings.TrimSpace(lines[n-1])
}

type evaluationError struct {
	msg string
	err error
}

func (e *evaluationError) Error() string { return e.msg }
func (e *evaluationError) Unwrap() error { return e.err }

// withoutMessage keeps a builtin's error reachable with errors.Is and errors.As, but not its
// text: expr's builtins quote their arguments ("invalid date ...").
type withoutMessage struct{ err error }

func (w withoutMessage) Error() string {
	if w.err == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%T", w.err)
}
func (w withoutMessage) Unwrap() error { return w.err }

// helperError marks an error of one of this package's helpers (formatNumber, ...), whose
// messages name types, never values, so evalError may show it.
type helperError struct{ err error }

func (e *helperError) Error() string { return e.err.Error() }
func (e *helperError) Unwrap() error { return e.err }

// nodeAt finds the node of prog's tree that the runtime error at offset from points at: the
// operation that failed. Of several nodes starting there, the outermost is the operation
// (int(x) and its callee int share the offset).
func nodeAt(prog *vm.Program, from int) ast.Node {
	if prog == nil || prog.Node() == nil {
		return nil
	}
	v := &nodeFinder{from: from}
	root := prog.Node()
	ast.Walk(&root, v)
	return v.found
}

type nodeFinder struct {
	from  int
	found ast.Node
}

// Visit is called children first, so the last match at the offset is the outermost node.
func (f *nodeFinder) Visit(n *ast.Node) {
	if (*n).Location().From != f.from {
		return
	}
	switch (*n).(type) {
	case *ast.BuiltinNode, *ast.CallNode, *ast.BinaryNode, *ast.UnaryNode, *ast.MemberNode, *ast.SliceNode:
		f.found = *n
	}
}

// describe names the failed operation of n and its operands' types, as "int() on string" or
// "operator + on string and int". It never formats a value.
func describe(n ast.Node, ev *operandTypes) string {
	var what string
	var operands []ast.Node
	switch n := n.(type) {
	case *ast.BuiltinNode:
		what, operands = n.Name+"()", n.Arguments
	case *ast.CallNode:
		switch c := n.Callee.(type) {
		case *ast.IdentifierNode:
			if c.Value == fetchName && len(n.Arguments) == 2 {
				// memberPatcher's rewrite of after.x.
				return member(n.Arguments[0], n.Arguments[1], ev)
			} else {
				what, operands = c.Value+"()", n.Arguments
			}
		default:
			what, operands = "call", n.Arguments
		}
	case *ast.BinaryNode:
		what, operands = "operator "+n.Operator, []ast.Node{n.Left, n.Right}
	case *ast.UnaryNode:
		what, operands = "operator "+n.Operator, []ast.Node{n.Node}
	case *ast.MemberNode:
		return member(n.Node, n.Property, ev)
	case *ast.SliceNode:
		what, operands = "slice", []ast.Node{n.Node}
	default:
		return "evaluation failed"
	}
	types := ev.types(operands)
	if types == "" {
		return what + " failed"
	}
	return what + " failed on " + types
}

// member describes a failed member access as expr does, "cannot fetch tier from <nil>", when
// the property is a name written in the expression; a computed property (m[after.x]) may be
// data and is not shown.
func member(from, property ast.Node, ev *operandTypes) string {
	t := ev.types([]ast.Node{from})
	if t == "" {
		t = "a value of unknown type"
	}
	if s, ok := property.(*ast.StringNode); ok {
		return fmt.Sprintf("cannot fetch %s from %s", s.Value, t)
	}
	return "member access failed on " + t
}

// operandTypes evaluates operands of a failed operation on the record that failed, to report
// their Go types. Each operand is compiled from the already checked tree on demand: this runs
// once per failing record, never on the hot path.
type operandTypes struct {
	opts []expr.Option
	env  any // the *env (or *activeEnv) the program ran on
}

// types returns the operands' types joined by "and", or "" when one cannot be had.
func (o *operandTypes) types(operands []ast.Node) (out string) {
	if o == nil || len(operands) == 0 {
		return ""
	}
	defer func() {
		if recover() != nil {
			out = ""
		}
	}()
	cfg := conf.CreateNew()
	for _, opt := range o.opts {
		opt(cfg)
	}
	names := make([]string, 0, len(operands))
	for _, n := range operands {
		prog, err := exprcompiler.Compile(&parser.Tree{Node: n}, cfg)
		if err != nil {
			return ""
		}
		var m vm.VM
		v, err := m.Run(prog, o.env)
		if err != nil {
			return ""
		}
		names = append(names, fmt.Sprintf("%T", v))
	}
	return strings.Join(names, " and ")
}
