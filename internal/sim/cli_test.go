package sim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/internal/api"
)

// lineWriter hands each written line to a channel, for a test to wait on output.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		select {
		case w.lines <- strings.TrimSpace(line):
		default: // nobody waits for more lines
		}
	}
}

// runCommand starts RunCommand and returns the URL it prints and a stop function that cancels
// it and returns its error.
func runCommand(t *testing.T, args ...string) (url string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lineWriter{lines: make(chan string, 8)}
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- RunCommand(ctx, args, out, &stderr) }()
	select {
	case line := <-out.lines:
		url = strings.TrimPrefix(line, "simulator listening on ")
	case err := <-done:
		cancel()
		t.Fatalf("RunCommand returned early: %v; stderr %s", err, stderr.String())
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("RunCommand printed no URL")
	}
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("RunCommand did not return after cancel")
		}
	}
	t.Cleanup(func() { _ = stop() })
	return url, stop
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func postWith(t *testing.T, c *http.Client, url, tenant, token, id string) int {
	t.Helper()
	req, err := http.NewRequest("POST", url+api.PathPrefix+id, strings.NewReader(body(api.Variable{Name: "_a", Value: "1"})))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(tenant, token)
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func TestRunCommandPlainHTTP(t *testing.T) {
	tenants := writeFile(t, "tenants.yaml", "- id: t2\n  token: two\n")
	routes := writeFile(t, "routes.yaml", "routes:\n  - variable: _a\n    operator: equals\n    operand: \"1\"\n    trueExit: yes\n    falseExit: no\n")
	url, stop := runCommand(t, "--plain-http", "--listen", "127.0.0.1:0", "--tenant", "t1:secret",
		"--tenants-file", tenants, "--routes", routes, "--auto-create", "--rate-limit", "2", "--retry-after")
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("URL %q", url)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i, want := range []int{200, 200, 429} {
		if got := postWith(t, c, url, "t1", "secret", "int-1"); got != want {
			t.Errorf("t1 request %d: %d, want %d", i+1, got, want)
		}
	}
	if got := postWith(t, c, url, "t2", "two", "int-1"); got != 200 {
		t.Errorf("t2 from the tenants file: %d", got)
	}
	res, err := c.Get(url + "/interactions/int-1")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(page), `data-variable="_a" data-result="false" data-exit="no"`) { // _a is not ivr:true
		t.Error("the page does not evaluate the routes file")
	}
	if err := stop(); err != nil {
		t.Errorf("RunCommand after cancel: %v", err)
	}
}

func TestRunCommandHTTPSWritesCA(t *testing.T) {
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	url, stop := runCommand(t, "--listen", "127.0.0.1:0", "--tenant", "t1:secret", "--auto-create", "--ca-out", caPath)
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("URL %q, want HTTPS by default", url)
	}
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("--ca-out wrote no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	if got := postWith(t, &http.Client{Transport: tr}, url, "t1", "secret", "int-1"); got != 200 {
		t.Errorf("POST over HTTPS: %d", got)
	}
	if err := stop(); err != nil {
		t.Errorf("RunCommand after cancel: %v", err)
	}
}

func TestRunCommandRejectsBadFlags(t *testing.T) {
	tenantsBad := writeFile(t, "tenants.yaml", "- id: t1\n  secret: x\n")
	routesBad := writeFile(t, "routes.yaml", "routes:\n  - variable: nope\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no tenant", []string{"--plain-http"}, "at least one tenant"},
		{"tenant without token", []string{"--tenant", "t1"}, "want ID:TOKEN"},
		{"duplicate tenant", []string{"--tenant", "t1:a", "--tenant", "t1:b"}, "duplicate id"},
		{"unknown tenants file key", []string{"--tenants-file", tenantsBad}, "secret"},
		{"missing tenants file", []string{"--tenants-file", tenantsBad + ".missing"}, "reading tenants"},
		{"bad routes", []string{"--tenant", "t1:a", "--routes", routesBad}, "must start with underscore"},
		{"cert without key", []string{"--tenant", "t1:a", "--cert", "c.pem"}, "--cert and --key go together"},
		{"ca-out with plain HTTP", []string{"--tenant", "t1:a", "--plain-http", "--ca-out", "ca.pem"}, "--ca-out needs"},
		{"negative rate limit", []string{"--tenant", "t1:a", "--rate-limit", "-1"}, "rate limit"},
		{"error rate above 1", []string{"--tenant", "t1:a", "--error-rate", "2"}, "errorRate"},
		{"stray argument", []string{"--tenant", "t1:a", "serve"}, `unexpected "serve"`},
		{"unknown flag", []string{"--tenants", "x"}, "flag provided but not defined"},
		{"listen taken", []string{"--tenant", "t1:a", "--plain-http", "--listen", "256.0.0.1:1"}, "listening on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := RunCommand(context.Background(), tt.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error()+stderr.String(), tt.want) {
				t.Errorf("RunCommand(%q) = %v (stderr %q), want an error mentioning %q", tt.args, err, stderr.String(), tt.want)
			}
		})
	}
	// A token never appears in an error or the usage text.
	var stderr bytes.Buffer
	err := RunCommand(context.Background(), []string{"--tenant", "t1:s3cr3t-token", "--tenant", "t1:s3cr3t-token"}, io.Discard, &stderr)
	if err == nil || strings.Contains(err.Error()+stderr.String(), "s3cr3t") {
		t.Errorf("error %v / stderr %q shows the token", err, stderr.String())
	}
	if err := RunCommand(context.Background(), []string{"-h"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}
