//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/api"
)

// callSchemaV1 is the Avro schema of the poison scenario's records; balance is a union so
// that a record can carry a map where the pipeline needs a scalar (a transform failure).
const callSchemaV1 = `{"type":"record","name":"Call","namespace":"chaos","fields":[
  {"name":"id","type":"string"},
  {"name":"seq","type":"int"},
  {"name":"tier","type":"string"},
  {"name":"balance","type":["string",{"type":"map","values":"string"}]},
  {"name":"pin","type":"string"},
  {"name":"vip","type":"boolean"}]}`

// callSchemaV2 adds a field: a schema id the connector has not fetched before, registered
// while the registry is down.
const callSchemaV2 = `{"type":"record","name":"Call","namespace":"chaos","fields":[
  {"name":"id","type":"string"},
  {"name":"seq","type":"int"},
  {"name":"tier","type":"string"},
  {"name":"balance","type":["string",{"type":"map","values":"string"}]},
  {"name":"pin","type":"string"},
  {"name":"vip","type":"boolean"},
  {"name":"region","type":"string","default":"emea"}]}`

// avroCodec encodes Events as Confluent-framed Avro of one registered schema.
type avroCodec struct {
	id    int
	codec *goavro.Codec
	v2    bool
}

func (c *avroCodec) native(ev *Event, balance any) map[string]any {
	m := map[string]any{"id": ev.ID, "seq": int32(ev.Seq), "tier": ev.Tier, "balance": balance, "pin": ev.Pin, "vip": ev.VIP}
	if c.v2 {
		m["region"] = "emea"
	}
	return m
}

func (c *avroCodec) encodeNative(m map[string]any) []byte {
	body, err := c.codec.BinaryFromNative(nil, m)
	if err != nil {
		panic(fmt.Sprintf("encoding %v: %v", m, err)) // the schema is the test's own
	}
	return frame(c.id, body)
}

func (c *avroCodec) encode(ev *Event) []byte {
	return c.encodeNative(c.native(ev, goavro.Union("string", ev.Balance)))
}

// frame prefixes body with the Confluent wire format's magic byte and schema id.
func frame(id int, body []byte) []byte {
	b := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return append(b, body...)
}

// hostileMapBody is ev as callSchemaV1 encodes it, but with a balance that is the map branch
// of its union claiming 2^30 entries: six bytes that would make goavro allocate gigabytes.
func hostileMapBody(ev *Event) []byte {
	str := func(b []byte, s string) []byte { return append(zigzag(b, int64(len(s))), s...) }
	b := str(nil, ev.ID)
	b = zigzag(b, int64(ev.Seq))
	b = str(b, ev.Tier)
	b = zigzag(b, 1)     // union branch: the map
	b = zigzag(b, 1<<30) // block count
	b = zigzag(b, 0)     // end of the map
	b = str(b, ev.Pin)
	return append(b, 0) // vip false
}

// zigzag appends v as Avro encodes an int or long.
func zigzag(b []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

// TestChaosPoisonRecords streams Avro records (schema registry framing) with poison records
// among them: garbage bytes, a truncated body, an unknown schema id, a record whose value
// breaks the transform, a value over 1000 characters, an identifier whose interaction has
// ended (404 past the not-found window), and a hostile Avro map whose block count of 2^30
// would exhaust memory in goavro (issue 12 point 2). Each must land in the dead-letter topic once, with
// its original key and bytes and headers naming the source and the reason, and be committed
// past, while every other record is written as usual. Midway the schema registry goes down
// while records of a schema id the connector has not fetched yet arrive: those are retried
// (no write, no dead letter, no commit past them) until it is back, then written.
//
// A bad variable name cannot come from a record: names are static in the pipeline and
// validated when the configuration is loaded (`augment-connector check` refuses them), so
// that case is config validation's, not this scenario's.
func TestChaosPoisonRecords(t *testing.T) {
	t.Parallel()
	const (
		events   = 8_000
		ids      = 500
		perKind  = 3
		outage   = 10 * time.Second
		phaseA   = events / 2     // v1 records with the poison among them
		phaseB   = events * 3 / 4 // v2 records produced while the registry is down
		batch    = 250
		unknown  = 9999 // a schema id the registry does not have
		maxValue = api.MaxValueLen
	)
	e := NewEnv(t, "poison", EnvOptions{})
	reg := startRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	srCl, err := sr.NewClient(sr.URLs(reg.FakeURL()))
	if err != nil {
		t.Fatal(err)
	}
	register := func(schema string, v2 bool) *avroCodec {
		ss, err := srCl.CreateSchema(ctx, e.Topic+"-value", sr.Schema{Schema: schema, Type: sr.TypeAvro})
		if err != nil {
			t.Fatalf("registering schema: %v", err)
		}
		c, err := goavro.NewCodec(schema)
		if err != nil {
			t.Fatal(err)
		}
		return &avroCodec{id: ss.ID, codec: c, v2: v2}
	}
	v1 := register(callSchemaV1, false)
	if v1.id == unknown {
		t.Fatalf("the registry gave schema id %d, the id meant to be unknown", unknown)
	}

	w := NewWorkload(5, events, ids)
	// The poison: each kind's records, the class and a part of the message their dead
	// letters must carry, and the bytes produced (checked against the dead letter's).
	type poison struct {
		kind, class, msg string
		value            func(ev *Event) []byte
	}
	kinds := []poison{
		{kind: "garbage", class: "decode", msg: "", value: func(ev *Event) []byte {
			return append([]byte{0xff, 0xfe}, []byte("not a confluent frame "+ev.ID)...)
		}},
		{kind: "truncated", class: "decode", msg: "", value: func(ev *Event) []byte {
			return v1.encode(ev)[:8] // a frame of a known schema with the body cut short
		}},
		{kind: "unknown-schema", class: "decode", msg: strconv.Itoa(unknown), value: func(ev *Event) []byte {
			b := v1.encode(ev)
			binary.BigEndian.PutUint32(b[1:5], unknown)
			return b
		}},
		{kind: "transform", class: "transform", msg: "_balance", value: func(ev *Event) []byte {
			return v1.encodeNative(v1.native(ev, goavro.Union("map", map[string]any{"amount": ev.Balance})))
		}},
		{kind: "too-long", class: "transform", msg: strconv.Itoa(maxValue), value: func(ev *Event) []byte {
			return v1.encodeNative(v1.native(ev, goavro.Union("string", strings.Repeat("9", maxValue+1))))
		}},
		// goavro allocates a map by the block count it reads: 2^30 entries in five bytes would
		// end the process with "fatal error: out of memory" (no recover catches it), on every
		// replica the partition moves to. The decoder's guard refuses it first.
		{kind: "hostile-map", class: "decode", msg: "exceeds a decoding bound", value: func(ev *Event) []byte {
			return frame(v1.id, hostileMapBody(ev))
		}},
		{kind: "gone", class: "not_found", msg: "404", value: func(ev *Event) []byte { return v1.encode(ev) }},
	}
	poisonOf := make(map[string]*poison) // identifier -> kind
	var poisonIdx []int
	for k := range kinds {
		for n := range perKind {
			id := fmt.Sprintf("poison-%s-%d", kinds[k].kind, n+1)
			if kinds[k].kind == "gone" {
				// An interaction that existed and ended: the API answers 404 for good.
				if err := e.Sim.CreateInteraction(simTenant, api.Interaction{InteractionID: id}); err != nil {
					t.Fatal(err)
				}
				if err := e.Sim.EndInteraction(simTenant, id); err != nil {
					t.Fatal(err)
				}
			}
			i := w.AddEvent(Event{ID: id, Tier: "gold", Balance: "1.00", Pin: fmt.Sprintf("pv%016x", 0xbad0000+k*16+n)})
			poisonOf[id] = &kinds[k]
			poisonIdx = append(poisonIdx, i)
		}
	}
	isPoison := func(ev *Event) bool { return poisonOf[ev.ID] != nil }
	produced := make(map[string][]byte) // poison identifier -> value produced
	encode := func(c *avroCodec) func(*Event) []byte {
		return func(ev *Event) []byte {
			if p := poisonOf[ev.ID]; p != nil {
				b := p.value(ev)
				produced[ev.ID] = b
				return b
			}
			return c.encode(ev)
		}
	}

	// The dead letters must hold the original bytes: the pipeline's _pin is privacy: true, so
	// that takes deadLetter.includePrivateValues (issue 12 point 4).
	cfg := e.WriteConfig("poison", ConfigOptions{IncludePrivateValues: true})
	useRegistry(t, cfg, reg.URL)
	p := e.StartConnector(cfg)

	// Phase A: v1 records, a poison record after every few batches.
	next := 0
	for from := 0; from < phaseA; from += batch {
		if err := e.ProduceEncoded(w, from, min(phaseA, from+batch), encode(v1)); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if next < len(poisonIdx) {
				if err := e.ProduceEncoded(w, poisonIdx[next], poisonIdx[next]+1, encode(v1)); err != nil {
					t.Fatal(err)
				}
				next++
			}
		}
	}
	if next != len(poisonIdx) {
		t.Fatalf("produced %d of %d poison records in phase A", next, len(poisonIdx))
	}
	e.WaitCommitted(e.Group, e.Topic, 2*time.Minute)
	if !p.Running() {
		t.Fatal("the connector is not running after phase A's poison records")
	}
	dlqBefore := len(e.ReadTopic(e.DLQ))

	// Phase B: the registry goes down, then records of a schema the connector never fetched
	// arrive. They must wait: no write, no dead letter, no commit past them.
	reg.Stop()
	v2 := register(callSchemaV2, true) // at the registry itself, behind the stopped proxy
	committedBefore := e.CommittedTotal()
	journalBefore := e.Sim.Stats().JournalLastSeq
	down := time.Now()
	if err := e.ProduceEncoded(w, phaseA, phaseB, encode(v2)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(outage)
	writes := 0
	for _, en := range e.Sim.Journal(journalBefore) {
		if en.Method == "POST" && en.Status == 200 {
			writes++
		}
	}
	if writes != 0 {
		t.Errorf("registry down: %d writes of records whose schema could not be fetched", writes)
	}
	if got := e.CommittedTotal(); got != committedBefore {
		t.Errorf("registry down: the committed offsets moved from %d to %d past records not yet decoded", committedBefore, got)
	}
	if got := len(e.ReadTopic(e.DLQ)); got != dlqBefore {
		t.Errorf("registry down: %d records were dead-lettered for it", got-dlqBefore)
	}
	retries := 0
	for _, l := range p.LogLines() {
		if l.Msg == "decoding failed for a reason a retry can fix; retrying" && l.Time.After(down.Add(-time.Second)) {
			retries++
		}
	}
	if retries == 0 {
		t.Errorf("registry down: the connector logged no decode retry in %s", outage)
	}
	reg.Start()
	up := time.Now()
	e.WaitRecovered(committedBefore, 2*time.Minute)
	recovered := time.Since(up)

	// Phase C: the rest, v2.
	for from := phaseB; from < events; from += batch {
		if err := e.ProduceEncoded(w, from, min(events, from+batch), encode(v2)); err != nil {
			t.Fatal(err)
		}
	}
	r := e.Verify(w, VerifyOptions{DeadLetter: isPoison, Unwritten: isPoison})

	// Each dead letter: the original key and bytes, and the reason.
	byPos := make(map[[2]int64]*Event)
	for _, i := range poisonIdx {
		ev := &w.Events[i]
		byPos[[2]int64{int64(ev.Partition), ev.Offset}] = ev
	}
	classes := make(map[string]int)
	for _, dl := range e.ReadTopic(e.DLQ) {
		h := make(map[string]string)
		for _, kv := range dl.Headers {
			h[kv.Key] = string(kv.Value)
		}
		part, _ := strconv.Atoi(h[connector.HeaderPartition])
		off, _ := strconv.ParseInt(h[connector.HeaderOffset], 10, 64)
		ev := byPos[[2]int64{int64(part), off}]
		if ev == nil {
			continue // Verify reported it
		}
		want := poisonOf[ev.ID]
		classes[h[connector.HeaderClass]]++
		switch {
		case string(dl.Key) != ev.ID:
			t.Errorf("dead letter of %s has key %q", ev.ID, dl.Key)
		case !bytes.Equal(dl.Value, produced[ev.ID]):
			t.Errorf("dead letter of %s does not hold the original bytes:\n got %q\nwant %q", ev.ID, dl.Value, produced[ev.ID])
		case h[connector.HeaderClass] != want.class:
			t.Errorf("dead letter of %s (%s) has class %q, want %q (message %q)", ev.ID, want.kind, h[connector.HeaderClass], want.class, h[connector.HeaderMessage])
		case h[connector.HeaderMessage] == "" || !strings.Contains(h[connector.HeaderMessage], want.msg):
			t.Errorf("dead letter of %s (%s) has message %q, want one with %q", ev.ID, want.kind, h[connector.HeaderMessage], want.msg)
		case h[connector.HeaderPipeline] != "calls":
			t.Errorf("dead letter of %s names pipeline %q", ev.ID, h[connector.HeaderPipeline])
		}
	}
	if code, took := p.Term(30 * time.Second); code != 0 {
		t.Errorf("the connector exited with %d after SIGTERM (%s)", code, took)
	}
	var cls []string
	for c, n := range classes {
		cls = append(cls, fmt.Sprintf("%s:%d", c, n))
	}
	slices.Sort(cls)
	e.Report(r, fmt.Sprintf("poison=%d classes=%s registry_outage=%s registry_recover=%s",
		len(poisonIdx), strings.Join(cls, ","), outage, recovered.Round(100*time.Millisecond)))
}
