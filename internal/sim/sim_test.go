package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/augment-connector/augment-connector/internal/api"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is an injectable clock that only moves when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 7, 10, 14, 30, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is a simulator behind an httptest server (plain HTTP) with a fake clock.
type harness struct {
	t     *testing.T
	s     *Server
	clock *fakeClock
	url   string
	hc    *http.Client
}

const (
	tenant1, token1 = "t1", "secret"
	tenant2, token2 = "t2", "other-secret"
)

// newHarness starts a simulator with two tenants; edit adjusts the config first.
func newHarness(t *testing.T, edit func(*Config)) *harness {
	t.Helper()
	clock := newFakeClock()
	cfg := Config{
		Tenants:   []Tenant{{ID: tenant1, Token: token1}, {ID: tenant2, Token: token2}},
		PlainHTTP: true,
		Clock:     clock.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(s.Handler())
	tr := &http.Transport{}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
	})
	return &harness{t: t, s: s, clock: clock, url: srv.URL, hc: &http.Client{Transport: tr}}
}

// reply is a response read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) errorBody(t *testing.T) api.ErrorResponse {
	t.Helper()
	var e api.ErrorResponse
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("decoding error body %q: %v", r.body, err)
	}
	return e
}

// call sends one API request as tenant:token ("" tenant: no credential).
func (h *harness) call(method, escapedID, tenant, token, body string) reply {
	h.t.Helper()
	r, err := h.try(method, escapedID, tenant, token, body)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, escapedID, err)
	}
	return r
}

func (h *harness) try(method, escapedID, tenant, token, body string) (reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.url+api.PathPrefix+escapedID, rd)
	if err != nil {
		return reply{}, err
	}
	if tenant != "" {
		req.SetBasicAuth(tenant, token)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := h.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return reply{status: res.StatusCode, header: res.Header, body: b}, err
}

func (h *harness) post(id, body string) reply { return h.call("POST", id, tenant1, token1, body) }

func (h *harness) admin(method, path, body string) reply {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, bytes.NewBufferString(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := h.hc.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return reply{status: res.StatusCode, header: res.Header, body: b}
}

func (h *harness) create(tenant, id string) {
	h.t.Helper()
	if err := h.s.CreateInteraction(tenant, api.Interaction{InteractionID: id}); err != nil {
		h.t.Fatalf("CreateInteraction: %v", err)
	}
}

// body builds a request body of the contract's form.
func body(vars ...api.Variable) string { return string(api.AppendRequest(nil, vars, false)) }
