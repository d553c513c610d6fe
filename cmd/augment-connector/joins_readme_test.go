package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeJoinsExample checks the README's complete joins configuration: with a broker and
// a tenant added, `check` accepts it, tables and lookups included.
func TestReadmeJoinsExample(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Joins\n")
	if !ok {
		t.Fatal("README has no Joins section")
	}
	_, block, ok := strings.Cut(section, "```yaml\n")
	if !ok {
		t.Fatal("the Joins section has no yaml block")
	}
	block, _, _ = strings.Cut(block, "```")
	if !strings.Contains(block, "tables:") || !strings.Contains(block, "lookupAll(") {
		t.Fatalf("the Joins example lost its tables or its lookups:\n%s", block)
	}
	cfg := "kafka:\n  brokers: [kafka-1:9092]\nschemaRegistry:\n  urls: [http://schema-registry:8081]\n" +
		"tenants:\n  acme:\n    cluster: vcc-na12\n    tenantId: acme\n    token: x\n" + block
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "check", "--config", path)
	if want := path + ": ok (2 pipelines, 2 tables, 1 tenants)\ntenant acme: POST https://vcc-na12.8x8.com/api/v1/interaction/data/{identifier}\n"; code != 0 || stdout != want {
		t.Fatalf("check: exit %d, stdout %q, stderr %q; want 0 and %q", code, stdout, stderr, want)
	}
}
