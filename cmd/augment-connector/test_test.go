package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPipelineTestsShipped runs the example tests of config.example.yaml, as CI and README do.
func TestPipelineTestsShipped(t *testing.T) {
	t.Setenv("ACME_TOKEN", "test-token-value")
	var out, errb bytes.Buffer
	if code := run([]string{"test", "../../samples/config.example.test.yaml"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "PASS (6 passed)") || strings.Contains(out.String(), "--- FAIL") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestPipelineTestsFail: each kind of mismatch fails its case with a line saying what differs;
// a private value that differs is reported without either value.
func TestPipelineTestsFail(t *testing.T) {
	t.Setenv("ACME_TOKEN", "test-token-value")
	cfg, err := filepath.Abs("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := `config: ` + cfg + `
tests:
  - name: wrong value, attribute and private value
    input:
      - topic: dbserver1.crm.customers
        value: {op: u, after: {id: 1, interaction_id: int-1, tier: Gold, balance: 5, pin: "4821"}}
    expect:
      - requests:
          - identifier: int-1
            variables:
              - {name: _customerTier, value: Silver, display: false}
              - {name: _accountBalance, value: "5"}
              - {name: _accountPin, value: "9999"}
  - name: wrong outcome
    input:
      - topic: dbserver1.crm.customers
        value: {op: r, after: {id: 1, interaction_id: int-1, tier: Gold}}
      - topic: dbserver1.crm.customers
        value: {op: u, after: {id: 1, interaction_id: int-1, tier: Gold, balance: 5, pin: "1"}}
    expect:
      - skipped: delete
      - requests:
          - identifier: int-2
            variables:
              - {name: _customerTier, value: Gold}
  - name: missing variable
    input:
      - topic: dbserver1.crm.customers
        value: {op: u, after: {id: 1, interaction_id: int-1, tier: Gold, balance: 5, pin: "1"}}
    expect:
      - requests:
          - identifier: int-1
            variables:
              - {name: _customerTier, value: Gold}
  - name: passes
    input:
      - topic: dbserver1.crm.customers
        value: {op: r, after: {id: 1}}
    expect:
      - filtered: true
`
	path := filepath.Join(t.TempDir(), "fail.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"test", path}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"--- FAIL: " + path + ":3: wrong value, attribute and private value",
		`request 0: _customerTier.value: want "Silver", got "Gold"`,
		`request 0: _customerTier.display: want false, got true`,
		`request 0: _accountPin.value: differs (private: both values masked)`,
		"--- FAIL: " + path + ":14: wrong outcome",
		"input[0] (dbserver1.crm.customers): want skipped (delete); got filtered",
		`request 0: identifier: want "int-2", got "int-1"`,
		"request 0: variables: want [_customerTier], got [_customerTier _accountBalance _accountPin]",
		"--- PASS: " + path + ":35: passes",
		"FAIL (1 passed, 3 failed)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q\n--- got:\n%s", want, got)
		}
	}
	if strings.Contains(got, "4821") || strings.Contains(got, "9999") {
		t.Errorf("a private value was printed:\n%s", got)
	}
}

// TestPipelineTestsBadFile: a test file that cannot be run is an error naming the file, the
// line and what is wrong (exit 1), never a pass.
func TestPipelineTestsBadFile(t *testing.T) {
	t.Setenv("ACME_TOKEN", "test-token-value")
	cfg, err := filepath.Abs("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	one := "\n    input:\n      - {topic: dbserver1.crm.customers, value: {op: r}}\n"
	tests := []struct{ name, file, want string }{
		{"unknown top-level key", "config: " + cfg + "\ncase: []\n", `:2: unknown key "case" (config, tests)`},
		{"no config", "tests:\n  - name: a" + one + "    expect: [{filtered: true}]\n", "config: is required"},
		{"no cases", "config: " + cfg + "\ntests: []\n", "tests: at least one case is required"},
		{"expects do not match inputs", "config: " + cfg + "\ntests:\n  - name: a" + one + "    expect: []\n", ":3: a: give one expect entry per input record (1 inputs, 0 expects)"},
		{"two outcomes", "config: " + cfg + "\ntests:\n  - name: a" + one + "    expect: [{filtered: true, skipped: delete}]\n", "expect[0]: give exactly one of requests, filtered, skipped, deadLetter"},
		{"variable without value", "config: " + cfg + "\ntests:\n  - name: a" + one + "    expect: [{requests: [{identifier: i, variables: [{name: _a}]}]}]\n", "variable 0: name and value are required"},
		{"unknown case key", "config: " + cfg + "\ntests:\n  - name: a\n    inputs: []\n", `:3: json: unknown field "inputs"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.yaml")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if code := run([]string{"test", path}, &out, &errb); code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", code, out.String(), errb.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.want)
			}
		})
	}
}

// TestPipelineTestsInactive: with requireActive, a record whose call is in no table of active
// interactions can be expected as skipped (inactive), and one whose call is, as its requests.
func TestPipelineTestsInactive(t *testing.T) {
	t.Setenv("ACME_TOKEN", "test-token-value")
	example, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The example shows requireActive commented out, on its customers pipeline.
	const at = "    requireActive:\n"
	if !strings.Contains(string(example), at) {
		t.Fatalf("config.example.yaml has no %q", at)
	}
	dir := t.TempDir()
	cfg := strings.Replace(string(example), at,
		`    requireActive: {table: activeInteractions, expression: 'identifier in map(lookupAll("activeInteractions", after.id), .interactionId)'}`+"\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	file := `config: config.yaml
tests:
  - name: only a customer's active call is written to
    tables:
      - topic: cc.interactions
        value: {event: started, interaction_id: int-1, customer_id: 42}
    input:
      - topic: dbserver1.crm.customers
        value: {op: u, after: {id: 42, interaction_id: int-1, tier: Gold, balance: 1, pin: "1"}}
      - topic: dbserver1.crm.customers
        value: {op: u, after: {id: 43, interaction_id: int-3, tier: Gold, balance: 1, pin: "1"}}
    expect:
      - requests:
          - identifier: int-1
            variables:
              - {name: _customerTier, value: Gold}
              - {name: _accountBalance, value: "1"}
              - {name: _accountPin, value: "1"}
      - skipped: inactive
`
	path := filepath.Join(dir, "inactive.test.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"test", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "PASS (1 passed)") {
		t.Errorf("output:\n%s", out.String())
	}
}
