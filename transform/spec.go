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
