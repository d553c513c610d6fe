package config

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes the loader panic, and that it returns either a config
// or Errors, each naming the file.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	if b, err := os.ReadFile(examplePath); err == nil {
		f.Add(b)
	}
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("x: &x {a: 1}\ntenants: {a: *x, b: *x}\n"))
	f.Add([]byte("pipelines: [{variables: [{ivr: {expr: 1}, displayName: [x]}]}]\n"))
	f.Add([]byte("kafka: {brokers: ${A:-a,b}, fetchMaxBytes: 99999999999GiB, sessionTimeout: -1s}\n"))
	f.Add([]byte("connector: {maxPendingBytes: ${X}}\n"))
	f.Add([]byte("--- \n...\n---\na: 1\n"))
	env := envFrom(map[string]string{"A": "1", "X": "64MiB"})
	noFiles := func(string) ([]byte, error) { return nil, os.ErrNotExist }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := newLoader("fuzz.yaml", "", env, noFiles).load(data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("config %v with error %v", cfg != nil, err)
		}
		if err == nil {
			_, _ = cfg.KafkaOpts()
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is not Errors: %v", err)
		}
		for _, e := range errs {
			if e.File != "fuzz.yaml" || e.Msg == "" {
				t.Fatalf("malformed error %+v", e)
			}
		}
	})
}

// Aliases let a small file name one list many times; decoding stops at maxNodes values and the
// report stops at maxErrors problems.
func TestAliasExpansionBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-var: &v {name: _a, value: x}\n")
	b.WriteString("x-vars: &vs [" + strings.Repeat("*v, ", 99) + "*v]\n")
	b.WriteString("x-pipe: &p {name: a, topics: [t], tenant: main, identifier: x, variables: *vs}\n")
	b.WriteString("pipelines: [" + strings.Repeat("*p, ", 19_999) + "*p]\n")
	_, err := parse(b.String(), nil)
	lines := errLines(t, err)
	if len(lines) != maxErrors+1 {
		t.Fatalf("got %d error lines, want %d", len(lines), maxErrors+1)
	}
	want := []string{
		`test.yaml:1: unknown key "x-var"`,
		`test.yaml:2: unknown key "x-vars"`,
		`test.yaml:3: unknown key "x-pipe"`,
	}
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("missing %q", w)
		}
	}
	if !slices.ContainsFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, "test.yaml:1: pipelines[") && strings.HasSuffix(l, ": document expands to more than 1000000 values (check its aliases)")
	}) {
		t.Errorf("no expansion error in:\n%s", err)
	}
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, "more problems not shown") {
		t.Errorf("last line = %q", last)
	}
}
