package schemas

import (
	"errors"
	"strconv"
)

// The permanent errors of decoding. A record that fails with one of them fails the same way on
// every retry, so the connector dead-letters it. Check with errors.Is, or with IsPermanent.
var (
	// ErrBadFrame is returned by the registry decoder for a value that is not Confluent framed:
	// shorter than the 5-byte header, or not starting with the magic byte 0.
	ErrBadFrame = errors.New("not a Confluent-framed value")

	// ErrUnknownSchema is returned when the schema registry answers 404 for the frame's schema
	// id (or for a schema it references). The failure is cached for the failure TTL, so a topic
	// full of one bad id costs one registry request per TTL, not one per record.
	ErrUnknownSchema = errors.New("unknown schema id")

	// ErrUnsupportedSchema is returned when the registry holds the id but the decoder cannot
	// use the schema: a Protobuf or JSON schema, an Avro schema goavro rejects, or references
	// that cannot be inlined. Cached like ErrUnknownSchema.
	ErrUnsupportedSchema = errors.New("unsupported schema")

	// ErrDecode is returned when the bytes do not match the schema: truncated, corrupt, bytes
	// left over after the value, or invalid JSON.
	ErrDecode = errors.New("value does not match its schema")
)

// ErrRegistryUnavailable is matched (errors.Is) by every *TransientError: the registry could not
// be asked (connection refused, timeout) or did not answer usefully (5xx, 429, 401/403). Such an
// error says nothing about the record, so the connector retries with backoff and never
// dead-letters for it; it is never cached.
var ErrRegistryUnavailable = errors.New("schema registry unavailable")

// TransientError is a registry failure that a later attempt may not repeat. ID is the schema id
// being fetched; Err the cause (an *sr.ResponseError, a *url.Error, a timeout).
type TransientError struct {
	ID  int
	Err error
}

func (e *TransientError) Error() string {
	return "fetching schema " + strconv.Itoa(e.ID) + ": " + ErrRegistryUnavailable.Error() + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *TransientError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrRegistryUnavailable) true for every TransientError.
func (e *TransientError) Is(target error) bool { return target == ErrRegistryUnavailable }

// IsTransient reports whether err is a registry outage that the caller should retry with
// backoff (a *TransientError somewhere in its chain).
func IsTransient(err error) bool {
	var te *TransientError
	return errors.As(err, &te)
}

// IsPermanent reports whether err says the record can never be decoded: ErrBadFrame,
// ErrUnknownSchema, ErrUnsupportedSchema or ErrDecode. An error that is neither permanent nor
// transient is the caller's own context ending (shutdown, revoke): the record is abandoned,
// neither retried here nor dead-lettered.
func IsPermanent(err error) bool {
	if IsTransient(err) {
		return false
	}
	return errors.Is(err, ErrBadFrame) || errors.Is(err, ErrUnknownSchema) ||
		errors.Is(err, ErrUnsupportedSchema) || errors.Is(err, ErrDecode)
}
