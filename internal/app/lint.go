package app

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/augment-connector/augment-connector/internal/config"
)

// maxDisplayVariables is the most display: true variables the contract recommends in one
// interaction ("Limit to 5-7 key variables to avoid information overload").
const maxDisplayVariables = 7

// Lint returns what check warns about in how the pipelines use the API, beside the insecure
// settings config.Warnings lists: a tenant whose pipelines can show agents more than seven
// display variables in one interaction, a constant value that cannot be what its dataType
// says, a variable both private and tested by the IVR without a note saying why, and a
// maxRecordAge shorter than its tenant's notFoundGrace. None is an error: the API accepts each.
func (c *Compiled) Lint() []config.Warning {
	cfg := c.Config
	var ws []config.Warning
	add := func(path, format string, args ...any) {
		ws = append(ws, config.Warning{File: cfg.File(), Line: cfg.Line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	// Display variables per tenant, by name: pipelines writing the same name to one
	// interaction show it once.
	display := map[string]map[string]bool{}
	for i := range cfg.Pipelines {
		pc := &cfg.Pipelines[i]
		if t := cfg.Tenants[pc.Tenant]; t != nil && pc.MaxRecordAge > 0 && pc.MaxRecordAge < t.NotFoundGrace {
			// Both count from the record's data time: the record turns stale, and is given up,
			// while the tenant would still be waiting for its call to appear.
			add(fmt.Sprintf("pipelines[%d].maxRecordAge", i), "%v is shorter than tenants.%s.notFoundGrace (%v): a record could go stale before its call appears", pc.MaxRecordAge, pc.Tenant, t.NotFoundGrace)
		}
		for j := range pc.Variables {
			v := &pc.Variables[j]
			path := fmt.Sprintf("pipelines[%d].variables[%d]", i, j)
			if v.Display.Value || v.Display.Expr != "" {
				if display[pc.Tenant] == nil {
					display[pc.Tenant] = map[string]bool{}
				}
				display[pc.Tenant][v.Name] = true
			}
			if v.DataType.Expr == "" && v.DataType.Value != "" {
				if lit, ok := constant(v.Value); ok {
					if why := misfit(lit, v.DataType.Value); why != "" {
						shown := strconv.Quote(lit)
						if v.Privacy.Value || v.Privacy.Expr != "" {
							shown = "the (private) constant"
						}
						add(path+".value", "%s is %s, but dataType is %s", shown, why, v.DataType.Value)
					}
				}
			}
			if v.Privacy.Value && v.IVR.Value && strings.TrimSpace(v.Note) == "" {
				add(path, "%s is both privacy: true and ivr: true; add a note saying why the IVR tests a private value (README, \"Before you deploy\")", v.Name)
			}
		}
	}
	for _, tenant := range slices.Sorted(maps.Keys(display)) {
		names := slices.Sorted(maps.Keys(display[tenant]))
		if len(names) > maxDisplayVariables {
			add("tenants."+tenant, "its pipelines can show agents %d display variables in one interaction (%s); the API's guidance is 5 to 7", len(names), strings.Join(names, ", "))
		}
	}
	return ws
}

// constant returns the value of a value expression that is a literal (a string or a number),
// as the text the API would receive.
func constant(src string) (string, bool) {
	tree, err := parser.Parse(src)
	if err != nil {
		return "", false
	}
	switch n := tree.Node.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.IntegerNode:
		return strconv.Itoa(n.Value), true
	case *ast.FloatNode:
		return strconv.FormatFloat(n.Value, 'f', -1, 64), true
	}
	return "", false
}

var (
	phoneRE  = regexp.MustCompile(`^\+?[0-9][0-9 ()./-]{2,30}$`)
	numberRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
)

// misfit says why lit cannot be a value of dataType ("" when it can), by the forms the API's
// examples use: numbers and currency amounts as plain decimals ("1250.75"), dates as
// YYYY-MM-DD, times as HH:MM or HH:MM:SS.
func misfit(lit, dataType string) string {
	switch dataType {
	case "number", "currency":
		if !numberRE.MatchString(lit) {
			return "not a plain decimal number"
		}
	case "date":
		if _, err := time.Parse(time.DateOnly, lit); err != nil {
			return "not a date (YYYY-MM-DD)"
		}
	case "time":
		if _, err := time.Parse("15:04", lit); err != nil {
			if _, err := time.Parse(time.TimeOnly, lit); err != nil {
				return "not a time (HH:MM or HH:MM:SS)"
			}
		}
	case "phone":
		if !phoneRE.MatchString(lit) {
			return "not a phone number"
		}
	}
	return ""
}
