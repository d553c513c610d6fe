// Package simtest starts the API simulator for tests in other packages.
package simtest

import (
	"context"
	"testing"
	"time"

	"github.com/augment-connector/augment-connector/internal/sim"
)

// Start creates a simulator with cfg, serves it on an ephemeral loopback port and shuts it
// down (waiting up to 5 s for requests in progress) when the test ends, failing the test if
// any of that goes wrong. It returns the server and its base URL.
func Start(t testing.TB, cfg sim.Config) (*sim.Server, string) {
	t.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatalf("simtest: creating simulator: %v", err)
	}
	url, err := s.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("simtest: starting simulator: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("simtest: shutting down simulator: %v", err)
		}
	})
	return s, url
}
