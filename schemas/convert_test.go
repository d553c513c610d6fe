package schemas

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkedin/goavro/v2"
)

func TestConvert(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 8e6, time.UTC)
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"nil", nil, nil},
		{"string union", map[string]any{"string": "x"}, "x"},
		{"long union", map[string]any{"long": int64(7)}, int64(7)},
		{"int union", map[string]any{"int": int32(7)}, int64(7)},
		{"float", float32(1.5), float64(1.5)},
		{"int", int32(-3), int64(-3)},
		{"bytes", []byte("ab"), "ab"},
		{"decimal", big.NewRat(125075, 100), 1250.75},
		{"decimal union", map[string]any{"bytes.decimal": big.NewRat(-5, 100)}, -0.05},
		{"timestamp union", map[string]any{"long.timestamp-millis": ts}, ts},
		{"named record union", map[string]any{"com.acme.Address": map[string]any{"zip": map[string]any{"string": "02134"}, "n": int32(4)}},
			map[string]any{"zip": "02134", "n": int64(4)}},
		{"record stays record", map[string]any{"a": int32(1), "b": "x"}, map[string]any{"a": int64(1), "b": "x"}},
		{"one-field record with a plain key", map[string]any{"id": int64(1)}, map[string]any{"id": int64(1)}},
		{"array of unions", []any{map[string]any{"string": "a"}, nil, map[string]any{"int": int32(2)}}, []any{"a", nil, int64(2)}},
		{"nested", map[string]any{"after": map[string]any{"crm.Value": map[string]any{"tier": "Gold", "pin": map[string]any{"string": "1234"}}}, "op": "c"},
			map[string]any{"after": map[string]any{"tier": "Gold", "pin": "1234"}, "op": "c"}},
		{"time.Duration kept", 3 * time.Second, 3 * time.Second},
		{"bool kept", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Convert(tt.in)); diff != "" {
				t.Errorf("Convert mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// allTypes exercises every conversion the plan makes, including what Convert cannot know: a
// union of a record without namespace, an Avro map whose single key looks like a type name, a
// multi-branch union, and a recursive type.
const allTypes = `{
  "type": "record", "name": "All", "fields": [
    {"name": "i", "type": "int"},
    {"name": "l", "type": "long"},
    {"name": "f", "type": "float"},
    {"name": "d", "type": "double"},
    {"name": "b", "type": "boolean"},
    {"name": "s", "type": "string"},
    {"name": "by", "type": "bytes"},
    {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
    {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}},
    {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
    {"name": "fdec", "type": {"type": "fixed", "name": "Money", "size": 8, "logicalType": "decimal", "precision": 10, "scale": 3}},
    {"name": "date", "type": {"type": "int", "logicalType": "date"}},
    {"name": "tsms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "tsus", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "tms", "type": {"type": "int", "logicalType": "time-millis"}},
    {"name": "uuid", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "oi", "type": ["null", "int"]},
    {"name": "odate", "type": ["null", {"type": "int", "logicalType": "date"}]},
    {"name": "odec", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 1}]},
    {"name": "multi", "type": ["null", "string", "int", {"type": "record", "name": "Point", "fields": [{"name": "x", "type": "int"}]}]},
    {"name": "multi2", "type": ["null", "string", "int", "Point"]},
    {"name": "arr", "type": {"type": "array", "items": ["null", "int"]}},
    {"name": "m", "type": {"type": "map", "values": "int"}},
    {"name": "trap", "type": {"type": "map", "values": "string"}},
    {"name": "next", "type": ["null", "All"], "default": null}
  ]}`

func TestAvroDecoderPlan(t *testing.T) {
	codec, err := goavro.NewCodec(allTypes)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2024, 7, 10, 0, 0, 0, 0, time.UTC)
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	tsus := time.Date(2026, 1, 2, 3, 4, 5, 6e3, time.UTC)
	leaf := func(i int32) map[string]any {
		return map[string]any{
			"i": i, "l": int64(1) << 40, "f": float32(0.5), "d": 2.25, "b": true, "s": "str",
			"by": []byte{0xff, 'a'}, "fx": []byte("abcd"), "e": "GREEN",
			"dec": big.NewRat(-125075, 100), "fdec": big.NewRat(1234567, 1000),
			"date": day, "tsms": ts, "tsus": tsus, "tms": 1500 * time.Millisecond,
			"uuid": "0b0e6c62-4c5a-4a43-a2f5-1a8c4f1e5a0e",
			"oi":   goavro.Union("int", int32(9)), "odate": goavro.Union("int.date", day),
			"odec":   goavro.Union("bytes.decimal", big.NewRat(15, 10)),
			"multi":  goavro.Union("Point", map[string]any{"x": int32(3)}),
			"multi2": goavro.Union("int", int32(4)),
			"arr":    []any{goavro.Union("int", int32(1)), nil},
			"m":      map[string]any{"a": int32(1), "b": int32(2)},
			"trap":   map[string]any{"string": "not a union"},
			"next":   nil,
		}
	}
	in := leaf(1)
	in["next"] = goavro.Union("All", leaf(2))
	bin, err := codec.BinaryFromNative(nil, in)
	if err != nil {
		t.Fatal(err)
	}

	wantLeaf := func(i int64) map[string]any {
		return map[string]any{
			"i": i, "l": int64(1) << 40, "f": 0.5, "d": 2.25, "b": true, "s": "str",
			"by": "\xffa", "fx": "abcd", "e": "GREEN", "dec": -1250.75, "fdec": 1234.567,
			"date": day, "tsms": ts, "tsus": tsus, "tms": 1500 * time.Millisecond,
			"uuid": "0b0e6c62-4c5a-4a43-a2f5-1a8c4f1e5a0e",
			"oi":   int64(9), "odate": day, "odec": 1.5,
			"multi":  map[string]any{"x": int64(3)},
			"multi2": int64(4),
			"arr":    []any{int64(1), nil},
			"m":      map[string]any{"a": int64(1), "b": int64(2)},
			"trap":   map[string]any{"string": "not a union"},
			"next":   nil,
		}
	}
	want := wantLeaf(1)
	want["next"] = wantLeaf(2)

	d, err := NewAvroDecoder(allTypes)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Decode(context.Background(), bin)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded mismatch (-want +got):\n%s", diff)
	}

	// Convert, without the schema, falls into the trap the plan avoids.
	native, _, err := codec.NativeFromBinary(bin)
	if err != nil {
		t.Fatal(err)
	}
	if got := Convert(native).(map[string]any)["trap"]; got != "not a union" {
		t.Errorf("Convert of a one-key map: got %#v, want the documented unwrap", got)
	}
}

func TestAvroDecoderErrors(t *testing.T) {
	d, err := NewAvroDecoder(CustomerFlat)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(CustomerFlat)
	if err != nil {
		t.Fatal(err)
	}
	good, err := codec.BinaryFromNative(nil, flatNative(1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"tombstone", nil, nil},
		{"empty", []byte{}, nil},
		{"good", good, nil},
		{"truncated", good[:len(good)-3], ErrDecode},
		{"trailing bytes", append(append([]byte{}, good...), 0x02), ErrDecode},
		{"garbage", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ErrDecode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := d.Decode(context.Background(), tt.in)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
			if tt.want != nil && !IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = false", err)
			}
			if len(tt.in) == 0 && v != nil {
				t.Errorf("tombstone decoded to %#v", v)
			}
		})
	}
	if _, err := NewAvroDecoder(`{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}`); !errors.Is(err, ErrUnsupportedSchema) {
		t.Errorf("NewAvroDecoder(bad schema) error = %v, want ErrUnsupportedSchema", err)
	}
}

// flatNative is a customer-flat value in goavro's native form.
func flatNative(id int64) map[string]any {
	return map[string]any{
		"id":                  id,
		"interaction_id":      goavro.Union("string", "int-18f3a2c4b1d-AB12CD"),
		"first_name":          "Maria",
		"last_name":           "Garcia",
		"phone":               goavro.Union("string", "+16175551234"),
		"tier":                "Gold",
		"balance":             big.NewRat(125075, 100),
		"last_contact_reason": goavro.Union("string", "billing"),
		"account_pin":         goavro.Union("string", "4821"),
		"updated_at":          time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"birth_date":          goavro.Union("int.date", time.Date(1980, 5, 17, 0, 0, 0, 0, time.UTC)),
		"visits":              int32(12),
	}
}

func TestRatFloat(t *testing.T) {
	for _, r := range []*big.Rat{
		big.NewRat(125075, 100), big.NewRat(-1, 3), big.NewRat(1, 1<<60),
		new(big.Rat).SetFrac(new(big.Int).Lsh(big.NewInt(1), 80), big.NewInt(7)),
		big.NewRat(999999999999999, 100), big.NewRat(0, 1),
	} {
		want, _ := r.Float64()
		if got := ratFloat(r); got != want {
			t.Errorf("ratFloat(%s) = %v, want %v", r, got, want)
		}
	}
}
