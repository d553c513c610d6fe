package tables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// ErrFull is returned (wrapped, naming the table and its bound) when a table would grow past
// its maxEntries or maxBytes. A table missing rows would join wrongly without a sound, so the
// connector stops with it instead: raise the bound, add a ttl, or project fewer fields.
var ErrFull = errors.New("lookup table is full")

// entryOverhead is what an entry costs beyond its key, id and packed value bytes: the map
// slot, the string headers, the timestamp and the map's spare capacity, measured for a
// single-valued table with BenchmarkStoreMemory (about 140 bytes an entry of 3 fields and an
// 8-digit key, of which 28 are key and row). It is an estimate the maxBytes bound counts
// with; BenchmarkStoreMemory measures the real figure (README "Joins", sizing).
const entryOverhead = 112

// store is one table's rows: a key to one packed row, or, for a many-valued table (one with an
// id), a key to a small set of members, each with its id, plus an index from id to key so an
// end event that carries only the id still finds its member.
//
// Rows are packed into one string each (see pack): only the projected fields, no map per
// entry. A store is safe for concurrent use: the table's reader writes, workers read.
type store struct {
	name       string
	fields     []string // projected field names, sorted; a packed row holds their values in this order
	multi      bool
	ttl        time.Duration
	maxEntries int
	maxBytes   int64
	now        func() time.Time

	mu     sync.RWMutex
	single map[string]entry
	many   map[string][]member
	byID   map[string]string // id -> key, many-valued tables only
	n      int               // entries (members of a many-valued table)
	bytes  int64
	full   bool // the last put was refused by the bound
}

type entry struct {
	row string
	at  int64 // unix nanos of the record that wrote it, for the ttl
}

type member struct {
	id  string
	row string
	at  int64
}

func newStore(name string, fields []string, multi bool, ttl time.Duration, maxEntries int, maxBytes int64, now func() time.Time) *store {
	s := &store{name: name, fields: fields, multi: multi, ttl: ttl, maxEntries: maxEntries, maxBytes: maxBytes, now: now}
	if multi {
		s.many = make(map[string][]member)
		s.byID = make(map[string]string)
	} else {
		s.single = make(map[string]entry)
	}
	return s
}

func cost(key, id, row string) int64 { return int64(len(key)+len(id)+len(row)) + entryOverhead }

// expired reports whether an entry written at at is past the ttl.
func (s *store) expired(at int64, now time.Time) bool {
	return s.ttl > 0 && now.UnixNano()-at > int64(s.ttl)
}

// put sets key's row (for a many-valued table: the member id of key, moving it from another
// key if it was there). It returns ErrFull, and changes nothing, when a new entry would pass
// the bound; replacing an entry never fails for the count.
func (s *store) put(key, id, row string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := at.UnixNano()
	if s.ttl > 0 && s.atBound(cost(key, id, row)) {
		// The periodic sweep reclaims expired entries a batch at a time; before refusing an
		// entry for the bound, make sure it is not the expired ones that fill it.
		s.sweepLocked(s.now(), 0)
	}
	if !s.multi {
		old, ok := s.single[key]
		delta := cost(key, "", row)
		if ok {
			delta -= cost(key, "", old.row)
		}
		if err := s.admit(!ok, delta); err != nil {
			return err
		}
		s.single[key] = entry{row: row, at: ts}
		if !ok {
			s.n++
		}
		s.bytes += delta
		return nil
	}
	if oldKey, ok := s.byID[id]; ok && oldKey != key {
		s.removeMemberLocked(oldKey, id)
	}
	ms := s.many[key]
	for i := range ms {
		if ms[i].id == id {
			delta := cost(key, id, row) - cost(key, id, ms[i].row)
			if err := s.admit(false, delta); err != nil {
				return err
			}
			ms[i].row, ms[i].at = row, ts
			s.bytes += delta
			return nil
		}
	}
	delta := cost(key, id, row)
	if err := s.admit(true, delta); err != nil {
		return err
	}
	s.many[key] = append(ms, member{id: id, row: row, at: ts})
	s.byID[id] = key
	s.n++
	s.bytes += delta
	return nil
}

// admit checks the bounds for a change of delta bytes that adds an entry when adding.
func (s *store) admit(adding bool, delta int64) error {
	if adding && s.maxEntries > 0 && s.n+1 > s.maxEntries {
		s.full = true
		return fmt.Errorf("table %q: %w: more than maxEntries %d entries; raise maxEntries, set a ttl or a delete condition", s.name, ErrFull, s.maxEntries)
	}
	if s.maxBytes > 0 && s.bytes+delta > s.maxBytes {
		s.full = true
		return fmt.Errorf("table %q: %w: more than maxBytes %d bytes (%d entries); raise maxBytes, set a ttl or project fewer fields", s.name, ErrFull, s.maxBytes, s.n)
	}
	s.full = false
	return nil
}

// deleteKey removes key's row, or every member of key.
func (s *store) deleteKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.multi {
		if old, ok := s.single[key]; ok {
			delete(s.single, key)
			s.n--
			s.bytes -= cost(key, "", old.row)
		}
		return
	}
	for _, m := range s.many[key] {
		delete(s.byID, m.id)
		s.n--
		s.bytes -= cost(key, m.id, m.row)
	}
	delete(s.many, key)
}

// deleteID removes the member id, whatever its key (many-valued tables).
func (s *store) deleteID(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key, ok := s.byID[id]; ok {
		s.removeMemberLocked(key, id)
	}
}

func (s *store) removeMemberLocked(key, id string) {
	ms := s.many[key]
	for i := range ms {
		if ms[i].id != id {
			continue
		}
		s.n--
		s.bytes -= cost(key, id, ms[i].row)
		ms = append(ms[:i], ms[i+1:]...)
		break
	}
	if len(ms) == 0 {
		delete(s.many, key)
	} else {
		s.many[key] = ms
	}
	delete(s.byID, id)
}

// get returns key's row of a single-valued table, or nil (absent or past its ttl).
func (s *store) get(key string) map[string]any {
	s.mu.RLock()
	e, ok := s.single[key]
	s.mu.RUnlock()
	if !ok || s.expired(e.at, s.now()) {
		return nil
	}
	return unpack(s.fields, e.row)
}

// getAll returns the live members' rows of key of a many-valued table, in insertion order.
func (s *store) getAll(key string) []any {
	now := s.now()
	s.mu.RLock()
	ms := s.many[key]
	var rows []string
	for _, m := range ms {
		if !s.expired(m.at, now) {
			rows = append(rows, m.row)
		}
	}
	s.mu.RUnlock()
	if len(rows) == 0 {
		return nil
	}
	out := make([]any, len(rows))
	for i, r := range rows {
		out[i] = unpack(s.fields, r)
	}
	return out
}

// sweepBatch bounds the entries one sweep looks at, so the write lock it takes (lookups wait
// on it) lasts about a millisecond whatever the table's size. Go starts each map iteration at
// a random place, so successive sweeps visit the whole table in a few passes of its size in
// batches; lookups ignore expired entries meanwhile, so a late sweep costs memory, not
// correctness.
const sweepBatch = 10_000

// sweep removes entries past the ttl among up to sweepBatch entries (members, in a
// many-valued table). Lookups already ignore them; sweeping frees the memory.
func (s *store) sweep() int {
	if s.ttl <= 0 {
		return 0
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sweepLocked(now, sweepBatch)
}

// atBound reports whether a new entry of size bytes would pass maxEntries or maxBytes.
func (s *store) atBound(size int64) bool {
	return s.maxEntries > 0 && s.n+1 > s.maxEntries || s.maxBytes > 0 && s.bytes+size > s.maxBytes
}

// sweepLocked removes expired entries among up to limit entries (0: all of them) and returns
// how many it removed. The caller holds s.mu for writing.
func (s *store) sweepLocked(now time.Time, limit int) int {
	removed, seen := 0, 0
	if !s.multi {
		for k, e := range s.single {
			if seen++; limit > 0 && seen > limit {
				break
			}
			if s.expired(e.at, now) {
				delete(s.single, k)
				s.n--
				s.bytes -= cost(k, "", e.row)
				removed++
			}
		}
		return removed
	}
	for k, ms := range s.many {
		if limit > 0 && seen >= limit {
			break
		}
		seen += len(ms)
		for _, m := range ms {
			if s.expired(m.at, now) {
				s.removeMemberLocked(k, m.id)
				removed++
			}
		}
	}
	return removed
}

// stats returns the entry count and the estimated bytes, and whether the bound refused a put.
func (s *store) stats() (n int, bytes int64, full bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n, s.bytes, s.full
}

// Tags of packed values.
const (
	tagNil byte = iota
	tagString
	tagInt
	tagFloat
	tagTrue
	tagFalse
	tagTime
)

// pack encodes the projected values in field order: per value a tag byte and its bytes
// (varint integers, 8-byte floats, length-prefixed text, unix-nano times). Other types (an
// Avro decimal, a []byte) are kept as their text, which formatNumber and string() read alike.
func pack(vals []any, format func(any) (string, bool)) string {
	b := make([]byte, 0, 16*len(vals))
	for _, v := range vals {
		switch x := v.(type) {
		case nil:
			b = append(b, tagNil)
		case string:
			b = appendString(b, x)
		case bool:
			if x {
				b = append(b, tagTrue)
			} else {
				b = append(b, tagFalse)
			}
		case int:
			b = binary.AppendVarint(append(b, tagInt), int64(x))
		case int32:
			b = binary.AppendVarint(append(b, tagInt), int64(x))
		case int64:
			b = binary.AppendVarint(append(b, tagInt), x)
		case float64:
			b = binary.LittleEndian.AppendUint64(append(b, tagFloat), math.Float64bits(x))
		case float32:
			b = binary.LittleEndian.AppendUint64(append(b, tagFloat), math.Float64bits(float64(x)))
		case time.Time:
			b = binary.AppendVarint(append(b, tagTime), x.UnixNano())
		default:
			if s, ok := format(v); ok {
				b = appendString(b, s)
			} else {
				b = append(b, tagNil)
			}
		}
	}
	return string(b)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(append(b, tagString), uint64(len(s)))
	return append(b, s...)
}

// unpack decodes a packed row into a map of the projected fields (nil values left out).
func unpack(fields []string, row string) map[string]any {
	out := make(map[string]any, len(fields))
	b := []byte(row)
	for _, f := range fields {
		if len(b) == 0 {
			break
		}
		tag := b[0]
		b = b[1:]
		switch tag {
		case tagString:
			n, k := binary.Uvarint(b)
			out[f] = string(b[k : k+int(n)])
			b = b[k+int(n):]
		case tagInt:
			v, k := binary.Varint(b)
			out[f] = v
			b = b[k:]
		case tagFloat:
			out[f] = math.Float64frombits(binary.LittleEndian.Uint64(b))
			b = b[8:]
		case tagTrue:
			out[f] = true
		case tagFalse:
			out[f] = false
		case tagTime:
			v, k := binary.Varint(b)
			out[f] = time.Unix(0, v).UTC()
			b = b[k:]
		}
	}
	return out
}
