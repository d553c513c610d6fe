package workload

import (
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// Union names goavro gives the row records of the shipped envelopes.
const (
	customerRow = "crm.public.customers.Value"
	orderRow    = "crm.public.orders.Value"
)

// newInteractionIDs draws n distinct interaction ids: mostly in the contract's style
// ("int-" + 11 hex digits of a creation time in ms + "-" + 6 letters or digits), a sipRatio
// share of SIP Call-IDs with an "@" that the API client must path-escape.
func newInteractionIDs(r *rand.Rand, n int, sipRatio float64, start time.Time) []string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	ids := make([]string, 0, n)
	seen := make(map[string]bool, n)
	for len(ids) < n {
		var id string
		if r.Float64() < sipRatio {
			id = fmt.Sprintf("%014x@pc%d.example.com", r.Uint64()>>8, 1+r.IntN(99))
		} else {
			var suffix [6]byte
			for i := range suffix {
				suffix[i] = alnum[r.IntN(len(alnum))]
			}
			ms := start.UnixMilli() - int64(r.IntN(3_600_000))
			id = fmt.Sprintf("int-%011x-%s", ms, suffix[:])
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// frame serializes one key or value in the configured framing: native is goavro's form, plain
// the JSON form.
func (g *Generator) frame(codec *goavro.Codec, schemaID int, native, plain any) []byte {
	var b []byte
	switch g.o.Framing {
	case FramingJSON:
		out, err := json.Marshal(plain)
		if err != nil {
			panic(fmt.Sprintf("workload: encoding JSON: %v", err)) // our own values: a bug
		}
		return out
	case FramingConfluent:
		b, _ = (&sr.ConfluentHeader{}).AppendEncode(nil, schemaID, nil)
	}
	out, err := codec.BinaryFromNative(b, native)
	if err != nil {
		panic(fmt.Sprintf("workload: encoding Avro: %v", err)) // our own values and schemas: a bug
	}
	return out
}

func (g *Generator) encodeKey(topic string, id int64) []byte {
	codec, sid := g.codec.customerKey, g.o.IDs.CustomerKey
	switch topic {
	case g.o.OrdersTopic:
		codec, sid = g.codec.orderKey, g.o.IDs.OrderKey
	case g.o.FlatTopic:
		sid = g.o.IDs.FlatKey
	}
	return g.frame(codec, sid, map[string]any{"id": id}, map[string]any{"id": id})
}

// source is Debezium's source block of the current event.
func (g *Generator) source(table string) (native, plain map[string]any) {
	ts := g.now.UnixMilli()
	native = map[string]any{
		"version": "2.7.0.Final", "connector": "postgresql", "name": "crm", "ts_ms": ts,
		"snapshot": goavro.Union("string", "false"), "db": "crm", "schema": "public", "table": table,
		"txId": goavro.Union("long", g.txID), "lsn": goavro.Union("long", g.lsn),
	}
	plain = map[string]any{
		"version": "2.7.0.Final", "connector": "postgresql", "name": "crm", "ts_ms": ts,
		"snapshot": "false", "db": "crm", "schema": "public", "table": table,
		"txId": g.txID, "lsn": g.lsn,
	}
	return native, plain
}

func (g *Generator) envelope(codec *goavro.Codec, schemaID int, table, rowName, op string, before, after, beforePlain, afterPlain map[string]any) []byte {
	srcN, srcP := g.source(table)
	ts := g.now.Add(40 * time.Millisecond).UnixMilli() // the connector sees the change a little later
	union := func(m map[string]any) any {
		if m == nil {
			return nil
		}
		return goavro.Union(rowName, m)
	}
	native := map[string]any{
		"before": union(before), "after": union(after), "source": srcN,
		"op": op, "ts_ms": goavro.Union("long", ts),
	}
	plain := map[string]any{
		"before": nilIfEmpty(beforePlain), "after": nilIfEmpty(afterPlain), "source": srcP,
		"op": op, "ts_ms": ts,
	}
	return g.frame(codec, schemaID, native, plain)
}

// nilIfEmpty keeps a nil map nil in JSON ("null", not {}).
func nilIfEmpty(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}

func (g *Generator) encodeCustomer(op string, before, after *customer) []byte {
	if g.o.Flat {
		return g.frame(g.codec.flat, g.o.IDs.CustomerFlat, after.avro(true), after.json(true))
	}
	var bN, aN, bP, aP map[string]any
	if before != nil {
		bN, bP = before.avro(false), before.json(false)
	}
	if after != nil {
		aN, aP = after.avro(false), after.json(false)
	}
	return g.envelope(g.codec.customerValue, g.o.IDs.CustomerValue, "customers", customerRow, op, bN, aN, bP, aP)
}

func (g *Generator) encodeOrder(op string, before, after *order) []byte {
	var bN, aN, bP, aP map[string]any
	if before != nil {
		bN, bP = before.avro(), before.json()
	}
	if after != nil {
		aN, aP = after.avro(), after.json()
	}
	return g.envelope(g.codec.orderValue, g.o.IDs.OrderValue, "orders", orderRow, op, bN, aN, bP, aP)
}

// Helpers for NULL-able columns, in goavro's union form and in JSON.
func ustr(s string) any {
	if s == "" {
		return nil
	}
	return goavro.Union("string", s)
}

func jstr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func udate(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return goavro.Union("int.date", t)
}

func jdate(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Format(time.DateOnly)
}

// jcents is a decimal(12,2) as a JSON number with both decimals ("1250.70").
func jcents(c int64) json.Number { return json.Number(formatCents(c)) }

func (c *customer) avro(flat bool) map[string]any {
	m := map[string]any{
		"id":                  c.id,
		"interaction_id":      ustr(c.interaction),
		"first_name":          c.first,
		"last_name":           c.last,
		"phone":               ustr(c.phone),
		"tier":                c.tier,
		"balance":             big.NewRat(c.balanceCents, 100),
		"last_contact_reason": ustr(c.lastContactReason),
		"account_pin":         ustr(c.accountPin),
		"updated_at":          c.updatedAt,
		"birth_date":          udate(c.birthDate),
	}
	if flat {
		m["visits"] = c.visits
	} else {
		m["email"] = ustr(c.email)
	}
	return m
}

func (c *customer) json(flat bool) map[string]any {
	m := map[string]any{
		"id":                  c.id,
		"interaction_id":      jstr(c.interaction),
		"first_name":          c.first,
		"last_name":           c.last,
		"phone":               jstr(c.phone),
		"tier":                c.tier,
		"balance":             jcents(c.balanceCents),
		"last_contact_reason": jstr(c.lastContactReason),
		"account_pin":         jstr(c.accountPin),
		"updated_at":          c.updatedAt.UnixMilli(),
		"birth_date":          jdate(c.birthDate),
	}
	if flat {
		m["visits"] = c.visits
	} else {
		m["email"] = jstr(c.email)
	}
	return m
}

func (o *order) avro() map[string]any {
	return map[string]any{
		"id":             o.id,
		"customer_id":    o.customerID,
		"interaction_id": ustr(o.interaction),
		"status":         o.status,
		"total":          big.NewRat(o.totalCents, 100),
		"currency":       o.currency,
		"item_count":     o.items,
		"created_at":     o.createdAt,
		"shipped_at":     udate(o.shippedAt),
	}
}

func (o *order) json() map[string]any {
	return map[string]any{
		"id":             o.id,
		"customer_id":    o.customerID,
		"interaction_id": jstr(o.interaction),
		"status":         o.status,
		"total":          jcents(o.totalCents),
		"currency":       o.currency,
		"item_count":     o.items,
		"created_at":     o.createdAt.UnixMilli(),
		"shipped_at":     jdate(o.shippedAt),
	}
}
