package transform

import (
	"fmt"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
)

// Tables is what lookup and lookupAll read: the lookup tables materialized from topics
// (internal/tables). Its methods are called from every partition worker at once.
type Tables interface {
	// Table reports whether a table of that name is defined, and whether it maps one key to
	// several rows (lookupAll) or to one (lookup).
	Table(name string) (exists, multi bool)
	// Lookup returns the row of key in a single-valued table, or nil.
	Lookup(table, key string) map[string]any
	// LookupAll returns the rows of key in a many-valued table (each a map[string]any), or nil.
	LookupAll(table, key string) []any
}

// WithTables makes the functions lookup(table, key) and lookupAll(table, key) read t. Without
// it, an expression that calls them does not compile. The table name must be a string literal
// naming a table of t (lookup for a single-valued one, lookupAll for a many-valued one), so a
// misspelt table is a compile error with its line, not a miss on every record.
func WithTables(t Tables) Option {
	return func(o *options) { o.tables = t }
}

// Names of the lookup functions, as expressions write them.
const (
	fnLookup    = "lookup"
	fnLookupAll = "lookupAll"
)

// FormatKey formats a lookup key, or a table's key or id, the way both sides of a join must
// agree on: strings as they are, numbers in decimal (an int64 1 and a string "1" meet), other
// scalars as variable values are formatted. ok is false for nil, "" and values that are not
// scalars (a map, a list): there is nothing to look up.
func FormatKey(x any) (key string, ok bool) {
	if x == nil {
		return "", false
	}
	s, err := formatScalar(x)
	if err != nil || s == "" {
		return "", false
	}
	return s, true
}

// lookups are a Runner's lookup functions: they call the Tables and remember the first table
// whose lookup found nothing for a key, which Apply reports as Result.LookupMiss.
type lookups struct {
	tables Tables
	missed string
}

func (l *lookups) lookup(table string, key any) map[string]any {
	k, ok := FormatKey(key)
	if !ok {
		return nil // no key: nothing to look up, which is not a miss
	}
	row := l.tables.Lookup(table, k)
	if row == nil && l.missed == "" {
		l.missed = table
	}
	return row
}

func (l *lookups) lookupAll(table string, key any) []any {
	k, ok := FormatKey(key)
	if !ok {
		return nil
	}
	return l.tables.LookupAll(table, k)
}

// tableChecker is an expr.Patch visitor that checks every call of lookup and lookupAll: a
// string literal table name that t defines, with the right multiplicity. It collects problems
// instead of panicking; compile reports them after expr.Compile.
type tableChecker struct {
	tables Tables // nil: no tables configured
	errs   []*file.Error
}

func (c *tableChecker) fail(n ast.Node, format string, args ...any) {
	c.errs = append(c.errs, &file.Error{Location: n.Location(), Message: fmt.Sprintf(format, args...)})
}

// err returns the first problem, located in code like expr's own errors, or nil.
func (c *tableChecker) err(code string) error {
	if len(c.errs) == 0 {
		return nil
	}
	return c.errs[0].Bind(file.NewSource(code))
}

func (c *tableChecker) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || (id.Value != fnLookup && id.Value != fnLookupAll) {
		return
	}
	if c.tables == nil {
		c.fail(call, "%s: no tables are configured (add one under tables:)", id.Value)
		return
	}
	if len(call.Arguments) != 2 {
		c.fail(call, "%s takes (table, key), got %d arguments", id.Value, len(call.Arguments))
		return
	}
	name, ok := call.Arguments[0].(*ast.StringNode)
	if !ok {
		c.fail(call, "%s: the table must be a string literal such as %s(\"customers\", after.id)", id.Value, id.Value)
		return
	}
	exists, multi := c.tables.Table(name.Value)
	switch {
	case !exists:
		c.fail(call, "%s: no table named %q", id.Value, name.Value)
	case multi && id.Value == fnLookup:
		c.fail(call, "lookup: table %q maps a key to several rows (it has an id); use lookupAll", name.Value)
	case !multi && id.Value == fnLookupAll:
		c.fail(call, "lookupAll: table %q maps a key to one row; use lookup", name.Value)
	}
}
