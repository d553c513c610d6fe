package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/augment-connector/augment-connector/internal/config"
)

// TestTracerProviderOff: tracing disabled builds nothing.
func TestTracerProviderOff(t *testing.T) {
	tp, err := TracerProvider(context.Background(), &config.TracingConfig{SampleRatio: 1, ServiceName: "x"}, "test")
	if err != nil || tp != nil {
		t.Fatalf("TracerProvider = %v, %v; want nil, nil when disabled", tp, err)
	}
}

// TestTracerProviderExports: a span ended before Shutdown reaches the collector at the
// endpoint's path + /v1/traces, with the configured headers.
func TestTracerProviderExports(t *testing.T) {
	var mu sync.Mutex
	var paths, keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		keys = append(keys, r.Header.Get("X-Api-Key"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	tc := &config.TracingConfig{Enabled: true, Endpoint: srv.URL + "/otlp/", Insecure: true,
		Headers: map[string]config.Secret{"x-api-key": "k3y"}, SampleRatio: 1, ServiceName: "augment-connector"}
	tp, err := TracerProvider(context.Background(), tc, "test")
	if err != nil {
		t.Fatal(err)
	}
	_, sp := tp.Tracer("test").Start(context.Background(), "augment.record")
	sp.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths[0] != "POST /otlp/v1/traces" || keys[0] != "k3y" {
		t.Fatalf("collector saw %v with keys %v, want one POST /otlp/v1/traces with the header", paths, keys)
	}
}
