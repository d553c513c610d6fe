package transform

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/augment-connector/augment-connector/internal/api"
)

func TestHelpers(t *testing.T) {
	after := map[string]any{
		"bal": 1250.7, "n": 1250, "huge": int64(9007199254740993), "str": " 12.345 ", "bad": "12abc",
		"dec": big.NewRat(-1, 8), "t": time.Date(2024, 7, 10, 22, 5, 0, 0, time.FixedZone("X", 3600)),
		"bytes": []byte("abc"), "m": map[string]any{"k": "v"}, "tier": "  Gold ", "empty": "",
	}
	rec := &Record{Timestamp: ts, Value: cdc("c", nil, after)}
	for _, tc := range []struct {
		expr    string
		want    string
		skip    bool // the helper returned nil
		wantErr string
	}{
		{expr: `formatNumber(after.bal, 2)`, want: "1250.70"},
		{expr: `formatNumber(after.bal, 0)`, want: "1251"},
		{expr: `formatNumber(1234567.891, 1)`, want: "1234567.9"},
		{expr: `formatNumber(after.n, 2)`, want: "1250.00"},
		{expr: `formatNumber(after.huge, 0)`, want: "9007199254740993"},
		{expr: `formatNumber(after.str, 2)`, want: "12.35"},
		{expr: `formatNumber(after.dec, 2)`, want: "-0.13"},
		{expr: `formatNumber(after.missing, 2)`, skip: true},
		{expr: `formatNumber(after.bad, 2)`, wantErr: "evaluating: formatNumber: string is not a number (1:1)"},
		{expr: `formatNumber(after.bal, -1)`, wantErr: "evaluating: formatNumber: decimals must be an integer from 0 to 20 (1:1)"},
		{expr: `formatNumber(after.t, 2)`, wantErr: "evaluating: formatNumber: want a number, got time.Time (1:1)"},
		{expr: `formatDate(timestamp)`, want: "2024-07-10"},
		{expr: `formatDate(timestamp, "15:04")`, want: "10:30"},
		{expr: `formatDate(after.t, "2006-01-02 15:04 -07:00")`, want: "2024-07-10 22:05 +01:00"},
		{expr: `formatDate("2024-07-10T10:30:00.5Z", "Jan 2, 2006")`, want: "Jul 10, 2024"},
		{expr: `formatDate("2024-07-10", "02/01/2006")`, want: "10/07/2024"},
		{expr: `formatDate(1720607400000, time.RFC3339)`, wantErr: "unknown name time"},
		{expr: `formatDate(1720607400000, "2006-01-02T15:04:05Z07:00")`, want: "2024-07-10T10:30:00Z"},
		{expr: `formatDate(value.ts_ms)`, want: "2024-07-10"},
		{expr: `formatDate(after.missing)`, skip: true},
		{expr: `formatDate(after.tier)`, wantErr: "evaluating: formatDate: string is not an RFC 3339 time or a date (1:1)"},
		{expr: `formatDate(true)`, wantErr: "evaluating: formatDate: want a time, an RFC 3339 string or epoch milliseconds, got bool (1:1)"},
		{expr: `string(timestamp)`, want: "2024-07-10T10:30:00Z"},
		{expr: `string(1.5e20)`, want: "150000000000000000000"},
		{expr: `string(after.bal) + "!"`, want: "1250.7!"},
		{expr: `string(after.bytes)`, want: "abc"},
		{expr: `string(after.dec)`, want: "-0.125"},
		{expr: `string(after.m)`, want: `{"k":"v"}`},
		{expr: `"[" + string(after.missing) + "]"`, want: "[]"},
		{expr: `string(true)`, want: "true"},
		{expr: `lower(after.tier)`, want: "  gold "},
		{expr: `upper(trim(after.tier))`, want: "GOLD"},
		{expr: `trim("xxaxx", "x")`, want: "a"},
		{expr: `upper(12.5)`, want: "12.5"},
		{expr: `lower(after.missing)`, skip: true},
		{expr: `trim(after.missing)`, skip: true},
		{expr: `coalesce(after.missing, after.empty, after.tier)`, want: "  Gold "},
		{expr: `coalesce(after.missing, 0, "x")`, want: "0"},
		{expr: `coalesce(after.missing, after.empty)`, skip: true},
		{expr: `after.missing ?? "default"`, want: "default"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			p, err := Compile(Spec{Name: "h", Identifier: `"int-1"`, Variables: []VariableSpec{{Name: "_v", Value: tc.expr}}})
			if err != nil {
				if tc.wantErr == "" || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Compile: %v", err)
				}
				return
			}
			got, err := p.Apply(rec)
			if tc.wantErr != "" {
				want := `pipeline "h": variables[_v].value: ` + tc.wantErr
				if err == nil || err.Error() != want {
					t.Fatalf("error = %v, want %s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Result{Outcome: Skipped, Reason: ReasonNoVariables}
			if !tc.skip {
				want = Result{Outcome: Write, Identifiers: []string{"int-1"}, Variables: []api.Variable{{Name: "_v", Value: tc.want}}}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Apply (-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkApply measures the hot path: a Debezium update through a filter, an identifier and
// four variables (a plain field, a formatted number, a comparison, a date), on one Runner as a
// partition worker uses it.
func BenchmarkApply(b *testing.B) {
	p := mustCompile(b, Spec{
		Name:       "bench",
		Filter:     `op != "d" && after.status != "closed"`,
		Identifier: `after.callId`,
		Variables: []VariableSpec{
			{Name: "_customerTier", Value: `after.tier`, IVR: Attr{Literal: true}, Display: Attr{Literal: true}, DisplayName: Attr{Literal: "Customer Tier"}},
			{Name: "_accountBalance", Value: `formatNumber(after.balance, 2)`, DataType: Attr{Literal: "currency"}},
			{Name: "_paymentDue", Value: `after.balance < 0`, IVR: Attr{Literal: true}},
			{Name: "_accountPin", Value: `after.pin`, Privacy: Attr{Literal: true}},
		},
	})
	rec := &Record{
		Topic: "crm.public.calls", Partition: 1, Offset: 42, Timestamp: ts,
		Value: cdc("u", nil, map[string]any{
			"callId": "int-1628bb9dbf7-ABC123", "tier": "VIP", "balance": 1250.75, "pin": "1234", "status": "open",
		}),
	}
	b.Run("runner", func(b *testing.B) {
		r := p.NewRunner()
		b.ReportAllocs()
		for b.Loop() {
			res, err := r.Apply(rec)
			if err != nil || res.Outcome != Write || len(res.Variables) != 4 {
				b.Fatal(res, err)
			}
		}
	})
	b.Run("pool-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := p.Apply(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
