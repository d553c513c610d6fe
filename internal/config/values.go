package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Secret is a token or password. Every way of printing or marshalling it (fmt verbs, String,
// GoString, JSON, YAML, text) yields "<secret>", or "" when it is empty, so a Config can be
// logged or dumped whole without leaking it. Use string(s) where the value is really needed.
type Secret string

const maskedSecret = "<secret>"

func (s Secret) masked() string {
	if s == "" {
		return ""
	}
	return maskedSecret
}

// String returns "<secret>".
func (s Secret) String() string { return s.masked() }

// GoString returns "<secret>" quoted, for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.masked()) }

// Format masks every verb, including %x and %q, which would otherwise bypass String.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' || verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = io.WriteString(f, s.masked())
}

// MarshalJSON masks the value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.masked()) }

// MarshalText masks the value for encoders that use encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.masked()), nil }

// MarshalYAML masks the value.
func (s Secret) MarshalYAML() (any, error) { return s.masked(), nil }

// ByteSize is a size in bytes, written as an integer (67108864) or with a unit (512KiB, 64MiB,
// 1GiB; KB, MB, GB are powers of 1000).
type ByteSize int64

// Byte size units.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
)

var byteUnits = map[string]int64{
	"": 1, "B": 1,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
}

var errByteSize = errors.New("must be a size in bytes like 67108864, 512KiB or 64MiB")

// UnmarshalYAML parses a size with an optional unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errByteSize
	}
	v, err := parseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '_' })
	if i < 0 {
		i = len(s)
	}
	mult, ok := byteUnits[strings.TrimSpace(s[i:])]
	if !ok || i == 0 {
		return 0, errByteSize
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(s[:i], "_", ""), 10, 64)
	if err != nil || v > math.MaxInt64/mult {
		return 0, errByteSize
	}
	return v * mult, nil
}

// String writes the size with the largest binary unit that divides it.
func (b ByteSize) String() string {
	for _, u := range []struct {
		size ByteSize
		name string
	}{{GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalYAML writes the size as String does, which UnmarshalYAML reads back.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// BoolAttr is a variable attribute that is a literal bool (ivr: true) or an expression
// evaluated per record (ivr: {expr: "after.vip"}).
type BoolAttr struct {
	Value bool
	Expr  string
}

var errBoolAttr = errors.New(`must be true, false or {expr: "..."}`)

// UnmarshalYAML accepts a bool or {expr: ...}.
func (a *BoolAttr) UnmarshalYAML(n *yaml.Node) error {
	if expr, ok, err := decodeExpr(n); ok || err != nil {
		*a = BoolAttr{Expr: expr}
		return err
	}
	if n.Kind != yaml.ScalarNode {
		return errBoolAttr
	}
	v, err := strconv.ParseBool(n.Value)
	if err != nil {
		return errBoolAttr
	}
	*a = BoolAttr{Value: v}
	return nil
}

// MarshalYAML writes the form UnmarshalYAML reads.
func (a BoolAttr) MarshalYAML() (any, error) {
	if a.Expr != "" {
		return map[string]string{"expr": a.Expr}, nil
	}
	return a.Value, nil
}

// StringAttr is a variable attribute that is a literal string (displayName: Customer Tier) or an
// expression evaluated per record (displayName: {expr: "..."}).
type StringAttr struct {
	Value string
	Expr  string
}

// UnmarshalYAML accepts a string or {expr: ...}.
func (a *StringAttr) UnmarshalYAML(n *yaml.Node) error {
	if expr, ok, err := decodeExpr(n); ok || err != nil {
		*a = StringAttr{Expr: expr}
		return err
	}
	if n.Kind != yaml.ScalarNode {
		return errors.New(`must be a string or {expr: "..."}`)
	}
	*a = StringAttr{Value: n.Value}
	return nil
}

// MarshalYAML writes the form UnmarshalYAML reads.
func (a StringAttr) MarshalYAML() (any, error) {
	if a.Expr != "" {
		return map[string]string{"expr": a.Expr}, nil
	}
	return a.Value, nil
}

// decodeExpr reads {expr: "..."}; ok is false when n is not a mapping.
func decodeExpr(n *yaml.Node) (expr string, ok bool, err error) {
	if n.Kind != yaml.MappingNode {
		return "", false, nil
	}
	found := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value != "expr" {
			return "", true, fmt.Errorf(`unknown key %q: an expression is written {expr: "..."}`, k.Value)
		}
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		if v.Kind != yaml.ScalarNode {
			return "", true, errors.New("expr must be a string")
		}
		expr, found = v.Value, true
	}
	if !found || strings.TrimSpace(expr) == "" {
		return "", true, errors.New("expr must not be empty")
	}
	return expr, true, nil
}
