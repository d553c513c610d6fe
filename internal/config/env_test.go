package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpandEnv(t *testing.T) {
	env := envFrom(map[string]string{"A": "x", "B": "y", "EMPTY": "", "ODD": `a: #b 'c" ${A}`})
	tests := []struct {
		in, want string
		fromEnv  bool
		err      string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "x", fromEnv: true},
		{in: "pre-${A}-post", want: "pre-x-post", fromEnv: true},
		{in: "${A}${B}", want: "xy", fromEnv: true},
		{in: "${EMPTY}", want: "", fromEnv: true},
		{in: "${UNSET:-def}", want: "def"},
		{in: "${EMPTY:-def}", want: "def"},
		{in: "${A:-def}", want: "x", fromEnv: true},
		{in: "${UNSET:-}", want: ""},
		{in: "${UNSET:-a:-b}", want: "a:-b"},
		{in: "${ODD}", want: `a: #b 'c" ${A}`, fromEnv: true}, // inserted verbatim, not expanded again
		{in: "$$", want: "$"},
		{in: "$${A}", want: "${A}"},
		{in: "cost: 5$", want: "cost: 5$"},
		{in: "$env.HOME", want: "$env.HOME"},
		{in: "a$b", want: "a$b"},
		{in: "${UNSET}", err: "environment variable UNSET is not set (use ${UNSET:-default} for a default)"},
		{in: "x${A", err: `"${" without a closing "}" (write $$ for a literal $)`},
		{in: "${1A}", err: `invalid environment variable name "1A" in ${...} (write $$ for a literal $)`},
		{in: "${}", err: `invalid environment variable name "" in ${...} (write $$ for a literal $)`},
	}
	for _, tt := range tests {
		got, fromEnv, err := expandEnv(tt.in, env)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || fromEnv != tt.fromEnv || gotErr != tt.err {
			t.Errorf("expandEnv(%q) = %q, %v, %q; want %q, %v, %q", tt.in, got, fromEnv, gotErr, tt.want, tt.fromEnv, tt.err)
		}
	}
}

func TestEnvInConfig(t *testing.T) {
	data := strings.NewReplacer(
		"token: s3cr3t-token", "token: ${TOKEN}   # ${NOT_SET} in a comment is left alone",
		"  brokers: [localhost:9092]", "  brokers: ${BROKERS}\n  groupId: ${GROUP:-}",
		"    tenantId: acme", "    tenantId: ${TENANT:-acme}\n    requestsPerMinute: ${RPM}",
		"identifier: after.interaction_id", `identifier: '$$env["id"] ?? after.id'`,
	).Replace(base)
	cfg, err := parse(data, map[string]string{
		"TOKEN":   `tok #1: "quoted" {not: yaml}`,
		"BROKERS": "k1:9092, k2:9092",
		"RPM":     "42",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{string(cfg.Tenants["main"].Token), cfg.Kafka.Brokers, cfg.Kafka.GroupID, cfg.Tenants["main"].TenantID,
		cfg.Tenants["main"].RequestsPerMinute, cfg.Pipelines[0].Identifier}
	want := []any{`tok #1: "quoted" {not: yaml}`, []string{"k1:9092", "k2:9092"}, "augment-connector", "acme",
		42, `$env["id"] ?? after.id`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// A value from the environment is never echoed in an error: it may be a secret put in the
// wrong key.
func TestEnvValueNotEchoed(t *testing.T) {
	data := strings.Replace(base, "    token: s3cr3t-token", "    token: s3cr3t-token\n    requestsPerMinute: ${RPM}\n    bodyForm: ${FORM}", 1)
	_, err := parse(data, map[string]string{"RPM": "hunter2", "FORM": "hunter3"})
	want := []string{
		`test.yaml:10: tenants.main.requestsPerMinute: must be an integer, got a value from the environment`,
		`test.yaml:11: tenants.main.bodyForm: must be variables or data, got a value from the environment`,
	}
	if diff := cmp.Diff(want, errLines(t, err)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
