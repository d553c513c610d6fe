package connector

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDeadLetterClassValues pins the classes' values: they are on the wire (HeaderClass) and in
// the records_dead_lettered_total label, matched by operators' tooling and the chaos suite.
func TestDeadLetterClassValues(t *testing.T) {
	for _, tc := range []struct {
		class deadLetterClass
		want  string
	}{
		{classDecode, "decode"},
		{classTransform, "transform"},
		{classLookupMiss, "lookup-miss"},
		{classReplay, "replay"},
		{classAPIRejected, "api_rejected"},
		{classForbidden, "forbidden"},
		{classNotFound, "not_found"},
		{classRetriesExhausted, "retries_exhausted"},
		{classStale, "stale"},
	} {
		if string(tc.class) != tc.want {
			t.Errorf("class %q, want %q on the wire", tc.class, tc.want)
		}
	}
}

// TestSourceTime: a replay reads the source record's timestamp from the dead letter's header;
// a record read from its own topic, or a dead letter without the header, keeps its own.
func TestSourceTime(t *testing.T) {
	own := time.UnixMilli(2_000_000)
	src := time.UnixMilli(1_000_000)
	with := []kgo.RecordHeader{{Key: HeaderSourceTimestamp, Value: []byte("1000000")}}
	for _, tc := range []struct {
		name    string
		headers []kgo.RecordHeader
		replay  bool
		want    time.Time
	}{
		{"replayed dead letter", with, true, src},
		{"replayed dead letter without the header", nil, true, own},
		{"replayed dead letter with a bad header", []kgo.RecordHeader{{Key: HeaderSourceTimestamp, Value: []byte("x")}}, true, own},
		{"a source record's header is not trusted", with, false, own},
	} {
		kr := record{Timestamp: own, Headers: tc.headers}
		if got := sourceTime(&kr, tc.replay); !got.Equal(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
