package schemas

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
)

// JSONDecoder decodes JSON values: objects become map[string]any, arrays []any, and numbers
// int64 when they are written as integers that fit, float64 otherwise, the same types Avro
// values get. It reads what the usual JSON producers write:
//
//   - plain JSON (Debezium's JsonConverter with schemas.enable=false, or any producer);
//   - Kafka Connect's JsonConverter envelope with schemas.enable=true, {"schema":…,"payload":…}:
//     the payload is the value, so op, before, after and source read as with Avro; its
//     org.apache.kafka.connect.data.Decimal fields (base64 of the unscaled two's-complement
//     integer, scale in the schema's parameters) become float64 as Avro decimals do;
//   - Confluent-framed JSON Schema (a magic byte 0 and a 4-byte schema id before the JSON): the
//     frame is dropped and the JSON decoded as above. Plain JSON never starts with a 0 byte, so
//     the two cannot be confused.
type JSONDecoder struct{}

// NewJSONDecoder returns a JSONDecoder.
func NewJSONDecoder() *JSONDecoder { return &JSONDecoder{} }

// Decode decodes b as one JSON value; anything after it but white space is an error. Errors
// wrap ErrDecode and never quote the input, which may hold private values.
func (*JSONDecoder) Decode(_ context.Context, b []byte) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] == 0 {
		if len(b) < 5 {
			return nil, fmt.Errorf("decoding JSON: %w: a Confluent frame of %d bytes, shorter than its 5-byte header", ErrDecode, len(b))
		}
		b = b[5:]
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
	v = convertJSON(v)
	if schema, payload, ok := connectEnvelope(v); ok {
		return connectValue(schema, payload), nil
	}
	return v, nil
}

// connectTypes are the schema types of Kafka Connect's JsonConverter.
var connectTypes = map[string]bool{
	"struct": true, "string": true, "int8": true, "int16": true, "int32": true, "int64": true,
	"float32": true, "float64": true, "boolean": true, "bytes": true, "array": true, "map": true,
}

// connectEnvelope reports whether v is a JsonConverter envelope: an object of exactly the keys
// schema and payload whose schema is an object with a Connect type (or null, as the converter
// writes for a null value). Requiring both keys and nothing else keeps a record that merely has
// a field named payload from being unwrapped.
func connectEnvelope(v any) (schema map[string]any, payload any, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 2 {
		return nil, nil, false
	}
	s, hasSchema := m["schema"]
	payload, hasPayload := m["payload"]
	if !hasSchema || !hasPayload {
		return nil, nil, false
	}
	if s == nil {
		return nil, payload, true
	}
	schema, isMap = s.(map[string]any)
	if !isMap {
		return nil, nil, false
	}
	typ, _ := schema["type"].(string)
	if !connectTypes[typ] {
		return nil, nil, false
	}
	return schema, payload, true
}

// connectDecimal is the schema name of Kafka Connect's Decimal logical type.
const connectDecimal = "org.apache.kafka.connect.data.Decimal"

// connectValue converts v by its Connect schema where the JSON alone would mislead: Decimal
// fields, which the converter writes as base64 strings, become float64 as Avro decimals do
// (convertScalar's rule). A value that does not fit its schema is left as it is: the
// pipeline's expressions decide what to make of it.
func connectValue(schema map[string]any, v any) any {
	if schema == nil || v == nil {
		return v
	}
	switch schema["type"] {
	case "struct":
		obj, ok := v.(map[string]any)
		if !ok {
			return v
		}
		fields, _ := schema["fields"].([]any)
		for _, f := range fields {
			fs, ok := f.(map[string]any)
			if !ok {
				continue
			}
			name, _ := fs["field"].(string)
			if fv, ok := obj[name]; ok {
				obj[name] = connectValue(fs, fv)
			}
		}
		return obj
	case "array":
		arr, ok := v.([]any)
		items, _ := schema["items"].(map[string]any)
		if !ok || items == nil {
			return v
		}
		for i := range arr {
			arr[i] = connectValue(items, arr[i])
		}
		return arr
	case "map":
		obj, ok := v.(map[string]any)
		values, _ := schema["values"].(map[string]any)
		if !ok || values == nil {
			return v
		}
		for k := range obj {
			obj[k] = connectValue(values, obj[k])
		}
		return obj
	case "bytes":
		if schema["name"] != connectDecimal {
			return v
		}
		s, ok := v.(string)
		if !ok {
			return v
		}
		params, _ := schema["parameters"].(map[string]any)
		scaleText, _ := params["scale"].(string)
		scale, err := strconv.Atoi(scaleText)
		if err != nil || scale < 0 || scale > 1000 {
			return v
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) == 0 {
			return v
		}
		unscaled := new(big.Int).SetBytes(raw)
		if raw[0]&0x80 != 0 { // two's complement: negative
			unscaled.Sub(unscaled, new(big.Int).Lsh(big.NewInt(1), uint(8*len(raw))))
		}
		den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
		return ratFloat(new(big.Rat).SetFrac(unscaled, den))
	}
	return v
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
