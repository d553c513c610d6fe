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
