package schemas

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// Schemas whose values goavro allocates by a count read from the bytes, or follows as deep as
// the bytes go.
const (
	arraySchema = `{"type":"record","name":"A","fields":[{"name":"xs","type":{"type":"array","items":"long"}}]}`
	mapSchema   = `{"type":"record","name":"M","fields":[{"name":"m","type":{"type":"map","values":"string"}}]}`
	nullsSchema = `{"type":"array","items":"null"}`
	listSchema  = `{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}`
	treeSchema  = `{"type":"record","name":"T","fields":[{"name":"kids","type":{"type":"array","items":"T"}}]}`
	optsSchema  = `{"type":"array","items":{"type":"record","name":"O","fields":[{"name":"x","type":["null","int"]}]}}`
	enumSchema  = `{"type":"record","name":"E","fields":[{"name":"e","type":{"type":"enum","name":"S","symbols":["A","B"]}},{"name":"s","type":"string"}]}`
	// nestedSchema has records in records, a map of arrays and an optional recursive field.
	nestedSchema = `{"type":"record","name":"R","namespace":"x","fields":[
		{"name":"inner","type":{"type":"record","name":"I","fields":[{"name":"tags","type":{"type":"map","values":{"type":"array","items":"string"}}}]}},
		{"name":"fix","type":{"type":"fixed","name":"F","size":4}},
		{"name":"self","type":["null","x.R"]}]}`
)

// zz appends the zig-zag varint of v, as Avro encodes int and long.
func zz(b []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

// linkedList encodes a Node list of n elements.
func linkedList(n int) []byte {
	var b []byte
	for range n {
		b = zz(b, 1) // v
		b = zz(b, 1) // union branch Node
	}
	b = zz(b, 7)
	return zz(b, 0) // union branch null
}

// hostileCases are values that would exhaust memory or the stack without the guard.
func hostileCases() []struct {
	name, schema string
	value        []byte
	bound        string
} {
	return []struct {
		name, schema string
		value        []byte
		bound        string
	}{
		{"array block count 2^30 in 6 bytes", arraySchema, zz(zz(nil, 1<<30), 0), "array block count beyond the input"},
		{"map block count 2^30", mapSchema, zz(zz(nil, 1<<30), 0), "map block count beyond the input"},
		{"negative block count with a huge byte size", arraySchema, zz(zz(zz(nil, -(1<<30)), 1<<40), 0), "array block size beyond the input"},
		{"negative block count, size that fits", arraySchema, zz(zz(zz(nil, -(1<<30)), 1), 0), "array block count beyond the input"},
		{"zero-byte items", nullsSchema, zz(zz(nil, 1<<20), 0), "array of more than 4096 zero-byte items"},
		{"linked list deeper than maxDepth", listSchema, linkedList(1000), "nesting deeper than 64"},
		{"tree deeper than maxDepth", treeSchema, bytes.Repeat(zz(nil, 1), 200), "nesting deeper than 64"},
		{"string length beyond the input", mapSchema, zz(append(zz(zz(nil, 1), 1), 'k'), 1<<40), "string or bytes length beyond the input"},
		{"map key length beyond the input", mapSchema, zz(zz(nil, 1), 1<<50), "map key length beyond the input"},
		{"enum index out of range", enumSchema, zz(nil, 5), "enum index out of range"},
		{"union index out of range", listSchema, zz(zz(nil, 1), 9), "union index out of range"},
		{"long of 11 bytes", arraySchema, bytes.Repeat([]byte{0xff}, 11), "long longer than 10 bytes"},
		{"block count of MinInt64", arraySchema, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "array block count out of range"},
	}
}

func TestGuardRejectsHostileValues(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewAvroDecoder(tc.schema)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			v, err := d.Decode(context.Background(), tc.value)
			if elapsed := time.Since(start); elapsed > time.Second {
				t.Errorf("took %v", elapsed)
			}
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrHostile) {
				t.Fatalf("Decode = %v, %v; want a *DecodeError wrapping ErrHostile", v, err)
			}
			if de.Bound != tc.bound {
				t.Errorf("bound %q, want %q", de.Bound, tc.bound)
			}
			if !errors.Is(err, ErrDecode) || !IsPermanent(err) {
				t.Errorf("%v is not a permanent ErrDecode: it would not be dead-lettered", err)
			}
		})
	}
}

func TestGuardAcceptsValidValues(t *testing.T) {
	for _, tc := range []struct {
		name, schema string
		value        []byte
	}{
		{"array of three longs", arraySchema, zz(zz(zz(zz(zz(nil, 3), 1), 2), 3), 0)},
		{"array in a negative-count block", arraySchema, zz(zz(zz(zz(zz(nil, -2), 2), 5), 6), 0)},
		{"empty map", mapSchema, zz(nil, 0)},
		{"4096 nulls", nullsSchema, zz(zz(nil, 4096), 0)},
		{"linked list of 60", listSchema, linkedList(60)},
		{"enum and string", enumSchema, append(zz(zz(nil, 1), 2), 'h', 'i')},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewAvroDecoder(tc.schema)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Decode(context.Background(), tc.value); err != nil {
				t.Fatalf("Decode: %v", err)
			}
		})
	}
}

// TestGuardBoundsDecodedSize: a 1 MiB array of one-byte records is within maxRecordBytes but
// would decode to hundreds of megabytes of maps.
func TestGuardBoundsDecodedSize(t *testing.T) {
	d, err := NewAvroDecoder(optsSchema)
	if err != nil {
		t.Fatal(err)
	}
	n := 1<<20 - 8
	b := zz(nil, int64(n))
	b = append(b, bytes.Repeat([]byte{0}, n)...)
	b = zz(b, 0)
	_, err = LimitSize(d, 0).Decode(context.Background(), b)
	var de *DecodeError
	if !errors.As(err, &de) || !errors.Is(err, ErrHostile) || !strings.HasPrefix(de.Bound, "decoded size over") {
		t.Fatalf("Decode = %v; want the decoded-size bound", err)
	}
}

func TestLimitSize(t *testing.T) {
	d, err := NewAvroDecoder(arraySchema)
	if err != nil {
		t.Fatal(err)
	}
	ok := zz(zz(zz(nil, 1), 7), 0)
	for _, tc := range []struct {
		name    string
		max     int
		value   []byte
		tooBig  bool
		decoded bool
	}{
		{name: "under the limit", max: 16, value: ok, decoded: true},
		{name: "at the limit", max: len(ok), value: ok, decoded: true},
		{name: "over the limit", max: len(ok) - 1, value: ok, tooBig: true},
		{name: "default limit", max: 0, value: make([]byte, DefaultMaxRecordBytes+1), tooBig: true},
		{name: "JSON over the limit", max: 4, value: []byte(`{"a":1}`), tooBig: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dec Decoder = d
			if strings.HasPrefix(tc.name, "JSON") {
				dec = NewJSONDecoder()
			}
			_, err := LimitSize(dec, tc.max).Decode(context.Background(), tc.value)
			if got := errors.Is(err, ErrTooLarge); got != tc.tooBig {
				t.Fatalf("Decode: %v; ErrTooLarge %v, want %v", err, got, tc.tooBig)
			}
			if tc.tooBig && !IsPermanent(err) {
				t.Errorf("%v is not permanent", err)
			}
			if tc.decoded && err != nil {
				t.Errorf("Decode: %v", err)
			}
		})
	}
}

// TestNewCodecRecoversPanic: goavro dereferences nil building the default of a field whose type
// is the record itself; a registry entry like that must not take the process down.
func TestNewCodecRecoversPanic(t *testing.T) {
	_, err := NewAvroDecoder(`{"type":"record","name":"r","fields":[{"name":"a","type":"r","default":{}}]}`)
	if !errors.Is(err, ErrUnsupportedSchema) {
		t.Fatalf("NewAvroDecoder: %v; want ErrUnsupportedSchema", err)
	}
}

// TestDecodeErrorQuotesNothing: the error names the bound, never the record's bytes.
func TestDecodeErrorQuotesNothing(t *testing.T) {
	d, err := NewAvroDecoder(mapSchema)
	if err != nil {
		t.Fatal(err)
	}
	secret := "4821-pin"
	b := zz(zz(nil, 1), int64(len(secret)))
	b = append(b, secret...)
	b = zz(b, 1<<30)
	_, err = d.Decode(context.Background(), b)
	if err == nil || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "4821") {
		t.Fatalf("Decode: %v", err)
	}
}

// FuzzDecodeHostile: whatever the bytes, decoding a schema with arrays, maps, nested records or
// recursion ends with a value or an error, never panics, and allocates a bounded amount.
func FuzzDecodeHostile(f *testing.F) {
	schemaList := []string{arraySchema, mapSchema, nullsSchema, listSchema, treeSchema, optsSchema, enumSchema, nestedSchema}
	decs := make([]Decoder, len(schemaList))
	for i, s := range schemaList {
		d, err := NewAvroDecoder(s)
		if err != nil {
			f.Fatalf("schema %d: %v", i, err)
		}
		decs[i] = LimitSize(d, 64<<10)
	}
	index := map[string]uint8{}
	for i, s := range schemaList {
		index[s] = uint8(i)
	}
	for _, tc := range hostileCases() {
		f.Add(index[tc.schema], tc.value)
	}
	f.Add(uint8(7), []byte{2, 2, 2, 'a', 2, 2, 'b', 0, 0, 'f', 'i', 'x', 'd', 0})
	f.Add(uint8(4), []byte{2, 2, 0, 0, 0})
	const maxAlloc = 64 << 20
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		d := decs[int(which)%len(decs)]
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := d.Decode(context.Background(), b)
		runtime.ReadMemStats(&after)
		if err != nil && !IsPermanent(err) {
			t.Fatalf("error %v is not permanent", err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > maxAlloc {
			t.Fatalf("decoding %d bytes allocated %d bytes", len(b), n)
		}
	})
}

// TestRegistryDecoderGuards: the registry decoder's codecs are guarded too; a hostile schema
// in the registry is ErrUnsupportedSchema, not a panic.
func TestRegistryDecoderGuards(t *testing.T) {
	r := newRegistry(t)
	arrayID := r.register(t, "array-value", sr.Schema{Schema: arraySchema})
	panicID := r.register(t, "panic-value", sr.Schema{Schema: `{"type":"record","name":"r","fields":[{"name":"a","type":"r","default":{}}]}`})
	d := NewRegistryDecoder(r.client)
	framed := func(id int, body []byte) []byte {
		return append([]byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, body...)
	}
	for _, tc := range []struct {
		name  string
		value []byte
		want  error
	}{
		{"hostile array", framed(arrayID, zz(zz(nil, 1<<30), 0)), ErrHostile},
		{"schema goavro panics on", framed(panicID, []byte{0}), ErrUnsupportedSchema},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.Decode(context.Background(), tc.value)
			if !errors.Is(err, tc.want) || !IsPermanent(err) {
				t.Fatalf("Decode: %v; want a permanent %v", err, tc.want)
			}
		})
	}
}
