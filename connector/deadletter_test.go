package connector

import "testing"

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
	} {
		if string(tc.class) != tc.want {
			t.Errorf("class %q, want %q on the wire", tc.class, tc.want)
		}
	}
}
