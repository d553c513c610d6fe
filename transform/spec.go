// Package transform compiles a pipeline's configuration (filter, identifier and variable
// expressions, written in github.com/expr-lang/expr) once, and applies it to each decoded record.
//
// It is pure: no I/O, no goroutines. The connector calls Apply on its per-partition workers.
package transform

import "time"

// Spec is the configuration of one pipeline in plain values: internal/app builds it from the
// config file, tests and tools write it directly. Compile is the authority on what it means.
type Spec struct {
	// Name names the pipeline in errors, metrics and dead-letter headers.
	Name string
	// Filter is an expression returning bool; a record for which it is false is filtered.
	// Empty means every record passes.
	Filter string
	// Identifier is an expression returning the interaction identifier as a string (numbers
	// are formatted), or a list of them (the record fans out). An empty string, nil or an empty
	// list means the record is skipped.
	Identifier string
	// Variables are built in this order for each record that passes.
	Variables []VariableSpec
	// OnDelete says what a Debezium delete (op "d") or a tombstone (nil value) does:
	// OnDeleteSkip (the default) or OnDeleteProcess (the expressions run, with after nil).
	OnDelete string
	// OnLookupMiss says what a record whose lookup(table, key) found no row (Result.LookupMiss)
	// does: LookupMissSkip (the default), LookupMissRetry or LookupMissDeadLetter. Apply only
	// reports the miss; the connector carries the policy out, reading it from
	// Pipeline.OnLookupMiss.
	OnLookupMiss string
	// RecordTime is an expression giving when the record's data changed (Debezium's
	// source.ts_ms, say): milliseconds since the Unix epoch, a time.Time, or an RFC 3339
	// string. Its result is Result.DataTime, from which the connector counts the record's age
	// for its stale and not-found policies; nil, or an empty RecordTime, leaves DataTime zero
	// and the connector counts from the Kafka timestamp, which is when the record was written,
	// not when its data changed: after a connector outage the two differ by the outage.
	RecordTime string
	// RequireActive, when set, drops the identifiers whose interaction is not active, so that
	// no request is spent on a call that is over (it would only answer 404). Nil: every
	// identifier is written to.
	RequireActive *ActiveSpec
}

// ActiveSpec says how to tell whether an interaction is active.
type ActiveSpec struct {
	// Table is the lookup table of active interactions. With no Expression, an identifier is
	// active when the table has a row for it: lookup(Table, identifier) != nil (for a table
	// with an id, len(lookupAll(Table, identifier)) > 0).
	Table string
	// Expression returns bool; it is evaluated once per identifier with identifier bound to
	// it, beside the record's usual environment. A lookup in it that finds nothing is the
	// answer (not active), not a miss for OnLookupMiss. Empty means the default above.
	Expression string
}

// What OnDelete may be.
const (
	OnDeleteSkip    = "skip"
	OnDeleteProcess = "process"
)

// What OnLookupMiss may be.
const (
	// LookupMissSkip skips the record.
	LookupMissSkip = "skip"
	// LookupMissRetry evaluates the record again until the row arrives or a window passes,
	// then dead-letters it.
	LookupMissRetry = "retry"
	// LookupMissDeadLetter dead-letters the record at once.
	LookupMissDeadLetter = "deadLetter"
)

// VariableSpec is one variable of a pipeline.
type VariableSpec struct {
	// Name is the static variable name; it must pass api.ValidateName.
	Name string
	// Value is an expression; its result is converted to a string (nil skips the variable for
	// this record).
	Value string
	// Each attribute is a literal or an expression (Attr.Expr set).
	IVR, Display, Privacy Attr // literal bool
	DisplayName, DataType Attr // literal string
}

// Attr is an attribute that is either a literal (Literal: bool or string) or an expression
// (Expr non-empty), evaluated per record. Exactly one is used; Expr wins when set.
type Attr struct {
	Literal any
	Expr    string
}

// Record is what a pipeline sees of one Kafka record after decoding.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       any               // the decoded key, or its bytes as a string when not decoded
	Headers   map[string]string // the record's headers, last value per key
	Value     any               // the decoded value: map[string]any for Avro and JSON; nil for a tombstone
}
