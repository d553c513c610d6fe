package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/schemas"
	"github.com/augment-connector/augment-connector/transform"
)

// TestTokenFileIsReadAgain: a tenant whose token comes from a file gets a ReloadToken that
// reads the file as it is now, so a rotated Kubernetes Secret heals a blocked tenant without a
// restart; a tenant with an inline token gets none.
func TestTokenFileIsReadAgain(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `kafka:
  brokers: [kafka-1:9092]
tenants:
  fromfile:
    cluster: vcc-na12
    tenantId: a
    tokenFile: token
  inline:
    cluster: vcc-na12
    tenantId: b
    token: inline-token
pipelines:
  - name: p
    topics: [t]
    tenant: fromfile
    decode: {format: json}
    identifier: after.id
    variables:
      - {name: _a, value: after.a}
`
	opts := loadOptions(t, dir, cfg)
	if opts.Tenants["inline"].ReloadToken != nil {
		t.Error("a tenant with an inline token has a ReloadToken")
	}
	to := opts.Tenants["fromfile"]
	if to.Token != "first" || to.ReloadToken == nil {
		t.Fatalf("token %q, ReloadToken set %v: want the file's token and a reload", to.Token, to.ReloadToken != nil)
	}
	if err := os.WriteFile(tokenFile, []byte("rotated\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := to.ReloadToken(); err != nil || tok != "rotated" {
		t.Fatalf("ReloadToken = %q, %v; want the rotated token", tok, err)
	}
	if err := os.WriteFile(tokenFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := to.ReloadToken(); err == nil {
		t.Fatal("ReloadToken of an empty file: no error")
	}
}

// TestDecoderHonoursMaxRecordBytes: each pipeline's decoder refuses a value over its own
// decode.maxRecordBytes with a permanent error (dead-lettered with class decode), and decodes
// one under it.
func TestDecoderHonoursMaxRecordBytes(t *testing.T) {
	dir := t.TempDir()
	cfg := `kafka:
  brokers: [kafka-1:9092]
tenants:
  main:
    cluster: vcc-na12
    tenantId: a
    token: t
pipelines:
  - name: small
    topics: [a]
    tenant: main
    decode: {format: json, maxRecordBytes: 16}
    identifier: after.id
    variables:
      - {name: _a, value: after.a}
  - name: default
    topics: [b]
    tenant: main
    decode: {format: json}
    identifier: after.id
    variables:
      - {name: _a, value: after.a}
`
	opts := loadOptions(t, dir, cfg)
	value := []byte(`{"after":{"id":1,"a":"xxxxxxxx"}}`)
	for _, tc := range []struct {
		pipeline int
		tooLarge bool
	}{{0, true}, {1, false}} {
		_, err := opts.Pipelines[tc.pipeline].Decoder.Decode(context.Background(), value)
		if got := errors.Is(err, schemas.ErrTooLarge); got != tc.tooLarge || (got && !schemas.IsPermanent(err)) {
			t.Errorf("pipeline %q: Decode: %v; want ErrTooLarge %v", opts.Pipelines[tc.pipeline].Name, err, tc.tooLarge)
		}
	}
}

// loadOptions writes cfg as dir/config.yaml, loads it and maps it to the connector's options.
func loadOptions(t *testing.T, dir, cfg string) connector.Options {
	t.Helper()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := c.Options(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// TestBudgetOptions: the budget section maps to the connector's BudgetOptions: kafka by
// default with the ledger's defaults, every key carried, and local without the ledger's.
func TestBudgetOptions(t *testing.T) {
	const head = `kafka:
  brokers: [kafka-1:9092]
tenants:
  main:
    cluster: vcc-na12
    tenantId: a
    token: t
pipelines:
  - name: p
    topics: [t]
    tenant: main
    decode: {format: json}
    identifier: after.id
    variables:
      - {name: _a, value: after.a}
`
	for _, tc := range []struct {
		name, budget string
		want         connector.BudgetOptions
	}{
		{name: "default", want: connector.BudgetOptions{Coordination: connector.BudgetKafka, Topic: "augment-connector.budget",
			ClaimValidity: 2 * time.Second, MaxRequestTimeout: 30 * time.Second, UnavailableAfter: 10 * time.Second}},
		{name: "every key", budget: `budget:
  coordination: kafka
  ledger:
    topic: shared.budget
    memberId: pod-a
    allowUnsafeTopic: true
    claimValidity: 1500ms
    maxRequestTimeout: 20s
    unavailableAfter: 5s
`, want: connector.BudgetOptions{Coordination: connector.BudgetKafka, Topic: "shared.budget", MemberID: "pod-a", AllowUnsafeTopic: true,
			ClaimValidity: 1500 * time.Millisecond, MaxRequestTimeout: 20 * time.Second, UnavailableAfter: 5 * time.Second}},
		{name: "local", budget: "budget:\n  coordination: local\n", want: connector.BudgetOptions{Coordination: connector.BudgetLocal}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := loadOptions(t, t.TempDir(), head+tc.budget)
			if opts.Budget != tc.want {
				t.Fatalf("budget options %+v, want %+v", opts.Budget, tc.want)
			}
		})
	}
}

// TestStaleAndGoneOptions: recordTime and requireActive reach the compiled pipeline, and
// maxRecordAge, onStale, notFoundGrace and onGone the connector's options, defaults included.
func TestStaleAndGoneOptions(t *testing.T) {
	const cfg = `kafka:
  brokers: [kafka-1:9092]
tenants:
  main:
    cluster: vcc-na12
    tenantId: a
    token: t
    notFoundGrace: 2m
    onGone: skip
  other:
    cluster: vcc-na12
    tenantId: b
    token: t
tables:
  - {name: active, topic: calls, decode: {format: json}, key: after.call, value: {agent: after.agent}}
pipelines:
  - name: p
    topics: [t]
    tenant: main
    decode: {format: json}
    identifier: after.calls
    recordTime: after.changed_ms
    maxRecordAge: 15m
    onStale: deadLetter
    requireActive: {table: active}
    variables:
      - {name: _a, value: after.a}
  - name: q
    topics: [u]
    tenant: other
    decode: {format: json}
    identifier: after.id
    variables:
      - {name: _a, value: after.a}
`
	opts := loadOptions(t, t.TempDir(), cfg)
	type pipe struct {
		MaxRecordAge time.Duration
		OnStale      string
	}
	type tenant struct {
		NotFoundGrace time.Duration
		OnGone        string
	}
	var gotP []pipe
	for _, p := range opts.Pipelines {
		gotP = append(gotP, pipe{p.MaxRecordAge, p.OnStale})
	}
	gotT := map[string]tenant{}
	for name, to := range opts.Tenants {
		gotT[name] = tenant{to.NotFoundGrace, to.OnGone}
	}
	if diff := cmp.Diff([]pipe{{15 * time.Minute, connector.OnStaleDeadLetter}, {0, connector.OnStaleSkip}}, gotP); diff != "" {
		t.Errorf("pipelines (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]tenant{"main": {2 * time.Minute, connector.OnGoneSkip}, "other": {30 * time.Second, connector.OnGoneDeadLetter}}, gotT); diff != "" {
		t.Errorf("tenants (-want +got):\n%s", diff)
	}
	// The compiled pipeline reads recordTime and requireActive: an inactive call is dropped
	// and the data time comes from the record.
	res, err := opts.Pipelines[0].Transform.Apply(&transform.Record{Value: map[string]any{"calls": []any{"c1"}, "changed_ms": int64(1720607400000), "a": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != transform.Skipped || res.Reason != transform.ReasonInactive || res.DataTime.UnixMilli() != 1720607400000 {
		t.Errorf("result %+v: want skipped (inactive) with the record's data time", res)
	}
}
