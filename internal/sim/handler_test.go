package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/augment-connector/augment-connector/internal/api"
)

func TestPostRejectsInvalidRequests(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBodyBytes = 64 << 10 })
	h.create("", "int-1")
	seed := api.Variable{Name: "_seed", Value: "kept", Display: true}
	if r := h.post("int-1", body(seed)); r.status != 200 {
		t.Fatalf("seeding: %d %s", r.status, r.body)
	}
	ok := `{"name":"_ok","value":"applied?"}`
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf(`{"name":"_v%d","value":"x"}`, i)
	}
	tests := []struct {
		name string
		body string
		want string // the whole message
	}{
		{"name without underscore", `{"variables":[` + ok + `,{"name":"customerId","value":"1"}]}`, `Invalid variable name: must start with underscore (variable 2, name "customerId")`},
		{"name too long", `{"variables":[{"name":"_abcdefghijklmnopqrstuvwxy","value":"1"}]}`, `Invalid variable name: must be at most 25 characters (variable 1, name "_abcdefghijklmnopqrstuvwxy")`},
		{"name not alphanumeric", `{"variables":[{"name":"_account-balance","value":"1"}]}`, `Invalid variable name: must be alphanumeric after the underscore (variable 1, name "_account-balance")`},
		{"underscore alone", `{"variables":[{"name":"_","value":"1"}]}`, `Invalid variable name: must have at least one letter or digit after the underscore (variable 1, name "_")`},
		{"name missing", `{"variables":[{"value":"1"}]}`, `Invalid variable name: name is required (variable 1, name "")`},
		{"name not a string", `{"variables":[{"name":1,"value":"1"}]}`, `Invalid variable name: must be a string (variable 1, name "")`},
		{"value missing", `{"variables":[{"name":"_a"}]}`, `Invalid variable value: value is required (variable 1, name "_a")`},
		{"value a number", `{"variables":[{"name":"_a","value":1250.75}]}`, `Invalid variable value: must be a string (variable 1, name "_a")`},
		{"value too long", `{"variables":[{"name":"_a","value":"` + strings.Repeat("x", 1001) + `"}]}`, `Invalid variable value: must be at most 1000 characters, got 1001 (variable 1, name "_a")`},
		{"displayName too long", `{"variables":[{"name":"_a","value":"1","displayName":"` + strings.Repeat("D", 31) + `"}]}`, `Invalid variable displayName: must be at most 30 characters, got 31 (variable 1, name "_a")`},
		{"dataType unknown", `{"variables":[{"name":"_a","value":"1","dataType":"money"}]}`, `Invalid variable dataType: must be one of text, number, phone, date, time, currency (got a string of 5 bytes) (variable 1, name "_a")`},
		{"ivr not a boolean", `{"variables":[{"name":"_a","value":"1","ivr":"yes"}]}`, `Invalid variable ivr: must be a boolean (variable 1, name "_a")`},
		{"display not a boolean", `{"variables":[{"name":"_a","value":"1","display":1}]}`, `Invalid variable display: must be a boolean (variable 1, name "_a")`},
		{"privacy not a boolean", `{"variables":[{"name":"_a","value":"1","privacy":[]}]}`, `Invalid variable privacy: must be a boolean (variable 1, name "_a")`},
		{"variable not an object", `{"variables":[` + ok + `,"_a"]}`, `Invalid variable variables: must be an object (variable 2, name "")`},
		{"data form: index counts across elements", `{"data":[{"variables":[` + ok + `]},{"variables":[{"name":"bad","value":"1"}]}]}`, `Invalid variable name: must start with underscore (variable 2, name "bad")`},
		{"no variables", `{"variables":[]}`, `Invalid request: variables must not be empty`},
		{"51 variables", `{"variables":[` + strings.Join(many, ",") + `]}`, `Invalid request: at most 50 variables per request, got 51`},
		{"missing variables", `{"vars":[]}`, `Invalid request body: missing "variables"`},
		{"not JSON", `variables=1`, `Invalid request body: invalid character 'v' looking for beginning of value at offset 0`},
		{"body too large", `{"variables":[{"name":"_a","value":"` + strings.Repeat("x", 64<<10) + `"}]}`, `Invalid request body: larger than 65536 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.s.Journal(0))
			r := h.post("int-1", tt.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", r.status, r.body)
			}
			want := api.ErrorResponse{Status: "error", Code: 400, Message: tt.want}
			if diff := cmp.Diff(want, r.errorBody(t)); diff != "" {
				t.Errorf("error body (-want +got):\n%s", diff)
			}
			ia, _ := h.s.Interaction("", "int-1")
			if diff := cmp.Diff([]api.Variable{seed}, ia.Variables); diff != "" {
				t.Errorf("a rejected request changed the interaction (-want +got):\n%s", diff)
			}
			j := h.s.Journal(0)
			if len(j) != before+1 || j[len(j)-1].Status != 400 || j[len(j)-1].Message != tt.want {
				t.Errorf("journal tail %+v, want one 400 entry with the message", j[before:])
			}
		})
	}
}

func TestNotJSONMessageIsTheDecoders(t *testing.T) {
	// The table above pins the exact wording of a syntax error; keep it in step with the decoder.
	_, err := decodeRequest([]byte("variables=1"))
	if err == nil || err.Error() != `Invalid request body: invalid character 'v' looking for beginning of value at offset 0` {
		t.Fatalf("decodeRequest error %v: the handler test expects another wording", err)
	}
}

func TestPostAcceptsBothFormsAndLenientBooleans(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []api.Variable
	}{
		{"contract form", `{"variables":[{"name":"_customerId","value":"CUST-123456","display":true,"displayName":"Customer ID"}]}`,
			[]api.Variable{{Name: "_customerId", Value: "CUST-123456", Display: true, DisplayName: "Customer ID"}}},
		{"data form", `{"data":[{"variables":[{"name":"_a","value":"1"}]},{"variables":[{"name":"_b","value":"2","ivr":true}]}]}`,
			[]api.Variable{{Name: "_a", Value: "1"}, {Name: "_b", Value: "2", IVR: true}}},
		{"string booleans", `{"variables":[{"name":"_paymentDue","value":"true","ivr":"true","display":"false","privacy":"true"}]}`,
			[]api.Variable{{Name: "_paymentDue", Value: "true", IVR: true, Privacy: true}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			id := fmt.Sprintf("int-%d", i)
			h.create("", id)
			r := h.post(id, tt.body)
			want := fmt.Sprintf(`{"status":"success","message":"Variables successfully set","interactionId":%q,"variablesSet":%d}`, id, len(tt.want))
			if r.status != 200 || string(r.body) != want {
				t.Fatalf("got %d %s, want 200 %s", r.status, r.body, want)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			g := h.call("GET", id, tenant1, token1, "")
			var got api.Interaction
			if err := json.Unmarshal(g.body, &got); err != nil || g.status != 200 {
				t.Fatalf("GET: %d %s %v", g.status, g.body, err)
			}
			if diff := cmp.Diff(tt.want, got.Variables); diff != "" {
				t.Errorf("GET variables (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLaterWritesReplaceByNameInFirstSeenOrder(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.s.CreateInteraction("", api.Interaction{InteractionID: "int-1", Channel: "18005551234", ANI: "16175551234", CallerName: "John Doe", CreateTime: "2024-01-15T10:30:00Z"}); err != nil {
		t.Fatal(err)
	}
	writes := []string{
		body(api.Variable{Name: "_a", Value: "1", Display: true, DisplayName: "A", DataType: "text"}, api.Variable{Name: "_b", Value: "b"}),
		body(api.Variable{Name: "_c", Value: "c"}, api.Variable{Name: "_a", Value: "2", DataType: "number", Privacy: true}),
		// A repeated name within one request: the last one wins too, and both count as set.
		body(api.Variable{Name: "_b", Value: "b1"}, api.Variable{Name: "_b", Value: "b2", IVR: true}),
	}
	for _, w := range writes {
		if r := h.post("int-1", w); r.status != 200 {
			t.Fatalf("POST: %d %s", r.status, r.body)
		}
	}
	want := api.Interaction{
		InteractionID: "int-1", Channel: "18005551234", CreateTime: "2024-01-15T10:30:00Z", ANI: "16175551234", CallerName: "John Doe",
		Variables: []api.Variable{
			{Name: "_a", Value: "2", DataType: "number", Privacy: true}, // every attribute of the later write
			{Name: "_b", Value: "b2", IVR: true},
			{Name: "_c", Value: "c"},
		},
	}
	g := h.call("GET", "int-1", tenant1, token1, "")
	var got api.Interaction
	if err := json.Unmarshal(g.body, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET (-want +got):\n%s", diff)
	}
	if got, _ := h.s.Interaction("", "int-1"); !cmp.Equal(want, got) {
		t.Errorf("Interaction() = %+v, want the GET body", got)
	}
	if st := h.s.Stats(); st.VariablesSet != 6 {
		t.Errorf("VariablesSet %d, want 6", st.VariablesSet)
	}
}

func TestIdentifiersArePathEscaped(t *testing.T) {
	h := newHarness(t, nil)
	for _, id := range []string{"int-1628bb9dbf7-ABC123", "caller@example.com", "a/b", "with space", "ü?#%", "16175551234"} {
		t.Run(id, func(t *testing.T) {
			h.create("", id)
			esc := url.PathEscape(id)
			r := h.post(esc, body(api.Variable{Name: "_a", Value: "1"}))
			var ok api.SuccessResponse
			if err := json.Unmarshal(r.body, &ok); err != nil || r.status != 200 || ok.InteractionID != id {
				t.Fatalf("POST %s: %d %s", esc, r.status, r.body)
			}
			if ia, _ := h.s.Interaction("", id); len(ia.Variables) != 1 {
				t.Errorf("interaction %q has %d variables, want 1", id, len(ia.Variables))
			}
			if g := h.call("GET", esc, tenant1, token1, ""); g.status != 200 {
				t.Errorf("GET %s: %d", esc, g.status)
			}
		})
	}
	// A bare slash splits the path: it names no interaction.
	if r := h.post("a/b", body(api.Variable{Name: "_a", Value: "1"})); r.status != 404 {
		t.Errorf("POST a/b unescaped: %d, want 404", r.status)
	}
}

// TestErrorCodes reaches each of the contract's error codes and checks its exact body.
func TestErrorCodes(t *testing.T) {
	valid := body(api.Variable{Name: "_a", Value: "1"})
	tests := []struct {
		name   string
		edit   func(*Config)
		setup  func(h *harness)
		do     func(h *harness) reply
		status int
		msg    string
	}{
		{name: "400 invalid variable", do: func(h *harness) reply { return h.post("int-1", `{"variables":[{"name":"x","value":"1"}]}`) },
			status: 400, msg: `Invalid variable name: must start with underscore (variable 1, name "x")`},
		{name: "401 no credential", do: func(h *harness) reply { return h.call("POST", "int-1", "", "", valid) }, status: 401, msg: "Authentication failed"},
		{name: "401 wrong token", do: func(h *harness) reply { return h.call("POST", "int-1", tenant1, "nope", valid) }, status: 401, msg: "Authentication failed"},
		{name: "401 other tenant's token", do: func(h *harness) reply { return h.call("POST", "int-1", tenant1, token2, valid) }, status: 401, msg: "Authentication failed"},
		{name: "401 unknown tenant", do: func(h *harness) reply { return h.call("GET", "int-1", "t9", token1, "") }, status: 401, msg: "Authentication failed"},
		{name: "404 unknown interaction", do: func(h *harness) reply { return h.post("int-404", valid) }, status: 404, msg: "Interaction not found"},
		{name: "404 GET unknown interaction", do: func(h *harness) reply { return h.call("GET", "int-404", tenant1, token1, "") }, status: 404, msg: "Interaction not found"},
		{name: "404 interaction of another tenant", do: func(h *harness) reply { return h.call("POST", "int-1", tenant2, token2, valid) }, status: 404, msg: "Interaction not found"},
		{name: "404 ended interaction", setup: func(h *harness) {
			if err := h.s.EndInteraction("", "int-1"); err != nil {
				h.t.Fatal(err)
			}
		}, do: func(h *harness) reply { return h.post("int-1", valid) }, status: 404, msg: "Interaction not found"},
		{name: "429 rate limit", edit: func(c *Config) { c.RateLimit = 1 }, setup: func(h *harness) { h.post("int-1", valid) },
			do: func(h *harness) reply { return h.post("int-1", valid) }, status: 429, msg: "Rate limit exceeded"},
		{name: "500 injected error", edit: func(c *Config) { c.Faults.ErrorRate = 1 }, do: func(h *harness) reply { return h.post("int-1", valid) },
			status: 500, msg: "Internal server error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.edit)
			h.create("", "int-1")
			if tt.setup != nil {
				tt.setup(h)
			}
			r := tt.do(h)
			want := api.ErrorResponse{Status: "error", Code: tt.status, Message: tt.msg}
			if r.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tt.status, r.body)
			}
			if diff := cmp.Diff(want, r.errorBody(t)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAutoCreate(t *testing.T) {
	valid := body(api.Variable{Name: "_a", Value: "1"})
	h := newHarness(t, func(c *Config) { c.AutoCreate = true })
	if r := h.post("int-new", valid); r.status != 200 {
		t.Fatalf("POST to a new identifier: %d %s", r.status, r.body)
	}
	ia, ok := h.s.Interaction(tenant1, "int-new")
	want := api.Interaction{InteractionID: "int-new", CreateTime: "2024-07-10T14:30:00Z", Variables: []api.Variable{{Name: "_a", Value: "1"}}}
	if diff := cmp.Diff(want, ia); !ok || diff != "" {
		t.Errorf("auto-created interaction (-want +got):\n%s", diff)
	}
	if _, ok := h.s.Interaction(tenant2, "int-new"); ok {
		t.Error("auto-created in the other tenant too")
	}
	// A GET does not create, and an ended interaction stays ended.
	if r := h.call("GET", "int-other", tenant1, token1, ""); r.status != 404 {
		t.Errorf("GET unknown: %d, want 404", r.status)
	}
	if err := h.s.EndInteraction("", "int-new"); err != nil {
		t.Fatal(err)
	}
	if r := h.post("int-new", valid); r.status != 404 {
		t.Errorf("POST to an ended interaction: %d, want 404", r.status)
	}
	// An invalid body creates nothing.
	h.post("int-invalid", `{"variables":[]}`)
	if _, ok := h.s.Interaction("", "int-invalid"); ok {
		t.Error("a rejected request created its interaction")
	}
}

func TestAdminInteractions(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
	}{
		{"create in the default tenant", "POST", "/sim/interactions", `{"interactionId":"int-1","channel":"18005551234","ani":"16175551234","callerName":"John Doe"}`, 201},
		{"create in a named tenant", "POST", "/sim/interactions", `{"tenant":"t2","interactionId":"int-1","createTime":"2024-01-15T10:30:00Z"}`, 201},
		{"create a path-hostile id", "POST", "/sim/interactions", `{"interactionId":"a/b@c"}`, 201},
		{"duplicate", "POST", "/sim/interactions", `{"interactionId":"int-1"}`, 409},
		{"unknown tenant", "POST", "/sim/interactions", `{"tenant":"t9","interactionId":"int-2"}`, 400},
		{"missing id", "POST", "/sim/interactions", `{"channel":"x"}`, 400},
		{"unknown field", "POST", "/sim/interactions", `{"interaction":"int-3"}`, 400},
		{"invalid first variables", "POST", "/sim/interactions", `{"interactionId":"int-4","variables":[{"name":"bad","value":"1"}]}`, 400},
		{"end", "DELETE", "/sim/interactions/int-1", ``, 204},
		{"end again", "DELETE", "/sim/interactions/int-1", ``, 404},
		{"end in a named tenant", "DELETE", "/sim/interactions/int-1?tenant=t2", ``, 204},
		{"end escaped id", "DELETE", "/sim/interactions/" + url.PathEscape("a/b@c"), ``, 204},
		{"end unknown", "DELETE", "/sim/interactions/int-9", ``, 404},
		{"end in unknown tenant", "DELETE", "/sim/interactions/int-9?tenant=t9", ``, 400},
	}
	for _, tt := range tests {
		r := h.admin(tt.method, tt.path, tt.body)
		if r.status != tt.status {
			t.Errorf("%s: %s %s: %d %s, want %d", tt.name, tt.method, tt.path, r.status, r.body, tt.status)
		}
	}
	got, _ := h.s.Interaction("", "int-1")
	want := api.Interaction{InteractionID: "int-1", Channel: "18005551234", ANI: "16175551234", CallerName: "John Doe", CreateTime: "2024-07-10T14:30:00Z", Variables: []api.Variable{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("created interaction (-want +got):\n%s", diff)
	}
	var list []InteractionSummary
	if err := json.Unmarshal(h.admin("GET", "/sim/interactions", "").body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Errorf("listed %d interactions, want 3: %+v", len(list), list)
	}
	for _, s := range list {
		if !s.Ended {
			t.Errorf("%s/%s not ended", s.Tenant, s.InteractionID)
		}
	}
	if r := h.post("int-1", body(api.Variable{Name: "_a", Value: "1"})); r.status != 404 {
		t.Errorf("POST after DELETE: %d, want 404", r.status)
	}
}

func TestOtherMethodsAndPaths(t *testing.T) {
	h := newHarness(t, nil)
	r := h.call("PUT", "int-1", tenant1, token1, "{}")
	if r.status != 405 || r.header.Get("Allow") != "GET, POST" || r.errorBody(t).Code != 405 {
		t.Errorf("PUT: %d %v %s", r.status, r.header, r.body)
	}
	if r := h.admin("GET", "/api/v2/other", ""); r.status != 404 || r.errorBody(t).Code != 404 {
		t.Errorf("GET /api/v2/other: %d %s", r.status, r.body)
	}
}
