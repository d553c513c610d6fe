package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/augment-connector/augment-connector/internal/api"
)

// decodeCase is one body for decodeRequest and what it must give: the variables, an error
// wrapping errBody, or a *api.ValidationError.
type decodeCase struct {
	name    string
	body    string
	want    []api.Variable
	errBody bool
	verr    *api.ValidationError
}

func TestDecodeRequest(t *testing.T) {
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	tests := []decodeCase{
		{name: "contract form", body: `{"variables":[{"name":"_customerId","value":"CUST-123456","display":true,"displayName":"Customer ID"}]}`,
			want: []api.Variable{{Name: "_customerId", Value: "CUST-123456", Display: true, DisplayName: "Customer ID"}}},
		{name: "every attribute", body: `{"variables":[{"name":"_a","value":"1","ivr":true,"display":true,"displayName":"A","dataType":"number","privacy":true}]}`,
			want: []api.Variable{{Name: "_a", Value: "1", IVR: true, Display: true, DisplayName: "A", DataType: "number", Privacy: true}}},
		{name: "data form concatenates elements", body: `{"data":[{"variables":[{"name":"_a","value":"1"}]},{"variables":[{"name":"_b","value":"2"},{"name":"_c","value":"3"}]}]}`,
			want: []api.Variable{{Name: "_a", Value: "1"}, {Name: "_b", Value: "2"}, {Name: "_c", Value: "3"}}},
		{name: "data form skips null elements and null variables", body: `{"data":[null,{"variables":null},{"other":1},{"variables":[{"name":"_a","value":"1"}]}]}`,
			want: []api.Variable{{Name: "_a", Value: "1"}}},
		{name: "variables wins over data", body: `{"data":[{"variables":[{"name":"_d","value":"d"}]}],"variables":[{"name":"_v","value":"v"}]}`,
			want: []api.Variable{{Name: "_v", Value: "v"}}},
		{name: "null variables falls back to data", body: `{"variables":null,"data":[{"variables":[{"name":"_d","value":"d"}]}]}`,
			want: []api.Variable{{Name: "_d", Value: "d"}}},
		{name: "empty variables decodes to empty", body: `{"variables":[]}`, want: []api.Variable{}},
		{name: "empty data decodes to empty", body: `{"data":[]}`, want: []api.Variable{}},
		{name: "string booleans", body: `{"variables":[{"name":"_a","value":"1","ivr":"true","display":"false","privacy":"true"}]}`,
			want: []api.Variable{{Name: "_a", Value: "1", IVR: true, Privacy: true}}},
		{name: "ParseBool spellings", body: `{"variables":[{"name":"_a","value":"1","ivr":"TRUE","display":"1","privacy":"F"}]}`,
			want: []api.Variable{{Name: "_a", Value: "1", IVR: true, Display: true}}},
		{name: "null booleans and optional strings are absent", body: `{"variables":[{"name":"_a","value":"1","ivr":null,"display":null,"displayName":null,"dataType":null}]}`,
			want: []api.Variable{{Name: "_a", Value: "1"}}},
		{name: "unknown fields are ignored", body: `{"extra":{"x":[1,2,{"y":null}]},"variables":[{"name":"_a","value":"1","color":"blue","n":-1.5e+3}]}`,
			want: []api.Variable{{Name: "_a", Value: "1"}}},
		{name: "repeated key: the last wins", body: `{"variables":[{"name":1,"value":"1","name":"_b","display":"maybe","display":true}]}`,
			want: []api.Variable{{Name: "_b", Value: "1", Display: true}}},
		{name: "escapes are decoded", body: `{"variables":[{"na\u006de":"_a","value":"line\nbreak \"q\" \u00e9 \ud83d\ude00 \/"}]}`,
			want: []api.Variable{{Name: "_a", Value: "line\nbreak \"q\" é 😀 /"}}},
		{name: "invalid UTF-8 becomes U+FFFD", body: "{\"variables\":[{\"name\":\"_a\",\"value\":\"a\xffb\"}]}",
			want: []api.Variable{{Name: "_a", Value: "a\uFFFDb"}}},
		{name: "lone surrogate becomes U+FFFD", body: `{"variables":[{"name":"_a","value":"\ud800x"}]}`,
			want: []api.Variable{{Name: "_a", Value: "\uFFFDx"}}},
		{name: "nesting of 10000", body: `{"variables":[{"name":"_a","value":"1"}],"x":` + nested(9999) + `}`,
			want: []api.Variable{{Name: "_a", Value: "1"}}},
		{name: "whitespace everywhere", body: " \n{ \"variables\" : [ { \"name\" : \"_a\" , \"value\" : \"1\" } ] }\r\n\t",
			want: []api.Variable{{Name: "_a", Value: "1"}}},
		{name: "values are not validated here", body: `{"variables":[{"name":"bad name","value":"1","dataType":"money"}]}`,
			want: []api.Variable{{Name: "bad name", Value: "1", DataType: "money"}}},

		{name: "empty body", body: ``, errBody: true},
		{name: "not JSON", body: `name=_a&value=1`, errBody: true},
		{name: "truncated", body: `{"variables":[{"name":"_a","value":"1"}`, errBody: true},
		{name: "trailing data", body: `{"variables":[]} {}`, errBody: true},
		{name: "trailing comma", body: `{"variables":[{"name":"_a","value":"1"},]}`, errBody: true},
		{name: "top-level array", body: `[{"name":"_a","value":"1"}]`, errBody: true},
		{name: "top-level null", body: `null`, errBody: true},
		{name: "no variables nor data", body: `{"vars":[]}`, errBody: true},
		{name: "keys are case-sensitive", body: `{"Variables":[{"name":"_a","value":"1"}]}`, errBody: true},
		{name: "variables not an array", body: `{"variables":{"name":"_a","value":"1"}}`, errBody: true},
		{name: "data not an array", body: `{"data":{"variables":[]}}`, errBody: true},
		{name: "data element not an object", body: `{"data":[[{"name":"_a","value":"1"}]]}`, errBody: true},
		{name: "variables in data not an array", body: `{"data":[{"variables":"x"}]}`, errBody: true},
		{name: "malformed data even when variables is used", body: `{"variables":[{"name":"_a","value":"1"}],"data":5}`, errBody: true},
		{name: "control character in a string", body: "{\"variables\":[{\"name\":\"_a\",\"value\":\"a\x01\"}]}", errBody: true},
		{name: "bad escape", body: `{"variables":[{"name":"_a","value":"\x"}]}`, errBody: true},
		{name: "bad unicode escape", body: `{"variables":[{"name":"_a","value":"\u12g4"}]}`, errBody: true},
		{name: "bad number", body: `{"variables":[{"name":"_a","value":"1","n":01}]}`, errBody: true},
		{name: "bad literal", body: `{"variables":[{"name":"_a","value":"1","ivr":tru}]}`, errBody: true},
		{name: "syntax error after an invalid variable wins", body: `{"variables":[{"name":5,"value":"1"},}`, errBody: true},
		{name: "nesting past 10000", body: `{"variables":[{"name":"_a","value":"1"}],"x":` + deep + `}`, errBody: true},
		{name: "nesting of 10001", body: `{"variables":[{"name":"_a","value":"1"}],"x":` + nested(10000) + `}`, errBody: true},

		{name: "variable not an object", body: `{"variables":["_a"]}`, verr: &api.ValidationError{Index: 0, Field: "variables", Rule: "must be an object"}},
		{name: "null variable", body: `{"variables":[null]}`, verr: &api.ValidationError{Index: 0, Field: "name", Rule: "name is required"}},
		{name: "name missing", body: `{"variables":[{"value":"1"}]}`, verr: &api.ValidationError{Index: 0, Field: "name", Rule: "name is required"}},
		{name: "name null", body: `{"variables":[{"name":null,"value":"1"}]}`, verr: &api.ValidationError{Index: 0, Field: "name", Rule: "name is required"}},
		{name: "name not a string", body: `{"variables":[{"name":7,"value":"1"}]}`, verr: &api.ValidationError{Index: 0, Field: "name", Rule: "must be a string"}},
		{name: "value missing", body: `{"variables":[{"name":"_a"}]}`, verr: &api.ValidationError{Index: 0, Name: "_a", Field: "value", Rule: "value is required"}},
		{name: "value a number", body: `{"variables":[{"name":"_a","value":1250.75}]}`, verr: &api.ValidationError{Index: 0, Name: "_a", Field: "value", Rule: "must be a string"}},
		{name: "displayName not a string", body: `{"variables":[{"name":"_a","value":"1","displayName":true}]}`, verr: &api.ValidationError{Index: 0, Name: "_a", Field: "displayName", Rule: "must be a string"}},
		{name: "dataType not a string", body: `{"variables":[{"name":"_a","value":"1","dataType":["text"]}]}`, verr: &api.ValidationError{Index: 0, Name: "_a", Field: "dataType", Rule: "must be a string"}},
		{name: "ivr not a boolean", body: `{"variables":[{"name":"_a","value":"1","ivr":"yes"}]}`, verr: &api.ValidationError{Index: 0, Name: "_a", Field: "ivr", Rule: "must be a boolean"}},
		{name: "display a number", body: `{"variables":[{"name":"_a","value":"1","display":1}]}`, verr: &api.ValidationError{Index: 0, Name: "_a", Field: "display", Rule: "must be a boolean"}},
		{name: "privacy an object", body: `{"variables":[{"name":"_a","value":"1","privacy":{}}]}`, verr: &api.ValidationError{Index: 0, Name: "_a", Field: "privacy", Rule: "must be a boolean"}},
		{name: "errors in field order, not key order", body: `{"variables":[{"privacy":"no","value":2,"name":"_a"}]}`, verr: &api.ValidationError{Index: 0, Name: "_a", Field: "value", Rule: "must be a string"}},
		{name: "first invalid variable wins", body: `{"variables":[{"name":"_a","value":"1"},{"name":"_b"},{"value":"3"}]}`, verr: &api.ValidationError{Index: 1, Name: "_b", Field: "value", Rule: "value is required"}},
		{name: "index counts across data elements", body: `{"data":[{"variables":[{"name":"_a","value":"1"},{"name":"_b","value":"2"}]},{"variables":[{"name":"_c","ivr":"x","value":"3"}]}]}`,
			verr: &api.ValidationError{Index: 2, Name: "_c", Field: "ivr", Rule: "must be a boolean"}},
		{name: "invalid variable in an unused data", body: `{"variables":[{"name":"_a","value":"1"}],"data":[{"variables":[5]}]}`,
			want: []api.Variable{{Name: "_a", Value: "1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeRequest([]byte(tt.body))
			checkDecode(t, "decodeRequest", tt, got, err)
			// The reference decoder must agree on every case, or the case is wrong.
			ref, refErr := referenceDecode([]byte(tt.body))
			checkDecode(t, "reference", tt, ref, refErr)
		})
	}
}

// nested returns n nested arrays, with the object around them a depth of n+1.
func nested(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

func checkDecode(t *testing.T, decoder string, tt decodeCase, got []api.Variable, err error) {
	t.Helper()
	switch {
	case tt.errBody:
		if !errors.Is(err, errBody) {
			t.Fatalf("%s: error %v, want one wrapping errBody", decoder, err)
		}
	case tt.verr != nil:
		var verr *api.ValidationError
		if !errors.As(err, &verr) {
			t.Fatalf("%s: error %v, want a *api.ValidationError", decoder, err)
		}
		if diff := cmp.Diff(tt.verr, verr); diff != "" {
			t.Errorf("%s: error (-want +got):\n%s", decoder, diff)
		}
	default:
		if err != nil {
			t.Fatalf("%s: error %v, want nil", decoder, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: variables (-want +got):\n%s", decoder, diff)
		}
	}
}

// referenceDecode is decodeRequest written the obvious way, through encoding/json and maps (so
// keys are case-sensitive and a repeated key's last occurrence wins). decodeRequest walks the
// tokens once for speed; the table test and FuzzDecodeRequest hold it to this definition.
func referenceDecode(body []byte) ([]api.Variable, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("%w: %v", errBody, err)
	}
	isNull := func(r json.RawMessage) bool { return r == nil || string(r) == "null" }
	arr := func(r json.RawMessage) ([]json.RawMessage, error) {
		var out []json.RawMessage
		if err := json.Unmarshal(r, &out); err != nil {
			return nil, fmt.Errorf("%w: %v", errBody, err)
		}
		return out, nil
	}
	var items []json.RawMessage
	haveData := false
	if r, ok := top["data"]; ok && !isNull(r) {
		elems, err := arr(r)
		if err != nil {
			return nil, err
		}
		for _, e := range elems {
			if isNull(e) {
				continue
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(e, &m); err != nil {
				return nil, fmt.Errorf("%w: %v", errBody, err)
			}
			if v, ok := m["variables"]; ok && !isNull(v) {
				vs, err := arr(v)
				if err != nil {
					return nil, err
				}
				items = append(items, vs...)
			}
		}
		haveData = true
	}
	if r, ok := top["variables"]; ok && !isNull(r) {
		vs, err := arr(r)
		if err != nil {
			return nil, err
		}
		items = vs
	} else if !haveData {
		return nil, fmt.Errorf("%w: missing \"variables\"", errBody)
	}
	out := make([]api.Variable, len(items))
	for i, it := range items {
		if err := referenceVariable(i, it, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func referenceVariable(i int, b json.RawMessage, v *api.Variable) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return &api.ValidationError{Index: i, Field: "variables", Rule: "must be an object"}
	}
	str := func(field string, dst *string, required bool) error {
		r, ok := raw[field]
		if !ok || string(r) == "null" {
			if required {
				return &api.ValidationError{Index: i, Name: v.Name, Field: field, Rule: field + " is required"}
			}
			return nil
		}
		if err := json.Unmarshal(r, dst); err != nil {
			return &api.ValidationError{Index: i, Name: v.Name, Field: field, Rule: "must be a string"}
		}
		return nil
	}
	boolean := func(field string, dst *bool) error {
		r, ok := raw[field]
		if !ok {
			return nil
		}
		if err := json.Unmarshal(r, dst); err == nil {
			return nil
		}
		var s string
		err := json.Unmarshal(r, &s)
		if err == nil {
			*dst, err = strconv.ParseBool(s)
		}
		if err != nil {
			return &api.ValidationError{Index: i, Name: v.Name, Field: field, Rule: "must be a boolean"}
		}
		return nil
	}
	for _, check := range []func() error{
		func() error { return str("name", &v.Name, true) },
		func() error { return str("value", &v.Value, true) },
		func() error { return str("displayName", &v.DisplayName, false) },
		func() error { return str("dataType", &v.DataType, false) },
		func() error { return boolean("ivr", &v.IVR) },
		func() error { return boolean("display", &v.Display) },
		func() error { return boolean("privacy", &v.Privacy) },
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// trickyStrings exercise every escaping rule of encoding/json's string encoder.
var trickyStrings = []string{
	"", "plain", `quote " backslash \ slash /`, "\b\f\n\r\t", "\x00\x01\x1f\x7f",
	"<html> & 'apos'", "é 😀 ∑", "\u2028\u2029", "bad \xff utf8 \xc3", "tab\tand\u00a0nbsp",
}

func TestAppendRequestRoundTrip(t *testing.T) {
	valid := func(s string) string { // what decoding gives back for s: invalid UTF-8 replaced
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	for _, s := range trickyStrings {
		for _, dataForm := range []bool{false, true} {
			in := []api.Variable{
				{Name: "_a", Value: s, IVR: true, DisplayName: s, DataType: "text"},
				{Name: s, Value: "x", Display: true, Privacy: true},
			}
			want := []api.Variable{
				{Name: "_a", Value: valid(s), IVR: true, DisplayName: valid(s), DataType: "text"},
				{Name: valid(s), Value: "x", Display: true, Privacy: true},
			}
			got, err := decodeRequest(api.AppendRequest(nil, in, dataForm))
			if err != nil {
				t.Fatalf("decodeRequest(api.AppendRequest(%q, dataForm=%v)): %v", s, dataForm, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("round trip of %q, dataForm=%v (-want +got):\n%s", s, dataForm, diff)
			}
		}
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	vs := make([]api.Variable, api.MaxVariablesPerRequest)
	for i := range vs {
		vs[i] = api.Variable{Name: fmt.Sprintf("_var%02d", i), Value: fmt.Sprintf("value number %d with some text", i), Display: i%2 == 0, DisplayName: "Label", DataType: "text"}
	}
	body := api.AppendRequest(nil, vs, false)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDecodeRequest holds decodeRequest to referenceDecode on any body, and checks that whatever
// it accepts survives api.AppendRequest and a second decode unchanged.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"variables":[{"name":"_a","value":"1","ivr":true,"display":"true","displayName":"A","dataType":"text","privacy":false}]}`,
		`{"data":[{"variables":[{"name":"_a","value":"1"}]},null,{"variables":[{"name":"_b","value":"\u00e9"}]}]}`,
		`{"variables":[{"name":"_a"},{"value":"x"}],"data":[]}`,
		`{"variables":null,"data":[{"variables":[null,1,"x",{"name":2}]}]}`,
		`{"variables":[{"name":"_a","value":"1","name":"_b","ivr":"T","ivr":null}]}`,
		"{\"variables\":[{\"name\":\"_\xff\",\"value\":\"\\ud800\\udc00\\ud800\"}]}",
		`{"variables":[{"name":"_a","value":"1"}],"x":[1,-0.5e10,true,false,null,{"y":"z"}]}`,
		`[]`, `null`, `"x"`, `{}`, ``, `{"variables":[`, `{"Variables":[]}`,
		`{"variables":[{"":`, // once read past the end of the body
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeRequest(body)
		want, wantErr := referenceDecode(body)
		if errors.Is(err, errBody) != errors.Is(wantErr, errBody) {
			t.Fatalf("decodeRequest(%q) error %v, reference %v", body, err, wantErr)
		}
		var verr, wantVerr *api.ValidationError
		errors.As(err, &verr)
		errors.As(wantErr, &wantVerr)
		if diff := cmp.Diff(wantVerr, verr); diff != "" {
			t.Fatalf("decodeRequest(%q) validation error (-reference +got):\n%s", body, diff)
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("decodeRequest(%q) error %v, reference %v", body, err, wantErr)
		}
		if err != nil {
			return
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("decodeRequest(%q) (-reference +got):\n%s", body, diff)
		}
		again, err := decodeRequest(api.AppendRequest(nil, got, len(body)%2 == 0))
		if err != nil {
			t.Fatalf("decoding api.AppendRequest of %q: %v", body, err)
		}
		if diff := cmp.Diff(got, again); diff != "" {
			t.Fatalf("round trip of %q (-first +second):\n%s", body, diff)
		}
	})
}
