package app

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/augment-connector/augment-connector/internal/config"
)

const lintBase = `kafka:
  brokers: [localhost:9092]
tenants:
  main:
    cluster: vcc-na12
    tenantId: acme
    token: s3cr3t-token
pipelines:
  - name: a
    topics: [a]
    tenant: main
    decode: {format: json}
    identifier: after.id
    variables:
%s  - name: b
    topics: [b]
    tenant: main
    decode: {format: json}
    identifier: after.id
    variables:
%s`

// displayVars writes n display variables _d<from>.._d<from+n-1>.
func displayVars(from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "      - {name: _d%d, value: after.x, display: true}\n", i)
	}
	return b.String()
}

func TestLint(t *testing.T) {
	plain := "      - {name: _x, value: after.x}\n"
	tests := []struct {
		name string
		a, b string
		want []string
	}{
		{"seven display variables over two pipelines", displayVars(0, 4), displayVars(4, 3), nil},
		{"the same name in two pipelines is shown once", displayVars(0, 7), displayVars(0, 7), nil},
		{"eight display variables, one an expression", displayVars(0, 4),
			displayVars(4, 3) + "      - {name: _e, value: after.x, display: {expr: after.vip}}\n",
			[]string{`test.yaml:4: tenants.main: its pipelines can show agents 8 display variables in one interaction (_d0, _d1, _d2, _d3, _d4, _d5, _d6, _e); the API's guidance is 5 to 7`}},
		{"constants that fit their dataType", "      - {name: _a, value: '\"2024-07-10\"', dataType: date}\n      - {name: _b, value: '1250.75', dataType: currency}\n      - {name: _c, value: '\"09:30\"', dataType: time}\n      - {name: _p, value: '\"+1 (617) 555-1234\"', dataType: phone}\n      - {name: _n, value: '42', dataType: number}\n", plain, nil},
		{"constants that do not", "      - {name: _a, value: '\"July 10\"', dataType: date}\n      - {name: _b, value: '\"$12\"', dataType: currency}\n      - {name: _c, value: '\"soon\"', dataType: time}\n", plain,
			[]string{
				`test.yaml:15: pipelines[0].variables[0].value: "July 10" is not a date (YYYY-MM-DD), but dataType is date`,
				`test.yaml:16: pipelines[0].variables[1].value: "$12" is not a plain decimal number, but dataType is currency`,
				`test.yaml:17: pipelines[0].variables[2].value: "soon" is not a time (HH:MM or HH:MM:SS), but dataType is time`,
			}},
		{"a private constant is not quoted", "      - {name: _a, value: '\"1234x\"', dataType: number, privacy: true}\n", plain,
			[]string{`test.yaml:15: pipelines[0].variables[0].value: the (private) constant is not a plain decimal number, but dataType is number`}},
		{"an expression is not checked", "      - {name: _a, value: 'after.when', dataType: date}\n", plain, nil},
		{"private and tested by the IVR without a note", "      - {name: _pin, value: after.pin, privacy: true, ivr: true}\n", plain,
			[]string{`test.yaml:15: pipelines[0].variables[0]: _pin is both privacy: true and ivr: true; add a note saying why the IVR tests a private value (README, "Before you deploy")`}},
		{"with a note", "      - {name: _pin, value: after.pin, privacy: true, ivr: true, note: the IVR checks the caller's PIN}\n", plain, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkLint(t, fmt.Sprintf(lintBase, tc.a, tc.b), tc.want)
		})
	}
}

// TestLintMaxRecordAge: a maxRecordAge shorter than the tenant's notFoundGrace is warned about
// at its line; off (0) or at least the grace is not.
func TestLintMaxRecordAge(t *testing.T) {
	const cfgText = `kafka:
  brokers: [localhost:9092]
tenants:
  main:
    cluster: vcc-na12
    tenantId: acme
    token: s3cr3t-token
    notFoundGrace: 1m
pipelines:
  - name: a
    topics: [a]
    tenant: main
    decode: {format: json}
    identifier: after.id
    maxRecordAge: %s
    variables: [{name: _x, value: after.x}]
`
	for _, tc := range []struct {
		age  string
		want []string
	}{
		{"0s", nil},
		{"1m", nil},
		{"15m", nil},
		{"30s", []string{"test.yaml:15: pipelines[0].maxRecordAge: 30s is shorter than tenants.main.notFoundGrace (1m0s): a record could go stale before its call appears"}},
	} {
		t.Run(tc.age, func(t *testing.T) {
			checkLint(t, fmt.Sprintf(cfgText, tc.age), tc.want)
		})
	}
}

// checkLint compiles the config text (as test.yaml) and compares its lint warnings with want.
func checkLint(t *testing.T, text string, want []string) {
	t.Helper()
	cfg, err := config.Parse([]byte(text), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range c.Lint() {
		got = append(got, w.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}
