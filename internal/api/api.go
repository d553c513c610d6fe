// Package api holds the wire contract of the 8x8 Contact Center Data Augmentation API
// (docs/DESIGN.md, "The API contract"): the variable type, the request and response bodies,
// and the validation rules of the contract's table.
//
// Both the simulator (internal/sim) and the connector's client use this one definition, so the
// connector rejects locally exactly what the API would reject with a 400, and never spends a
// request of the tenant's 100-a-minute budget on a write that cannot succeed.
package api

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of the API, from the contract's "API Limits" table.
const (
	MaxVariablesPerRequest   = 50
	MaxNameLen               = 25
	MaxValueLen              = 1000
	MaxDisplayNameLen        = 30
	DefaultRequestsPerMinute = 100
)

// PathPrefix is the path of the Set/Get Interaction Variables endpoints; the path-escaped
// identifier follows it.
const PathPrefix = "/api/v1/interaction/data/"

// DataTypes are the values the contract allows for a variable's dataType.
var dataTypes = map[string]bool{"text": true, "number": true, "phone": true, "date": true, "time": true, "currency": true}

// ValidDataType reports whether s is one of text, number, phone, date, time, currency.
func ValidDataType(s string) bool { return dataTypes[s] }

// MaxIdentifierLen bounds an interaction identifier, in bytes. The contract gives no limit;
// 8x8's interaction ids are a few dozen characters, and a bound keeps a runaway expression
// from building huge URLs.
const MaxIdentifierLen = 256

// CheckIdentifier reports why identifier cannot be the {identifier} of a request path, or nil.
// "." and ".." are refused because path escaping leaves them as they are, so such a request
// would go (with the tenant's credentials) to a parent path of the endpoint. The messages name
// no part of the identifier, which may come from private data.
func CheckIdentifier(identifier string) error {
	switch {
	case strings.TrimSpace(identifier) == "":
		return errors.New("identifier is empty or only spaces")
	case identifier == "." || identifier == "..":
		return errors.New(`identifier is "." or "..", which would address a parent path`)
	case len(identifier) > MaxIdentifierLen:
		return fmt.Errorf("identifier is %d bytes long, more than %d", len(identifier), MaxIdentifierLen)
	case !utf8.ValidString(identifier):
		return errors.New("identifier is not valid UTF-8")
	}
	for i, r := range identifier {
		if unicode.IsControl(r) {
			return fmt.Errorf("identifier holds a control character at byte %d", i)
		}
	}
	return nil
}

// Variable is one custom interaction variable as the contract defines it.
type Variable struct {
	Name        string `json:"name"`
	Value       string `json:"value"`
	IVR         bool   `json:"ivr,omitempty"`
	Display     bool   `json:"display,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
	DataType    string `json:"dataType,omitempty"`
	Privacy     bool   `json:"privacy,omitempty"`
}

// Request is the body of POST /api/v1/interaction/data/{identifier} in the contract's form.
type Request struct {
	Variables []Variable `json:"variables"`
}

// SuccessResponse is the contract's 200 body of a POST.
type SuccessResponse struct {
	Status        string `json:"status"`
	Message       string `json:"message"`
	InteractionID string `json:"interactionId"`
	VariablesSet  int    `json:"variablesSet"`
}

// ErrorResponse is the contract's error body: {"status":"error","code":N,"message":...}.
type ErrorResponse struct {
	Status  string `json:"status"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Interaction is the contract's 200 body of a GET: the interaction's context and its merged
// variables.
type Interaction struct {
	InteractionID string     `json:"interactionId"`
	Channel       string     `json:"channel,omitempty"`
	CreateTime    string     `json:"createTime,omitempty"`
	ANI           string     `json:"ani,omitempty"`
	CallerName    string     `json:"callerName,omitempty"`
	Variables     []Variable `json:"variables"`
}

// Error messages of the contract's "Error Responses" table.
const (
	MsgAuthFailed  = "Authentication failed"
	MsgNotFound    = "Interaction not found"
	MsgRateLimited = "Rate limit exceeded"
	MsgInternal    = "Internal server error"
	MsgSuccess     = "Variables successfully set"
	StatusSuccess  = "success"
	StatusError    = "error"
)

// ValidationError says which variable broke which rule. Its message never contains the
// variable's value, which may be private.
type ValidationError struct {
	Index int    // position in the request, from 0; -1 for a rule on the request as a whole
	Name  string // the variable's name as given (may be empty or invalid)
	Field string // name, value, displayName, dataType, ivr, display, privacy, or variables
	Rule  string // the broken rule in the contract's words
}

func (e *ValidationError) Error() string {
	if e.Index < 0 {
		return "Invalid request: " + e.Rule
	}
	return fmt.Sprintf("Invalid variable %s: %s (variable %d, name %q)", e.Field, e.Rule, e.Index+1, e.Name)
}

// ValidateName checks one name: "_" followed by letters and digits, 25 characters at most.
// It returns the broken rule, or "" when the name is valid.
func ValidateName(name string) string {
	switch {
	case name == "":
		return "name is required"
	case name[0] != '_':
		return "must start with underscore"
	case len(name) > MaxNameLen:
		return fmt.Sprintf("must be at most %d characters", MaxNameLen)
	case len(name) == 1:
		return "must have at least one letter or digit after the underscore"
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return "must be alphanumeric after the underscore"
		}
	}
	return ""
}

// ValidateVariable checks one variable against the contract's table.
func ValidateVariable(i int, v *Variable) *ValidationError {
	if rule := ValidateName(v.Name); rule != "" {
		return &ValidationError{Index: i, Name: v.Name, Field: "name", Rule: rule}
	}
	// A string of at most max bytes has at most max characters: only longer ones are counted.
	if n := tooLong(v.Value, MaxValueLen); n > 0 {
		return &ValidationError{Index: i, Name: v.Name, Field: "value", Rule: fmt.Sprintf("must be at most %d characters, got %d", MaxValueLen, n)}
	}
	if n := tooLong(v.DisplayName, MaxDisplayNameLen); n > 0 {
		return &ValidationError{Index: i, Name: v.Name, Field: "displayName", Rule: fmt.Sprintf("must be at most %d characters, got %d", MaxDisplayNameLen, n)}
	}
	if v.DataType != "" && !ValidDataType(v.DataType) {
		// The dataType may be computed from the record (an expression), so the rule names its
		// length, not its text: the message reaches logs and dead-letter headers.
		return &ValidationError{Index: i, Name: v.Name, Field: "dataType", Rule: fmt.Sprintf("must be one of text, number, phone, date, time, currency (got a string of %d bytes)", len(v.DataType))}
	}
	return nil
}

// tooLong returns the number of characters of s when it has more than limit, else 0.
func tooLong(s string, limit int) int {
	if len(s) <= limit {
		return 0
	}
	if n := utf8.RuneCountInString(s); n > limit {
		return n
	}
	return 0
}

// Validate checks a whole request: 1 to 50 variables, each valid. The first broken rule is
// returned; one invalid variable rejects the whole request.
func Validate(vars []Variable) error {
	if len(vars) == 0 {
		return &ValidationError{Index: -1, Field: "variables", Rule: "variables must not be empty"}
	}
	if len(vars) > MaxVariablesPerRequest {
		return &ValidationError{Index: -1, Field: "variables", Rule: fmt.Sprintf("at most %d variables per request, got %d", MaxVariablesPerRequest, len(vars))}
	}
	for i := range vars {
		if err := ValidateVariable(i, &vars[i]); err != nil {
			return err
		}
	}
	return nil
}

// AppendRequest appends the contract's JSON body {"variables":[...]} for vars to dst. With
// dataForm it appends {"data":[{"variables":[...]}]} instead. It is the connector's hot path,
// so it writes bytes directly instead of going through reflection.
func AppendRequest(dst []byte, vars []Variable, dataForm bool) []byte {
	if dataForm {
		dst = append(dst, `{"data":[{"variables":[`...)
	} else {
		dst = append(dst, `{"variables":[`...)
	}
	for i := range vars {
		if i > 0 {
			dst = append(dst, ',')
		}
		v := &vars[i]
		dst = append(dst, `{"name":`...)
		dst = appendString(dst, v.Name)
		dst = append(dst, `,"value":`...)
		dst = appendString(dst, v.Value)
		if v.IVR {
			dst = append(dst, `,"ivr":true`...)
		}
		if v.Display {
			dst = append(dst, `,"display":true`...)
		}
		if v.DisplayName != "" {
			dst = append(dst, `,"displayName":`...)
			dst = appendString(dst, v.DisplayName)
		}
		if v.DataType != "" {
			dst = append(dst, `,"dataType":`...)
			dst = appendString(dst, v.DataType)
		}
		if v.Privacy {
			dst = append(dst, `,"privacy":true`...)
		}
		dst = append(dst, '}')
	}
	if dataForm {
		return append(dst, "]}]}"...)
	}
	return append(dst, "]}"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping as encoding/json does (without HTML
// escaping, which the API does not need).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
