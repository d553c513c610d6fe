package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the values a document may decode to. Aliases let a small file name the same
// list many times over; without a bound a few kilobytes could expand to billions of values.
const maxNodes = 1_000_000

// maxErrors bounds the problems reported: past a hundred, the rest are consequences or noise.
const maxErrors = 100

// maxFileSize bounds a file named in the config (a CA, a token, a schema): such files are small,
// and a mistaken /dev/zero must not exhaust memory.
const maxFileSize = 1 << 20

// loader holds the state of one Load or Parse.
type loader struct {
	file      string
	dir       string // relative file names are resolved against it; "" leaves them as they are
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)

	errs    Errors
	broken  map[string]bool    // paths whose value could not be decoded: validation skips them
	fromEnv map[string]bool    // paths whose value came from the environment: never echoed
	written map[string]written // paths whose value came from the environment: as written
	lines   map[string]int
	budget  int
	fields  map[reflect.Type]structFields
}

func newLoader(file, dir string, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) *loader {
	return &loader{
		file:      file,
		dir:       dir,
		lookupEnv: lookupEnv,
		readFile:  readFile,
		broken:    map[string]bool{},
		fromEnv:   map[string]bool{},
		written:   map[string]written{},
		lines:     map[string]int{},
		budget:    maxNodes,
		fields:    map[reflect.Type]structFields{},
	}
}

func (l *loader) load(data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{l.syntaxError(err)}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, Errors{{File: l.file, Msg: "config is empty"}}
	}
	root := doc.Content[0]
	cfg := defaultConfig()
	cfg.file = l.file
	cfg.lines = l.lines
	cfg.written = l.written
	l.prepare(root, "")
	l.decode(root, reflect.ValueOf(cfg).Elem(), "")
	for name, t := range cfg.Tenants {
		if t == nil { // a mapping value cannot be nil, but be safe for hand-built maps
			cfg.Tenants[name] = &TenantConfig{}
			t = cfg.Tenants[name]
		}
		t.Name = name
	}
	l.validate(cfg)
	if err := l.errs.Err(); err != nil {
		if n := len(l.errs); n > maxErrors {
			l.errs = append(l.errs[:maxErrors], &Error{File: l.file, Msg: fmt.Sprintf("%d more problems not shown", n-maxErrors)})
		}
		return nil, l.errs
	}
	return cfg, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns the YAML parser's "yaml: line 3: ..." into an Error at that line.
func (l *loader) syntaxError(err error) *Error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: l.file, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: l.file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// add records a problem at path. It is dropped when path, or a key above it, already failed to
// decode: its value is the default, and a second error about it would only mislead.
func (l *loader) add(path, format string, args ...any) {
	for p := path; ; p = parentPath(p) {
		if l.broken[p] {
			return
		}
		if p == "" {
			break
		}
	}
	l.errs = append(l.errs, &Error{File: l.file, Line: l.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// addAt records a decoding problem at an exact line and marks path broken.
func (l *loader) addAt(line int, path, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
	l.broken[path] = true
}

func (l *loader) line(path string) int {
	return (&Config{lines: l.lines}).Line(path)
}

// show quotes a value for an error message, unless it came from the environment, where it may
// be a secret put in the wrong key.
func (l *loader) show(path, value string) string {
	if l.fromEnv[path] {
		return "a value from the environment"
	}
	return strconv.Quote(value)
}

// resolve makes a relative file name relative to the config file's directory.
func (l *loader) resolve(name string) string {
	if name == "" || l.dir == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(l.dir, name)
}

// prepare walks the whole tree once: it records the line of every key path and expands
// environment variables in every scalar value (never in keys).
//
// Expansion is done on parsed scalars rather than on the raw text so that a value is inserted
// verbatim: a token containing "#", ": " or a quote cannot change the document's structure or
// end up quoted in a YAML syntax error, and ${VAR} in a comment is left alone.
func (l *loader) prepare(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			if _, ok := l.lines[p]; !ok {
				l.lines[p] = k.Line
			}
			l.prepare(v, p)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			l.lines[p] = v.Line
			l.prepare(v, p)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		var substituted []string
		s, fromEnv, err := expandEnv(n.Value, func(name string) (string, bool) {
			v, ok := l.lookupEnv(name)
			if v != "" {
				substituted = append(substituted, v)
			}
			return v, ok
		})
		if err != nil {
			l.addAt(n.Line, path, "%v", err)
			return
		}
		if fromEnv {
			l.fromEnv[path] = true
			l.written[path] = written{text: n.Value, values: substituted}
		}
		n.Value = s
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			n.Tag = "" // a plain scalar is re-resolved: "" is null, "16" an int
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// expandEnv replaces ${NAME} and ${NAME:-default} (default used when NAME is unset or empty)
// and turns $$ into $. Any other $ is kept, so expressions may use expr's $env. fromEnv reports
// whether any variable was substituted.
func expandEnv(s string, lookup func(string) (string, bool)) (out string, fromEnv bool, err error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), fromEnv, nil
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
			continue
		case '{':
		default:
			b.WriteByte('$')
			s = s[i+1:]
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", false, errors.New(`"${" without a closing "}" (write $$ for a literal $)`)
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !envNameRE.MatchString(name) {
			return "", false, fmt.Errorf("invalid environment variable name %q in ${...} (write $$ for a literal $)", name)
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			b.WriteString(def)
		case !ok:
			return "", false, fmt.Errorf("environment variable %s is not set (use ${%s:-default} for a default)", name, name)
		default:
			b.WriteString(v)
			fromEnv = true
		}
	}
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

var (
	durationType = reflect.TypeFor[time.Duration]()
	secretType   = reflect.TypeFor[Secret]()
	unmarshaler  = reflect.TypeFor[yaml.Unmarshaler]()
)

type defaulter interface{ setDefaults() }

// decode sets v from n, reporting every mismatch with its path and line. It replaces yaml's own
// decoding so that unknown keys are errors with a line and a path, every problem is reported
// rather than the first, and no error quotes a secret.
func (l *loader) decode(n *yaml.Node, v reflect.Value, path string) {
	at := n.Line // where an alias is used, not where its anchor is
	for i := 0; n.Kind == yaml.AliasNode; i++ {
		if n.Alias == nil || i > 100 {
			return
		}
		n = n.Alias
	}
	if l.budget--; l.budget < 0 {
		if l.budget == -1 {
			l.addAt(at, path, "document expands to more than %d values (check its aliases)", maxNodes)
		}
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value keeps the default
	}
	t := v.Type()
	if reflect.PointerTo(t).Implements(unmarshaler) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			l.addAt(n.Line, path, "%v", err)
		}
		return
	}
	switch {
	case t == durationType:
		if !l.scalar(n, path) {
			return
		}
		d, err := parseDuration(n.Value)
		if err != nil {
			l.addAt(n.Line, path, "%v, got %s", err, l.show(path, n.Value))
			return
		}
		v.SetInt(int64(d))
	case t == secretType:
		if !l.scalar(n, path) {
			return
		}
		v.SetString(n.Value)
	case t.Kind() == reflect.String:
		if !l.scalar(n, path) {
			return
		}
		v.SetString(n.Value)
	case t.Kind() == reflect.Bool:
		if !l.scalar(n, path) {
			return
		}
		b, err := strconv.ParseBool(n.Value)
		if err != nil {
			l.addAt(n.Line, path, "must be true or false, got %s", l.show(path, n.Value))
			return
		}
		v.SetBool(b)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		if !l.scalar(n, path) {
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, t.Bits())
		if err != nil {
			l.addAt(n.Line, path, "must be an integer, got %s", l.show(path, n.Value))
			return
		}
		v.SetInt(i)
	case t.Kind() == reflect.Float64:
		if !l.scalar(n, path) {
			return
		}
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			l.addAt(n.Line, path, "must be a number, got %s", l.show(path, n.Value))
			return
		}
		v.SetFloat(f)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		l.decodeStrings(n, v, path)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			l.addAt(n.Line, path, "must be a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			l.decodeNew(c, s.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
		v.Set(s)
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		l.decodeMap(n, v, path)
	case t.Kind() == reflect.Struct:
		l.decodeStruct(n, v, path)
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		// An optional section (requireActive): nil when absent or null, set when written.
		l.decodeNew(n, v, path)
	default:
		// Only reachable if a field of an unsupported type is added to Config.
		panic(fmt.Sprintf("config: no decoding for %s at %s", t, path))
	}
}

// decodeNew decodes into a fresh element, with its defaults set first.
func (l *loader) decodeNew(n *yaml.Node, v reflect.Value, path string) {
	if v.Kind() == reflect.Pointer {
		v.Set(reflect.New(v.Type().Elem()))
		v = v.Elem()
	}
	if d, ok := v.Addr().Interface().(defaulter); ok {
		d.setDefaults()
	}
	l.decode(n, v, path)
}

func (l *loader) scalar(n *yaml.Node, path string) bool {
	if n.Kind != yaml.ScalarNode {
		l.addAt(n.Line, path, "must be a single value, got %s", kindName(n))
		return false
	}
	return true
}

// decodeStrings accepts a list, or one comma-separated value so that brokers: ${KAFKA_BROKERS}
// works with KAFKA_BROKERS=a:9092,b:9092.
func (l *loader) decodeStrings(n *yaml.Node, v reflect.Value, path string) {
	var out []string
	switch n.Kind {
	case yaml.ScalarNode:
		for _, s := range strings.Split(n.Value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	case yaml.SequenceNode:
		out = make([]string, len(n.Content))
		for i, c := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			for c.Kind == yaml.AliasNode && c.Alias != nil && c.Alias != c {
				c = c.Alias
			}
			if c.Kind != yaml.ScalarNode {
				l.addAt(c.Line, p, "must be a single value, got %s", kindName(c))
				continue
			}
			out[i] = c.Value
		}
	default:
		l.addAt(n.Line, path, "must be a list, got %s", kindName(n))
		return
	}
	v.Set(reflect.ValueOf(out).Convert(v.Type()))
}

func (l *loader) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		l.addAt(n.Line, path, "must be a mapping, got %s", kindName(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, c := n.Content[i], n.Content[i+1]
		p := joinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			l.addAt(k.Line, p, "is defined twice (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		e := reflect.New(v.Type().Elem()).Elem()
		l.decodeNew(c, e, p)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
	}
	v.Set(m)
}

type structFields struct {
	index map[string][]int
	names []string
}

func (l *loader) structFields(t reflect.Type) structFields {
	if f, ok := l.fields[t]; ok {
		return f
	}
	f := structFields{index: map[string][]int{}}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), prefix...), i)
			switch {
			case opts == "inline":
				walk(sf.Type, idx)
			case name != "" && name != "-" && sf.IsExported():
				f.index[name] = idx
				f.names = append(f.names, name)
			}
		}
	}
	walk(t, nil)
	l.fields[t] = f
	return f
}

func (l *loader) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		l.addAt(n.Line, path, "must be a mapping, got %s", kindName(n))
		return
	}
	fields := l.structFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, c := n.Content[i], n.Content[i+1]
		p := joinPath(path, k.Value)
		idx, ok := fields.index[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", k.Value)
			if k.Value == "<<" {
				msg = "merge keys (<<) are not supported"
			} else if s := suggest(k.Value, fields.names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			l.errs = append(l.errs, &Error{File: l.file, Line: k.Line, Path: path, Msg: msg})
			continue
		}
		if first, dup := seen[k.Value]; dup {
			l.addAt(k.Line, p, "is defined twice (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		l.decode(c, v.FieldByIndex(idx), p)
	}
}

// suggest returns the known key closest to an unknown one: same letters in another case
// (groupID for groupId), or at most two edits away.
func suggest(key string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if strings.EqualFold(n, key) {
			return n
		}
		if d := editDistance(strings.ToLower(key), strings.ToLower(n)); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	default:
		return "something else"
	}
}

var errDuration = errors.New("must be a duration like 500ms, 10s or 1m")

// parseDuration accepts Go durations and a bare 0. A bare number other than 0 is refused: yaml
// would read it as nanoseconds, which is never what was meant.
func parseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errDuration
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}

// readSmallFile reads a regular file of at most maxFileSize bytes. Its errors name the file,
// never its content.
func readSmallFile(name string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxFileSize)
	}
	return b, nil
}
