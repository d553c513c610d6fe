package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/kafkatest"
)

func letterHeaders(class, pipeline string) []kgo.RecordHeader {
	return []kgo.RecordHeader{{Key: connector.HeaderClass, Value: []byte(class)}, {Key: connector.HeaderPipeline, Value: []byte(pipeline)}}
}

func TestReplayFilter(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name                             string
		classes, pipelines, since, until string
		class, pipeline                  string
		at                               time.Time
		want                             bool
	}{
		{name: "default: a decode letter", class: "decode", pipeline: "p", at: now, want: true},
		{name: "default leaves not_found out", class: "not_found", pipeline: "p", at: now, want: false},
		{name: "default leaves stale out", class: "stale", pipeline: "p", at: now, want: false},
		{name: "asked for not_found", classes: "not_found,decode", class: "not_found", pipeline: "p", at: now, want: true},
		{name: "all", classes: "all", class: "not_found", pipeline: "p", at: now, want: true},
		{name: "another class", classes: "decode", class: "transform", pipeline: "p", at: now, want: false},
		{name: "pipeline", pipelines: "a, b", class: "decode", pipeline: "b", at: now, want: true},
		{name: "other pipeline", pipelines: "a", class: "decode", pipeline: "b", at: now, want: false},
		{name: "since (a duration ago)", since: "2h", class: "decode", at: now.Add(-time.Hour), want: true},
		{name: "before since", since: "2h", class: "decode", at: now.Add(-3 * time.Hour), want: false},
		{name: "until excludes its instant", until: "2026-12-04T11:00:00Z", class: "decode", at: now.Add(-time.Hour), want: false},
		{name: "before until", until: "2026-12-04T11:00:00Z", class: "decode", at: now.Add(-90 * time.Minute), want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := newReplayFilter(tc.classes, tc.pipelines, tc.since, tc.until, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.match(letterHeaders(tc.class, tc.pipeline), tc.at); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
	for _, bad := range [][2]string{{"yesterday", ""}, {"", "-1h"}, {"1h", "2h"}} {
		if _, err := newReplayFilter("", "", bad[0], bad[1], now); err == nil {
			t.Errorf("since %q until %q: no error", bad[0], bad[1])
		}
	}
}

// TestReplayDryRun: replay --dry-run lists the dead letters its filters select (never their
// values), leaves not_found out by default, and sends and commits nothing.
func TestReplayDryRun(t *testing.T) {
	e := newLiveEnv(t)
	cfg := e.config(t, nil)
	recs := []*kgo.Record{
		{Topic: e.dlq, Value: []byte(`{"pin":"4821"}`), Headers: letterHeaders("decode", "calls")},
		{Topic: e.dlq, Value: []byte(`{"pin":"4821"}`), Headers: letterHeaders("not_found", "calls")},
		{Topic: e.dlq, Value: []byte(`{"pin":"4821"}`), Headers: letterHeaders("transform", "customers")},
		{Topic: e.dlq, Headers: []kgo.RecordHeader{{Key: connector.HeaderCheck, Value: []byte("live")}}},
	}
	kafkatest.ProduceSync(t, e.seeds, recs...)
	before := e.srv.Stats().Total
	run1 := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(append([]string{"replay", "--config", cfg, "--dry-run"}, args...), &out, &errb); code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
		}
		return out.String()
	}
	got := run1()
	if !strings.Contains(got, "dry run: would replay 2 of 3 dead letters of "+e.dlq+" (decode:1,transform:1); nothing sent, nothing committed") ||
		!strings.Contains(got, "class=decode") || strings.Contains(got, "class=not_found") || strings.Contains(got, "4821") {
		t.Errorf("default dry run:\n%s", got)
	}
	if got := run1("--class", "all", "--pipeline", "calls"); !strings.Contains(got, "would replay 2 of 3 dead letters of "+e.dlq+" (decode:1,not_found:1)") {
		t.Errorf("--class all --pipeline calls:\n%s", got)
	}
	if n := e.srv.Stats().Total - before; n != 0 {
		t.Errorf("a dry run sent %d requests", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, "live-check-replay")
	if err == nil && len(offs) > 0 {
		t.Errorf("a dry run committed offsets: %v", offs)
	}
}
