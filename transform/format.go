package transform

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"time"
)

// errUnsupported is returned by formatScalar for a type that has no single obvious text form.
var errUnsupported = errors.New("unsupported type")

// formatScalar is the one place that turns a decoded or computed value into the text the API
// carries: strings as they are, integers in decimal, floats without an exponent
// (1250.75, 15000000000), bools as "true"/"false", times as RFC 3339, bytes as text, Avro
// decimals (*big.Rat) exactly. Its errors name the type, never the value, because the value
// may belong to a privacy variable.
func formatScalar(x any) (string, error) {
	switch v := x.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int8:
		return strconv.FormatInt(int64(v), 10), nil
	case int16:
		return strconv.FormatInt(int64(v), 10), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint8:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint16:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint32:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		return formatFloat(v, 64)
	case float32:
		return formatFloat(float64(v), 32)
	case json.Number:
		return string(v), nil
	case time.Time:
		return v.Format(time.RFC3339), nil
	case *big.Rat:
		if v == nil {
			break
		}
		if v.IsInt() {
			return v.Num().String(), nil
		}
		n, exact := v.FloatPrec()
		if !exact {
			// A repeating fraction (1/3) cannot come from an Avro decimal; 20 digits is plenty.
			n = 20
		}
		return v.FloatString(n), nil
	}
	return "", fmt.Errorf("%w %T", errUnsupported, x)
}

// isNil reports whether x is nil or a typed nil (a nil map, slice or pointer). expr hands out
// typed nils in a few places, such as `after?.x ?? before?.x` when both are nil; they mean nil.
// It uses reflection, so callers try it only after the common types failed.
func isNil(x any) bool {
	if x == nil {
		return true
	}
	switch v := reflect.ValueOf(x); v.Kind() {
	case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

func formatFloat(f float64, bits int) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", errors.New("number is not finite")
	}
	return strconv.FormatFloat(f, 'f', -1, bits), nil
}
