package schemas

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// BenchmarkDecodeRegistry decodes the ~90-byte, 12-field flat customer through the registry
// decoder with its codec cached: the connector's per-record decode cost.
func BenchmarkDecodeRegistry(b *testing.B) {
	benchRegistry(b, "flat-value", CustomerFlat, flatNative(123456))
}

// BenchmarkDecodeRegistryDebezium decodes a Debezium customer update (before and after rows).
func BenchmarkDecodeRegistryDebezium(b *testing.B) {
	benchRegistry(b, "customers-value", CustomerValue, customerEnvelope())
}

func benchRegistry(b *testing.B, subject, schema string, native any) {
	r := newRegistry(b)
	id := r.register(b, subject, sr.Schema{Schema: schema})
	rec := frame(b, id, schema, native)
	d := NewRegistryDecoder(r.client)
	ctx := context.Background()
	if _, err := d.Decode(ctx, rec); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := d.Decode(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeJSON decodes the flat customer written as JSON.
func BenchmarkDecodeJSON(b *testing.B) {
	rec, err := json.Marshal(wantFlat(123456))
	if err != nil {
		b.Fatal(err)
	}
	d := NewJSONDecoder()
	ctx := context.Background()
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decode(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
}
