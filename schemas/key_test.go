package schemas

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/sr"
)

// debeziumKey is the key schema Debezium's Avro converter registers for a table whose primary
// key is id.
const debeziumKey = `{"type":"record","name":"Key","namespace":"dbserver1.crm.customers","fields":[{"name":"id","type":"long"}]}`

func TestKeyDecoder(t *testing.T) {
	r := newRegistry(t)
	id := r.register(t, "dbserver1.crm.customers-key", sr.Schema{Schema: debeziumKey})
	framed := frame(t, id, debeziumKey, map[string]any{"id": int64(42)})
	unknown := frame(t, id+100, debeziumKey, map[string]any{"id": int64(42)})
	reg := NewRegistryDecoder(r.client)
	tests := []struct {
		name    string
		d       *KeyDecoder
		key     []byte
		want    any
		wantErr error
	}{
		{"framed key through the registry", NewKeyDecoder(reg), framed, map[string]any{"id": int64(42)}, nil},
		{"string key stays a string", NewKeyDecoder(reg), []byte("42"), "42", nil},
		{"empty key", NewKeyDecoder(reg), nil, "", nil},
		{"short key starting with 0 stays a string", NewKeyDecoder(reg), []byte{0, 1}, "\x00\x01", nil},
		{"no registry: a framed key is its bytes", NewKeyDecoder(nil), framed, string(framed), nil},
		{"nil decoder", nil, []byte("k"), "k", nil},
		{"unknown schema id", NewKeyDecoder(reg), unknown, nil, ErrUnknownSchema},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.d.Decode(context.Background(), tt.key)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), "decoding the key") || !IsPermanent(err) {
					t.Fatalf("error = %v, want a permanent %v about the key", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("key (-want +got):\n%s", diff)
			}
		})
	}
}
