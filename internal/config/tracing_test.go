package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTracingDefaults: without a tracing section tracing is off, sampling everything it would
// trace, as augment-connector.
func TestTracingDefaults(t *testing.T) {
	cfg, err := parse(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := TracingConfig{SampleRatio: 1, ServiceName: DefaultServiceName}
	if diff := cmp.Diff(want, cfg.Tracing); diff != "" {
		t.Errorf("tracing defaults (-want +got):\n%s", diff)
	}
}

// TestTracingLoads: every key of the section, a header value from the environment.
func TestTracingLoads(t *testing.T) {
	cfg, err := parse(base+`tracing:
  enabled: true
  endpoint: https://collector.example.com:4318/otlp
  headers:
    x-api-key: ${OTEL_KEY}
  sampleRatio: 0.25
  serviceName: connector-eu
`, map[string]string{"OTEL_KEY": "k3y-from-env"})
	if err != nil {
		t.Fatal(err)
	}
	want := TracingConfig{Enabled: true, Endpoint: "https://collector.example.com:4318/otlp",
		Headers: map[string]Secret{"x-api-key": "k3y-from-env"}, SampleRatio: 0.25, ServiceName: "connector-eu"}
	if diff := cmp.Diff(want, cfg.Tracing); diff != "" {
		t.Errorf("tracing (-want +got):\n%s", diff)
	}
	if ws := cfg.Warnings(); len(ws) != 0 {
		t.Errorf("warnings %v, want none for an https endpoint", ws)
	}
}

// TestTracingErrors: each bad value is reported at its line with its key path, and no error
// quotes a header's value.
func TestTracingErrors(t *testing.T) {
	tests := []struct {
		name, section string
		want          []string
	}{
		{"no scheme", "  endpoint: otel-collector:4318\n",
			[]string{"test.yaml:21: tracing.endpoint: must be an http:// or https:// URL like http://otel-collector:4318, got \"otel-collector:4318\""}},
		{"http without insecure", "  endpoint: http://otel-collector:4318\n",
			[]string{"test.yaml:21: tracing.endpoint: is http://: spans and headers would travel in clear; use https:// or set tracing.insecure: true"}},
		{"credentials", "  endpoint: https://u:p@otel:4318\n",
			[]string{"test.yaml:21: tracing.endpoint: must not contain credentials; use tracing.headers"}},
		{"insecure with https", "  endpoint: https://otel:4318\n  insecure: true\n",
			[]string{"test.yaml:22: tracing.insecure: is true but tracing.endpoint is https://; insecure allows an http:// endpoint only"}},
		{"tls with http", "  endpoint: http://otel:4318\n  insecure: true\n  tls:\n    serverName: otel\n",
			[]string{"test.yaml:23: tracing.tls: applies to an https:// endpoint only"}},
		{"ratio out of range", "  sampleRatio: 1.5\n",
			[]string{"test.yaml:21: tracing.sampleRatio: must be between 0 and 1, got 1.5"}},
		{"ratio not a number", "  sampleRatio: half\n",
			[]string{"test.yaml:21: tracing.sampleRatio: must be a number, got \"half\""}},
		{"empty service name", "  serviceName: \"\"\n",
			[]string{"test.yaml:21: tracing.serviceName: must not be empty"}},
		{"bad header name", "  headers:\n    bad name: s3cr3t-header\n",
			[]string{"test.yaml:22: tracing.headers.bad name: is not a valid HTTP header name"}},
		{"unknown key", "  sampleRate: 0.5\n",
			[]string{`test.yaml:21: tracing: unknown key "sampleRate" (did you mean "sampleRatio"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(base+"tracing:\n"+tt.section, nil) // tracing: is line 20
			got := errLines(t, err)
			if len(got) == 0 {
				t.Fatalf("no error, want %q", tt.want)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			for _, l := range got {
				if strings.Contains(l, "s3cr3t-header") {
					t.Errorf("error quotes a header value: %s", l)
				}
			}
		})
	}
}

// TestTracingWarnings: headers sent over plain HTTP and an unverified collector are warned
// about, at their lines.
func TestTracingWarnings(t *testing.T) {
	cfg, err := parse(base+`tracing:
  enabled: true
  endpoint: http://otel:4318
  insecure: true
  headers:
    x-api-key: s3cr3t-header
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range cfg.Warnings() {
		got = append(got, w.String())
	}
	want := []string{"test.yaml:23: tracing.insecure: spans are exported over plain HTTP: the tracing.headers are sent unencrypted"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}
