// Package tables materializes lookup tables from Kafka topics, for joins: a pipeline's
// expressions call lookup("customers", key) or lookupAll("activeInteractions", key) (package
// transform) and read the rows kept here.
//
// Tables are global: every replica reads every partition of each table's topic, outside the
// consumer group, from the beginning, and keeps following it. The Set reports caught-up once
// every partition reached the end offset it had when reading started; the connector begins
// consuming its group only then, so no record is joined against a half-loaded table.
//
// A table keeps, per key, only the fields its value projection names, packed into one string
// (no map per entry), and enforces its maxEntries and maxBytes bounds with ErrFull.
package tables

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// Decoder turns a record's value bytes into a value (schemas.Decoder).
type Decoder interface {
	Decode(ctx context.Context, b []byte) (any, error)
}

// Field is one projected field of a table's rows.
type Field struct {
	Name  string
	Value *transform.Expr
}

// Spec is one table, its expressions compiled.
type Spec struct {
	Name  string
	Topic string
	// Key gives the key lookups use (formatted by transform.FormatKey); nil or "" skips the
	// record, unless it is a delete of a many-valued table with an id.
	Key *transform.Expr
	// Fields are the row's projection; only these are kept.
	Fields []Field
	// ID, when set, makes the table many-valued: a key maps to a set of rows, each identified
	// by its id (an interaction id), so an update replaces one member and a delete removes one.
	ID *transform.Expr
	// Delete, when set, is a condition that removes the entry instead of writing it (an
	// interaction-ended event). Tombstones and Debezium deletes (op "d") always remove.
	Delete *transform.Expr
	// TTL, when positive, expires an entry this long after the timestamp of the record that
	// wrote it: a call whose end event was lost does not stay active forever.
	TTL        time.Duration
	MaxEntries int   // 0: unbounded
	MaxBytes   int64 // 0: unbounded
}

// Set is the configured tables. Build it with New when compiling the pipelines (they check
// their lookups against it), give it its Kafka client options and decoders with Prepare, and
// run it with Run. Lookups are safe from any goroutine.
type Set struct {
	specs  []Spec
	stores map[string]*store
	order  []string // table names in config order
	now    func() time.Time

	loader      LoaderOptions
	decoders    []*schemas.RetryingDecoder // loader.Decoders, retrying transient failures
	keyDecoders []*schemas.RetryingDecoder // loader.KeyDecoders likewise; nil entries read strings

	caughtUp     chan struct{}
	caughtUpOnce sync.Once
	loading      atomic.Pointer[string] // why not caught up; nil once caught up

	// applyMu: the reader applies a batch of records under its write lock; Hold takes its read
	// lock, so a pipeline can evaluate a record and queue its writes with no table changing.
	applyMu sync.RWMutex

	posMu    sync.Mutex
	pos      map[topicPartition]int64 // next offset to read, per partition read so far
	progress chan struct{}            // closed and replaced whenever pos moves

	metrics setMetrics
}

type topicPartition struct {
	topic     string
	partition int32
}

// New builds the tables' stores; it starts nothing. now is the clock of the ttl (time.Now
// when nil).
func New(specs []Spec, now func() time.Time) (*Set, error) {
	if now == nil {
		now = time.Now
	}
	s := &Set{
		stores:   make(map[string]*store, len(specs)),
		now:      now,
		caughtUp: make(chan struct{}),
		pos:      make(map[topicPartition]int64),
		progress: make(chan struct{}),
	}
	for _, sp := range specs {
		if sp.Name == "" || sp.Topic == "" || sp.Key == nil || len(sp.Fields) == 0 {
			return nil, fmt.Errorf("table %q: name, topic, key and at least one field are required", sp.Name)
		}
		if _, dup := s.stores[sp.Name]; dup {
			return nil, fmt.Errorf("table %q is defined twice", sp.Name)
		}
		sp.Fields = slices.Clone(sp.Fields)
		sort.Slice(sp.Fields, func(i, j int) bool { return sp.Fields[i].Name < sp.Fields[j].Name })
		names := make([]string, len(sp.Fields))
		for i, f := range sp.Fields {
			names[i] = f.Name
		}
		s.stores[sp.Name] = newStore(sp.Name, names, sp.ID != nil, sp.TTL, sp.MaxEntries, sp.MaxBytes, now)
		s.specs = append(s.specs, sp)
		s.order = append(s.order, sp.Name)
	}
	why := "lookup tables not loaded yet"
	s.loading.Store(&why)
	s.metrics.init(s)
	return s, nil
}

// Table implements transform.Tables.
func (s *Set) Table(name string) (exists, multi bool) {
	st, ok := s.stores[name]
	if !ok {
		return false, false
	}
	return true, st.multi
}

// Lookup implements transform.Tables: key's row of a single-valued table, or nil.
func (s *Set) Lookup(table, key string) map[string]any {
	st := s.stores[table]
	if st == nil || st.multi {
		return nil
	}
	s.metrics.lookups.Add(1)
	row := st.get(key)
	if row == nil {
		s.metrics.misses.Add(1)
	}
	return row
}

// LookupAll implements transform.Tables: the rows of key of a many-valued table.
func (s *Set) LookupAll(table, key string) []any {
	st := s.stores[table]
	if st == nil || !st.multi {
		return nil
	}
	s.metrics.lookups.Add(1)
	return st.getAll(key)
}

// Len returns the entries of a table (members, for a many-valued one) and its estimated
// bytes.
func (s *Set) Len(table string) (entries int, bytes int64) {
	st := s.stores[table]
	if st == nil {
		return 0, 0
	}
	n, b, _ := st.stats()
	return n, b
}

// Topics returns the topics the tables read, each once.
func (s *Set) Topics() []string {
	var out []string
	for _, sp := range s.specs {
		if !slices.Contains(out, sp.Topic) {
			out = append(out, sp.Topic)
		}
	}
	return out
}

// CaughtUp is closed once every partition of the tables' topics reached the end offset it had
// when Run started.
func (s *Set) CaughtUp() <-chan struct{} { return s.caughtUp }

// Loading returns why the tables cannot serve lookups yet, or "" once caught up.
func (s *Set) Loading() string {
	if p := s.loading.Load(); p != nil {
		return *p
	}
	return ""
}

// WaitPast waits until the tables have read topic's partition past offset, for a pipeline that
// consumes a topic a table also reads (a call-start event that is also an activeInteractions
// row): the pipeline's lookups then see every table row the topic held up to that record, so
// an update racing a call start on the other topic reaches the call either way. It returns at
// once for a topic no table reads, and ctx's error if ctx ends first.
func (s *Set) WaitPast(ctx context.Context, topic string, partition int32, offset int64) error {
	if !slices.ContainsFunc(s.specs, func(sp Spec) bool { return sp.Topic == topic }) {
		return nil
	}
	tp := topicPartition{topic, partition}
	for {
		s.posMu.Lock()
		next, ch := s.pos[tp], s.progress
		s.posMu.Unlock()
		if next > offset {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Hold keeps every table still until Release: no table record is applied meanwhile. The
// connector holds the tables across evaluating a record and queueing its writes, which orders
// a join against a concurrent change of the row it read (see the partition worker, connector/worker.go).
// Holds may overlap; keep them short.
func (s *Set) Hold() { s.applyMu.RLock() }

// Release ends a Hold.
func (s *Set) Release() { s.applyMu.RUnlock() }

// advance records that partitions were read up to next offsets, and wakes WaitPast.
func (s *Set) advance(next map[topicPartition]int64) {
	if len(next) == 0 {
		return
	}
	s.posMu.Lock()
	for tp, o := range next {
		if o > s.pos[tp] {
			s.pos[tp] = o
		}
	}
	close(s.progress)
	s.progress = make(chan struct{})
	s.posMu.Unlock()
}

func (s *Set) markCaughtUp() {
	s.caughtUpOnce.Do(func() {
		s.loading.Store(nil)
		close(s.caughtUp)
	})
}

// errUnknownTable is returned when a record names a table the Set does not have.
var errUnknownTable = errors.New("unknown table")

// apply writes one record to the table of spec i. It returns ErrFull (wrapped) when the
// table's bound refuses the record, and the expression's error for a record the table cannot
// use (it is skipped and counted).
func (s *Set) apply(ev *transform.Evaluator, i int, ts time.Time) (action string, err error) {
	sp := &s.specs[i]
	st := s.stores[sp.Name]
	if st == nil {
		return "", errUnknownTable
	}
	del := ev.Deleted()
	if sp.Delete != nil && !del {
		out, err := ev.Eval(sp.Delete)
		if err != nil {
			return actionError, fmt.Errorf("delete: %w", err)
		}
		del, _ = out.(bool)
	}
	keyOut, err := ev.Eval(sp.Key)
	if err != nil {
		return actionError, fmt.Errorf("key: %w", err)
	}
	key, hasKey := transform.FormatKey(keyOut)
	var id string
	hasID := false
	if sp.ID != nil {
		idOut, err := ev.Eval(sp.ID)
		if err != nil {
			return actionError, fmt.Errorf("id: %w", err)
		}
		id, hasID = transform.FormatKey(idOut)
	}
	if del {
		switch {
		case sp.ID != nil && hasID:
			st.deleteID(id)
		case hasKey:
			st.deleteKey(key)
		default:
			return actionNoKey, nil
		}
		return actionDelete, nil
	}
	if !hasKey || (sp.ID != nil && !hasID) {
		return actionNoKey, nil
	}
	if st.expired(ts.UnixNano(), s.now()) {
		// Older than the ttl already (a restart reading old calls): it would be invisible.
		if sp.ID != nil {
			st.deleteID(id)
		} else {
			st.deleteKey(key)
		}
		return actionExpired, nil
	}
	vals := make([]any, len(sp.Fields))
	for j, f := range sp.Fields {
		if vals[j], err = ev.Eval(f.Value); err != nil {
			return actionError, fmt.Errorf("value.%s: %w", f.Name, err)
		}
	}
	if err := st.put(key, id, pack(vals, transform.FormatKey), ts); err != nil {
		return actionError, err
	}
	return actionPut, nil
}

// What apply did with a record, for the metrics.
const (
	actionPut     = "put"
	actionDelete  = "delete"
	actionNoKey   = "no key"
	actionExpired = "expired"
	actionError   = "error"
)

// ApplyRecord applies one decoded record to every table reading rec.Topic, as the loader
// does with a record it read from Kafka, and returns the first table's error: ErrFull when
// a bound refuses it, or why a table cannot use it. It is for offline runs (`augment-connector
// test` feeds the tables a test's rows), not for a Set being run.
func (s *Set) ApplyRecord(rec *transform.Record) error {
	var ev transform.Evaluator
	ev.Set(rec)
	defer ev.Reset()
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	var first error
	for i := range s.specs {
		if s.specs[i].Topic != rec.Topic {
			continue
		}
		action, err := s.apply(&ev, i, rec.Timestamp)
		s.metrics.record(s.specs[i].Name, action)
		if err != nil && first == nil {
			first = fmt.Errorf("table %q: %w", s.specs[i].Name, err)
		}
	}
	return first
}
