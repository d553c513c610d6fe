package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/augment-connector/augment-connector/internal/workload"
)

// TestCheckSampleShipped runs the shipped samples through config.example.yaml and checks the
// exact requests printed, with the privacy value masked.
func TestCheckSampleShipped(t *testing.T) {
	t.Setenv("ACME_TOKEN", "sample-token-value")
	var out, errb bytes.Buffer
	code := run([]string{"check", "--config", "../../config.example.yaml", "--sample", "../../samples/customers.ndjson"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"samples/customers.ndjson:3: pipeline=customers tenant=main\n  POST /api/v1/interaction/data/int-18f3a2c4b1d-AB12CD\n" +
			`  {"variables":[{"name":"_customerTier","value":"VIP","ivr":true,"display":true,"displayName":"Customer Tier","dataType":"text"},{"name":"_accountBalance","value":"1250.75","ivr":true,"display":true,"displayName":"VIP balance","dataType":"currency"},{"name":"_accountPin","value":"******","privacy":true}]}`,
		"POST /api/v1/interaction/data/a84b4c76e66710@pc33.example.com\n",
		`"displayName":"Balance"`,
		"samples/customers.ndjson:5: pipeline=customers filtered (filtered)",
		"samples/customers.ndjson:6: pipeline=customers skipped (delete)",
		"samples/customers.ndjson:7: pipeline=customers skipped (no identifier)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks:\n%s\n--- got:\n%s", want, got)
		}
	}
	for _, secret := range []string{"4321", "1111", "sample-token-value"} {
		if strings.Contains(got+errb.String(), secret) {
			t.Errorf("output shows %q", secret)
		}
	}
}

// TestCheckSampleDeadLetters: records that cannot succeed are reported with their reason and
// make check exit 1.
func TestCheckSampleDeadLetters(t *testing.T) {
	t.Setenv("ACME_TOKEN", "sample-token-value")
	long := strings.Repeat("x", 1001)
	b64 := base64.StdEncoding.EncodeToString([]byte(`{"op":"u","after":{"interaction_id":"int-1","tier":"` + long + `"}}`))
	lines := strings.Join([]string{
		`{"topic":"dbserver1.crm.customers","valueBase64":"` + b64 + `"}`,
		`{"topic":"nobody.reads.this","value":{}}`,
		`{"topic":"dbserver1.crm.customers","valueBase64":"%%%"}`,
		`{"topic":"dbserver1.crm.customers","value":{"op":"u","after":{"interaction_id":"int-2","tier":"Gold","balance":"1","pin":"9"}}}`,
	}, "\n")
	path := filepath.Join(t.TempDir(), "bad.ndjson")
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", "../../config.example.yaml", "--sample", path}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"bad.ndjson:1: dead letter: pipeline=customers class=transform: ",
		"must be at most 1000 characters",
		`bad.ndjson:2: dead letter: class=sample: no pipeline reads topic "nobody.reads.this"`,
		"bad.ndjson:3: dead letter: pipeline=customers class=decode: valueBase64: ",
		"bad.ndjson:4: pipeline=customers tenant=main",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q\n--- got:\n%s", want, got)
		}
	}
	if !strings.Contains(errb.String(), "3 records would be dead-lettered") {
		t.Errorf("stderr = %q", errb.String())
	}
	if strings.Contains(got, long) {
		t.Error("the over-long value was printed")
	}
}

// TestCheckSampleAvro feeds check a base64 Avro record (the workload's flat customer, both
// bare and Confluent-framed) with its .avsc, and checks the decoded values reach the request.
func TestCheckSampleAvro(t *testing.T) {
	t.Setenv("ACME_TOKEN", "sample-token-value")
	opts := workload.DefaultOptions()
	opts.Flat = true
	opts.Framing = workload.FramingAvro
	opts.Interactions = 5
	opts.Customers = 5
	gen, err := workload.NewGenerator(7, opts)
	if err != nil {
		t.Fatal(err)
	}
	var ev workload.Event
	for ev.Identifier == "" {
		ev = gen.Next()
	}
	schema, err := filepath.Abs("../../schemas/avro/customer-flat.avsc")
	if err != nil {
		t.Fatal(err)
	}
	framed := append([]byte{0, 0, 0, 0, 7}, ev.Value...)
	var lines []string
	for _, b := range [][]byte{ev.Value, framed} {
		lines = append(lines, `{"topic":"dbserver1.crm.customers","valueBase64":"`+base64.StdEncoding.EncodeToString(b)+`","schema":"`+schema+`"}`)
	}
	path := filepath.Join(t.TempDir(), "avro.ndjson")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", "../../config.example.yaml", "--sample", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	wantPath := "POST /api/v1/interaction/data/" + strings.ReplaceAll(ev.Identifier, "/", "%2F")
	if got := strings.Count(out.String(), wantPath); got != 2 {
		t.Errorf("%q appears %d times, want 2 (bare and framed):\n%s", wantPath, got, out.String())
	}
	if tier := ev.Vars["_customerTier"]; tier == "" || !strings.Contains(out.String(), `"name":"_customerTier","value":"`+tier+`"`) {
		t.Errorf("the decoded tier %q is not in the request:\n%s", tier, out.String())
	}
}

// TestCheckSampleKeys: a sample's key may be a string or a decoded key (JSON, or base64 Avro
// with its .avsc, Confluent-framed as Debezium writes keys); check prints a decoded key, and a
// key that does not decode is a decode dead letter.
func TestCheckSampleKeys(t *testing.T) {
	t.Setenv("ACME_TOKEN", "sample-token-value")
	dir := t.TempDir()
	schema := filepath.Join(dir, "key.avsc")
	if err := os.WriteFile(schema, []byte(`{"type":"record","name":"Key","fields":[{"name":"id","type":"long"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	avroKey := base64.StdEncoding.EncodeToString([]byte{0, 0, 0, 0, 3, 0x54}) // framed; zig-zag 42
	value := `"value":{"op":"u","after":{"interaction_id":"int-1","tier":"Gold","balance":"1","pin":"9"}}`
	lines := strings.Join([]string{
		`{"topic":"dbserver1.crm.customers","key":"42",` + value + `}`,
		`{"topic":"dbserver1.crm.customers","key":{"id":42},` + value + `}`,
		`{"topic":"dbserver1.crm.customers","keyBase64":"` + avroKey + `","keySchema":"` + schema + `",` + value + `}`,
		`{"topic":"dbserver1.crm.customers","keyBase64":"gA==","keySchema":"` + schema + `",` + value + `}`,
	}, "\n")
	path := filepath.Join(dir, "keys.ndjson")
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", "../../config.example.yaml", "--sample", path}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"keys.ndjson:1: pipeline=customers tenant=main",
		`keys.ndjson:2: key={"id":42} pipeline=customers tenant=main`,
		`keys.ndjson:3: key={"id":42} pipeline=customers tenant=main`,
		"keys.ndjson:4: dead letter: pipeline=customers class=decode: decoding the key: ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q\n--- got:\n%s", want, got)
		}
	}
}
