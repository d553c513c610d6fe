package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a config file. It never contains a secret's value.
type Error struct {
	File string // the file's name as given to Load or Parse
	Line int    // 1-based; 0 when the problem has no place in the file
	Path string // the key path: "tenants.main.tokenFile", "pipelines[0].variables[2].name"
	Msg  string
}

// Error formats the problem as file:line: path: message, the form editors and CI logs link.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a config file, one per line when printed, sorted by line.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err sorts es by line (keeping the order of problems on one line) and returns it, or nil when
// it is empty, so a caller can return errs.Err() whether or not anything was found.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	slices.SortStableFunc(es, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	return es
}
