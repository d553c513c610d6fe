// Package ops serves what operators and Kubernetes read from a running connector: Prometheus
// metrics on /metrics, liveness on /healthz and readiness on /readyz, each with a JSON body
// that says why when the answer is no.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HealthFunc reports liveness and readiness, with the reasons when not ready.
type HealthFunc func() (alive, ready bool, why []string)

// Handler returns the mux of /metrics, /healthz and /readyz.
func Handler(gatherer prometheus.Gatherer, health HealthFunc) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		alive, _, why := health()
		writeStatus(w, alive, why)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		_, ready, why := health()
		writeStatus(w, ready, why)
	})
	return mux
}

type status struct {
	Status  string   `json:"status"`
	Reasons []string `json:"reasons,omitempty"`
}

func writeStatus(w http.ResponseWriter, ok bool, why []string) {
	w.Header().Set("Content-Type", "application/json")
	st := status{Status: "ok"}
	if !ok {
		st = status{Status: "unavailable", Reasons: why}
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(st)
}

// Serve listens on addr and serves h until ctx ends, then shuts down within a few seconds.
// It returns once the listener is open, with the address it listens on; the serving
// goroutine ends before done is closed.
func Serve(ctx context.Context, addr string, h http.Handler) (bound string, done <-chan struct{}, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listening for metrics and health on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			_ = srv.Shutdown(sctx)
			cancel()
			<-errc
		case err := <-errc:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				_ = err // the listener failed; the process keeps running without the endpoint
			}
		}
	}()
	return ln.Addr().String(), ch, nil
}
