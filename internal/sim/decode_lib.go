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

// libDecodeRequest is decodeRequest on the tokenizer of github.com/go-json-experiment/json (the
// prototype of encoding/json/v2): same forms, same leniencies, same errors. The library checks
// the syntax; this file only walks the tokens.
func libDecodeRequest(body []byte) ([]api.Variable, error) {
	var d libDecoder
	return d.decode(body)
}

func (d *libDecoder) decode(body []byte) ([]api.Variable, error) {
	d.in = *bytes.NewBuffer(body)
	// encoding/json's leniencies, which the simulator keeps: a repeated key is allowed (its
	// last occurrence wins), and invalid UTF-8 in a string is replaced with U+FFFD.
	d.dec.Reset(&d.in, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	d.body = string(body)
	vars, err := d.request()
	if err != nil && !errors.Is(err, errBody) && !isValidationError(err) {
		return nil, d.bodyError(err)
	}
	return vars, err
}

func isValidationError(err error) bool {
	var verr *api.ValidationError
	return errors.As(err, &verr)
}

// libDecoder walks one body. Decoded strings without escapes are slices of body, a copy made
// once, so a 50-variable body costs one allocation for all its strings and none aliases the
// caller's bytes.
type libDecoder struct {
	dec     jsontext.Decoder
	in      bytes.Buffer
	body    string
	scratch []byte // for unquoting a key with escapes
}

// bodyError turns the library's error into the simulator's message: encoding/json's wording
// (as the library's own v1 emulation renders it), which the handler's tests pin, and the offset.
func (d *libDecoder) bodyError(err error) error {
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

func (d *libDecoder) skip() error {
	_, err := d.dec.ReadValue()
	return err
}

func (d *libDecoder) request() ([]api.Variable, error) {
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
func (d *libDecoder) data() (res arrayResult, shapeErr, err error) {
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
func (d *libDecoder) variables(base int) (arrayResult, error) {
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
func (d *libDecoder) variable(i int) (v api.Variable, verr *api.ValidationError, err error) {
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
func (d *libDecoder) str(raw jsontext.Value) string {
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
func (d *libDecoder) object(member func(key []byte) error) error {
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
func (d *libDecoder) array(elem func() error) error {
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
