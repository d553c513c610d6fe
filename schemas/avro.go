package schemas

import (
	"context"
	"fmt"

	"github.com/linkedin/goavro/v2"
)

// Decoder turns a Kafka record's key or value into the plain Go values expressions read (see
// Convert). Nil or empty input, a tombstone, decodes to (nil, nil). Implementations are safe for
// concurrent use.
type Decoder interface {
	Decode(ctx context.Context, b []byte) (any, error)
}

// codec is a goavro codec with the conversion plan of its schema: what a schema id resolves
// to, and what an AvroDecoder holds.
type codec struct {
	id    int // schema id in the registry; 0 for a local schema
	avro  *goavro.Codec
	plan  conv
	label string // "schema 42" or "local schema", for errors
}

func newCodec(id int, schemaJSON, label string) (*codec, error) {
	c, err := goavro.NewCodec(schemaJSON)
	if err != nil {
		return nil, fmt.Errorf("building codec: %w", err)
	}
	plan, err := compilePlan(schemaJSON)
	if err != nil {
		return nil, fmt.Errorf("planning conversion: %w", err)
	}
	return &codec{id: id, avro: c, plan: plan, label: label}, nil
}

// decode decodes one unframed Avro value. Bytes left over mean the value was written with
// another schema, which would otherwise pass silently when the prefix happens to parse.
func (c *codec) decode(b []byte) (any, error) {
	native, rest, err := c.avro.NativeFromBinary(b)
	if err != nil {
		return nil, fmt.Errorf("decoding with %s: %w: %w", c.label, ErrDecode, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("decoding with %s: %w: %d bytes left over", c.label, ErrDecode, len(rest))
	}
	return c.plan(native), nil
}

// AvroDecoder decodes unframed Avro binary with one local schema (an .avsc file), for topics
// written without a schema registry.
type AvroDecoder struct {
	c *codec
}

// NewAvroDecoder compiles schemaJSON. Errors wrap ErrUnsupportedSchema.
func NewAvroDecoder(schemaJSON string) (*AvroDecoder, error) {
	c, err := newCodec(0, schemaJSON, "local schema")
	if err != nil {
		return nil, fmt.Errorf("compiling local schema: %w: %w", ErrUnsupportedSchema, err)
	}
	return &AvroDecoder{c: c}, nil
}

// Decode decodes b as one Avro value of the schema. Errors wrap ErrDecode.
func (d *AvroDecoder) Decode(_ context.Context, b []byte) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	return d.c.decode(b)
}
