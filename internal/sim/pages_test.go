package sim

import (
	"html"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/augment-connector/augment-connector/internal/api"
)

// demoRoutes are the contract's Test Variable examples.
var demoRoutes = []Route{
	{Name: "Cancelled orders", Variable: "_orderStatus", Operator: OpEquals, Operand: "cancelled", TrueExit: "Order management", FalseExit: "Next test"},
	{Name: "Premium customers", Variable: "_customerTier", Operator: OpEquals, Operand: "Premium", TrueExit: "Priority support", FalseExit: "Standard queue"},
	{Name: "Large orders", Variable: "_orderValue", Operator: OpGreaterThan, Operand: "500", TrueExit: "Specialized support", FalseExit: "Standard queue"},
	{Name: "Collections", Variable: "_accountBalance", Operator: OpLessThan, Operand: "0", TrueExit: "Collections", FalseExit: "Standard queue"},
	{Name: "PIN check", Variable: "_accountPin", Operator: OpEquals, Operand: "4321", TrueExit: "Verified", FalseExit: "Verify caller"},
}

// demoVariables are the contract's e-commerce example plus one of each dataType and a
// private value, as a connector would write them.
var demoVariables = []api.Variable{
	{Name: "_orderStatus", Value: "shipped", IVR: true, Display: true, DisplayName: "Order Status"},
	{Name: "_orderValue", Value: "299.99", IVR: true, Display: true, DisplayName: "Order Value", DataType: "currency"},
	{Name: "_customerTier", Value: "Premium", IVR: true, Display: true, DisplayName: "Customer Tier"},
	{Name: "_shippingDate", Value: "2024-07-10", Display: true, DisplayName: "Shipping Date", DataType: "date"},
	{Name: "_accountBalance", Value: "1250.75", Display: true, DisplayName: "Account Balance", DataType: "currency"},
	{Name: "_lifetimeOrders", Value: "1234567", Display: true, DisplayName: "Lifetime Orders", DataType: "number"},
	{Name: "_callbackNumber", Value: "16175551234", Display: true, DisplayName: "Callback Number", DataType: "phone"},
	{Name: "_preferredTime", Value: "14:30", Display: true, DisplayName: "Preferred Time", DataType: "time"},
	{Name: "_accountPin", Value: "4321", IVR: true, Display: true, DisplayName: "Account PIN", Privacy: true},
	{Name: "_internalScore", Value: "87"},
}

// wantDisplayed is what the Customer Information panel must show for demoVariables.
var wantDisplayed = map[string]string{
	"_orderStatus":    "shipped",
	"_orderValue":     "$299.99",
	"_customerTier":   "Premium",
	"_shippingDate":   "July 10, 2024",
	"_accountBalance": "$1,250.75",
	"_lifetimeOrders": "1,234,567",
	"_callbackNumber": "+1 (617) 555-1234",
	"_preferredTime":  "2:30 PM",
	"_accountPin":     Mask,
}

// wantExits are the exits demoRoutes take for demoVariables.
var wantExits = []string{"Next test", "Priority support", "Standard queue", "Standard queue", "Verified"}

func seedDemo(t *testing.T, s *Server) {
	t.Helper()
	err := s.CreateInteraction("", api.Interaction{InteractionID: "int-987654", Channel: "18005551234", ANI: "16175551234", CallerName: "John Doe", CreateTime: "2024-07-10T14:25:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", api.PathPrefix+"int-987654", strings.NewReader(body(demoVariables...)))
	req.SetBasicAuth(tenant1, token1)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("seeding: %d %s", rec.Code, rec.Body)
	}
}

func TestInteractionPage(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Routes = demoRoutes })
	seedDemo(t, h.s)
	r := h.admin("GET", "/interactions/int-987654", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", r.status, r.header.Get("Content-Type"))
	}
	// Compare text as a browser reads it: html/template escapes "+" and quotes.
	page := html.UnescapeString(string(r.body))
	for name, want := range wantDisplayed {
		if !strings.Contains(page, `data-var="`+name+`"`) {
			t.Errorf("no element for %s", name)
			continue
		}
		seg := page[strings.Index(page, `data-var="`+name+`"`):]
		seg = seg[strings.Index(seg, ">")+1:]
		if got := seg[:strings.Index(seg, "</dd>")]; got != want {
			t.Errorf("%s shows %q, want %q", name, got, want)
		}
	}
	for _, absent := range []string{`data-var="_internalScore"`, "4321\u003c", ">4321", "87<"} {
		if strings.Contains(page, absent) {
			t.Errorf("page contains %q: an undisplayed or private value leaked", absent)
		}
	}
	for _, want := range []string{
		`<dt data-label="_accountBalance">Account Balance</dt>`,
		`<dd data-field="ani">+1 (617) 555-1234</dd>`,
		`<dd data-field="variables">10 (1 not displayed)</dd>`,
		`<meta http-equiv="refresh" content="2">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for i, exit := range wantExits {
		if !strings.Contains(page, `data-route="`+string(rune('0'+i))+`"`) || !strings.Contains(page, `data-exit="`+exit+`"`) {
			t.Errorf("route %d: no exit %q", i, exit)
		}
	}
	for _, reason := range []string{
		`_orderValue greater than "500" is false (numeric comparison)`,
		`_accountBalance is not set with ivr:true, so the test is false`,
	} {
		if !strings.Contains(page, reason) {
			t.Errorf("page lacks the reason %q", reason)
		}
	}
	if r := h.admin("GET", "/interactions/int-987654?refresh=0", ""); strings.Contains(string(r.body), "http-equiv") {
		t.Error("refresh=0 still reloads")
	}
	if r := h.admin("GET", "/interactions/int-404", ""); r.status != 404 {
		t.Errorf("unknown interaction page: %d", r.status)
	}
	if r := h.admin("GET", "/interactions/int-987654?tenant=t2", ""); r.status != 404 {
		t.Errorf("interaction of another tenant: %d", r.status)
	}
}

func TestIndexPage(t *testing.T) {
	h := newHarness(t, nil)
	r := h.admin("GET", "/", "")
	if r.status != 200 || !strings.Contains(string(r.body), "No interactions yet") {
		t.Fatalf("empty index: %d %s", r.status, r.body)
	}
	seedDemo(t, h.s)
	h.create(tenant2, "a/b@c")
	if err := h.s.EndInteraction(tenant2, "a/b@c"); err != nil {
		t.Fatal(err)
	}
	h.admin("POST", "/sim/faults", `{"errorRate":0.1}`)
	page := string(h.admin("GET", "/", "").body)
	for _, want := range []string{
		`data-tenant="t1" data-interaction="int-987654"`,
		`<td class="var-count">10</td>`,
		`href="/interactions/int-987654?tenant=t1"`,
		`href="/interactions/` + url.PathEscape("a/b@c") + `?tenant=t2"`,
		`<span class="badge ended">ended</span>`,
		`faults: 500 rate 0.1`,
		`2024-07-10 14:30:00 UTC`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("index lacks %s", want)
		}
	}
	// The escaped link leads to the page.
	if r := h.admin("GET", "/interactions/"+url.PathEscape("a/b@c"), ""); r.status != 200 {
		t.Errorf("page of a/b@c: %d", r.status)
	}
}
