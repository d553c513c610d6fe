package schemas

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// FuzzConfluentFrame: whatever the bytes, Decode does not panic, and fails only with a
// permanent error (the registry is up, so nothing may look transient).
func FuzzConfluentFrame(f *testing.F) {
	r := newRegistry(f)
	flatID := r.register(f, "flat-value", sr.Schema{Schema: CustomerFlat})
	valueID := r.register(f, "customers-value", sr.Schema{Schema: CustomerValue})
	f.Add(frame(f, flatID, CustomerFlat, flatNative(1)))
	f.Add(frame(f, valueID, CustomerValue, customerEnvelope()))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 99, 1})
	f.Add([]byte(`{"a":1}`))
	d := NewRegistryDecoder(r.client)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := d.Decode(context.Background(), b)
		if err != nil && !IsPermanent(err) {
			t.Fatalf("error %v is not permanent", err)
		}
	})
}

// FuzzConvert: for any bytes that decode as a customer change event, the schema's plan and
// the schema-less Convert agree (the shipped schema has no construct that misleads Convert),
// and neither panics.
func FuzzConvert(f *testing.F) {
	codec, err := goavro.NewCodec(CustomerValue)
	if err != nil {
		f.Fatal(err)
	}
	plan, err := compilePlan(CustomerValue)
	if err != nil {
		f.Fatal(err)
	}
	seed, err := codec.BinaryFromNative(nil, customerEnvelope())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, _, err := codec.NativeFromBinary(b)
		if err != nil {
			return
		}
		c, _, _ := codec.NativeFromBinary(b)
		if diff := cmp.Diff(Convert(c), plan(a)); diff != "" {
			t.Fatalf("plan and Convert disagree (-Convert +plan):\n%s", diff)
		}
	})
}

// customerEnvelope is a Debezium update of a customer in goavro's native form.
func customerEnvelope() map[string]any {
	row := func(tier string) map[string]any {
		return map[string]any{
			"id":                  int64(42),
			"interaction_id":      goavro.Union("string", "int-18f3a2c4b1d-AB12CD"),
			"first_name":          "Maria",
			"last_name":           "Garcia",
			"email":               goavro.Union("string", "maria@example.com"),
			"phone":               nil,
			"tier":                tier,
			"balance":             big.NewRat(125075, 100),
			"last_contact_reason": goavro.Union("string", "billing"),
			"account_pin":         goavro.Union("string", "4821"),
			"updated_at":          time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			"birth_date":          goavro.Union("int.date", time.Date(1980, 5, 17, 0, 0, 0, 0, time.UTC)),
		}
	}
	return map[string]any{
		"before": goavro.Union("crm.public.customers.Value", row("Silver")),
		"after":  goavro.Union("crm.public.customers.Value", row("Gold")),
		"source": map[string]any{
			"version": "2.7.0.Final", "connector": "postgresql", "name": "crm", "ts_ms": int64(1767225600000),
			"snapshot": goavro.Union("string", "false"), "db": "crm", "schema": "public", "table": "customers",
			"txId": goavro.Union("long", int64(777)), "lsn": goavro.Union("long", int64(123456789)),
		},
		"op":    "u",
		"ts_ms": goavro.Union("long", int64(1767225600123)),
	}
}
