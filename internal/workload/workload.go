// Package workload generates a deterministic stream of realistic Debezium change events of a
// CRM's customers and orders tables, for the demo, the integration tests, the benchmarks and the
// chaos tests, together with an independent model of what the demo pipelines
// (demo-pipelines.yaml) must make of each event.
//
// The model (Event.Vars, FinalState) is computed from the generator's own row state, not by
// running the transform code, so a test that compares the API's final state with FinalState
// checks the whole connector against an oracle that shares none of its code.
//
// Ordering guarantee: within a topic, an interaction id is only ever carried by one key (one
// customer row, or one order row), so the connector's per-partition ordering is enough to make
// the final value of every variable deterministic, whatever the partitioning.
package workload

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/augment-connector/augment-connector/schemas"
)

// Framing is how keys and values are serialized.
type Framing int

// The framings. The zero value is FramingConfluent.
const (
	// FramingConfluent is Avro with the Confluent header (magic 0, 4-byte schema id); the ids
	// come from Options.IDs, typically returned by Register.
	FramingConfluent Framing = iota
	// FramingAvro is unframed Avro binary of the shipped schemas.
	FramingAvro
	// FramingJSON is Debezium's JsonConverter without schemas: decimals as JSON numbers with
	// their scale's digits, timestamps as epoch milliseconds, dates as ISO strings
	// ("2024-07-10"), so the demo pipelines give the same variables as with Avro.
	FramingJSON
)

func (f Framing) String() string {
	switch f {
	case FramingConfluent:
		return "confluent"
	case FramingAvro:
		return "avro"
	case FramingJSON:
		return "json"
	}
	return fmt.Sprintf("Framing(%d)", int(f))
}

// Default topic names: Debezium's <server>.<schema>.<table>.
const (
	CustomersTopic    = "crm.public.customers"
	OrdersTopic       = "crm.public.orders"
	FlatTopic         = "crm.flat.customers"
	InteractionsTopic = "cc.interactions"
)

// SchemaIDs are the registry ids of the shipped schemas, for FramingConfluent.
type SchemaIDs struct {
	CustomerKey, CustomerValue int
	OrderKey, OrderValue       int
	CustomerFlat               int // value of FlatTopic; its key uses CustomerKey's schema under its own subject
	FlatKey                    int
}

// Options shape the stream. Zero ratios mean zero; start from DefaultOptions.
type Options struct {
	// Interactions is the number of distinct interaction ids. Customer i (from 1) owns the
	// ids numbered i-1, i-1+Customers, ...: with fewer interactions than customers, some
	// customers are never on a call and their events carry no identifier.
	Interactions int
	// Customers and Orders are the sizes of the two tables' id spaces (1..N).
	Customers, Orders int
	// OrderRatio is the fraction of events on the orders table.
	OrderRatio float64
	// UpdateRatio and DeleteRatio are, per event, the probabilities of updating or deleting an
	// existing row; otherwise a missing row is inserted (or, when none is missing, one is
	// updated).
	UpdateRatio, DeleteRatio float64
	// SIPRatio is the fraction of interaction ids that are SIP Call-IDs
	// ("a84b4c76e66710@pc33.example.com") rather than "int-18f3a2c4b1d-AB12CD".
	SIPRatio float64
	// Tombstones follows each delete with a tombstone (nil value), as Debezium does by default.
	Tombstones bool
	// Flat emits only customers, as flat records of customer-flat.avsc on FlatTopic: no
	// envelope, no orders, no deletes.
	Flat bool
	// Framing and, for FramingConfluent, the schema ids.
	Framing Framing
	IDs     SchemaIDs
	// CallRatio is the fraction of events on InteractionsTopic: a call starting for a live
	// customer, or an active call ending (JSON, see CallEvent). 0, the default, emits none and
	// leaves the rest of the stream as it was. With calls, a customer with an active call is
	// never deleted (a delete becomes an update), so a join's outcome does not hang on the
	// order in which the connector reads the two topics.
	CallRatio float64
	// Topic names; empty means the default.
	CustomersTopic, OrdersTopic, FlatTopic, InteractionsTopic string
	// Start is the time of the first event; each event is Step later than the previous one.
	// Zero means 2026-01-01T09:00:00Z and 250ms.
	Start time.Time
	Step  time.Duration
}

// DefaultOptions is a small, lively CRM: 100 customers, 200 interactions, a third of the
// events on orders, mostly updates.
func DefaultOptions() Options {
	return Options{
		Interactions: 200,
		Customers:    100,
		Orders:       200,
		OrderRatio:   0.3,
		UpdateRatio:  0.6,
		DeleteRatio:  0.05,
		SIPRatio:     0.1,
	}
}

func (o *Options) fill() error {
	var errs []error
	if o.Interactions < 1 {
		errs = append(errs, errors.New("interactions must be at least 1"))
	}
	if o.Customers < 1 {
		errs = append(errs, errors.New("customers must be at least 1"))
	}
	if o.Orders < 1 && !o.Flat && o.OrderRatio > 0 {
		errs = append(errs, errors.New("orders must be at least 1 when orderRatio > 0"))
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"orderRatio", o.OrderRatio}, {"updateRatio", o.UpdateRatio}, {"deleteRatio", o.DeleteRatio}, {"sipRatio", o.SIPRatio}, {"callRatio", o.CallRatio}} {
		if r.v < 0 || r.v > 1 {
			errs = append(errs, fmt.Errorf("%s must be within [0, 1], got %v", r.name, r.v))
		}
	}
	if o.UpdateRatio+o.DeleteRatio > 1 {
		errs = append(errs, errors.New("updateRatio + deleteRatio must be at most 1"))
	}
	if o.Framing < FramingConfluent || o.Framing > FramingJSON {
		errs = append(errs, fmt.Errorf("unknown framing %d", int(o.Framing)))
	}
	if o.Framing == FramingConfluent {
		need := []int{o.IDs.CustomerKey, o.IDs.CustomerValue}
		if o.Flat {
			need = []int{o.IDs.FlatKey, o.IDs.CustomerFlat}
		} else if o.OrderRatio > 0 {
			need = append(need, o.IDs.OrderKey, o.IDs.OrderValue)
		}
		for _, id := range need {
			if id <= 0 {
				errs = append(errs, errors.New("confluent framing needs the schema ids of the topics it writes (see Register)"))
				break
			}
		}
	}
	if o.CustomersTopic == "" {
		o.CustomersTopic = CustomersTopic
	}
	if o.OrdersTopic == "" {
		o.OrdersTopic = OrdersTopic
	}
	if o.FlatTopic == "" {
		o.FlatTopic = FlatTopic
	}
	if o.InteractionsTopic == "" {
		o.InteractionsTopic = InteractionsTopic
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	}
	if o.Step <= 0 {
		o.Step = 250 * time.Millisecond
	}
	return errors.Join(errs...)
}

// Event is one Kafka record to produce, with what the demo pipeline must make of it.
type Event struct {
	Topic string
	Key   []byte
	Value []byte // nil for a tombstone
	// Op is the Debezium op: "c", "u", "d"; "" for a tombstone or a flat record.
	Op string
	// Identifier is the interaction the demo pipeline writes this record's variables to; empty
	// when it writes nothing (a delete, a tombstone, a row with no interaction, a filtered
	// record).
	Identifier string
	// Vars are the variables (name to value) the demo pipeline produces for this record: nil
	// when Identifier and Also are empty; a variable whose column is null is absent, not empty.
	Vars map[string]string
	// Also are more identifiers that receive Vars, with the demo's joins (DemoJoins): the
	// active calls of the customer a customer event is about.
	Also []string
	// Ends is the call an ended event ends: from then on it receives nothing, and FinalState
	// drops it (what reached it just before its end depends on timing).
	Ends string
}

// Generator produces Events. It is deterministic: one seed and one Options give the same
// bytes, always. It is not safe for concurrent use. It encodes only its own rows with the
// shipped schemas, so an encoding failure is a bug in this package and panics.
type Generator struct {
	o     Options
	rng   *rand.Rand
	now   time.Time
	lsn   int64
	txID  int64
	codec codecs

	interactions []string
	customers    []customer // index = id; [0] unused
	orders       []order
	custPool     pool
	orderPool    pool
	claimed      map[string]bool // interactions already used by an order
	pending      *Event          // a tombstone to emit next
	calls        callState
}

type codecs struct {
	customerKey, customerValue, orderKey, orderValue, flat *goavro.Codec
}

// NewGenerator validates opts and returns a generator seeded with seed.
func NewGenerator(seed uint64, opts Options) (*Generator, error) {
	if err := opts.fill(); err != nil {
		return nil, fmt.Errorf("validating workload options: %w", err)
	}
	g := &Generator{
		o:         opts,
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:       opts.Start,
		lsn:       24_000_000,
		txID:      700,
		customers: make([]customer, opts.Customers+1),
		orders:    make([]order, max(opts.Orders, 0)+1),
		custPool:  newPool(opts.Customers),
		orderPool: newPool(max(opts.Orders, 0)),
		claimed:   make(map[string]bool),
		calls:     newCallState(),
	}
	var err error
	for _, c := range []struct {
		dst    **goavro.Codec
		schema string
	}{
		{&g.codec.customerKey, schemas.CustomerKey},
		{&g.codec.customerValue, schemas.CustomerValue},
		{&g.codec.orderKey, schemas.OrderKey},
		{&g.codec.orderValue, schemas.OrderValue},
		{&g.codec.flat, schemas.CustomerFlat},
	} {
		if *c.dst, err = goavro.NewCodec(c.schema); err != nil {
			return nil, fmt.Errorf("compiling shipped schema: %w", err)
		}
	}
	g.interactions = newInteractionIDs(g.rng, opts.Interactions, opts.SIPRatio, opts.Start)
	return g, nil
}

// Generate returns the next n events.
func (g *Generator) Generate(n int) []Event {
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = g.Next()
	}
	return evs
}

// Next returns the next event.
func (g *Generator) Next() Event {
	if g.pending != nil {
		ev := *g.pending
		g.pending = nil
		return ev
	}
	g.now = g.now.Add(g.o.Step)
	g.lsn += int64(64 + g.rng.IntN(4096))
	g.txID++
	if g.o.CallRatio > 0 && g.rng.Float64() < g.o.CallRatio {
		if ev, ok := g.callEvent(); ok {
			return ev
		}
	}
	if !g.o.Flat && g.o.OrderRatio > 0 && g.rng.Float64() < g.o.OrderRatio && len(g.custPool.live) > 0 {
		return g.orderEvent()
	}
	return g.customerEvent()
}

// pickOp chooses what happens to a table: a delete or update of a live row, or an insert of a
// missing one.
func (g *Generator) pickOp(p *pool, deletes bool) (op string, id int64) {
	u := g.rng.Float64()
	switch {
	case deletes && u < g.o.DeleteRatio && len(p.live) > 0:
		return "d", p.pick(g.rng, true)
	case u < g.o.DeleteRatio+g.o.UpdateRatio && len(p.live) > 0:
		return "u", p.pick(g.rng, true)
	case len(p.absent) > 0:
		return "c", p.pick(g.rng, false)
	}
	return "u", p.pick(g.rng, true)
}

func (g *Generator) customerEvent() Event {
	op, id := g.pickOp(&g.custPool, !g.o.Flat)
	if op == "d" && len(g.calls.byCustomer[id]) > 0 {
		op = "u" // see Options.CallRatio
	}
	c := &g.customers[id]
	before := *c
	switch op {
	case "c":
		g.custPool.setLive(id)
		*c = g.newCustomer(id)
	case "u":
		g.updateCustomer(c)
	case "d":
		g.custPool.setAbsent(id)
		c.live = false
	}
	ev := Event{Topic: g.o.CustomersTopic, Op: op}
	if g.o.Flat {
		ev.Topic, ev.Op = g.o.FlatTopic, ""
	}
	ev.Key = g.encodeKey(ev.Topic, id)
	var b, a *customer
	if op != "c" {
		b = &before
	}
	if op != "d" {
		a = c
		ev.Identifier = c.interaction
		ev.Also = g.calls.of(id)
		if ev.Identifier != "" || len(ev.Also) > 0 {
			ev.Vars = c.vars()
		}
	}
	ev.Value = g.encodeCustomer(op, b, a)
	if op == "d" && g.o.Tombstones {
		g.pending = &Event{Topic: ev.Topic, Key: ev.Key}
	}
	return ev
}

func (g *Generator) orderEvent() Event {
	op, id := g.pickOp(&g.orderPool, true)
	o := &g.orders[id]
	before := *o
	switch op {
	case "c":
		g.orderPool.setLive(id)
		*o = g.newOrder(id)
	case "u":
		g.updateOrder(o)
	case "d":
		g.orderPool.setAbsent(id)
		o.live = false
	}
	ev := Event{Topic: g.o.OrdersTopic, Op: op, Key: g.encodeKey(g.o.OrdersTopic, id)}
	var b, a *order
	if op != "c" {
		b = &before
	}
	if op != "d" {
		a = o
		if o.interaction != "" && o.status != "pending" {
			ev.Identifier = o.interaction
			ev.Vars = o.vars()
		}
	}
	ev.Value = g.encodeOrder(op, b, a)
	if op == "d" && g.o.Tombstones {
		g.pending = &Event{Topic: ev.Topic, Key: ev.Key}
	}
	return ev
}

// pool tracks which ids of a table exist (live) and which do not (absent), for uniform picks.
type pool struct {
	live, absent []int64
	pos          []int // id -> index in live or absent
	isLive       []bool
}

func newPool(n int) pool {
	p := pool{absent: make([]int64, n), pos: make([]int, n+1), isLive: make([]bool, n+1)}
	for i := range n {
		p.absent[i] = int64(i + 1)
		p.pos[i+1] = i
	}
	return p
}

func (p *pool) pick(r *rand.Rand, live bool) int64 {
	if live {
		return p.live[r.IntN(len(p.live))]
	}
	return p.absent[r.IntN(len(p.absent))]
}

func (p *pool) setLive(id int64) {
	if !p.isLive[id] {
		p.absent = remove(p.absent, p.pos, id)
		p.pos[id] = len(p.live)
		p.live = append(p.live, id)
		p.isLive[id] = true
	}
}

func (p *pool) setAbsent(id int64) {
	if p.isLive[id] {
		p.live = remove(p.live, p.pos, id)
		p.pos[id] = len(p.absent)
		p.absent = append(p.absent, id)
		p.isLive[id] = false
	}
}

// remove swaps id out of s, keeping pos up to date.
func remove(s []int64, pos []int, id int64) []int64 {
	i, last := pos[id], len(s)-1
	s[i] = s[last]
	pos[s[i]] = i
	return s[:last]
}
