package schemas

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestJSONDecoder(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    any
		wantErr error
	}{
		{"tombstone", "", nil, nil},
		{"debezium", `{"before":null,"after":{"id":42,"balance":1250.75,"tier":"Gold","tags":["a",1,2.5],"big":12345678901234567890,"exp":1e3,"one":1.0},"op":"u","ts_ms":1767225600000}`,
			map[string]any{
				"before": nil,
				"after": map[string]any{
					"id": int64(42), "balance": 1250.75, "tier": "Gold",
					"tags": []any{"a", int64(1), 2.5},
					"big":  12345678901234567890.0, "exp": 1000.0, "one": 1.0,
				},
				"op": "u", "ts_ms": int64(1767225600000),
			}, nil},
		{"negative", `{"n":-7}`, map[string]any{"n": int64(-7)}, nil},
		{"scalar", `"x"`, "x", nil},
		{"array", `[1, {"a": 2}]`, []any{int64(1), map[string]any{"a": int64(2)}}, nil},
		{"white space after", "{\"a\":1}\n", map[string]any{"a": int64(1)}, nil},
		{"connect envelope (schemas.enable=true), Debezium-shaped with decimals", `{"schema":{"type":"struct","name":"acme.customers.Envelope","optional":false,"fields":[
			{"field":"before","type":"struct","optional":true,"fields":[{"field":"id","type":"int64"}]},
			{"field":"after","type":"struct","optional":true,"fields":[
				{"field":"id","type":"int64"},
				{"field":"balance","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2","connect.decimal.precision":"12"}},
				{"field":"delta","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"1"}},
				{"field":"blob","type":"bytes"},
				{"field":"hist","type":"array","items":{"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}}}]},
			{"field":"op","type":"string"},{"field":"ts_ms","type":"int64","optional":true}]},
			"payload":{"before":null,"after":{"id":42,"balance":"AeiT","delta":"8Q==","blob":"AeiT","hist":["AeiT"]},"op":"u","ts_ms":1767225600000}}`,
			map[string]any{
				"before": nil,
				"after":  map[string]any{"id": int64(42), "balance": 1250.75, "delta": -1.5, "blob": "AeiT", "hist": []any{1250.75}},
				"op":     "u", "ts_ms": int64(1767225600000),
			}, nil},
		{"connect envelope of a null value", `{"schema":null,"payload":null}`, nil, nil},
		{"connect envelope of a string", `{"schema":{"type":"string","optional":false},"payload":"x"}`, "x", nil},
		{"not an envelope: schema is no Connect schema", `{"schema":{"type":"object"},"payload":1}`,
			map[string]any{"schema": map[string]any{"type": "object"}, "payload": int64(1)}, nil},
		{"not an envelope: a third key", `{"schema":{"type":"string"},"payload":"x","id":1}`,
			map[string]any{"schema": map[string]any{"type": "string"}, "payload": "x", "id": int64(1)}, nil},
		{"decimal that is not base64 stays as written", `{"schema":{"type":"struct","fields":[{"field":"b","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}}]},"payload":{"b":"%%"}}`,
			map[string]any{"b": "%%"}, nil},
		{"Confluent-framed JSON Schema", "\x00\x00\x00\x00\x07{\"a\":1}", map[string]any{"a": int64(1)}, nil},
		{"Confluent-framed connect envelope", "\x00\x00\x00\x01\x00{\"schema\":{\"type\":\"int32\"},\"payload\":5}", int64(5), nil},
		{"truncated Confluent frame", "\x00\x00\x01", nil, ErrDecode},
		{"invalid", `{"pin":"1234"`, nil, ErrDecode},
		{"two values", `{"a":1}{"b":2}`, nil, ErrDecode},
		{"garbage", `{"pin": 12x34}`, nil, ErrDecode},
	}
	d := NewJSONDecoder()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Decode(context.Background(), []byte(tt.in))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !IsPermanent(err) {
					t.Errorf("IsPermanent(%v) = false", err)
				}
				if strings.Contains(err.Error(), "1234") || strings.Contains(err.Error(), "12x34") {
					t.Errorf("error quotes the input: %v", err)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzJSONDecoder: any input decodes or fails with ErrDecode (never a panic), and a JSON
// value wrapped in a Confluent frame decodes to the same value as the bare one.
func FuzzJSONDecoder(f *testing.F) {
	f.Add([]byte(`{"schema":{"type":"struct","fields":[{"field":"b","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}}]},"payload":{"b":"AeiT"}}`))
	f.Add([]byte(`{"schema":{"type":"array","items":{"type":"map","values":{"type":"int8"}}},"payload":[{"a":1}]}`))
	f.Add([]byte("\x00\x00\x00\x00\x01[1,2]"))
	f.Add([]byte(`{"before":null,"after":{"id":1}}`))
	d := NewJSONDecoder()
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := d.Decode(context.Background(), b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error %v does not wrap ErrDecode", err)
			}
			return
		}
		if len(b) == 0 || b[0] == 0 {
			return
		}
		framed, err := d.Decode(context.Background(), append([]byte{0, 0, 0, 0, 9}, b...))
		if err != nil {
			t.Fatalf("the framed value fails where the bare one decodes: %v", err)
		}
		if diff := cmp.Diff(v, framed); diff != "" {
			t.Fatalf("framed and bare values differ (-bare +framed):\n%s", diff)
		}
	})
}
