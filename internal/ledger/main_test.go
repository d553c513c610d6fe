package ledger

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that every goroutine a Member starts (and every client its tests build)
// is stopped: Run owns its goroutines and returns only when they have stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
