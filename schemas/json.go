package schemas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// JSONDecoder decodes JSON values (Debezium's JsonConverter with schemas.enable=false, or any
// JSON producer): objects become map[string]any, arrays []any, and numbers int64 when they are
// written as integers that fit, float64 otherwise, the same types Avro values get.
type JSONDecoder struct{}

// NewJSONDecoder returns a JSONDecoder.
func NewJSONDecoder() *JSONDecoder { return &JSONDecoder{} }

// Decode decodes b as one JSON value; anything after it but white space is an error. Errors
// wrap ErrDecode and never quote the input, which may hold private values.
func (*JSONDecoder) Decode(_ context.Context, b []byte) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decoding JSON: %w: %s", ErrDecode, jsonErrorText(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decoding JSON: %w: data after the value", ErrDecode)
	}
	return convertJSON(v), nil
}

// jsonErrorText describes a JSON syntax error by position only: encoding/json's messages can
// quote a character of the input, which is harmless, but its type errors are not used here and
// this keeps the rule simple.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "invalid JSON at offset " + strconv.FormatInt(se.Offset, 10)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end of JSON"
	}
	return "invalid JSON"
}

// convertJSON replaces json.Number in place: int64 when the literal is an integer that fits,
// float64 otherwise (1.0 and 1e3 are floats, as written).
func convertJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch e.(type) {
			case map[string]any, []any, json.Number:
				x[k] = convertJSON(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = convertJSON(e)
		}
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			// Out of float64's range: keep the digits rather than fail the record.
			return s
		}
		return f
	}
	return v
}
