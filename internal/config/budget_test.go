package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestBudgetConfig: the budget section's defaults (coordination kafka, the ledger's
// settings), explicit values, and each bad value reported at its key and line. base has 19
// lines: the budget section appended starts at line 20.
func TestBudgetConfig(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		cfg, err := parse(base, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := BudgetConfig{Coordination: "kafka", Ledger: LedgerConfig{Topic: "augment-connector.budget",
			ClaimValidity: 2 * time.Second, MaxRequestTimeout: 30 * time.Second, UnavailableAfter: 10 * time.Second}}
		if diff := cmp.Diff(want, cfg.Budget); diff != "" {
			t.Errorf("budget (-want +got):\n%s", diff)
		}
	})
	t.Run("explicit", func(t *testing.T) {
		cfg, err := parse(base+`budget:
  coordination: local
  ledger:
    topic: shared.budget
    memberId: pod-a
    allowUnsafeTopic: true
    claimValidity: 1s
    maxRequestTimeout: 5s
    unavailableAfter: 1m
`, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := BudgetConfig{Coordination: "local", Ledger: LedgerConfig{Topic: "shared.budget", MemberID: "pod-a", AllowUnsafeTopic: true,
			ClaimValidity: time.Second, MaxRequestTimeout: 5 * time.Second, UnavailableAfter: time.Minute}}
		if diff := cmp.Diff(want, cfg.Budget); diff != "" {
			t.Errorf("budget (-want +got):\n%s", diff)
		}
		// local ignores the ledger: its maxRequestTimeout below the tenant's timeout and its
		// allowUnsafeTopic are no problem and no warning.
		if ws := cfg.Warnings(); len(ws) != 0 {
			t.Errorf("warnings %v, want none", ws)
		}
	})

	for _, tc := range []struct {
		name, budget string
		want         []string
	}{
		{name: "coordination", budget: "budget:\n  coordination: redis\n",
			want: []string{`test.yaml:21: budget.coordination: must be kafka or local, got "redis"`}},
		{name: "topic name", budget: "budget:\n  ledger:\n    topic: \"budget ledger\"\n",
			want: []string{`test.yaml:22: budget.ledger.topic: "budget ledger" is not a valid Kafka topic name`}},
		{name: "topic is an input", budget: "budget:\n  ledger:\n    topic: dbserver1.crm.customers\n",
			want: []string{`test.yaml:22: budget.ledger.topic: topic "dbserver1.crm.customers" is consumed by pipelines[0]; the ledger topic must be a topic of its own`}},
		{name: "topic is the dead-letter topic", budget: "deadLetter:\n  topic: dlq\nbudget:\n  ledger:\n    topic: dlq\n",
			want: []string{`test.yaml:24: budget.ledger.topic: topic "dlq" is the dead-letter topic; the ledger topic must be a topic of its own`}},
		{name: "member id", budget: "budget:\n  ledger:\n    memberId: \"pod a\"\n",
			want: []string{`test.yaml:22: budget.ledger.memberId: must be at most 200 printable ASCII characters without spaces, got "pod a"`}},
		{name: "claim validity too short", budget: "budget:\n  ledger:\n    claimValidity: 10ms\n",
			want: []string{`test.yaml:22: budget.ledger.claimValidity: must be between 100ms and 1m0s, got 10ms`}},
		{name: "claim validity without unit", budget: "budget:\n  ledger:\n    claimValidity: 2\n",
			want: []string{`test.yaml:22: budget.ledger.claimValidity: must be a duration like 500ms, 10s or 1m, got "2"`}},
		{name: "unavailable after", budget: "budget:\n  ledger:\n    unavailableAfter: 0s\n",
			want: []string{`test.yaml:22: budget.ledger.unavailableAfter: must be between 1s and 1h0m0s, got 0s`}},
		{name: "max request timeout below a tenant's", budget: "budget:\n  ledger:\n    maxRequestTimeout: 5s\n",
			want: []string{`test.yaml:22: budget.ledger.maxRequestTimeout: must be at least every tenant's requestTimeout: tenants.main.requestTimeout is 10s, above 5s`}},
		{name: "max request timeout zero", budget: "budget:\n  ledger:\n    maxRequestTimeout: 0s\n",
			want: []string{`test.yaml:22: budget.ledger.maxRequestTimeout: must be between 1ns and 10m, got 0s`}},
		{name: "allowUnsafeTopic not a bool", budget: "budget:\n  ledger:\n    allowUnsafeTopic: maybe\n",
			want: []string{`test.yaml:22: budget.ledger.allowUnsafeTopic: must be true or false, got "maybe"`}},
		{name: "unknown key", budget: "budget:\n  ledger:\n    topik: x\n",
			want: []string{`test.yaml:22: budget.ledger: unknown key "topik" (did you mean "topic"?)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := base + tc.budget
			cfg, err := parse(data, nil)
			if cfg != nil {
				t.Errorf("got a config with errors")
			}
			if diff := cmp.Diff(tc.want, errLines(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nconfig:\n%s", diff, data)
			}
		})
	}
}

// TestBudgetUnsafeTopicWarned: allowUnsafeTopic in coordination kafka loads, and is listed by
// Warnings at its line (check prints it, run logs it).
func TestBudgetUnsafeTopicWarned(t *testing.T) {
	cfg, err := parse(base+"budget:\n  ledger:\n    allowUnsafeTopic: true\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws := cfg.Warnings()
	if len(ws) != 1 || !strings.HasPrefix(ws[0].String(), "test.yaml:22: budget.ledger.allowUnsafeTopic: a budget ledger topic that may lose an acknowledged record is accepted") {
		t.Fatalf("warnings %v, want one at budget.ledger.allowUnsafeTopic, line 22", ws)
	}
}
