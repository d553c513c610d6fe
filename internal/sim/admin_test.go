package sim

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The admin endpoints that change state answer only requests whose Host names the simulator
// (403 otherwise: DNS rebinding) and, for POSTs, whose body is declared JSON (415 otherwise: a
// cross-site form); what they accept still works.
func TestAdminGuard(t *testing.T) {
	s, err := New(Config{Tenants: []Tenant{{ID: "t1", Token: "tok"}}, PlainHTTP: true, AdminHosts: []string{"sim.internal:8443"}})
	if err != nil {
		t.Fatal(err)
	}
	url, err := s.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	s.life.Lock()
	srv := s.srv
	s.life.Unlock()
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 {
		t.Errorf("http.Server timeouts: header %v, read %v, write %v, idle %v; want all set",
			srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	const faults = `{"errorRate":0}`
	tests := []struct {
		name, method, path, host, ctype, body string
		want                                  int
	}{
		{"listen address", "POST", "/sim/faults", "127.0.0.1:" + port, "application/json", faults, 200},
		{"localhost with the port", "POST", "/sim/faults", "localhost:" + port, "application/json; charset=utf-8", faults, 200},
		{"ipv6 loopback with the port", "POST", "/sim/faults", "[::1]:" + port, "application/json", faults, 200},
		{"an --admin-host", "POST", "/sim/faults", "SIM.internal:8443", "application/json", faults, 200},
		{"create an interaction", "POST", "/sim/interactions", "127.0.0.1:" + port, "application/json", `{"interactionId":"int-1"}`, 201},
		{"end an interaction", "DELETE", "/sim/interactions/int-1", "localhost:" + port, "", "", 204},
		{"foreign host", "POST", "/sim/faults", "evil.example:" + port, "application/json", faults, 403},
		{"foreign host ending an interaction", "DELETE", "/sim/interactions/int-1", "evil.example", "", "", 403},
		{"localhost with another port", "POST", "/sim/faults", "localhost:1", "application/json", faults, 403},
		{"localhost without a port", "POST", "/sim/faults", "localhost", "application/json", faults, 403},
		{"form post", "POST", "/sim/faults", "127.0.0.1:" + port, "application/x-www-form-urlencoded", faults, 415},
		{"text/plain post", "POST", "/sim/interactions", "127.0.0.1:" + port, "text/plain", `{"interactionId":"int-2"}`, 415},
		{"no content type", "POST", "/sim/faults", "127.0.0.1:" + port, "", faults, 415},
		{"reads stay open", "GET", "/sim/faults", "evil.example", "", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, url+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tt.host
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Errorf("%s %s with Host %q: %d, want %d", tt.method, tt.path, tt.host, res.StatusCode, tt.want)
			}
		})
	}
	if _, ok := s.Interaction("t1", "int-2"); ok {
		t.Error("a text/plain POST created an interaction")
	}
}

// Served by httptest (Handler without Start) the port is not known: loopback names with any
// port match, other names do not.
func TestAdminGuardWithoutStart(t *testing.T) {
	s, err := New(Config{Tenants: []Tenant{{ID: "t1", Token: "tok"}}, PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]int{"127.0.0.1:1234": 200, "localhost:80": 200, "rebound.example:1234": 403} {
		req := httptest.NewRequest("POST", "/sim/faults", strings.NewReader(`{}`))
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d", host, w.Code, want)
		}
	}
}
