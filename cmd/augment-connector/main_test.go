package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// secret is a token value the tests put in configs; no output may contain it.
const secret = "s3cr3t-token-value"

// syncBuffer is a bytes.Buffer safe for concurrent use: the Kafka client's goroutines log to
// stderr, and one may still be logging a refused dial as run returns.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCmd runs the command in-process and returns its exit code and outputs.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut syncBuffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// lines splits output into its lines, without the final newline's empty one.
func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestCheckExampleConfig(t *testing.T) {
	t.Setenv("ACME_TOKEN", secret)
	const path = "../../config.example.yaml"
	code, stdout, stderr := runCmd(t, "check", "--config", path)
	if code != 0 {
		t.Fatalf("check %s: exit %d, stderr:\n%s", path, code, stderr)
	}
	// The tenant's line shows the full URL a request goes to.
	if want := path + ": ok (2 pipelines, 2 tables, 1 tenants)\ntenant main: POST https://vcc-na12.8x8.com/api/v1/interaction/data/{identifier}\n"; stdout != want {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
	if stderr != "" {
		t.Errorf("stderr = %q, want nothing", stderr)
	}
}

func TestCheckExampleConfigNeedsItsVariables(t *testing.T) {
	// The example refers to ${ACME_TOKEN}: unset, it is a problem at the token's line.
	t.Setenv("ACME_TOKEN", "") // restored after the test
	if err := os.Unsetenv("ACME_TOKEN"); err != nil {
		t.Fatal(err)
	}
	const path = "../../config.example.yaml"
	code, stdout, stderr := runCmd(t, "check", "--config", path)
	if code != 1 || stdout != "" {
		t.Fatalf("check: exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(string(src), "\n") {
		if strings.TrimSpace(l) == "token: ${ACME_TOKEN}" {
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatal("the example has no line `token: ${ACME_TOKEN}`")
	}
	want := []string{fmt.Sprintf("%s:%d: tenants.main.token: environment variable ACME_TOKEN is not set (use ${ACME_TOKEN:-default} for a default)", path, line)}
	if diff := cmp.Diff(want, lines(stderr)); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
}

// TestCheckReportsEveryProblemAtOnce: a key, an expression and a variable name, each wrong in
// its own section, come out in one run, sorted by line, with their key paths.
func TestCheckReportsEveryProblemAtOnce(t *testing.T) {
	t.Setenv("AC_TEST_TOKEN", secret)
	const path = "testdata/three-mistakes.yaml"
	code, stdout, stderr := runCmd(t, "check", "--config", path)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
	want := []string{
		path + `:4: kafka: unknown key "groupID" (did you mean "groupId"?)`,
		path + `:17: pipelines[0].filter: unexpected token EOF (1:12)`,
		` | op != "r" &&`,
		` | ...........^`,
		path + `:19: pipelines[0].variables[0].name: must start with underscore, got "customerTier"`,
	}
	if diff := cmp.Diff(want, lines(stderr)); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
}

// base is a valid config; each broken case below changes it in one or two places. The
// expected messages' line numbers are lines of base: kafka is line 1, the variable's dataType 18.
const base = `kafka:
  brokers: [127.0.0.1:9092]
  dialTimeout: 10s
tenants:
  main:
    cluster: vcc-na12
    tenantId: acme
    token: ${AC_TEST_TOKEN}
pipelines:
  - name: customers
    topics: [dbserver1.crm.customers]
    tenant: main
    decode: {format: json}
    identifier: after.interaction_id
    variables:
      - name: _customerTier
        value: after.tier
        dataType: text
`

func TestCheckBrokenConfigs(t *testing.T) {
	t.Setenv("AC_TEST_TOKEN", secret)
	t.Setenv("AC_TEST_EXPR", `after.tier ?? "standard"`)
	// Expressions that do not compile once expanded; the first one's message quotes the value.
	t.Setenv("AC_TEST_PIN_EXPR", `after.tier == s3cretPin`)
	t.Setenv("AC_TEST_BAD_EXPR", `hunter2 +`)
	tests := []struct {
		name string
		edit []string // old, new, old, new...: replacements in base
		raw  *string  // the whole file instead of an edited base
		want []string // stderr lines; "config.yaml" is the file
		// stdout of a valid config; "" for the base's
		stdout string
	}{{
		name: "valid base",
		want: nil,
	}, {
		// A baseURL's path is kept as a prefix, and check prints where requests go.
		name:   "baseURL with a path prefix",
		edit:   []string{"cluster: vcc-na12", "baseURL: https://gateway.example:8443/8x8/"},
		stdout: "config.yaml: ok (1 pipelines, 1 tenants)\ntenant main: POST https://gateway.example:8443/8x8/api/v1/interaction/data/{identifier}\n",
	}, {
		name: "misspelt key",
		edit: []string{"dialTimeout:", "dailTimeout:"},
		want: []string{`config.yaml:3: kafka: unknown key "dailTimeout" (did you mean "dialTimeout"?)`},
	}, {
		name: "bare number as a duration",
		edit: []string{"dialTimeout: 10s", "dialTimeout: 10"},
		want: []string{`config.yaml:3: kafka.dialTimeout: must be a duration like 500ms, 10s or 1m, got "10"`},
	}, {
		name: "unset environment variable",
		edit: []string{"${AC_TEST_TOKEN}", "${AC_TEST_UNSET}"},
		want: []string{`config.yaml:8: tenants.main.token: environment variable AC_TEST_UNSET is not set (use ${AC_TEST_UNSET:-default} for a default)`},
	}, {
		name: "pipeline names an unknown tenant",
		edit: []string{"tenant: main", "tenant: mian"},
		want: []string{`config.yaml:12: pipelines[0].tenant: tenant "mian" is not defined under tenants`},
	}, {
		name: "variable name too long",
		edit: []string{"_customerTier", "_customerTierFromTheCrmSystem"},
		want: []string{`config.yaml:16: pipelines[0].variables[0].name: must be at most 25 characters, got "_customerTierFromTheCrmSystem"`},
	}, {
		name: "unknown data type",
		edit: []string{"dataType: text", "dataType: string"},
		want: []string{`config.yaml:18: pipelines[0].variables[0].dataType: must be one of text, number, phone, date, time, currency, got "string"`},
	}, {
		name: "misspelt name in an expression",
		edit: []string{"value: after.tier", "value: aftr.tier"},
		want: []string{
			`config.yaml:17: pipelines[0].variables[0].value: unknown name aftr (1:1)`,
			` | aftr.tier`,
			` | ^`,
		},
	}, {
		name: "attribute expression of the wrong type",
		edit: []string{"dataType: text", `dataType: {expr: 'len(after.tier)'}`},
		want: []string{
			`config.yaml:18: pipelines[0].variables[0].dataType: expected string, but got int`,
		},
	}, {
		name: "expression error and config error together",
		edit: []string{"identifier: after.interaction_id", "identifier: after.interaction_id +", "cluster: vcc-na12", "cluster: VCC_NA12"},
		want: []string{
			`config.yaml:6: tenants.main.cluster: must be a cluster name like vcc-na12 (lower-case letters, digits and '-'), got "VCC_NA12"`,
			`config.yaml:14: pipelines[0].identifier: unexpected token EOF (1:22)`,
			` | after.interaction_id +`,
			` | .....................^`,
		},
	}, {
		// config reports a missing expression; the compiler's "an expression is required" would
		// say it twice.
		name: "empty identifier is reported once",
		edit: []string{"identifier: after.interaction_id", `identifier: ""`, "cluster: vcc-na12", "cluster: VCC"},
		want: []string{
			`config.yaml:6: tenants.main.cluster: must be a cluster name like vcc-na12 (lower-case letters, digits and '-'), got "VCC"`,
			`config.yaml:14: pipelines[0].identifier: is required`,
		},
	}, {
		// An expression from the environment is compiled only once it is expanded: with the
		// file broken elsewhere it is not reported, rather than reported wrongly.
		name: "expression from the environment",
		edit: []string{"value: after.tier", "value: ${AC_TEST_EXPR}", "cluster: vcc-na12", "cluster: VCC"},
		want: []string{
			`config.yaml:6: tenants.main.cluster: must be a cluster name like vcc-na12 (lower-case letters, digits and '-'), got "VCC"`,
		},
	}, {
		// Issue 12 point 4: a compile error of an expanded expression quotes it as written,
		// never what ${NAME} expanded to (here the compiler's message names the value).
		name: "expression from the environment that names the value",
		edit: []string{"value: after.tier", "value: ${AC_TEST_PIN_EXPR}"},
		want: []string{
			`config.yaml:17: pipelines[0].variables[0].value: message withheld: it quotes a value from the environment; as written: "${AC_TEST_PIN_EXPR}"`,
		},
	}, {
		// The message does not name the value: it is kept, the snippet of the expanded source
		// is dropped.
		name: "expression from the environment, message without the value",
		edit: []string{"identifier: after.interaction_id", "identifier: after.interaction_id == ${AC_TEST_BAD_EXPR}"},
		want: []string{
			`config.yaml:14: pipelines[0].identifier: unexpected token EOF (1:33); as written: "after.interaction_id == ${AC_TEST_BAD_EXPR}"`,
		},
	}, {
		name: "lookup without tables",
		edit: []string{"value: after.tier", `value: lookup("customers", after.id).tier`},
		want: []string{
			`config.yaml:17: pipelines[0].variables[0].value: lookup: no tables are configured (add one under tables:) (1:1)`,
			` | lookup("customers", after.id).tier`,
			` | ^`,
		},
	}, {
		name: "table expression that does not compile, and a lookup of a misspelt table",
		edit: []string{"pipelines:", "tables:\n  - {name: customers, topic: crm.customers, decode: {format: json}, key: after.id +, value: {tier: after.tier}}\npipelines:",
			"value: after.tier", `value: lookup("custmers", after.id).tier`},
		want: []string{
			`config.yaml:10: tables[0].key: unexpected token EOF (1:10)`,
			` | after.id +`,
			` | .........^`,
			`config.yaml:19: pipelines[0].variables[0].value: lookup: no table named "custmers" (1:1)`,
			` | lookup("custmers", after.id).tier`,
			` | ^`,
		},
	}, {
		// With the file broken elsewhere, lookups are still checked against the tables the
		// file declares.
		name: "lookupAll of a single-valued table with a config error",
		edit: []string{"pipelines:", "tables:\n  - {name: customers, topic: crm.customers, decode: {format: json}, key: after.id, value: {tier: after.tier}}\npipelines:",
			"identifier: after.interaction_id", `identifier: lookupAll("customers", after.id)`, "cluster: vcc-na12", "cluster: VCC"},
		want: []string{
			`config.yaml:6: tenants.main.cluster: must be a cluster name like vcc-na12 (lower-case letters, digits and '-'), got "VCC"`,
			`config.yaml:16: pipelines[0].identifier: lookupAll: table "customers" maps a key to one row; use lookup (1:1)`,
			` | lookupAll("customers", after.id)`,
			` | ^`,
		},
	}, {
		name: "plain http without allowInsecureHTTP",
		edit: []string{"cluster: vcc-na12", "baseURL: http://127.0.0.1:8080"},
		want: []string{`config.yaml:6: tenants.main.baseURL: uses http://, which sends the token unencrypted; set allowInsecureHTTP: true to allow it`},
	}, {
		name: "dead-letter topic is an input",
		edit: []string{"pipelines:", "deadLetter: {topic: dbserver1.crm.customers}\npipelines:"},
		want: []string{`config.yaml:9: deadLetter.topic: topic "dbserver1.crm.customers" is consumed by pipelines[0]; the dead-letter topic must not be an input`},
	}, {
		name: "avro-registry without a registry",
		edit: []string{"    decode: {format: json}\n", ""},
		want: []string{`config.yaml: schemaRegistry.urls: at least one URL is required when a pipeline decodes avro-registry`},
	}, {
		name: "invalid YAML",
		edit: []string{"cluster: vcc-na12", "cluster: vcc-na12: eu"},
		want: []string{`config.yaml:6: invalid YAML: mapping values are not allowed in this context`},
	}, {
		name: "empty file",
		raw:  new(""),
		want: []string{`config.yaml: config is empty`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			src := base
			if tt.raw != nil {
				src = *tt.raw
			}
			for i := 0; i+1 < len(tt.edit); i += 2 {
				if !strings.Contains(src, tt.edit[i]) {
					t.Fatalf("base has no %q to edit", tt.edit[i])
				}
				src = strings.Replace(src, tt.edit[i], tt.edit[i+1], 1)
			}
			if err := os.WriteFile("config.yaml", []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCmd(t, "check", "--config", "config.yaml")
			if tt.want == nil {
				want := tt.stdout
				if want == "" {
					want = "config.yaml: ok (1 pipelines, 1 tenants)\ntenant main: POST https://vcc-na12.8x8.com/api/v1/interaction/data/{identifier}\n"
				}
				if code != 0 || stdout != want || stderr != "" {
					t.Errorf("exit %d, stdout %q, stderr %q; want 0 and ok", code, stdout, stderr)
				}
				return
			}
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if diff := cmp.Diff(tt.want, lines(stderr)); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	code, _, stderr := runCmd(t, "check", "--config", path)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if want := "augment-connector: reading config: open " + path + ": no such file or directory\n"; stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
}

// TestCheckNeverPrintsSecrets: a token written in clear, in a URL's credentials and in keys
// where it does not belong is never echoed, while the problems around it are all reported.
func TestCheckNeverPrintsSecrets(t *testing.T) {
	t.Setenv("AC_TEST_SECRET", secret)
	const path = "testdata/secret-token.yaml"
	code, stdout, stderr := runCmd(t, "check", "--config", path)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if strings.Contains(stdout+stderr, secret) {
		t.Errorf("output contains the token:\n%s%s", stdout, stderr)
	}
	want := []string{
		path + `:8: kafka.sasl.passwordFile: set only one of password and passwordFile`,
		path + `:10: schemaRegistry.urls[0]: must not contain credentials; use schemaRegistry.basicAuth`,
		path + `:13: tenants.main.baseURL: must not contain credentials; use tenantId and token`,
		path + `:16: tenants.main.tokenFile: set only one of token and tokenFile`,
		path + `:21: tenants.other.requestsPerMinute: must be an integer, got a value from the environment`,
		path + `:22: tenants.other.bodyForm: must be variables or data, got a value from the environment`,
		path + `:29: pipelines[0].variables[0].name: must start with underscore, got a value from the environment`,
	}
	if diff := cmp.Diff(want, lines(stderr)); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     *regexp.Regexp
		stderr     *regexp.Regexp
		stderrText string
	}{
		{name: "version", args: []string{"version"}, code: 0, stdout: regexp.MustCompile(`^augment-connector dev( [0-9a-f]+)?\n$`)},
		{name: "--version", args: []string{"--version"}, code: 0, stdout: regexp.MustCompile(`^augment-connector dev( [0-9a-f]+)?\n$`)},
		{name: "help", args: []string{"help"}, code: 0, stdout: regexp.MustCompile(`^usage: augment-connector <command> \[flags\]\n`)},
		{name: "no command", args: nil, code: 2, stderr: regexp.MustCompile(`^usage: augment-connector `)},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: regexp.MustCompile(`^unknown command "frobnicate"\n\nusage: `)},
		{name: "check without --config", args: []string{"check"}, code: 2, stderrText: "usage: check needs --config FILE\n"},
		{name: "check with an unknown flag", args: []string{"check", "--confg", "x.yaml"}, code: 2, stderr: regexp.MustCompile(`^flag provided but not defined: -confg\nUsage of check:\n  -config string\n`)},
		{name: "run with an unknown flag", args: []string{"run", "--confg", "x.yaml"}, code: 2, stderr: regexp.MustCompile(`^flag provided but not defined: -confg\nUsage of run:\n`)},
		{name: "check --help", args: []string{"check", "--help"}, code: 0, stderr: regexp.MustCompile(`^Usage of check:\n  -config string\n`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if tt.stdout != nil && !tt.stdout.MatchString(stdout) {
				t.Errorf("stdout = %q, want it to match %s", stdout, tt.stdout)
			}
			if tt.stdout == nil && stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if tt.stderr != nil && !tt.stderr.MatchString(stderr) {
				t.Errorf("stderr = %q, want it to match %s", stderr, tt.stderr)
			}
			if tt.stderrText != "" && stderr != tt.stderrText {
				t.Errorf("stderr = %q, want %q", stderr, tt.stderrText)
			}
			if tt.stderr == nil && tt.stderrText == "" && stderr != "" {
				t.Errorf("stderr = %q, want nothing", stderr)
			}
		})
	}
}

// TestBinaryExitCodes builds the real binary: exit codes are what scripts and CI see, and only
// the process shows them.
func TestBinaryExitCodes(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "augment-connector")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v1.2.3 -X main.commit=abc123", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string // a prefix
	}{
		{args: []string{"version"}, code: 0, stdout: "augment-connector v1.2.3 abc123\n"},
		{args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`},
		{args: []string{"check"}, code: 2, stderr: "usage: check needs --config FILE\n"},
		{args: []string{"check", "--config", "testdata/three-mistakes.yaml"}, code: 1, stderr: `testdata/three-mistakes.yaml:4: kafka: unknown key "groupID"`},
		{args: []string{"check", "--config", "../../config.example.yaml"}, code: 0, stdout: "../../config.example.yaml: ok (2 pipelines, 2 tables, 1 tenants)\ntenant main: POST https://vcc-na12.8x8.com/api/v1/interaction/data/{identifier}\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = append(os.Environ(), "ACME_TOKEN="+secret, "AC_TEST_TOKEN="+secret)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr.String())
			}
			if stdout.String() != tt.stdout {
				t.Errorf("stdout = %q, want %q", stdout.String(), tt.stdout)
			}
			if !strings.HasPrefix(stderr.String(), tt.stderr) || (tt.stderr == "" && stderr.Len() > 0) {
				t.Errorf("stderr = %q, want it to start with %q", stderr.String(), tt.stderr)
			}
		})
	}
}

func TestDemo(t *testing.T) {
	code, stdout, stderr := runCmd(t, "demo", "--events", "500", "--listen", "127.0.0.1:0")
	if code != 0 {
		t.Fatalf("demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var summary string
	for _, l := range lines(stdout) {
		if strings.HasPrefix(l, "events=") {
			summary = l
		}
	}
	if summary == "" {
		t.Fatalf("no summary line in stdout:\n%s", stdout)
	}
	fields := map[string]string{}
	for _, f := range strings.Fields(summary) {
		k, v, _ := strings.Cut(f, "=")
		fields[k] = v
	}
	for k, want := range map[string]string{"events": "500", "committed": "500", "end": "500", "mismatches": "0", "dead_lettered": "0"} {
		if fields[k] != want {
			t.Errorf("summary %s=%s, want %s (%s)", k, fields[k], want, summary)
		}
	}
	// Every event is written, filtered or skipped: the three account for all of them.
	sum := 0
	for _, k := range []string{"written", "filtered", "skipped"} {
		n, err := strconv.Atoi(fields[k])
		if err != nil {
			t.Fatalf("summary %s=%q: %v", k, fields[k], err)
		}
		sum += n
	}
	if sum != 500 {
		t.Errorf("written+filtered+skipped = %d, want 500 (%s)", sum, summary)
	}
}

// TestRunUnreachableKafka: with no broker listening, run fails at once with an error that says
// so, instead of waiting for a broker that is not there; and its logs carry no token.
func TestRunUnreachableKafka(t *testing.T) {
	// A port that was just free on loopback: connecting to it is refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AC_TEST_TOKEN", secret)
	src := strings.Replace(base, "127.0.0.1:9092", addr, 1) + "metrics:\n  listen: \"\"\nlogging:\n  level: debug\n"
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, stdout, stderr := runCmd(t, "run", "--config", path)
	elapsed := time.Since(start)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
	// The client's own log lines about the refused dial may come before or after the error.
	want := "augment-connector: connecting to kafka: unable to dial: dial tcp " + addr + ": connect: connection refused"
	if !slices.Contains(lines(stderr), want) {
		t.Errorf("stderr has no line %q:\n%s", want, stderr)
	}
	if elapsed > 10*time.Second {
		t.Errorf("run took %v to report an unreachable broker, want well under the 30s ping timeout", elapsed)
	}
	if strings.Contains(stderr, secret) {
		t.Errorf("logs contain the token:\n%s", stderr)
	}
}

// check passes a config whose insecure settings are allowed, and prints each to stderr as
// "warning: file:line: key: ...", without the secrets involved.
func TestCheckPrintsWarnings(t *testing.T) {
	t.Setenv("AC_TEST_SECRET", secret)
	path := filepath.Join(t.TempDir(), "test.yaml")
	cfg := `kafka:
  brokers: [localhost:9092]
  tls:
    enabled: true
    insecureSkipVerify: true
schemaRegistry:
  urls: [http://localhost:8081]
  basicAuth: {username: u, password: "${AC_TEST_SECRET}"}
  allowInsecureHTTP: true
tenants:
  main:
    cluster: vcc-na12
    tenantId: acme
    token: "${AC_TEST_SECRET}"
pipelines:
  - name: customers
    topics: [dbserver1.crm.customers]
    tenant: main
    identifier: after.interaction_id
    variables:
      - {name: _customerTier, value: after.tier}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "check", "--config", path)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if strings.Contains(stdout+stderr, secret) {
		t.Errorf("output contains the secret:\n%s%s", stdout, stderr)
	}
	want := []string{
		"warning: " + path + ":5: kafka.tls.insecureSkipVerify: the brokers' certificates are not verified; anyone on the path can impersonate them and read the records and credentials",
		"warning: " + path + ":9: schemaRegistry.allowInsecureHTTP: schemaRegistry.urls[0] uses http://: the registry credentials are sent unencrypted",
	}
	if diff := cmp.Diff(want, lines(stderr)); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
}

// TestCheckPrintsLedgerWarning: an unsafe ledger topic accepted in coordination kafka is
// printed by check like the other warnings (run logs it, and logs what the topic check at
// start-up accepts); check exits 0.
func TestCheckPrintsLedgerWarning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.yaml")
	cfg := `kafka:
  brokers: [localhost:9092]
tenants:
  main:
    cluster: vcc-na12
    tenantId: acme
    token: tok
pipelines:
  - name: customers
    topics: [dbserver1.crm.customers]
    tenant: main
    decode: {format: json}
    identifier: after.interaction_id
    variables:
      - {name: _customerTier, value: after.tier}
budget:
  coordination: kafka
  ledger:
    allowUnsafeTopic: true
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "check", "--config", path)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	want := []string{"warning: " + path + ":19: budget.ledger.allowUnsafeTopic: a budget ledger topic that may lose an acknowledged record is accepted (fewer than 3 replicas, min.insync.replicas below 2 or unclean leader election): a lost grant or report can let the tenants exceed their requestsPerMinute; for one-node test clusters only"}
	if diff := cmp.Diff(want, lines(stderr)); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
}

// TestRunTracingWired: with tracing enabled run builds the exporter, logs where spans go and
// flushes on its way out (here after failing to reach Kafka), never printing a header value.
func TestRunTracingWired(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AC_TEST_TOKEN", secret)
	t.Setenv("AC_OTEL_KEY", "otel-k3y-value")
	src := strings.Replace(base, "127.0.0.1:9092", addr, 1) + "metrics:\n  listen: \"\"\nlogging:\n  level: debug\n" +
		"tracing:\n  enabled: true\n  endpoint: http://127.0.0.1:1\n  insecure: true\n  headers:\n    x-api-key: ${AC_OTEL_KEY}\n"
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "run", "--config", path)
	if code != 1 {
		t.Errorf("exit %d, want 1 (no broker)", code)
	}
	if !strings.Contains(stderr, `"msg":"tracing","endpoint":"http://127.0.0.1:1"`) {
		t.Errorf("stderr has no line saying where spans go:\n%s", stderr)
	}
	if strings.Contains(stderr, "otel-k3y-value") || strings.Contains(stderr, secret) {
		t.Errorf("logs contain a header value or the token:\n%s", stderr)
	}
}
