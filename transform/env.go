package transform

import "time"

// env is what every expression sees. It is a struct, not a map, so that the compiler rejects a
// misspelt top-level name (`afer.tier`) when the pipeline is compiled instead of yielding nil for
// every record, and so that the per-record set-up allocates nothing: a Runner owns one env and
// overwrites it for each record.
//
// Fields typed any or map hand their content to the VM without boxing; the typed scalar fields
// (topic, partition, offset, timestamp, op) cost one small allocation only when an expression
// reads them.
type env struct {
	Value     any               `expr:"value"`
	Key       any               `expr:"key"`
	Headers   map[string]string `expr:"headers"`
	Topic     string            `expr:"topic"`
	Partition int               `expr:"partition"`
	Offset    int               `expr:"offset"`
	Timestamp time.Time         `expr:"timestamp"`
	Op        string            `expr:"op"`
	Before    map[string]any    `expr:"before"`
	After     map[string]any    `expr:"after"`
	Source    map[string]any    `expr:"source"`

	// Fetch is fetchMember, for memberPatcher's calls.
	Fetch func(from, key any) any `expr:"$fetch"`

	// Lookup and LookupAll are the lookup functions of the Runner (nil without tables; the
	// compiler rejects their calls then). A row is a map, so lookup("t", k).field reads nil
	// when the row is missing instead of failing the record.
	Lookup    func(table string, key any) map[string]any `expr:"lookup"`
	LookupAll func(table string, key any) []any          `expr:"lookupAll"`
}

// set fills e from rec. A Debezium envelope (a map with a string "op" and an "after" or "before"
// key) is unpacked into op, before, after and source; any other map value becomes after, so one
// pipeline reads after.x from either shape. A value that is not a map leaves after nil.
func (e *env) set(rec *Record) {
	*e = env{
		Value:     rec.Value,
		Key:       rec.Key,
		Headers:   rec.Headers,
		Topic:     rec.Topic,
		Partition: int(rec.Partition),
		Offset:    int(rec.Offset),
		Timestamp: rec.Timestamp,
		Fetch:     fetchMember,
	}
	m, ok := rec.Value.(map[string]any)
	if !ok {
		return
	}
	if op, after, before, ok := envelope(m); ok {
		e.Op = op
		e.After, _ = after.(map[string]any)
		e.Before, _ = before.(map[string]any)
		e.Source, _ = m["source"].(map[string]any)
		return
	}
	e.After = m
}

// envelope reports whether m is a Debezium change event and returns its parts.
func envelope(m map[string]any) (op string, after, before any, ok bool) {
	op, ok = m["op"].(string)
	if !ok {
		return "", nil, nil, false
	}
	after, hasAfter := m["after"]
	before, hasBefore := m["before"]
	if !hasAfter && !hasBefore {
		return "", nil, nil, false
	}
	return op, after, before, true
}
