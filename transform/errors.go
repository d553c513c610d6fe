package transform

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr/file"

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

// evalError reduces expr's runtime error to its message and position, dropping the snippet of
// source expr appends (the source is the operator's own configuration, and one line reads
// better in a dead-letter header). The error a helper function returned stays reachable with
// errors.As.
func evalError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return &evaluationError{msg: fmt.Sprintf("evaluating: %s (%d:%d)", fe.Message, fe.Line, fe.Column+1), err: fe.Prev}
	}
	return fmt.Errorf("evaluating: %w", err)
}

type evaluationError struct {
	msg string
	err error
}

func (e *evaluationError) Error() string { return e.msg }
func (e *evaluationError) Unwrap() error { return e.err }
