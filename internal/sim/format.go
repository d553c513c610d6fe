package sim

import (
	"math/big"
	"strings"
	"time"

	"github.com/augment-connector/augment-connector/internal/api"
)

// Mask is what the pages show instead of a privacy:true value: fully masked, since even the
// last digits of a PIN or card help an attacker and the agent does not need them.
const Mask = "••••••"

// FormatValue formats a value as the Agent Workspace shows it for its dataType:
//
//	currency  1250.75      -> $1,250.75 (two decimals, rounded half away from zero)
//	number    1234567.5    -> 1,234,567.5
//	date      2024-07-10   -> July 10, 2024 (an RFC 3339 timestamp shows its date)
//	phone     16175551234  -> +1 (617) 555-1234; 10 digits -> (617) 555-1234
//	time      14:30[:00]   -> 2:30 PM
//
// A value that does not parse for its type, such as one already formatted ("$1,250.75"), is
// shown as given, as are text and an empty or unknown dataType.
func FormatValue(dataType, value string) string {
	var (
		out string
		ok  bool
	)
	switch dataType {
	case "currency":
		out, ok = formatCurrency(value)
	case "number":
		out, ok = formatNumber(value)
	case "date":
		out, ok = formatDate(value)
	case "phone":
		out, ok = formatPhone(value)
	case "time":
		out, ok = formatTime(value)
	}
	if !ok {
		return value
	}
	return out
}

// splitDecimal splits a plain decimal number ([+-]digits[.digits]) into its sign, integer and
// fraction digits.
func splitDecimal(s string) (neg bool, whole, frac string, ok bool) {
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if !allDigits(whole) || hasDot && !allDigits(frac) {
		return false, "", "", false
	}
	whole = strings.TrimLeft(whole, "0")
	if whole == "" {
		whole = "0"
	}
	return neg, whole, frac, true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// groupThousands puts a comma between each group of three digits of an integer.
func groupThousands(digits string) string {
	if len(digits) <= 3 {
		return digits
	}
	var b strings.Builder
	head := len(digits) % 3
	if head > 0 {
		b.WriteString(digits[:head])
	}
	for i := head; i < len(digits); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(digits[i : i+3])
	}
	return b.String()
}

func formatNumber(s string) (string, bool) {
	neg, whole, frac, ok := splitDecimal(s)
	if !ok {
		return "", false
	}
	out := groupThousands(whole)
	if frac != "" {
		out += "." + frac
	}
	if neg && strings.Trim(whole+frac, "0") != "" {
		out = "-" + out
	}
	return out, true
}

func formatCurrency(s string) (string, bool) {
	neg, whole, frac, ok := splitDecimal(s)
	if !ok {
		return "", false
	}
	// Exact decimal rounding: a float would turn 0.125 into 0.12.
	r, ok := new(big.Rat).SetString(whole + "." + frac + "0")
	if !ok {
		return "", false
	}
	whole, frac, _ = strings.Cut(r.FloatString(2), ".")
	out := "$" + groupThousands(whole) + "." + frac
	if neg && strings.Trim(whole+frac, "0") != "" {
		out = "-" + out
	}
	return out, true
}

func formatDate(s string) (string, bool) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		if t, err = time.Parse(time.RFC3339, s); err != nil {
			return "", false
		}
	}
	return t.Format("January 2, 2006"), true
}

func formatPhone(s string) (string, bool) {
	digits := strings.TrimPrefix(s, "+")
	if !allDigits(digits) {
		return "", false
	}
	switch {
	case len(digits) == 11 && digits[0] == '1':
		return "+1 (" + digits[1:4] + ") " + digits[4:7] + "-" + digits[7:], true
	case len(digits) == 10 && !strings.HasPrefix(s, "+"):
		return "(" + digits[:3] + ") " + digits[3:6] + "-" + digits[6:], true
	}
	return "", false
}

func formatTime(s string) (string, bool) {
	for _, layout := range []string{"15:04", time.TimeOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format("3:04 PM"), true
		}
	}
	return "", false
}

// DisplayRow is one line of the Agent Workspace's Customer Information panel.
type DisplayRow struct {
	Name     string // the variable's name, for stable DOM attributes
	Label    string // displayName, or name when absent
	Value    string // formatted, or Mask
	DataType string
	Private  bool
}

// AgentRows returns what the Agent Workspace shows of an interaction's variables: only the
// display:true ones, in order, labelled and formatted, private values masked.
func AgentRows(vars []api.Variable) []DisplayRow {
	var rows []DisplayRow
	for _, v := range vars {
		if !v.Display {
			continue
		}
		row := DisplayRow{Name: v.Name, Label: v.DisplayName, DataType: v.DataType, Private: v.Privacy}
		if row.Label == "" {
			row.Label = v.Name
		}
		if v.Privacy {
			row.Value = Mask
		} else {
			row.Value = FormatValue(v.DataType, v.Value)
		}
		rows = append(rows, row)
	}
	return rows
}
