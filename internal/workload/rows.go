package workload

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// customer is a row of the customers table. Empty strings are SQL NULLs (no real value is
// empty).
type customer struct {
	live              bool
	id                int64
	interaction       string
	first, last       string
	email, phone      string
	tier              string
	balanceCents      int64
	lastContactReason string
	accountPin        string
	updatedAt         time.Time
	birthDate         time.Time // zero: NULL
	visits            int32
}

// order is a row of the orders table.
type order struct {
	live        bool
	id          int64
	customerID  int64
	interaction string
	status      string
	totalCents  int64
	currency    string
	items       int32
	createdAt   time.Time
	shippedAt   time.Time // zero: NULL
}

var (
	firstNames = []string{"Maria", "John", "Aiko", "Liam", "Fatima", "Noah", "Olga", "Mateo", "Chen", "Amara", "Lucas", "Sofia", "Ravi", "Emma", "Kwame", "Zoë"}
	lastNames  = []string{"Garcia", "Smith", "Tanaka", "O'Brien", "Haddad", "Müller", "Ivanova", "Rossi", "Wang", "Okafor", "Dubois", "Silva", "Patel", "Johnson", "Mensah", "Nowak"}
	reasons    = []string{"Billing inquiry", "Technical support", "Order status", "Cancellation request", "Address change", "Payment failed", "Product question", "Complaint"}
	currencies = []string{"USD", "USD", "USD", "EUR", "GBP"}
)

// tier draws a tier: half Bronze, 30% Silver, 15% Gold, 5% VIP.
func tier(r *rand.Rand) string {
	switch u := r.Float64(); {
	case u < 0.5:
		return "Bronze"
	case u < 0.8:
		return "Silver"
	case u < 0.95:
		return "Gold"
	}
	return "VIP"
}

// owned returns the interaction ids customer id owns (see Options.Interactions).
func (g *Generator) owned(id int64) []string {
	var ids []string
	for j := int(id - 1); j < len(g.interactions); j += g.o.Customers {
		ids = append(ids, g.interactions[j])
	}
	return ids
}

// call picks the customer's interaction: one of its own (a call in progress) with probability
// onCall, otherwise none.
func (g *Generator) call(id int64, onCall float64) string {
	own := g.owned(id)
	if len(own) == 0 || g.rng.Float64() >= onCall {
		return ""
	}
	return own[g.rng.IntN(len(own))]
}

func (g *Generator) newCustomer(id int64) customer {
	r := g.rng
	first, last := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	c := customer{
		live:         true,
		id:           id,
		interaction:  g.call(id, 0.7),
		first:        first,
		last:         last,
		tier:         tier(r),
		balanceCents: int64(r.IntN(2_050_000)) - 50_000, // -500.00 to 20,000.00
		updatedAt:    g.now,
		visits:       int32(r.IntN(20)),
	}
	if r.Float64() < 0.9 {
		c.email = fmt.Sprintf("customer%d@example.com", id)
	}
	if r.Float64() < 0.85 {
		c.phone = fmt.Sprintf("+1617555%04d", r.IntN(10000))
	}
	if r.Float64() < 0.6 {
		c.lastContactReason = reasons[r.IntN(len(reasons))]
	}
	if r.Float64() < 0.8 {
		c.accountPin = fmt.Sprintf("%04d", r.IntN(10000))
	}
	if r.Float64() < 0.7 {
		c.birthDate = time.Date(1940+r.IntN(65), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
	}
	return c
}

// updateCustomer changes what a CRM changes during calls: the balance always, sometimes the
// tier, the contact reason, the call the customer is on.
func (g *Generator) updateCustomer(c *customer) {
	r := g.rng
	c.balanceCents += int64(r.IntN(40_001)) - 20_000
	if r.Float64() < 0.2 {
		c.tier = tier(r)
	}
	if r.Float64() < 0.5 {
		c.lastContactReason = reasons[r.IntN(len(reasons))]
	}
	if r.Float64() < 0.3 {
		c.interaction = g.call(c.id, 0.7)
	}
	c.visits++
	c.updatedAt = g.now
}

func (g *Generator) newOrder(id int64) order {
	r := g.rng
	cust := &g.customers[g.custPool.pick(r, true)]
	o := order{
		live:       true,
		id:         id,
		customerID: cust.id,
		status:     "pending",
		totalCents: int64(500 + r.IntN(150_000)),
		currency:   currencies[r.IntN(len(currencies))],
		items:      int32(1 + r.IntN(9)),
		createdAt:  g.now,
	}
	// An order placed during a call carries it, unless another order already did: one
	// interaction, one order key (see the package's ordering guarantee).
	if ix := cust.interaction; ix != "" && !g.claimed[ix] {
		g.claimed[ix] = true
		o.interaction = ix
	}
	return o
}

// updateOrder moves an order along pending -> paid -> shipped -> delivered, or cancels it; a
// finished order is only touched (Debezium still emits the update).
func (g *Generator) updateOrder(o *order) {
	r := g.rng
	switch o.status {
	case "pending":
		o.status = "paid"
		if r.Float64() < 0.15 {
			o.status = "cancelled"
		}
	case "paid":
		o.status = "shipped"
		o.shippedAt = time.Date(g.now.Year(), g.now.Month(), g.now.Day(), 0, 0, 0, 0, time.UTC)
		if r.Float64() < 0.1 {
			o.status, o.shippedAt = "cancelled", time.Time{}
		}
	case "shipped":
		o.status = "delivered"
	}
}

// The expectation model: what demo-pipelines.yaml makes of a row, derived here from the row
// state and never from the encoded record.
//
// customers (and the flat customers), when the row has an interaction:
//
//	_customerId        the id in decimal
//	_customerName      first_name + " " + last_name
//	_customerTier      tier
//	_accountBalance    balance with exactly 2 decimals ("1250.75", "-0.05", "20000.00")
//	_lastContactReason last_contact_reason; absent when NULL
//	_accountPin        account_pin; absent when NULL (a privacy variable)
//
// orders, when the row has an interaction and its status is not "pending" (the filter):
//
//	_orderId           the id in decimal
//	_orderStatus       status
//	_orderValue        total with exactly 2 decimals
//	_orderItems        item_count in decimal
//	_shippingDate      shipped_at as 2006-01-02; absent when NULL
//
// Deletes and tombstones write nothing (onDelete: skip).

func (c *customer) vars() map[string]string {
	v := map[string]string{
		"_customerId":     strconv.FormatInt(c.id, 10),
		"_customerName":   c.first + " " + c.last,
		"_customerTier":   c.tier,
		"_accountBalance": formatCents(c.balanceCents),
	}
	if c.lastContactReason != "" {
		v["_lastContactReason"] = c.lastContactReason
	}
	if c.accountPin != "" {
		v["_accountPin"] = c.accountPin
	}
	return v
}

func (o *order) vars() map[string]string {
	v := map[string]string{
		"_orderId":     strconv.FormatInt(o.id, 10),
		"_orderStatus": o.status,
		"_orderValue":  formatCents(o.totalCents),
		"_orderItems":  strconv.Itoa(int(o.items)),
	}
	if !o.shippedAt.IsZero() {
		v["_shippingDate"] = o.shippedAt.Format(time.DateOnly)
	}
	return v
}

// formatCents writes an amount of cents with two decimals, by integer arithmetic.
func formatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// FinalState folds events in order into the variables each identifier must end up with: per
// identifier, the last value of each name. Because each interaction id is carried by one key
// per topic, and the topics' variable names are disjoint, this holds whatever the partitioning
// and the interleaving of partitions.
//
// With calls (Options.CallRatio) a call receives its customer's variables from two topics: its
// start (joined with the customers table) and the customer's later changes (joined with the
// activeInteractions table). Whatever the interleaving, the connector leaves a call with the
// values of the customer's last change while it is active (the partition worker, connector/worker.go, says why),
// which is what this fold gives, since the generator never deletes a customer on a call. An
// ended call is left out: what reached it just before its end depends on timing.
func FinalState(events []Event) map[string]map[string]string {
	out := make(map[string]map[string]string)
	ended := make(map[string]bool)
	for _, ev := range events {
		if ev.Ends != "" {
			ended[ev.Ends] = true
		}
		for i := -1; i < len(ev.Also); i++ {
			id := ev.Identifier
			if i >= 0 {
				id = ev.Also[i]
			}
			if id == "" || ev.Vars == nil {
				continue
			}
			m := out[id]
			if m == nil {
				m = make(map[string]string, len(ev.Vars))
				out[id] = m
			}
			for k, v := range ev.Vars {
				m[k] = v
			}
		}
	}
	for id := range ended {
		delete(out, id)
	}
	return out
}
