package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/augment-connector/augment-connector/internal/api"
)

// errBody is returned by decodeRequest when the body is not a request of either published form.
var errBody = errors.New("Invalid request body")

// maxNestingDepth is the depth of nested arrays and objects past which a body is rejected, the
// same bound encoding/json applies; it keeps a hostile body from growing the stack.
const maxNestingDepth = 10000

// decodeRequest reads a POST body leniently. It accepts
//   - the contract's form {"variables":[...]} (shared/docs/data-augmentation-api.txt), and
//   - {"data":[{"variables":[...]}]}, a form shown in other published copies of the vendor's
//     docs; the variables of every element of data are concatenated in order;
//
// and, in each variable, booleans as JSON true/false (the contract) or as strings that
// strconv.ParseBool accepts ("true"/"false" are seen in published examples); null is the same as
// an absent field. name and value are required strings. Keys are matched case-sensitively and,
// when a key repeats, its last occurrence wins (as a JSON object decoded into a map). When both
// forms are present, "variables" is used, but "data" must still be well-formed.
//
// A body that is not valid JSON or not of either form returns an error wrapping errBody; a
// variable that is not an object, lacks a required field or has a field of the wrong type returns
// an *api.ValidationError for the first such variable. The rules of the contract's table are
// checked by api.Validate, not here.
//
// It is the simulator's hot path (up to 50 variables at tens of thousands of requests a second),
// so it scans the body once by hand instead of going through encoding/json and maps, which cost
// about 15 times as much for a 50-variable body (FuzzDecodeRequest holds the two to the same
// results). The returned strings share one allocation and never alias body.
func decodeRequest(body []byte) ([]api.Variable, error) {
	d := decoder{buf: body}
	return d.request()
}

// decoder is a single-pass reader of a request body. Syntax errors stop it; type errors and
// variable errors are remembered so that a later syntax error still takes precedence, as it
// does when a body is first checked whole.
type decoder struct {
	buf   []byte
	pos   int
	depth int
	arena []byte // backing store of the decoded strings, see intern
}

// arrayResult is what one "variables" array produced: its variables (only while none failed),
// the first failure, and how many elements it had.
type arrayResult struct {
	vars []api.Variable
	err  *api.ValidationError
	n    int
}

func (d *decoder) syntaxError(what string) error {
	return fmt.Errorf("%w: %s at offset %d", errBody, what, d.pos)
}

func (d *decoder) request() ([]api.Variable, error) {
	d.skipSpace()
	if d.pos >= len(d.buf) {
		return nil, d.syntaxError("unexpected end of JSON input")
	}
	var (
		vars, data         arrayResult
		haveVars, haveData bool
		varsErr, dataErr   error // the key's value has the wrong shape
	)
	switch d.buf[d.pos] {
	case '{':
		err := d.object(func(key []byte, plain bool) error {
			switch d.keyName(key, plain) {
			case "variables":
				varsErr, haveVars, vars = nil, false, arrayResult{}
				switch d.peek() {
				case 'n':
					return d.literal("null")
				case '[':
					haveVars = true
					var err error
					vars, err = d.variables(0)
					return err
				}
				varsErr = fmt.Errorf("%w: \"variables\" must be an array", errBody)
				return d.skipValue()
			case "data":
				dataErr, haveData, data = nil, false, arrayResult{}
				switch d.peek() {
				case 'n':
					return d.literal("null")
				case '[':
					haveData = true
					var err error
					data, dataErr, err = d.data()
					return err
				}
				dataErr = fmt.Errorf("%w: \"data\" must be an array", errBody)
				return d.skipValue()
			}
			return d.skipValue()
		})
		if err != nil {
			return nil, err
		}
	case 'n':
		if err := d.literal("null"); err != nil {
			return nil, err
		}
	default:
		if err := d.skipValue(); err != nil {
			return nil, err
		}
		varsErr = fmt.Errorf("%w: must be a JSON object", errBody)
	}
	d.skipSpace()
	if d.pos < len(d.buf) {
		return nil, d.syntaxError(fmt.Sprintf("invalid character %q after top-level value", d.buf[d.pos]))
	}
	switch {
	case varsErr != nil:
		return nil, varsErr
	case dataErr != nil:
		return nil, dataErr
	}
	res := vars
	if !haveVars {
		if !haveData {
			return nil, fmt.Errorf("%w: missing \"variables\"", errBody)
		}
		res = data
	}
	if res.err != nil {
		return nil, res.err
	}
	if res.vars == nil {
		res.vars = []api.Variable{}
	}
	return res.vars, nil
}

// data reads {"data":[{"variables":[...]}, ...]}: the variables of every element, concatenated.
func (d *decoder) data() (res arrayResult, shapeErr, err error) {
	err = d.array(func() error {
		switch d.peek() {
		case 'n':
			return d.literal("null")
		case '{':
		default:
			if shapeErr == nil {
				shapeErr = fmt.Errorf("%w: each element of \"data\" must be an object", errBody)
			}
			return d.skipValue()
		}
		var elem arrayResult
		err := d.object(func(key []byte, plain bool) error {
			if d.keyName(key, plain) != "variables" {
				return d.skipValue()
			}
			elem = arrayResult{}
			switch d.peek() {
			case 'n':
				return d.literal("null")
			case '[':
				var err error
				elem, err = d.variables(res.n)
				return err
			}
			if shapeErr == nil {
				shapeErr = fmt.Errorf("%w: \"variables\" in \"data\" must be an array", errBody)
			}
			return d.skipValue()
		})
		if res.err == nil {
			res.err = elem.err
			res.vars = append(res.vars, elem.vars...)
		}
		res.n += elem.n
		return err
	})
	return res, shapeErr, err
}

// variables reads one array of variables whose first element has index base in the request.
func (d *decoder) variables(base int) (arrayResult, error) {
	// Counting the objects ahead sizes the slice once for the usual body.
	res := arrayResult{vars: make([]api.Variable, 0, min(bytes.Count(d.buf[d.pos:], []byte{'{'}), api.MaxVariablesPerRequest+1))}
	err := d.array(func() error {
		v, verr, err := d.variable(base + res.n)
		res.n++
		if err != nil {
			return err
		}
		if res.err == nil {
			if verr != nil {
				res.err, res.vars = verr, nil
			} else {
				res.vars = append(res.vars, v)
			}
		}
		return nil
	})
	return res, err
}

// Indexes of a variable's fields in the order their errors are reported.
const (
	fieldName = iota
	fieldValue
	fieldDisplayName
	fieldDataType
	fieldIVR
	fieldDisplay
	fieldPrivacy
	numFields
)

var fieldNames = [numFields]string{"name", "value", "displayName", "dataType", "ivr", "display", "privacy"}

// span is a value's position in the body; end == 0 means the field is absent. plain says the
// value is a string of plain ASCII, its own decoded form.
type span struct {
	start, end int
	plain      bool
}

// variable reads one element of a variables array. verr is the element's first broken rule of
// shape (not an object, a required field missing, a field of the wrong type).
func (d *decoder) variable(i int) (v api.Variable, verr *api.ValidationError, err error) {
	switch d.peek() {
	case 'n':
		return v, &api.ValidationError{Index: i, Field: "name", Rule: "name is required"}, d.literal("null")
	case '{':
	default:
		return v, &api.ValidationError{Index: i, Field: "variables", Rule: "must be an object"}, d.skipValue()
	}
	var spans [numFields]span
	err = d.object(func(key []byte, plain bool) error {
		f := fieldIndex(d.keyName(key, plain))
		start := d.pos
		plain = false
		var err error
		if d.peek() == '"' {
			plain, err = d.scanString()
		} else {
			err = d.skipValue()
		}
		if err != nil {
			return err
		}
		if f >= 0 {
			spans[f] = span{start, d.pos, plain}
		}
		return nil
	})
	if err != nil {
		return v, nil, err
	}
	strs := [...]*string{fieldName: &v.Name, fieldValue: &v.Value, fieldDisplayName: &v.DisplayName, fieldDataType: &v.DataType}
	for f := range fieldIVR {
		s := spans[f]
		if s.end == 0 || d.isNull(s) {
			if f <= fieldValue {
				return v, &api.ValidationError{Index: i, Name: v.Name, Field: fieldNames[f], Rule: fieldNames[f] + " is required"}, nil
			}
			continue
		}
		if d.buf[s.start] != '"' {
			return v, &api.ValidationError{Index: i, Name: v.Name, Field: fieldNames[f], Rule: "must be a string"}, nil
		}
		*strs[f] = d.str(s)
	}
	bools := [...]*bool{fieldIVR: &v.IVR, fieldDisplay: &v.Display, fieldPrivacy: &v.Privacy}
	for f := fieldIVR; f < numFields; f++ {
		s := spans[f]
		if s.end == 0 {
			continue
		}
		b, ok := d.boolean(s)
		if !ok {
			return v, &api.ValidationError{Index: i, Name: v.Name, Field: fieldNames[f], Rule: "must be a boolean"}, nil
		}
		*bools[f] = b
	}
	return v, nil, nil
}

func fieldIndex(key string) int {
	switch key {
	case "name":
		return fieldName
	case "value":
		return fieldValue
	case "displayName":
		return fieldDisplayName
	case "dataType":
		return fieldDataType
	case "ivr":
		return fieldIVR
	case "display":
		return fieldDisplay
	case "privacy":
		return fieldPrivacy
	}
	return -1
}

func (d *decoder) isNull(s span) bool { return string(d.buf[s.start:s.end]) == "null" }

// boolean reads JSON true, false or null (false), or a string strconv.ParseBool accepts.
func (d *decoder) boolean(s span) (bool, bool) {
	switch string(d.buf[s.start:s.end]) {
	case "true":
		return true, true
	case "false", "null":
		return false, true
	}
	if d.buf[s.start] != '"' {
		return false, false
	}
	b, err := strconv.ParseBool(d.str(s))
	return b, err == nil
}

// str returns the string whose quoted form (already checked by scanString) is at s. A plain
// string, or one without escapes in valid UTF-8, is copied into the arena as is; any other goes
// through encoding/json, which decodes escapes and replaces invalid UTF-8 with U+FFFD.
func (d *decoder) str(s span) string {
	inner := d.buf[s.start+1 : s.end-1]
	if s.plain || bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return d.intern(inner)
	}
	var out string
	if err := json.Unmarshal(d.buf[s.start:s.end], &out); err != nil {
		return string(inner) // unreachable: the scanner accepted the string
	}
	return out
}

// intern copies b into the arena, one allocation per body shared by all its strings (their
// total cannot exceed the body's length), and returns it as a string. The arena is only ever
// appended to, so the bytes behind a returned string never change.
func (d *decoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(d.arena)-len(d.arena) < len(b) {
		d.arena = make([]byte, 0, max(len(b), len(d.buf)-d.pos))
	}
	n := len(d.arena)
	d.arena = append(d.arena, b...)
	return unsafe.String(&d.arena[n], len(b))
}

// keyName returns an object key for comparison; a plain key is compared in place.
func (d *decoder) keyName(key []byte, plain bool) string {
	if plain {
		return unsafeString(key)
	}
	var out string
	if err := json.Unmarshal(key, &out); err != nil {
		return ""
	}
	return out
}

// unsafeString views b as a string for a comparison that does not outlive b.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func (d *decoder) peek() byte {
	d.skipSpace()
	if d.pos < len(d.buf) {
		return d.buf[d.pos]
	}
	return 0
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.buf) {
		switch d.buf[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *decoder) expect(c byte) error {
	if d.peek() != c {
		if d.pos >= len(d.buf) {
			return d.syntaxError("unexpected end of JSON input")
		}
		return d.syntaxError(fmt.Sprintf("invalid character %q, expected %q", d.buf[d.pos], c))
	}
	d.pos++
	return nil
}

func (d *decoder) push() error {
	d.depth++
	if d.depth > maxNestingDepth {
		return d.syntaxError("exceeded max depth")
	}
	return nil
}

// object reads an object at pos, calling member with each raw key (quotes included) when pos is
// at the key's value.
func (d *decoder) object(member func(key []byte, plain bool) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if err := d.push(); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		if d.peek() != '"' {
			return d.expect('"')
		}
		start := d.pos
		plain, err := d.scanString()
		if err != nil {
			return err
		}
		key := d.buf[start:d.pos]
		if plain {
			key = key[1 : len(key)-1]
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		d.skipSpace()
		if err := member(key, plain); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return nil
		default:
			return d.expect('}')
		}
	}
}

// array reads an array at pos, calling elem when pos is at each element.
func (d *decoder) array(elem func() error) error {
	if err := d.expect('['); err != nil {
		return err
	}
	if err := d.push(); err != nil {
		return err
	}
	if d.peek() == ']' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		d.skipSpace()
		if err := elem(); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return nil
		default:
			return d.expect(']')
		}
	}
}

// skipValue checks the syntax of the value at pos and moves past it.
func (d *decoder) skipValue() error {
	switch d.peek() {
	case '{':
		return d.object(func([]byte, bool) error { return d.skipValue() })
	case '[':
		return d.array(d.skipValue)
	case '"':
		_, err := d.scanString()
		return err
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	case 0:
		if d.pos >= len(d.buf) {
			return d.syntaxError("unexpected end of JSON input")
		}
	}
	return d.number()
}

func (d *decoder) literal(lit string) error {
	d.skipSpace()
	if !bytes.HasPrefix(d.buf[d.pos:], []byte(lit)) {
		return d.syntaxError("invalid literal, expected " + lit)
	}
	d.pos += len(lit)
	return nil
}

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at pos.
func (d *decoder) number() error {
	b, p := d.buf, d.pos
	digits := func() bool {
		s := p
		for p < len(b) && '0' <= b[p] && b[p] <= '9' {
			p++
		}
		return p > s
	}
	if p < len(b) && b[p] == '-' {
		p++
	}
	switch {
	case p < len(b) && b[p] == '0':
		p++
	case p < len(b) && '1' <= b[p] && b[p] <= '9':
		digits()
	default:
		d.pos = p
		if p < len(b) {
			return d.syntaxError(fmt.Sprintf("invalid character %q looking for beginning of value", b[p]))
		}
		return d.syntaxError("unexpected end of JSON input")
	}
	if p < len(b) && b[p] == '.' {
		p++
		if !digits() {
			d.pos = p
			return d.syntaxError("invalid number, expected digit after decimal point")
		}
	}
	if p < len(b) && (b[p] == 'e' || b[p] == 'E') {
		p++
		if p < len(b) && (b[p] == '+' || b[p] == '-') {
			p++
		}
		if !digits() {
			d.pos = p
			return d.syntaxError("invalid number, expected digit in exponent")
		}
	}
	d.pos = p
	return nil
}

// plainByte marks the bytes a string may hold as they are: printable ASCII but '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString moves past the string at pos, checking it as encoding/json does (no control
// characters, valid escapes; bytes of invalid UTF-8 are allowed and replaced when decoded), and
// reports whether it holds only plain ASCII, which is then its own decoded form.
func (d *decoder) scanString() (plain bool, err error) {
	b := d.buf
	p := d.pos + 1
	plain = true
	for p < len(b) {
		for p < len(b) && plainByte[b[p]] {
			p++
		}
		if p >= len(b) {
			break
		}
		c := b[p]
		switch {
		case c == '"':
			d.pos = p + 1
			return plain, nil
		case c < 0x20:
			d.pos = p
			return false, d.syntaxError("invalid control character in string")
		case c == '\\':
			plain = false
			p++
			if p >= len(b) {
				break
			}
			switch b[p] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p++
			case 'u':
				p++
				for range 4 {
					if p >= len(b) {
						break
					}
					if !isHex(b[p]) {
						d.pos = p
						return false, d.syntaxError("invalid character in \\u escape")
					}
					p++
				}
			default:
				d.pos = p
				return false, d.syntaxError("invalid escape in string")
			}
		default: // a byte of a multi-byte sequence, valid or not
			plain = false
			p++
		}
	}
	d.pos = len(b)
	return false, d.syntaxError("unexpected end of JSON input")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
