package schemas

import (
	"context"
	"fmt"
	"strconv"

	"github.com/linkedin/goavro/v2"
)

// Decoder turns a Kafka record's key or value into the plain Go values expressions read (see
// Convert). Nil or empty input, a tombstone, decodes to (nil, nil). Implementations are safe for
// concurrent use.
type Decoder interface {
	Decode(ctx context.Context, b []byte) (any, error)
}

// codec is a goavro codec with the conversion plan and the guard of its schema: what a schema
// id resolves to, and what an AvroDecoder holds.
type codec struct {
	id    int // schema id in the registry; 0 for a local schema
	avro  *goavro.Codec
	plan  conv
	guard *guard
	label string // "schema 42" or "local schema", for errors
}

// newCodec builds the codec of schemaJSON. goavro panics on some schemas it should reject
// (a hostile registry entry must not take the process down), so a panic while building is
// recovered and returned as ErrUnsupportedSchema.
func newCodec(id int, schemaJSON, label string) (c *codec, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("building codec: goavro panicked: %v", r)
		}
	}()
	ac, err := goavro.NewCodec(schemaJSON)
	if err != nil {
		return nil, fmt.Errorf("building codec: %w", err)
	}
	plan, err := compilePlan(schemaJSON)
	if err != nil {
		return nil, fmt.Errorf("planning conversion: %w", err)
	}
	g, err := compileGuard(schemaJSON)
	if err != nil {
		return nil, fmt.Errorf("building guard: %w", err)
	}
	return &codec{id: id, avro: ac, plan: plan, guard: g, label: label}, nil
}

// decode decodes one unframed Avro value. The guard walks it first, so that goavro never sees
// a value whose allocations are not bounded by its size (see guard.go). Bytes left over mean
// the value was written with another schema, which would otherwise pass silently when the
// prefix happens to parse.
func (c *codec) decode(b []byte) (v any, err error) {
	if err := c.guard.check(b); err != nil {
		return nil, fmt.Errorf("decoding with %s: %w", c.label, err)
	}
	defer func() {
		// The guard has bounded what goavro allocates; a panic is still goavro's bug on
		// bytes it did not expect, and a fact about this record only.
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("decoding with %s: %w: goavro panicked", c.label, ErrDecode)
		}
	}()
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

// SizeLimit refuses a value larger than Max bytes with a *DecodeError wrapping ErrTooLarge,
// before the decoder it wraps sees it. It is a wrapper rather than an option of each decoder
// because one RegistryDecoder (one codec cache) serves pipelines and tables that each have
// their own decode.maxRecordBytes.
type SizeLimit struct {
	Decoder Decoder
	Max     int
}

// LimitSize wraps d so that values over maxBytes are refused; maxBytes <= 0 means
// DefaultMaxRecordBytes.
func LimitSize(d Decoder, maxBytes int) *SizeLimit {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRecordBytes
	}
	return &SizeLimit{Decoder: d, Max: maxBytes}
}

// Decode refuses b when it is over the limit and decodes it with the wrapped decoder otherwise.
func (l *SizeLimit) Decode(ctx context.Context, b []byte) (any, error) {
	if len(b) > l.Max {
		return nil, &DecodeError{Bound: "maxRecordBytes " + strconv.Itoa(l.Max) + ", value of " + strconv.Itoa(len(b)) + " bytes", Err: ErrTooLarge}
	}
	return l.Decoder.Decode(ctx, b)
}
