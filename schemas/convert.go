package schemas

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// Convert turns goavro's native representation of a value into the plain Go values that every
// decoder returns, so that an expression reads after.tier and not after.tier.string, and
// compares numbers without caring how Avro stored them:
//
//	Avro                          Go
//	null                          nil
//	boolean                       bool
//	int, long                     int64 (one integer type: JSON gives int64 too)
//	float, double                 float64
//	string, enum, uuid            string
//	bytes, fixed                  string holding the same bytes: expr's string() would print a
//	                              []byte as a list of numbers, and == would not work on it
//	decimal (bytes or fixed)      float64, the nearest to the exact value: exact for up to 15
//	                              significant digits (a decimal(12,2) balance always is),
//	                              rounded beyond; compare it as a number, format it with
//	                              formatNumber(x, scale)
//	date                          time.Time at midnight UTC
//	timestamp-millis/-micros      time.Time in UTC
//	time-millis/-micros           time.Duration
//	record                        map[string]any
//	map                           map[string]any
//	array                         []any
//	union                         the value of its branch, unwrapped
//
// Decoders convert with a plan compiled from the schema, which knows exactly where the unions
// are; Convert does the same without a schema, for values from elsewhere (tests, other
// decoders).
//
// Convert reuses maps and slices in place: it mutates v, so the caller must own it (goavro
// returns fresh maps and slices on every decode).
//
// Without a schema, a one-entry map is taken as a union wrapper when its key is an Avro type
// name: a primitive ("string", "long", ...), "array", "map", a goavro logical type
// ("long.timestamp-millis", "bytes.decimal", ...) or a namespaced full name ("com.acme.Type").
// So a record type without a namespace inside a union is not unwrapped, and an Avro map with a
// single key that happens to look like a type name is; the decoders, which follow the schema,
// make neither mistake.
func Convert(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, inner := range x {
				if isUnionKey(k) {
					return Convert(inner)
				}
			}
		}
		for k, e := range x {
			x[k] = Convert(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = Convert(e)
		}
		return x
	}
	return convertScalar(v)
}

// convertScalar converts the scalar types goavro produces that the table above changes.
func convertScalar(v any) any {
	switch x := v.(type) {
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case float32:
		return float64(x)
	case *big.Rat:
		if x == nil {
			return nil
		}
		return ratFloat(x)
	case []byte:
		return string(x)
	}
	return v
}

// ratFloat returns the float64 nearest to r. When numerator and denominator are both exact in
// a float64 (below 2^53, which covers decimal(15, s)), one IEEE division is correctly rounded
// and so gives that nearest value, without big.Rat's slower general path.
func ratFloat(r *big.Rat) float64 {
	const exact = 1 << 53
	num, den := r.Num(), r.Denom()
	if num.IsInt64() && den.IsInt64() {
		n, d := num.Int64(), den.Int64()
		if n > -exact && n < exact && d < exact {
			return float64(n) / float64(d)
		}
	}
	f, _ := r.Float64()
	return f
}

// primitiveNames are the union keys goavro uses for unnamed member types.
var primitiveNames = map[string]bool{
	"null": true, "boolean": true, "int": true, "long": true, "float": true, "double": true,
	"bytes": true, "string": true, "array": true, "map": true,
}

// isUnionKey reports whether k is what goavro puts as the key of a union wrapper: a primitive
// name, a logical type such as "long.timestamp-millis" (which contains a dot), or a namespaced
// full name.
func isUnionKey(k string) bool {
	return primitiveNames[k] || strings.IndexByte(k, '.') > 0
}

// conv converts one goavro value in place where it can and returns the result. A nil conv is
// the identity: the plan skips fields that need nothing (strings, longs, doubles, enums,
// timestamps), which is most of them.
type conv func(v any) any

// compilePlan builds the conversion of values of the Avro schema schemaJSON.
func compilePlan(schemaJSON string) (conv, error) {
	var schema any
	if err := json.Unmarshal([]byte(schemaJSON), &schema); err != nil {
		return nil, fmt.Errorf("parsing schema JSON: %w", err)
	}
	p := planner{named: make(map[string]*namedPlan)}
	c, err := p.build(schema, "")
	if err != nil {
		return nil, err
	}
	if c == nil {
		return func(v any) any { return v }, nil
	}
	return c, nil
}

// namedPlan is the conversion of a named type, looked up by later references to its name. fn
// is set once the type is built; a reference met while building it (a recursive type) calls
// through the pointer.
type namedPlan struct {
	fn       conv
	building bool
}

type planner struct {
	named map[string]*namedPlan
}

// fullName resolves an Avro name against the enclosing namespace as the spec says.
func fullName(name, namespace string) string {
	if strings.IndexByte(name, '.') >= 0 || namespace == "" {
		return name
	}
	return namespace + "." + name
}

// namedType returns the full name of the named type s declares inside namespace ns, and the
// namespace its own members are declared in.
func namedType(s map[string]any, ns string) (full, childNS string) {
	name, _ := s["name"].(string)
	if name == "" {
		return "", ns
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name, name[:i]
	}
	if nsv, ok := s["namespace"].(string); ok {
		ns = nsv
	}
	return fullName(name, ns), ns
}

func (p *planner) build(schema any, ns string) (conv, error) {
	switch s := schema.(type) {
	case string:
		return p.buildName(s, ns)
	case []any:
		return p.buildUnion(s, ns)
	case map[string]any:
		return p.buildMap(s, ns)
	}
	return nil, fmt.Errorf("schema node of type %T", schema)
}

func (p *planner) buildName(name, ns string) (conv, error) {
	switch name {
	case "null", "boolean", "long", "double", "string":
		return nil, nil
	case "int", "float", "bytes":
		return convertScalar, nil
	}
	n := p.named[fullName(name, ns)]
	if n == nil {
		n = p.named[name]
	}
	if n == nil {
		return nil, fmt.Errorf("unknown type name %q", name)
	}
	if n.building {
		return func(v any) any {
			if n.fn == nil {
				return v
			}
			return n.fn(v)
		}, nil
	}
	return n.fn, nil
}

func (p *planner) buildMap(s map[string]any, ns string) (conv, error) {
	typ, _ := s["type"].(string)
	logical, _ := s["logicalType"].(string)
	switch typ {
	case "record", "error", "enum", "fixed":
		full, childNS := namedType(s, ns)
		if full == "" {
			return nil, fmt.Errorf("%s without a name", typ)
		}
		ns = childNS
		n := &namedPlan{building: true}
		p.named[full] = n
		var err error
		switch typ {
		case "enum":
			n.fn = nil
		case "fixed":
			n.fn = convertScalar // bytes to string, decimal to float64
		default:
			n.fn, err = p.buildRecord(s, ns)
		}
		n.building = false
		return n.fn, err
	case "array":
		items, err := p.build(s["items"], ns)
		if err != nil || items == nil {
			return nil, err
		}
		return func(v any) any {
			if a, ok := v.([]any); ok {
				for i, e := range a {
					a[i] = items(e)
				}
			}
			return v
		}, nil
	case "map":
		values, err := p.build(s["values"], ns)
		if err != nil || values == nil {
			return nil, err
		}
		return func(v any) any {
			if m, ok := v.(map[string]any); ok {
				for k, e := range m {
					m[k] = values(e)
				}
			}
			return v
		}, nil
	case "bytes":
		return convertScalar, nil // decimal or not, the scalar conversion handles it
	case "int":
		if logical == "date" || logical == "time-millis" {
			return nil, nil
		}
		return convertScalar, nil
	}
	if typ == "" {
		// {"type": {...}} or {"type": [...]}: a type wrapped in an object.
		return p.build(s["type"], ns)
	}
	return p.buildName(typ, ns)
}

type fieldPlan struct {
	name string
	fn   conv
}

func (p *planner) buildRecord(s map[string]any, ns string) (conv, error) {
	fields, _ := s["fields"].([]any)
	var plans []fieldPlan
	for i, f := range fields {
		fm, ok := f.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("field %d is not an object", i)
		}
		name, _ := fm["name"].(string)
		fn, err := p.build(fm["type"], ns)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", name, err)
		}
		if fn != nil {
			plans = append(plans, fieldPlan{name: name, fn: fn})
		}
	}
	if len(plans) == 0 {
		return nil, nil
	}
	return func(v any) any {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		for _, f := range plans {
			if x, ok := m[f.name]; ok {
				m[f.name] = f.fn(x)
			}
		}
		return v
	}, nil
}

// buildUnion unwraps goavro's {"typeName": value} and converts the value as its branch says.
// With one non-null branch (the usual ["null", T]) the key need not be looked at.
func (p *planner) buildUnion(members []any, ns string) (conv, error) {
	var (
		nonNull  int
		single   conv
		byName   = make(map[string]conv, len(members))
		anyConvs bool
	)
	for _, m := range members {
		fn, err := p.build(m, ns)
		if err != nil {
			return nil, err
		}
		key := p.unionKey(m, ns)
		if key == "null" {
			continue
		}
		nonNull++
		single = fn
		byName[key] = fn
		anyConvs = anyConvs || fn != nil
	}
	unwrap := func(v any) (string, any, bool) {
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return "", v, false
		}
		for k, x := range m {
			return k, x, true
		}
		return "", v, false
	}
	switch {
	case !anyConvs:
		return func(v any) any {
			_, x, _ := unwrap(v)
			return x
		}, nil
	case nonNull == 1:
		return func(v any) any {
			if _, x, ok := unwrap(v); ok {
				return single(x)
			}
			return v
		}, nil
	}
	return func(v any) any {
		k, x, ok := unwrap(v)
		if !ok {
			return v
		}
		fn, known := byName[k]
		switch {
		case !known:
			return Convert(x) // a goavro naming we did not predict: fall back on types
		case fn == nil:
			return x
		}
		return fn(x)
	}, nil
}

// goavroLogical are the logical types goavro knows; it names a union member of one of them
// "base.logical". Any other logicalType is ignored and the member is named by its base type.
var goavroLogical = map[string]bool{
	"long.timestamp-millis": true, "long.timestamp-micros": true, "int.time-millis": true,
	"long.time-micros": true, "int.date": true, "bytes.decimal": true,
	"string.validated-string": true,
}

// unionKey predicts the key goavro gives a union member's value.
func (p *planner) unionKey(m any, ns string) string {
	switch s := m.(type) {
	case string:
		if primitiveNames[s] {
			return s
		}
		if _, ok := p.named[fullName(s, ns)]; ok {
			return fullName(s, ns)
		}
		return s
	case map[string]any:
		typ, _ := s["type"].(string)
		switch typ {
		case "record", "error", "enum", "fixed":
			full, _ := namedType(s, ns)
			return full
		case "":
			return p.unionKey(s["type"], ns)
		}
		if logical, ok := s["logicalType"].(string); ok && goavroLogical[typ+"."+logical] {
			if typ == "bytes" && logical == "decimal" {
				if name, ok := s["name"].(string); ok {
					return fullName(name, ns)
				}
			}
			return typ + "." + logical
		}
		return typ
	}
	return ""
}
