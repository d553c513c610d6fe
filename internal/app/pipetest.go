package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/augment-connector/augment-connector/internal/api"
	"github.com/augment-connector/augment-connector/transform"
)

// A pipeline test file (`augment-connector test FILE...`) gives a config and cases; each case
// feeds records to the lookup tables, runs input records through their pipelines offline, and
// says what each input must do. Records are written as in check --sample (topic, key or
// keyBase64+keySchema, value or valueBase64+schema, headers, timestamp), in YAML.
type testFile struct {
	// Config is the config file the cases run against, relative to the test file.
	Config string     `json:"config"`
	Tests  []testCase `json:"tests"`
}

type testCase struct {
	Name string `json:"name"`
	// Tables are records fed to the lookup tables reading their topics, in order, before the
	// input runs.
	Tables []SampleRecord `json:"tables"`
	Input  []SampleRecord `json:"input"`
	// Expect says, for each input record in order, what it must do.
	Expect []expectation `json:"expect"`

	line int
}

// expectation is what one input record must do: exactly one of its fields is set.
type expectation struct {
	// Requests are the requests it makes, in order (one per identifier and 50 variables).
	Requests []expectedRequest `json:"requests"`
	// Filtered: the pipeline's filter rejects it.
	Filtered bool `json:"filtered"`
	// Skipped is the reason it is skipped: delete, tombstone, no identifier, no variables,
	// lookup miss or inactive (requireActive found none of its calls active). The stale and
	// gone skips depend on the clock and on earlier 404s, which a test does not have.
	Skipped *string `json:"skipped"`
	// DeadLetter is its dead-letter class and a part of the reason.
	DeadLetter *expectedDeadLetter `json:"deadLetter"`
}

type expectedRequest struct {
	Identifier string             `json:"identifier"`
	Variables  []expectedVariable `json:"variables"`
}

// expectedVariable is a variable as expected: name and value always compared, each attribute
// only when the test gives it.
type expectedVariable struct {
	Name        string      `json:"name"`
	Value       *flexString `json:"value"`
	IVR         *bool       `json:"ivr"`
	Display     *bool       `json:"display"`
	Privacy     *bool       `json:"privacy"`
	DisplayName *string     `json:"displayName"`
	DataType    *string     `json:"dataType"`
}

type expectedDeadLetter struct {
	Class  string `json:"class"`
	Reason string `json:"reason"` // a part of the reason; "" matches any
}

// flexString is a value written as a string, a number or a bool (YAML's `value: 42`), compared
// as the text the API receives.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	switch x := v.(type) {
	case json.Number:
		*f = flexString(x.String())
	case bool:
		*f = flexString(fmt.Sprint(x))
	default:
		return errors.New("must be a string, a number or a boolean")
	}
	return nil
}

// TestResult counts the cases run.
type TestResult struct {
	Passed, Failed int
}

// RunPipelineTests runs the cases of each file and writes one line per case, as go test does,
// with what differs under a failing one. Values of variables that are private in the actual
// request are masked in what it prints (they are compared unmasked). It returns an error only
// for a file that cannot be run at all (unreadable, not a test file, its config broken).
func RunPipelineTests(ctx context.Context, files []string, w io.Writer) (TestResult, error) {
	var res TestResult
	for _, f := range files {
		r, err := runTestFile(ctx, f, w)
		res.Passed += r.Passed
		res.Failed += r.Failed
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func runTestFile(ctx context.Context, path string, w io.Writer) (TestResult, error) {
	var res TestResult
	tf, err := readTestFile(path)
	if err != nil {
		return res, err
	}
	cfgPath := tf.Config
	if cfgPath == "" {
		return res, fmt.Errorf("%s: config: is required (the config file the cases run against)", path)
	}
	if !filepath.IsAbs(cfgPath) {
		cfgPath = filepath.Join(filepath.Dir(path), cfgPath)
	}
	for _, tc := range tf.Tests {
		// A fresh compile per case: its tables start empty.
		c, err := Load(cfgPath)
		if err != nil {
			return res, err
		}
		name := fmt.Sprintf("%s:%d: %s", path, tc.line, tc.Name)
		fmt.Fprintf(w, "=== RUN   %s\n", name)
		problems := c.runCase(ctx, path, &tc)
		if len(problems) == 0 {
			res.Passed++
			fmt.Fprintf(w, "--- PASS: %s\n", name)
			continue
		}
		res.Failed++
		fmt.Fprintf(w, "--- FAIL: %s\n", name)
		for _, p := range problems {
			fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(p, "\n", "\n    "))
		}
	}
	return res, nil
}

// readTestFile reads a YAML test file. YAML is read as nodes (for each case's line) and each
// case converted through JSON into the types above, so records are read exactly as
// check --sample reads its JSON lines, and unknown keys are errors.
func readTestFile(path string) (*testFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading tests: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: a test file is a mapping with config and tests", path)
	}
	root := doc.Content[0]
	tf := &testFile{}
	var tests *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "config":
			tf.Config = v.Value
		case "tests":
			tests = v
		default:
			return nil, fmt.Errorf("%s:%d: unknown key %q (config, tests)", path, k.Line, k.Value)
		}
	}
	if tests == nil || tests.Kind != yaml.SequenceNode || len(tests.Content) == 0 {
		return nil, fmt.Errorf("%s: tests: at least one case is required", path)
	}
	for _, n := range tests.Content {
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n.Line, err)
		}
		b, err := json.Marshal(jsonable(v))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n.Line, err)
		}
		var tc testCase
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&tc); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n.Line, err)
		}
		tc.line = n.Line
		if tc.Name == "" {
			return nil, fmt.Errorf("%s:%d: name: is required", path, n.Line)
		}
		if len(tc.Input) == 0 || len(tc.Expect) != len(tc.Input) {
			return nil, fmt.Errorf("%s:%d: %s: give one expect entry per input record (%d inputs, %d expects)", path, n.Line, tc.Name, len(tc.Input), len(tc.Expect))
		}
		for j, e := range tc.Expect {
			for _, r := range e.Requests {
				for k, v := range r.Variables {
					if v.Name == "" || v.Value == nil {
						return nil, fmt.Errorf("%s:%d: %s: expect[%d]: variable %d: name and value are required", path, n.Line, tc.Name, j, k)
					}
				}
			}
			set := 0
			for _, b := range []bool{e.Requests != nil, e.Filtered, e.Skipped != nil, e.DeadLetter != nil} {
				if b {
					set++
				}
			}
			if set != 1 {
				return nil, fmt.Errorf("%s:%d: %s: expect[%d]: give exactly one of requests, filtered, skipped, deadLetter", path, n.Line, tc.Name, j)
			}
		}
		tf.Tests = append(tf.Tests, tc)
	}
	return tf, nil
}

// jsonable turns what YAML decoded into values encoding/json can write: maps with non-string
// keys get string keys, timestamps RFC 3339.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}

// runCase runs one case and returns what did not match (nothing: it passed).
func (c *Compiled) runCase(ctx context.Context, path string, tc *testCase) []string {
	var problems []string
	now := time.Now()
	for i := range tc.Tables {
		r := &tc.Tables[i]
		if r.Timestamp.IsZero() {
			r.Timestamp = now
		}
		if c.Tables == nil {
			return []string{"tables: the config has no lookup tables"}
		}
		if exists := c.tableTopic(r.Topic); !exists {
			return []string{fmt.Sprintf("tables[%d]: no table reads topic %q", i, r.Topic)}
		}
		value, err := sampleValue(ctx, path, r)
		if err != nil {
			return []string{fmt.Sprintf("tables[%d]: %v", i, err)}
		}
		key, err := sampleKey(ctx, path, r)
		if err != nil {
			return []string{fmt.Sprintf("tables[%d]: decoding the key: %v", i, err)}
		}
		if err := c.Tables.ApplyRecord(&transform.Record{Topic: r.Topic, Key: key, Headers: r.Headers, Value: value, Timestamp: r.Timestamp}); err != nil {
			problems = append(problems, fmt.Sprintf("tables[%d]: %v", i, err))
		}
	}
	byTopic := make(map[string]int)
	for i := range c.Config.Pipelines {
		for _, t := range c.Config.Pipelines[i].Topics {
			byTopic[t] = i
		}
	}
	for i := range tc.Input {
		r := &tc.Input[i]
		if r.Timestamp.IsZero() {
			r.Timestamp = now
		}
		got := c.evaluate(ctx, path, r, byTopic, true)
		if p := compareOutcome(&tc.Expect[i], &got); p != "" {
			problems = append(problems, fmt.Sprintf("input[%d] (%s): %s", i, r.Topic, p))
		}
	}
	return problems
}

func (c *Compiled) tableTopic(topic string) bool {
	for _, t := range c.Config.Tables {
		if t.Topic == topic {
			return true
		}
	}
	return false
}

// describe says what an outcome did, in the words of an expectation.
func describe(o *outcome) string {
	switch {
	case o.Pipeline == "":
		return "not run: " + o.DeadLetter
	case o.DeadLetter != "":
		return fmt.Sprintf("dead-lettered, class %s: %s", o.Class, o.DeadLetter)
	case o.Outcome == transform.Filtered:
		return "filtered"
	case o.Outcome == transform.Skipped:
		return "skipped (" + o.Reason + ")"
	default:
		return fmt.Sprintf("%d request(s)", len(o.Requests))
	}
}

// compareOutcome returns "" when got is what e expects, else what differs.
func compareOutcome(e *expectation, got *outcome) string {
	switch {
	case e.DeadLetter != nil:
		if got.DeadLetter == "" || got.Pipeline == "" || got.Class != e.DeadLetter.Class || !strings.Contains(got.DeadLetter, e.DeadLetter.Reason) {
			return fmt.Sprintf("want dead-lettered, class %s, reason containing %q; got %s", e.DeadLetter.Class, e.DeadLetter.Reason, describe(got))
		}
		return ""
	case got.Pipeline == "" || got.DeadLetter != "":
		return "want " + wantText(e) + "; got " + describe(got)
	case e.Filtered:
		if got.Outcome != transform.Filtered {
			return "want filtered; got " + describe(got)
		}
		return ""
	case e.Skipped != nil:
		if got.Outcome != transform.Skipped || got.Reason != *e.Skipped {
			return fmt.Sprintf("want skipped (%s); got %s", *e.Skipped, describe(got))
		}
		return ""
	}
	if got.Outcome != transform.Write {
		return "want " + wantText(e) + "; got " + describe(got)
	}
	return compareRequests(e.Requests, got.Requests)
}

func wantText(e *expectation) string {
	switch {
	case e.Filtered:
		return "filtered"
	case e.Skipped != nil:
		return "skipped (" + *e.Skipped + ")"
	default:
		return fmt.Sprintf("%d request(s)", len(e.Requests))
	}
}

// compareRequests compares requests field by field and returns each difference on a line.
func compareRequests(want []expectedRequest, got []outcomeRequest) string {
	var diffs []string
	if len(want) != len(got) {
		ids := make([]string, len(got))
		for i, r := range got {
			ids[i] = r.Identifier
		}
		diffs = append(diffs, fmt.Sprintf("want %d request(s), got %d (to %s)", len(want), len(got), strings.Join(ids, ", ")))
	}
	for i := range min(len(want), len(got)) {
		w, g := &want[i], &got[i]
		if w.Identifier != g.Identifier {
			diffs = append(diffs, fmt.Sprintf("request %d: identifier: want %q, got %q", i, w.Identifier, g.Identifier))
		}
		wantNames := make([]string, len(w.Variables))
		for j, v := range w.Variables {
			wantNames[j] = v.Name
		}
		gotNames := make([]string, len(g.Variables))
		for j, v := range g.Variables {
			gotNames[j] = v.Name
		}
		if !slices.Equal(wantNames, gotNames) {
			diffs = append(diffs, fmt.Sprintf("request %d: variables: want %v, got %v", i, wantNames, gotNames))
			continue
		}
		for j := range w.Variables {
			diffs = append(diffs, compareVariable(i, &w.Variables[j], &g.Variables[j])...)
		}
	}
	return strings.Join(diffs, "\n")
}

func compareVariable(req int, w *expectedVariable, g *api.Variable) []string {
	var diffs []string
	at := fmt.Sprintf("request %d: %s.", req, g.Name)
	if w.Value != nil && string(*w.Value) != g.Value {
		if g.Privacy {
			diffs = append(diffs, at+"value: differs (private: both values masked)")
		} else {
			diffs = append(diffs, fmt.Sprintf("%svalue: want %q, got %q", at, string(*w.Value), g.Value))
		}
	}
	boolAttr := func(name string, want *bool, got bool) {
		if want != nil && *want != got {
			diffs = append(diffs, fmt.Sprintf("%s%s: want %v, got %v", at, name, *want, got))
		}
	}
	boolAttr("ivr", w.IVR, g.IVR)
	boolAttr("display", w.Display, g.Display)
	boolAttr("privacy", w.Privacy, g.Privacy)
	strAttr := func(name string, want *string, got string) {
		if want != nil && *want != got {
			diffs = append(diffs, fmt.Sprintf("%s%s: want %q, got %q", at, name, *want, got))
		}
	}
	strAttr("displayName", w.DisplayName, g.DisplayName)
	strAttr("dataType", w.DataType, g.DataType)
	return diffs
}
