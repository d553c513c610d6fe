package ledger

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testParams = Params{
	Limit:          100,
	ClaimValidity:  2 * time.Second,
	RequestTimeout: 5 * time.Second,
	Epsilon:        250 * time.Millisecond,
}

func TestRecordRoundTrip(t *testing.T) {
	p := testParams
	tests := []struct {
		name string
		rec  Record
	}{
		{"hello", Record{Kind: KindHello, Member: "pod-a/1f"}},
		{"demand", Record{Kind: KindDemand, Tenant: "t1", Member: "pod-a/1f", Want: 3, Fresh: 1, Seen: 41, Seq: 7}},
		{"demand seen none", Record{Kind: KindDemand, Tenant: "t1", Member: "m", Want: 0, Seen: -1}},
		{"grant", Record{Kind: KindGrant, Tenant: "t1", Member: "m", Epoch: 2, Params: &p, Slots: []Slot{{2, 10}, {2, 11}}}},
		{"heartbeat", Record{Kind: KindGrant, Epoch: 2, Params: &p}},
		{"report", Record{Kind: KindReport, Tenant: "t1", Member: "m", Slots: []Slot{{2, 10}}, Use: UseUncertain}},
		{"takeover", Record{Kind: KindTakeover, Member: "m", Epoch: 3, Previous: 2}},
		{"demand with account", Record{Kind: KindDemand, Tenant: "t1", Member: "m", Want: 2, Seen: -1, Seq: 1,
			Limit: 100, Timeout: 5 * time.Second}},
		{"throttled", Record{Kind: KindThrottled, Tenant: "t1", Member: "m", RetryAfter: 3 * time.Second}},
		{"throttled no retry-after", Record{Kind: KindThrottled, Tenant: "t1", Member: "m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Encode(tt.rec)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if b[0] != recordVersion {
				t.Fatalf("first byte %d, want version %d", b[0], recordVersion)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tt.rec, got); diff != "" {
				t.Fatalf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"other version", "\x02{\"k\":1,\"m\":\"a\"}"},
		{"not json", "\x01{"},
		{"unknown kind", "\x01{\"k\":9}"},
		{"hello without member", "\x01{\"k\":1}"},
		{"demand fresh over want", "\x01{\"k\":2,\"t\":\"t\",\"m\":\"a\",\"w\":1,\"f\":2}"},
		{"demand negative", "\x01{\"k\":2,\"t\":\"t\",\"m\":\"a\",\"w\":-1}"},
		{"grant epoch 0", "\x01{\"k\":3,\"p\":{\"limit\":1}}"},
		{"grant without params", "\x01{\"k\":3,\"e\":1}"},
		{"grant limit 0", "\x01{\"k\":3,\"e\":1,\"p\":{\"limit\":0}}"},
		{"grant slots without member", "\x01{\"k\":3,\"e\":1,\"t\":\"t\",\"p\":{\"limit\":1},\"s\":[{\"e\":1,\"n\":1}]}"},
		{"grant slot of other epoch", "\x01{\"k\":3,\"e\":2,\"t\":\"t\",\"m\":\"a\",\"p\":{\"limit\":1},\"s\":[{\"e\":1,\"n\":1}]}"},
		{"report unknown use", "\x01{\"k\":4,\"t\":\"t\",\"m\":\"a\",\"s\":[{\"e\":1,\"n\":1}],\"u\":7}"},
		{"report no slots", "\x01{\"k\":4,\"t\":\"t\",\"m\":\"a\",\"u\":2}"},
		{"takeover skips an epoch", "\x01{\"k\":5,\"m\":\"a\",\"e\":3,\"prev\":1}"},
		{"wrong type", "\x01{\"k\":\"grant\"}"},
		{"demand negative limit", "\x01{\"k\":2,\"t\":\"t\",\"m\":\"a\",\"lim\":-1}"},
		{"demand negative timeout", "\x01{\"k\":2,\"t\":\"t\",\"m\":\"a\",\"to\":-5}"},
		{"throttled without tenant", "\x01{\"k\":6,\"m\":\"a\"}"},
		{"throttled negative retry-after", "\x01{\"k\":6,\"t\":\"t\",\"m\":\"a\",\"ra\":-1}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode(%q) = %v, want ErrMalformed", tt.in, err)
			}
		})
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	if _, err := Encode(Record{Kind: KindTakeover, Member: "m", Epoch: 1, Previous: 1}); err == nil {
		t.Fatal("Encode accepted a takeover whose epoch is not previous+1")
	}
}

// FuzzDecode checks that no input crashes the decoder and that whatever it accepts encodes
// back to a record that decodes to the same value.
func FuzzDecode(f *testing.F) {
	p := testParams
	for _, r := range []Record{
		{Kind: KindHello, Member: "a"},
		{Kind: KindDemand, Tenant: "t", Member: "a", Want: 2, Fresh: 1, Seen: -1},
		{Kind: KindGrant, Tenant: "t", Member: "a", Epoch: 1, Params: &p, Slots: []Slot{{1, 1}}},
		{Kind: KindReport, Tenant: "t", Member: "a", Slots: []Slot{{1, 1}}, Use: UseFinished},
		{Kind: KindTakeover, Member: "a", Epoch: 1},
		{Kind: KindDemand, Tenant: "t", Member: "a", Want: 1, Seen: 3, Limit: 30, Timeout: 5e9},
		{Kind: KindThrottled, Tenant: "t", Member: "a", RetryAfter: 1e9},
	} {
		b, err := Encode(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := Encode(r)
		if err != nil {
			t.Fatalf("Encode of a decoded record: %v", err)
		}
		r2, err := Decode(again)
		if err != nil {
			t.Fatalf("Decode of a re-encoded record: %v", err)
		}
		if diff := cmp.Diff(r, r2); diff != "" {
			t.Fatalf("re-encoded record differs (-first +second):\n%s", diff)
		}
	})
}

// TestVersion1Compatible pins the wire form a first-release member writes and reads: a
// demand without the account fields still decodes (no opinion on the limit), and the kind
// numbers are never renumbered.
func TestVersion1Compatible(t *testing.T) {
	old := "\x01{\"k\":2,\"t\":\"t\",\"m\":\"a\",\"w\":2,\"f\":1,\"seen\":4,\"seq\":9}"
	r, err := Decode([]byte(old))
	if err != nil {
		t.Fatalf("Decode of a first-release demand: %v", err)
	}
	if r.Limit != 0 || r.Timeout != 0 || r.Want != 2 {
		t.Fatalf("first-release demand decoded as %+v", r)
	}
	for k, want := range map[Kind]uint8{KindHello: 1, KindDemand: 2, KindGrant: 3, KindReport: 4, KindTakeover: 5, KindThrottled: 6} {
		if uint8(k) != want {
			t.Errorf("%s = %d, want %d", k, k, want)
		}
	}
	b, err := Encode(Record{Kind: KindThrottled, Tenant: "t", Member: "a", RetryAfter: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b[1:]), `{"k":6,"t":"t","m":"a","ra":2000000000}`; got != want {
		t.Fatalf("throttled encodes as %s, want %s", got, want)
	}
}
