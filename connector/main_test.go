package connector

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that every goroutine the connector starts is stopped (invariant 7).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
