package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/augment-connector/augment-connector/internal/api"
)

// errBody is returned by decodeRequest when the body is not a request of either published form.
var errBody = errors.New("Invalid request body")

// decodeRequest reads a POST body leniently. It accepts
//   - the contract's form {"variables":[...]} (docs/DESIGN.md, "The API contract"), and
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
// The syntax is checked by the tokenizer of github.com/go-json-experiment/json (the prototype of
// encoding/json/v2), set to encoding/json's leniencies; this file only walks its tokens, so the
// simulator has no JSON scanner of its own to maintain (FuzzDecodeRequest holds it to a
// definition through encoding/json and maps). It is the simulator's hot path: the hand-written
// scanner it replaced, which needed unsafe to share its strings, was about 1.6 times as fast on
// a 50-variable body (10.5 against 16.5 µs), but with the library the simulator still serves
// about 30,000 requests/s on loopback, above its 20,000 (BENCHMARKS.md, "Simulator request
// decoder (issue 13)").
func decodeRequest(body []byte) ([]api.Variable, error) {
	var d decoder
	return d.decode(body)
}

// decoder walks one body to its end. Syntax errors (the library's) stop it; shape and variable
// errors are remembered, so that a later syntax error still takes precedence, as it does when a
// body is first checked whole. Decoded strings without escapes are slices of body, a copy made
// once, so a 50-variable body costs one allocation for all its strings and none aliases the
// caller's bytes.
type decoder struct {
	dec     jsontext.Decoder
	in      bytes.Buffer
	body    string
	scratch []byte // for unquoting a key with escapes
}

// decode reads body; a decoder may be used again for another body.
func (d *decoder) decode(body []byte) ([]api.Variable, error) {
	d.in = *bytes.NewBuffer(body)
	// encoding/json's leniencies, which the simulator keeps: a repeated key is allowed (its
	// last occurrence wins), and invalid UTF-8 in a string is replaced with U+FFFD.
	d.dec.Reset(&d.in, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	d.body = string(body)
	vars, err := d.request()
	var verr *api.ValidationError
	if err != nil && !errors.Is(err, errBody) && !errors.As(err, &verr) {
		return nil, d.bodyError(err) // the library's: the body is not JSON
	}
	return vars, err
}

// arrayResult is what one "variables" array produced: its variables (only while none failed),
// the first failure, and how many elements it had.
type arrayResult struct {
	vars []api.Variable
	err  *api.ValidationError
	n    int
}

// bodyError turns the library's error into the simulator's message: encoding/json's wording
// (as the library's own v1 emulation renders it), which the handler's tests pin, and the offset.
func (d *decoder) bodyError(err error) error {
	var serr *jsontext.SyntacticError
	switch {
	case errors.As(err, &serr):
		msg := "unexpected end of JSON input"
		if serr.Err != io.ErrUnexpectedEOF {
			msg = serr.Err.Error()
			if i := strings.Index(msg, " (expecting"); i >= 0 && !strings.Contains(msg, " in literal") {
				msg = msg[:i]
			}
			msg = strings.NewReplacer("object name", "object key",
				"at start of value", "looking for beginning of value",
				"at start of string", "looking for beginning of object key string",
				"after object value", "after object key:value pair",
				"in number", "in numeric literal").Replace(msg)
		}
		return fmt.Errorf("%w: %s at offset %d", errBody, msg, serr.ByteOffset)
	case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: unexpected end of JSON input at offset %d", errBody, len(d.body))
	}
	return fmt.Errorf("%w: %w", errBody, err)
}

// skip reads the next value whole, which checks its syntax.
func (d *decoder) skip() error {
	_, err := d.dec.ReadValue()
	return err
}

// request reads the top-level value: {"variables":[...]}, {"data":[...]} or both.
func (d *decoder) request() ([]api.Variable, error) {
	var (
		vars, data         arrayResult
		haveVars, haveData bool
		varsErr, dataErr   error // the key's value has the wrong shape
	)
	switch d.dec.PeekKind() {
	case '{':
		err := d.object(func(key []byte) error {
			switch string(key) {
			case "variables":
				varsErr, haveVars, vars = nil, false, arrayResult{}
				switch d.dec.PeekKind() {
				case 'n':
					return d.skip()
				case '[':
					haveVars = true
					var err error
					vars, err = d.variables(0)
					return err
				}
				varsErr = fmt.Errorf("%w: \"variables\" must be an array", errBody)
				return d.skip()
			case "data":
				dataErr, haveData, data = nil, false, arrayResult{}
				switch d.dec.PeekKind() {
				case 'n':
					return d.skip()
				case '[':
					haveData = true
					var err error
					data, dataErr, err = d.data()
					return err
				}
				dataErr = fmt.Errorf("%w: \"data\" must be an array", errBody)
				return d.skip()
			}
			return d.skip()
		})
		if err != nil {
			return nil, err
		}
	case 'n':
		if err := d.skip(); err != nil {
			return nil, err
		}
	default:
		if err := d.skip(); err != nil {
			return nil, err
		}
		varsErr = fmt.Errorf("%w: must be a JSON object", errBody)
	}
	// The decoder reads a stream of values: anything but the end after the first is an error.
	end := d.dec.InputOffset()
	switch _, err := d.dec.ReadToken(); {
	case err == nil:
		rest := strings.TrimLeft(d.body[end:], " \t\r\n")
		return nil, fmt.Errorf("%w: invalid character %q after top-level value at offset %d", errBody, rest[0], len(d.body)-len(rest))
	case err != io.EOF:
		return nil, err
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
		switch d.dec.PeekKind() {
		case 'n':
			return d.skip()
		case '{':
		default:
			if shapeErr == nil {
				shapeErr = fmt.Errorf("%w: each element of \"data\" must be an object", errBody)
			}
			return d.skip()
		}
		var elem arrayResult
		err := d.object(func(key []byte) error {
			if string(key) != "variables" {
				return d.skip()
			}
			elem = arrayResult{}
			switch d.dec.PeekKind() {
			case 'n':
				return d.skip()
			case '[':
				var err error
				elem, err = d.variables(res.n)
				return err
			}
			if shapeErr == nil {
				shapeErr = fmt.Errorf("%w: \"variables\" in \"data\" must be an array", errBody)
			}
			return d.skip()
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
	ahead := d.body[d.dec.InputOffset():]
	res := arrayResult{vars: make([]api.Variable, 0, min(strings.Count(ahead, "{"), api.MaxVariablesPerRequest+1))}
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

// member is one field of a variable as read: its kind ('"', 'n', 't', 'f', '0', '{', '['; 0
// when absent) and, for a string, its decoded text.
type member struct {
	kind jsontext.Kind
	s    string
}

// variable reads one element of a variables array. verr is the element's first broken rule of
// shape (not an object, a required field missing, a field of the wrong type).
func (d *decoder) variable(i int) (v api.Variable, verr *api.ValidationError, err error) {
	switch d.dec.PeekKind() {
	case 'n':
		return v, &api.ValidationError{Index: i, Field: "name", Rule: "name is required"}, d.skip()
	case '{':
	default:
		return v, &api.ValidationError{Index: i, Field: "variables", Rule: "must be an object"}, d.skip()
	}
	var fields [numFields]member
	err = d.object(func(key []byte) error {
		f := fieldIndex(string(key))
		raw, err := d.dec.ReadValue()
		if err != nil || f < 0 {
			return err
		}
		fields[f] = member{kind: raw.Kind()}
		if fields[f].kind == '"' {
			fields[f].s = d.str(raw)
		}
		return nil
	})
	if err != nil {
		return v, nil, err
	}
	strs := [...]*string{fieldName: &v.Name, fieldValue: &v.Value, fieldDisplayName: &v.DisplayName, fieldDataType: &v.DataType}
	for f := range fieldIVR {
		m := fields[f]
		switch m.kind {
		case 0, 'n':
			if f <= fieldValue {
				return v, &api.ValidationError{Index: i, Name: v.Name, Field: fieldNames[f], Rule: fieldNames[f] + " is required"}, nil
			}
			continue
		case '"':
			*strs[f] = m.s
		default:
			return v, &api.ValidationError{Index: i, Name: v.Name, Field: fieldNames[f], Rule: "must be a string"}, nil
		}
	}
	bools := [...]*bool{fieldIVR: &v.IVR, fieldDisplay: &v.Display, fieldPrivacy: &v.Privacy}
	for f := fieldIVR; f < numFields; f++ {
		m := fields[f]
		ok := true
		switch m.kind {
		case 0, 'n', 'f':
		case 't':
			*bools[f] = true
		case '"':
			b, err := strconv.ParseBool(m.s)
			*bools[f], ok = b, err == nil
		default:
			ok = false
		}
		if !ok {
			return v, &api.ValidationError{Index: i, Name: v.Name, Field: fieldNames[f], Rule: "must be a boolean"}, nil
		}
	}
	return v, nil, nil
}

// str returns the text of the string value raw, just read. One without escapes in valid UTF-8
// is its own text, sliced from the body's copy; any other is unquoted by the library, which
// decodes escapes and replaces invalid UTF-8 with U+FFFD (its error then only reports that).
func (d *decoder) str(raw jsontext.Value) string {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		end := int(d.dec.InputOffset()) - 1
		return d.body[end-len(inner) : end]
	}
	b, _ := jsontext.AppendUnquote(nil, raw)
	return string(b)
}

// object reads an object, calling member with each key (unquoted; valid until the next read)
// when the decoder is at the key's value.
func (d *decoder) object(member func(key []byte) error) error {
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	for d.dec.PeekKind() != '}' {
		raw, err := d.dec.ReadValue()
		if err != nil {
			return err
		}
		// A key is only compared with the names of fields, all plain ASCII: one without escapes
		// is compared as it is (its invalid UTF-8, if any, would not match once replaced either).
		key := raw[1 : len(raw)-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			d.scratch, _ = jsontext.AppendUnquote(d.scratch[:0], raw)
			key = d.scratch
		}
		if err := member(key); err != nil {
			return err
		}
	}
	_, err := d.dec.ReadToken()
	return err
}

// array reads an array, calling elem when the decoder is at each element.
func (d *decoder) array(elem func() error) error {
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	for d.dec.PeekKind() != ']' {
		if err := elem(); err != nil {
			return err
		}
	}
	_, err := d.dec.ReadToken()
	return err
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
