package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// The guard walks a value's Avro binary encoding against its schema before goavro decodes it.
// goavro allocates an array or map by the block count it reads, before reading any item, and
// caps that count only at math.MaxInt32: six bytes claiming 2^30 items end in "fatal error: out
// of memory", which no recover catches, so the process dies on every replica that gets the
// partition. It also follows a recursive schema as deep as the bytes go, and a megabyte of a
// linked list decodes to gigabytes. The guard proves, in time and memory linear in the input,
// that goavro's allocations for this value are bounded, and rejects it otherwise.

// Bounds of the guard. They are constants, not settings: a legitimate record is nowhere near
// them, and each exists only to turn a crash into a dead letter.
const (
	// maxDepth bounds the nesting of records, arrays and maps in one value; it also stops a
	// recursive schema (a linked list, a tree) from being followed as deep as the bytes allow.
	maxDepth = 64

	// maxZeroByteItems bounds, per value, the array items whose type encodes to no bytes (null,
	// a record of nulls): the bytes cannot bound their number, so this constant does.
	maxZeroByteItems = 4096

	// maxDecodedBytes bounds an estimate of the memory goavro's decoded value takes (maps,
	// slices, interfaces, strings). A value under maxRecordBytes can still expand a hundredfold
	// (an array of one-byte records becomes an array of maps); this caps what one record costs.
	maxDecodedBytes = 128 << 20
)

// DefaultMaxRecordBytes is the largest record value decoded when no limit is configured
// (decode.maxRecordBytes): 1 MiB, Kafka's default message.max.bytes.
const DefaultMaxRecordBytes = 1 << 20

// ErrHostile is matched by a *DecodeError whose value broke one of the guard's bounds: a block
// count or length larger than the bytes left could hold, nesting deeper than maxDepth, too many
// zero-byte items, a union or enum index out of range, or a decoded size past the estimate's
// bound. Such a value would otherwise exhaust memory or the stack.
var ErrHostile = errors.New("value exceeds a decoding bound")

// ErrTooLarge is matched by a *DecodeError for a value larger than the decoder's
// maxRecordBytes; it is refused before any decoding.
var ErrTooLarge = errors.New("value larger than maxRecordBytes")

// DecodeError is a value refused before decoding. Bound names the bound broken; Offset is where
// in the value it was found. Neither says anything of the value's content, so the error can be
// logged and put in a dead letter's headers. It matches ErrDecode (errors.Is), so callers that
// dead-letter on ErrDecode need nothing new, and its cause: ErrHostile or ErrTooLarge.
type DecodeError struct {
	Bound  string
	Offset int
	Err    error
}

func (e *DecodeError) Error() string {
	return ErrDecode.Error() + ": " + e.Err.Error() + ": " + e.Bound + " at byte " + strconv.Itoa(e.Offset)
}

// Unwrap returns ErrHostile or ErrTooLarge.
func (e *DecodeError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrDecode) true, so IsPermanent holds and the record is dead-lettered.
func (e *DecodeError) Is(target error) bool { return target == ErrDecode }

// gkind is the encoding of a schema node.
type gkind uint8

const (
	gNull gkind = iota
	gBoolean
	gVarint // int, long
	gFloat
	gDouble
	gBytes // bytes, string
	gFixed
	gEnum
	gArray
	gMap
	gRecord
	gUnion
)

// gnode is a schema node as the guard needs it. Named types are one node, shared by every
// reference, so a recursive schema is a cyclic graph.
type gnode struct {
	kind     gkind
	size     int      // gFixed: byte length; gEnum: number of symbols
	children []*gnode // gRecord: fields; gUnion: branches; gArray, gMap: the item type
	// minBytes is a lower bound of the bytes any value of the node encodes to; 0 only for
	// types that always encode to nothing (null, a record of nulls, fixed of size 0).
	minBytes int
}

// guard is the compiled walker of one schema.
type guard struct {
	root *gnode
}

// compileGuard builds the guard of schemaJSON. It fails only on a schema goavro would reject
// too; the caller builds the goavro codec first.
func compileGuard(schemaJSON string) (*guard, error) {
	var schema any
	if err := json.Unmarshal([]byte(schemaJSON), &schema); err != nil {
		return nil, fmt.Errorf("parsing schema JSON: %w", err)
	}
	b := guardBuilder{named: map[string]*gnode{}}
	root, err := b.build(schema, "", 0)
	if err != nil {
		return nil, err
	}
	// A recursive type's minimum is computed while its own node is still being built; iterate
	// to the fixed point (bounded: minBytes only grows, and is capped).
	for range 8 {
		changed := false
		for _, n := range b.all {
			if m := n.computeMin(); m != n.minBytes {
				n.minBytes, changed = m, true
			}
		}
		if !changed {
			break
		}
	}
	return &guard{root: root}, nil
}

// maxSchemaDepth bounds the schema's own nesting, so that compiling it cannot exhaust the stack.
const maxSchemaDepth = 1000

type guardBuilder struct {
	named map[string]*gnode
	all   []*gnode
}

func (b *guardBuilder) node(kind gkind) *gnode {
	n := &gnode{kind: kind}
	b.all = append(b.all, n)
	return n
}

func (b *guardBuilder) build(schema any, ns string, depth int) (*gnode, error) {
	if depth > maxSchemaDepth {
		return nil, fmt.Errorf("schema nested deeper than %d", maxSchemaDepth)
	}
	switch s := schema.(type) {
	case string:
		return b.buildName(s, ns)
	case []any:
		u := b.node(gUnion)
		for _, m := range s {
			c, err := b.build(m, ns, depth+1)
			if err != nil {
				return nil, err
			}
			u.children = append(u.children, c)
		}
		u.minBytes = 1
		return u, nil
	case map[string]any:
		return b.buildObject(s, ns, depth)
	}
	return nil, fmt.Errorf("schema node of type %T", schema)
}

func (b *guardBuilder) buildName(name, ns string) (*gnode, error) {
	k, prim := gNull, true
	switch name {
	case "null":
	case "boolean":
		k = gBoolean
	case "int", "long":
		k = gVarint
	case "float":
		k = gFloat
	case "double":
		k = gDouble
	case "bytes", "string":
		k = gBytes
	default:
		prim = false
	}
	if prim {
		n := b.node(k)
		n.minBytes = n.computeMin()
		return n, nil
	}
	if n := b.named[fullName(name, ns)]; n != nil {
		return n, nil
	}
	if n := b.named[name]; n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("unknown type name %q", name)
}

func (b *guardBuilder) buildObject(s map[string]any, ns string, depth int) (*gnode, error) {
	typ, _ := s["type"].(string)
	switch typ {
	case "record", "error", "enum", "fixed":
		full, childNS := namedType(s, ns)
		if full == "" {
			return nil, fmt.Errorf("%s without a name", typ)
		}
		var n *gnode
		switch typ {
		case "enum":
			n = b.node(gEnum)
			syms, _ := s["symbols"].([]any)
			n.size = len(syms)
		case "fixed":
			n = b.node(gFixed)
			size, _ := s["size"].(float64)
			if size < 0 || size > math.MaxInt32 || size != math.Trunc(size) {
				return nil, fmt.Errorf("fixed %q of size %v", full, size)
			}
			n.size = int(size)
		default:
			n = b.node(gRecord)
		}
		b.named[full] = n // before the fields: a field may refer to the record itself
		if n.kind == gRecord {
			fields, _ := s["fields"].([]any)
			for i, f := range fields {
				fm, ok := f.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("field %d is not an object", i)
				}
				c, err := b.build(fm["type"], childNS, depth+1)
				if err != nil {
					return nil, err
				}
				n.children = append(n.children, c)
			}
		}
		n.minBytes = n.computeMin()
		return n, nil
	case "array", "map":
		key := "items"
		n := b.node(gArray)
		if typ == "map" {
			key, n.kind = "values", gMap
		}
		c, err := b.build(s[key], ns, depth+1)
		if err != nil {
			return nil, err
		}
		n.children = []*gnode{c}
		n.minBytes = 1
		return n, nil
	case "":
		// {"type": {...}} or {"type": [...]}: a type wrapped in an object.
		return b.build(s["type"], ns, depth+1)
	}
	return b.buildName(typ, ns) // a primitive with attributes, such as a logicalType
}

// computeMin returns the node's minimum encoded size from its children's current minimums,
// capped so that a schema no value can satisfy (a record containing itself) stays finite.
func (n *gnode) computeMin() int {
	switch n.kind {
	case gNull:
		return 0
	case gFloat:
		return 4
	case gDouble:
		return 8
	case gFixed:
		return n.size
	case gRecord:
		sum := 0
		for _, c := range n.children {
			sum = min(sum+c.minBytes, math.MaxInt32)
		}
		return sum
	}
	return 1 // boolean, varint, length, index or block count
}

// walker is the state of one check.
type walker struct {
	b         []byte
	off       int
	zeroItems int
	cost      int // estimate of goavro's decoded size, in bytes
}

// check walks b as one value of the guard's schema and returns a *DecodeError wrapping
// ErrHostile when it breaks a bound or does not parse. Bytes left over are not its concern:
// the decoder reports them.
func (g *guard) check(b []byte) error {
	w := walker{b: b}
	return w.value(g.root, 0)
}

func (w *walker) fail(bound string) error {
	return &DecodeError{Bound: bound, Offset: w.off, Err: ErrHostile}
}

// spend adds n bytes to the decoded-size estimate.
func (w *walker) spend(n int) error {
	w.cost += n
	if w.cost > maxDecodedBytes {
		return w.fail("decoded size over " + strconv.Itoa(maxDecodedBytes) + " bytes")
	}
	return nil
}

// long reads one zig-zag varint, as goavro does (at most 10 bytes).
func (w *walker) long() (int64, error) {
	var u uint64
	for shift := uint(0); ; shift += 7 {
		if w.off >= len(w.b) {
			return 0, w.fail("truncated long")
		}
		if shift >= 64 {
			return 0, w.fail("long longer than 10 bytes")
		}
		c := w.b[w.off]
		w.off++
		u |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			break
		}
	}
	return int64(u>>1) ^ -int64(u&1), nil
}

// skip consumes n bytes, checked against what is left.
func (w *walker) skip(n int64, bound string) error {
	if n < 0 || n > int64(len(w.b)-w.off) {
		return w.fail(bound)
	}
	w.off += int(n)
	return nil
}

func (w *walker) value(n *gnode, depth int) error {
	switch n.kind {
	case gNull:
		return nil
	case gBoolean:
		return w.skip(1, "truncated boolean")
	case gVarint:
		_, err := w.long()
		return err
	case gFloat:
		return w.skip(4, "truncated float")
	case gDouble:
		return w.skip(8, "truncated double")
	case gFixed:
		if err := w.spend(24 + n.size); err != nil {
			return err
		}
		return w.skip(int64(n.size), "fixed size beyond the input")
	case gBytes:
		l, err := w.long()
		if err != nil {
			return err
		}
		if err := w.skip(l, "string or bytes length beyond the input"); err != nil {
			return err
		}
		return w.spend(24 + int(l))
	case gEnum:
		i, err := w.long()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(n.size) {
			return w.fail("enum index out of range")
		}
		return nil
	case gUnion:
		i, err := w.long()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(n.children)) {
			return w.fail("union index out of range")
		}
		if err := w.spend(64); err != nil { // goavro wraps the branch in a one-entry map
			return err
		}
		return w.value(n.children[i], depth)
	case gRecord:
		if depth >= maxDepth {
			return w.fail("nesting deeper than " + strconv.Itoa(maxDepth))
		}
		if err := w.spend(64 + 48*len(n.children)); err != nil {
			return err
		}
		for _, c := range n.children {
			if err := w.value(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	case gArray, gMap:
		if depth >= maxDepth {
			return w.fail("nesting deeper than " + strconv.Itoa(maxDepth))
		}
		return w.blocks(n, depth+1)
	}
	return w.fail("unknown schema node")
}

// blocks walks the blocks of an array or map: each a zig-zag count (negative: the count's
// absolute value, then the block's size in bytes), its items, and finally a count of 0.
func (w *walker) blocks(n *gnode, depth int) error {
	item := n.children[0]
	name, perItem, itemMin := "array", 16, item.minBytes
	if n.kind == gMap {
		name, perItem, itemMin = "map", 64, 1+item.minBytes // a key is at least its length
	}
	if err := w.spend(48); err != nil {
		return err
	}
	for {
		count, err := w.long()
		if err != nil {
			return err
		}
		if count == 0 {
			return nil
		}
		end := -1
		if count < 0 {
			if count == math.MinInt64 {
				return w.fail(name + " block count out of range")
			}
			count = -count
			size, err := w.long()
			if err != nil {
				return err
			}
			if size < 0 || size > int64(len(w.b)-w.off) {
				return w.fail(name + " block size beyond the input")
			}
			end = w.off + int(size)
		}
		left := int64(len(w.b) - w.off)
		if itemMin == 0 {
			if count > int64(maxZeroByteItems-w.zeroItems) {
				return w.fail(name + " of more than " + strconv.Itoa(maxZeroByteItems) + " zero-byte items")
			}
			w.zeroItems += int(count)
		} else if count > left/int64(itemMin) {
			return w.fail(name + " block count beyond the input")
		}
		if err := w.spend(perItem * int(count)); err != nil {
			return err
		}
		for range count {
			if n.kind == gMap {
				l, err := w.long()
				if err != nil {
					return err
				}
				if err := w.skip(l, "map key length beyond the input"); err != nil {
					return err
				}
			}
			if err := w.value(item, depth); err != nil {
				return err
			}
		}
		if end >= 0 && w.off != end {
			return w.fail(name + " block size does not match its items")
		}
	}
}
