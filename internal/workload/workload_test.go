package workload

import (
	"context"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func avroOptions() Options {
	o := DefaultOptions()
	o.Framing = FramingAvro
	o.Tombstones = true
	return o
}

func TestDeterminism(t *testing.T) {
	gen := func(seed uint64, o Options) []Event {
		g, err := NewGenerator(seed, o)
		if err != nil {
			t.Fatal(err)
		}
		return g.Generate(2000)
	}
	for _, f := range []Framing{FramingConfluent, FramingAvro, FramingJSON} {
		o := avroOptions()
		o.Framing = f
		o.IDs = SchemaIDs{CustomerKey: 1, CustomerValue: 2, OrderKey: 3, OrderValue: 4, FlatKey: 5, CustomerFlat: 6}
		a, b := gen(7, o), gen(7, o)
		for i := range a {
			if !reflect.DeepEqual(a[i], b[i]) {
				t.Fatalf("%s: same seed, event %d differs (-first +second):\n%s", f, i, cmp.Diff(a[i], b[i]))
			}
		}
		if reflect.DeepEqual(a, gen(8, o)) {
			t.Errorf("%s: seeds 7 and 8 give the same events", f)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Options)
		want string // substring of the error; "" for none
	}{
		{"defaults with ids", func(o *Options) { o.IDs = SchemaIDs{1, 2, 3, 4, 5, 6} }, ""},
		{"confluent without ids", func(o *Options) {}, "schema ids"},
		{"flat confluent needs only flat ids", func(o *Options) { o.Flat = true; o.IDs = SchemaIDs{FlatKey: 5, CustomerFlat: 6} }, ""},
		{"no interactions", func(o *Options) { o.Framing = FramingJSON; o.Interactions = 0 }, "interactions"},
		{"no customers", func(o *Options) { o.Framing = FramingJSON; o.Customers = 0 }, "customers"},
		{"ratio above 1", func(o *Options) { o.Framing = FramingJSON; o.SIPRatio = 1.5 }, "sipRatio"},
		{"update+delete above 1", func(o *Options) { o.Framing = FramingJSON; o.UpdateRatio, o.DeleteRatio = 0.8, 0.3 }, "updateRatio + deleteRatio"},
		{"unknown framing", func(o *Options) { o.Framing = 9 }, "framing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			tt.mod(&o)
			_, err := NewGenerator(1, o)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

var (
	intID = regexp.MustCompile(`^int-[0-9a-f]{11}-[A-Z0-9]{6}$`)
	sipID = regexp.MustCompile(`^[0-9a-f]{14}@pc[0-9]{1,2}\.example\.com$`)
)

func TestInteractionIDs(t *testing.T) {
	o := avroOptions()
	o.Interactions = 4000
	g, err := NewGenerator(3, o)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	sip := 0
	for _, id := range g.interactions {
		switch {
		case sipID.MatchString(id):
			sip++
		case !intID.MatchString(id):
			t.Fatalf("interaction id %q has neither form", id)
		}
		if seen[id] {
			t.Fatalf("interaction id %q drawn twice", id)
		}
		seen[id] = true
	}
	if frac := float64(sip) / float64(len(g.interactions)); frac < 0.08 || frac > 0.12 {
		t.Errorf("SIP share %.3f, want about 0.10", frac)
	}
}

func TestDistribution(t *testing.T) {
	o := avroOptions()
	g, err := NewGenerator(11, o)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	evs := g.Generate(n)
	ops := map[string]map[string]int{}
	keyOf := map[string]string{} // topic + identifier -> the one key carrying it
	withID, tombstones := 0, 0
	for _, ev := range evs {
		if ops[ev.Topic] == nil {
			ops[ev.Topic] = map[string]int{}
		}
		ops[ev.Topic][ev.Op]++
		if ev.Value == nil {
			tombstones++
			if ev.Identifier != "" || ev.Vars != nil {
				t.Fatalf("tombstone with identifier %q", ev.Identifier)
			}
			continue
		}
		if (ev.Identifier == "") != (ev.Vars == nil) {
			t.Fatalf("identifier %q with vars %v", ev.Identifier, ev.Vars)
		}
		if ev.Identifier == "" {
			continue
		}
		withID++
		k := ev.Topic + "|" + ev.Identifier
		if prev, ok := keyOf[k]; ok && prev != string(ev.Key) {
			t.Fatalf("identifier %q carried by two keys on %s: the final state would depend on partitioning", ev.Identifier, ev.Topic)
		}
		keyOf[k] = string(ev.Key)
	}
	records := n - tombstones
	orders := ops[OrdersTopic]["c"] + ops[OrdersTopic]["u"] + ops[OrdersTopic]["d"]
	deletes := ops[OrdersTopic]["d"] + ops[CustomersTopic]["d"]
	check := func(what string, got, lo, hi float64) {
		t.Helper()
		if got < lo || got > hi {
			t.Errorf("%s = %.3f, want within [%.2f, %.2f]", what, got, lo, hi)
		}
	}
	check("order share", float64(orders)/float64(records), 0.27, 0.33)
	check("delete share", float64(deletes)/float64(records), 0.04, 0.06)
	check("share with an identifier", float64(withID)/float64(records), 0.3, 0.9)
	// Every row inserted and not deleted is live: inserts - deletes is the table's size now.
	for topic, p := range map[string]*pool{CustomersTopic: &g.custPool, OrdersTopic: &g.orderPool} {
		if got := ops[topic]["c"] - ops[topic]["d"]; got != len(p.live) {
			t.Errorf("%s: %d inserts - %d deletes = %d, but %d rows live", topic, ops[topic]["c"], ops[topic]["d"], got, len(p.live))
		}
	}
	if tombstones != deletes {
		t.Errorf("%d tombstones for %d deletes", tombstones, deletes)
	}
	if len(keyOf) < 50 {
		t.Errorf("only %d distinct (topic, identifier) pairs", len(keyOf))
	}
	t.Logf("ops %v, with identifier %d/%d, identifiers %d", ops, withID, records, len(keyOf))
}

func TestFinalState(t *testing.T) {
	evs := []Event{
		{Identifier: "a", Vars: map[string]string{"_x": "1", "_y": "1"}},
		{Identifier: "", Vars: nil},
		{Identifier: "b", Vars: map[string]string{"_x": "9"}},
		{Identifier: "a", Vars: map[string]string{"_x": "2"}},
	}
	want := map[string]map[string]string{"a": {"_x": "2", "_y": "1"}, "b": {"_x": "9"}}
	if diff := cmp.Diff(want, FinalState(evs)); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestFormatCents(t *testing.T) {
	for c, want := range map[int64]string{0: "0.00", 5: "0.05", -5: "-0.05", 125075: "1250.75", -50000: "-500.00", 2000000: "20000.00"} {
		if got := formatCents(c); got != want {
			t.Errorf("formatCents(%d) = %q, want %q", c, got, want)
		}
	}
}

func TestRegister(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ids, err := Register(ctx, cl, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for subject, id := range map[string]int{
		CustomersTopic + "-key": ids.CustomerKey, CustomersTopic + "-value": ids.CustomerValue,
		OrdersTopic + "-key": ids.OrderKey, OrdersTopic + "-value": ids.OrderValue,
		FlatTopic + "-key": ids.FlatKey, FlatTopic + "-value": ids.CustomerFlat,
	} {
		ss, err := cl.SchemaByVersion(ctx, subject, -1)
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		if ss.ID != id {
			t.Errorf("%s: registry has id %d, Register returned %d", subject, ss.ID, id)
		}
	}
	again, err := Register(ctx, cl, DefaultOptions())
	if err != nil || again != ids {
		t.Errorf("second Register = %+v, %v; want %+v", again, err, ids)
	}
}
