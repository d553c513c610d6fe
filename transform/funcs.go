package transform

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
)

// maxDecimals bounds formatNumber's decimals: more than any currency or measurement needs.
const maxDecimals = 20

// helpers returns the helper functions documented on Compile. Four of them replace expr's
// builtin of the same name so that nil passes through instead of failing the record: a CDC row
// often lacks a column, and a missing value should skip one variable, not dead-letter the
// record. Their error messages name types, never values, which may be private.
func helpers() []expr.Option {
	return []expr.Option{
		expr.Function("formatNumber", helper(fnFormatNumber), new(func(any, int) any)),
		expr.Function("formatDate", helper(fnFormatDate), new(func(any) any), new(func(any, string) any)),
		expr.Function("string", helper(fnString), new(func(any) string)),
		expr.Function("lower", helper(stringFunc("lower", strings.ToLower)), new(func(any) any)),
		expr.Function("upper", helper(stringFunc("upper", strings.ToUpper)), new(func(any) any)),
		expr.Function("trim", helper(fnTrim), new(func(any) any), new(func(any, string) any)),
		expr.Function("coalesce", helper(fnCoalesce), new(func(any, ...any) any)),
	}
}

// helper marks fn's errors as helperErrors: their messages name types only, so evalError
// keeps them.
func helper(fn func(args ...any) (any, error)) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		out, err := fn(args...)
		if err != nil {
			return nil, &helperError{err: err}
		}
		return out, nil
	}
}

func fnFormatNumber(args ...any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	decimals, ok := args[1].(int)
	if !ok || decimals < 0 || decimals > maxDecimals {
		return nil, fmt.Errorf("formatNumber: decimals must be an integer from 0 to %d", maxDecimals)
	}
	switch v := args[0].(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errors.New("formatNumber: number is not finite")
		}
		return strconv.FormatFloat(v, 'f', decimals, 64), nil
	case float32:
		return fnFormatNumber(float64(v), decimals)
	case *big.Rat:
		if v == nil {
			return nil, nil
		}
		return v.FloatString(decimals), nil
	case string:
		return formatNumericString("string", v, decimals)
	case json.Number:
		return formatNumericString("json.Number", string(v), decimals)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		// Exact for every integer, where a detour through float64 would round above 2^53.
		s, _ := formatScalar(v)
		if decimals > 0 {
			s += "." + strings.Repeat("0", decimals)
		}
		return s, nil
	}
	return nil, fmt.Errorf("formatNumber: want a number, got %T", args[0])
}

func formatNumericString(typ, s string, decimals int) (any, error) {
	var r big.Rat
	if _, ok := r.SetString(strings.TrimSpace(s)); !ok {
		return nil, fmt.Errorf("formatNumber: %s is not a number", typ)
	}
	return r.FloatString(decimals), nil
}

func fnFormatDate(args ...any) (any, error) {
	layout := time.DateOnly
	if len(args) > 1 {
		layout = args[1].(string)
	}
	var t time.Time
	switch v := args[0].(type) {
	case nil:
		return nil, nil
	case time.Time:
		t = v
	case string:
		var err error
		if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
			if t, err = time.Parse(time.DateOnly, v); err != nil {
				return nil, errors.New("formatDate: string is not an RFC 3339 time or a date")
			}
		}
	case int:
		t = time.UnixMilli(int64(v)).UTC()
	case int32:
		t = time.UnixMilli(int64(v)).UTC()
	case int64:
		t = time.UnixMilli(v).UTC()
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errors.New("formatDate: number is not finite")
		}
		t = time.UnixMilli(int64(v)).UTC()
	default:
		return nil, fmt.Errorf("formatDate: want a time, an RFC 3339 string or epoch milliseconds, got %T", args[0])
	}
	return t.Format(layout), nil
}

func fnString(args ...any) (any, error) {
	return toString(args[0], "string")
}

// toString formats x as string(x) documents; fn names the calling helper in errors.
func toString(x any, fn string) (string, error) {
	if x == nil {
		return "", nil
	}
	s, err := formatScalar(x)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, errUnsupported) {
		return "", fmt.Errorf("%s: %w", fn, err)
	}
	b, jerr := json.Marshal(x)
	if jerr != nil {
		// json's message may quote the value; name the type only.
		return "", fmt.Errorf("%s: cannot format %T", fn, x)
	}
	return string(b), nil
}

func stringFunc(name string, f func(string) string) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		if args[0] == nil {
			return nil, nil
		}
		s, err := toString(args[0], name)
		if err != nil {
			return nil, err
		}
		return f(s), nil
	}
}

func fnTrim(args ...any) (any, error) {
	if args[0] == nil {
		return nil, nil
	}
	s, err := toString(args[0], "trim")
	if err != nil {
		return nil, err
	}
	if len(args) > 1 {
		return strings.Trim(s, args[1].(string)), nil
	}
	return strings.TrimSpace(s), nil
}

func fnCoalesce(args ...any) (any, error) {
	for _, a := range args {
		if a == nil {
			continue
		}
		if s, ok := a.(string); ok && s == "" {
			continue
		}
		return a, nil
	}
	return nil, nil
}
