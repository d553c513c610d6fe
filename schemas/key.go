package schemas

import (
	"context"
	"fmt"
)

// KeyDecoder reads record keys. Debezium's Avro converter frames keys as it frames values
// (a magic byte 0, a 4-byte schema id, the Avro binary), so with a framed decoder a framed key
// is decoded through it and expressions read key.id; any other key (a string key, an empty
// one, or every key when the decoder is nil) is its bytes as a string, as before.
type KeyDecoder struct {
	framed Decoder
}

// NewKeyDecoder returns a KeyDecoder decoding framed keys with framed (a RegistryDecoder, or
// nil to read every key as a string).
func NewKeyDecoder(framed Decoder) *KeyDecoder { return &KeyDecoder{framed: framed} }

// Decode returns the key's value. Its errors are framed's (classified as for values: a
// registry outage is transient), wrapped to say it was the key.
func (k *KeyDecoder) Decode(ctx context.Context, b []byte) (any, error) {
	if k == nil || k.framed == nil || len(b) < 5 || b[0] != 0 {
		return string(b), nil
	}
	v, err := k.framed.Decode(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("decoding the key: %w", err)
	}
	return v, nil
}
