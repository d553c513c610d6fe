package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/augment-connector/augment-connector/internal/sim"
	"github.com/augment-connector/augment-connector/internal/sim/simtest"
)

// TestGetPrintsInteractionMasked writes variables to the simulator and reads them back with
// `get`: context and variables are printed, the privacy value is not.
func TestGetPrintsInteractionMasked(t *testing.T) {
	_, url := simtest.Start(t, sim.Config{Tenants: []sim.Tenant{{ID: "acme", Token: "get-token-123"}}, AutoCreate: true, PlainHTTP: true})
	body := `{"variables":[{"name":"_customerTier","value":"VIP","ivr":true,"display":true,"displayName":"Tier"},{"name":"_accountPin","value":"982451","privacy":true,"ivr":true}]}`
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/interaction/data/call%40pc33.example.com", strings.NewReader(body))
	req.SetBasicAuth("acme", "get-token-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("seeding the simulator: %d", resp.StatusCode)
	}

	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(`kafka:
  brokers: [127.0.0.1:1]
tenants:
  acme:
    baseURL: `+url+`
    allowInsecureHTTP: true
    tenantId: acme
    token: get-token-123
pipelines:
  - name: p
    topics: [t]
    tenant: acme
    decode: {format: json}
    identifier: after.id
    variables:
      - name: _x
        value: after.x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"get", "--config", cfg, "call@pc33.example.com"}, &out, &errb); code != 0 {
		t.Fatalf("get exited %d: %s", code, errb.String())
	}
	got := out.String()
	for _, want := range []string{"interaction call@pc33.example.com", "_customerTier", "VIP", "ivr,display", "Tier", "_accountPin", masked} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got+errb.String(), "982451") || strings.Contains(got+errb.String(), "get-token-123") {
		t.Errorf("output shows a privacy value or the token:\n%s", got)
	}
	// An interaction that does not exist: the API's 404 message, exit 1.
	out.Reset()
	errb.Reset()
	if code := run([]string{"get", "--config", cfg, "int-missing"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "Interaction not found") {
		t.Fatalf("get of a missing interaction: exit %d, stderr %q", code, errb.String())
	}
}
