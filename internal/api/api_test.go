package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func vars(n int) []Variable {
	out := make([]Variable, n)
	for i := range out {
		out[i] = Variable{Name: fmt.Sprintf("_v%d", i), Value: "x"}
	}
	return out
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		vars []Variable
		want *ValidationError // nil: valid
	}{
		{"one minimal variable", []Variable{{Name: "_a", Value: ""}}, nil},
		{"all attributes", []Variable{{Name: "_accountBalance", Value: "1250.75", IVR: true, Display: true, DisplayName: "Account Balance", DataType: "currency", Privacy: true}}, nil},
		{"50 variables", vars(50), nil},
		{"no variables", nil, &ValidationError{Index: -1, Field: "variables", Rule: "variables must not be empty"}},
		{"51 variables", vars(51), &ValidationError{Index: -1, Field: "variables", Rule: "at most 50 variables per request, got 51"}},
		{"empty name", []Variable{{Name: "", Value: "x"}}, &ValidationError{Index: 0, Field: "name", Rule: "name is required"}},
		{"name without underscore", []Variable{{Name: "customerId", Value: "x"}}, &ValidationError{Index: 0, Name: "customerId", Field: "name", Rule: "must start with underscore"}},
		{"name of 25 characters", []Variable{{Name: "_" + strings.Repeat("a", 24), Value: "x"}}, nil},
		{"name of 26 characters", []Variable{{Name: "_" + strings.Repeat("a", 25), Value: "x"}}, &ValidationError{Index: 0, Name: "_" + strings.Repeat("a", 25), Field: "name", Rule: "must be at most 25 characters"}},
		{"underscore alone", []Variable{{Name: "_", Value: "x"}}, &ValidationError{Index: 0, Name: "_", Field: "name", Rule: "must have at least one letter or digit after the underscore"}},
		{"hyphen in name", []Variable{{Name: "_account-balance", Value: "x"}}, &ValidationError{Index: 0, Name: "_account-balance", Field: "name", Rule: "must be alphanumeric after the underscore"}},
		{"space in name", []Variable{{Name: "_order status", Value: "x"}}, &ValidationError{Index: 0, Name: "_order status", Field: "name", Rule: "must be alphanumeric after the underscore"}},
		{"second underscore", []Variable{{Name: "_order_status", Value: "x"}}, &ValidationError{Index: 0, Name: "_order_status", Field: "name", Rule: "must be alphanumeric after the underscore"}},
		{"non-ASCII letter", []Variable{{Name: "_café", Value: "x"}}, &ValidationError{Index: 0, Name: "_café", Field: "name", Rule: "must be alphanumeric after the underscore"}},
		{"digits only after underscore", []Variable{{Name: "_123", Value: "x"}}, nil},
		{"value of 1000 characters", []Variable{{Name: "_a", Value: strings.Repeat("x", 1000)}}, nil},
		{"value of 1000 multi-byte characters", []Variable{{Name: "_a", Value: strings.Repeat("é", 1000)}}, nil},
		{"value of 1001 characters", []Variable{{Name: "_a", Value: strings.Repeat("x", 1001)}}, &ValidationError{Index: 0, Name: "_a", Field: "value", Rule: "must be at most 1000 characters, got 1001"}},
		{"displayName of 30 characters", []Variable{{Name: "_a", Value: "x", DisplayName: strings.Repeat("D", 30)}}, nil},
		{"displayName of 31 characters", []Variable{{Name: "_a", Value: "x", DisplayName: strings.Repeat("D", 31)}}, &ValidationError{Index: 0, Name: "_a", Field: "displayName", Rule: "must be at most 30 characters, got 31"}},
		{"unknown dataType", []Variable{{Name: "_a", Value: "x", DataType: "money"}}, &ValidationError{Index: 0, Name: "_a", Field: "dataType", Rule: `must be one of text, number, phone, date, time, currency (got a string of 5 bytes)`}},
		{"dataType is case-sensitive", []Variable{{Name: "_a", Value: "x", DataType: "Text"}}, &ValidationError{Index: 0, Name: "_a", Field: "dataType", Rule: `must be one of text, number, phone, date, time, currency (got a string of 4 bytes)`}},
		{"the first invalid variable is reported", []Variable{{Name: "_ok", Value: "x"}, {Name: "bad", Value: "x"}, {Name: "", Value: "x"}}, &ValidationError{Index: 1, Name: "bad", Field: "name", Rule: "must start with underscore"}},
	}
	for _, dt := range []string{"text", "number", "phone", "date", "time", "currency"} {
		tests = append(tests, struct {
			name string
			vars []Variable
			want *ValidationError
		}{"dataType " + dt, []Variable{{Name: "_a", Value: "x", DataType: dt}}, nil})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.vars)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var got *ValidationError
			if !errors.As(err, &got) {
				t.Fatalf("Validate: %v, want a *ValidationError", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	tests := []struct {
		err  *ValidationError
		want string
	}{
		{&ValidationError{Index: -1, Field: "variables", Rule: "variables must not be empty"}, "Invalid request: variables must not be empty"},
		{&ValidationError{Index: 2, Name: "_pin", Field: "value", Rule: "must be at most 1000 characters, got 1200"}, `Invalid variable value: must be at most 1000 characters, got 1200 (variable 3, name "_pin")`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	// A value must never be echoed, whatever the rule it breaks: it may be private.
	secret := strings.Repeat("S3CRET", 200)
	err := Validate([]Variable{{Name: "_pin", Value: secret, Privacy: true}})
	if err == nil || strings.Contains(err.Error(), "S3CRET") {
		t.Errorf("Validate error %v: want an error without the value", err)
	}
}

// trickyStrings exercise every escaping rule of encoding/json's string encoder.
var trickyStrings = []string{
	"", "plain", `quote " backslash \ slash /`, "\b\f\n\r\t", "\x00\x01\x1f\x7f",
	"<html> & 'apos'", "é 😀 ∑", "\u2028\u2029", "bad \xff utf8 \xc3", "tab\tand\u00a0nbsp",
}

func TestAppendRequestMatchesEncodingJSON(t *testing.T) {
	var vs []Variable
	for i, s := range trickyStrings {
		vs = append(vs, Variable{Name: s, Value: s, DisplayName: s, DataType: s, IVR: i%2 == 0, Display: i%3 == 0, Privacy: i%5 == 0})
	}
	vs = append(vs, Variable{Name: "_min", Value: ""})
	marshal := func(v any) []byte {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	type dataElem struct {
		Variables []Variable `json:"variables"`
	}
	tests := []struct {
		name     string
		dataForm bool
		want     []byte
	}{
		{"variables form", false, marshal(Request{Variables: vs})},
		{"data form", true, marshal(struct {
			Data []dataElem `json:"data"`
		}{[]dataElem{{vs}}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("keep:")
			got := AppendRequest(prefix, vs, tt.dataForm)
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("AppendRequest did not append to dst: %q", got)
			}
			if diff := cmp.Diff(string(tt.want), string(got[len(prefix):])); diff != "" {
				t.Errorf("AppendRequest (-encoding/json +got):\n%s", diff)
			}
		})
	}
}
