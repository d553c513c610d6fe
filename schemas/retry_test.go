package schemas

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// flaky fails with errs in turn, then decodes to "ok".
type flaky struct {
	errs  []error
	calls int
}

func (f *flaky) Decode(context.Context, []byte) (any, error) {
	f.calls++
	if f.calls <= len(f.errs) {
		return nil, f.errs[f.calls-1]
	}
	return "ok", nil
}

func TestRetrying(t *testing.T) {
	outage := &TransientError{ID: 7, Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name        string
		errs        []error
		isTransient func(error) bool
		wantValue   any
		wantErr     error
		wantCalls   int
		wantRetries int
	}{
		{name: "decodes at once", wantValue: "ok", wantCalls: 1, isTransient: IsTransient},
		{name: "retries a registry outage until it decodes", errs: []error{outage, outage}, isTransient: IsTransient,
			wantValue: "ok", wantCalls: 3, wantRetries: 2},
		{name: "a permanent error ends at once", errs: []error{outage, ErrDecode}, isTransient: IsTransient,
			wantErr: ErrDecode, wantCalls: 2, wantRetries: 1},
		{name: "nil isTransient retries nothing", errs: []error{outage}, wantErr: ErrRegistryUnavailable, wantCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &flaky{errs: tc.errs}
				retries := 0
				v, err := Retrying(f, tc.isTransient).DecodeNotify(context.Background(), []byte("x"), func(err error, wait time.Duration) {
					retries++
					if !IsTransient(err) || wait <= 0 || wait > RetryMaxInterval {
						t.Errorf("retry %d: error %v, wait %v", retries, err, wait)
					}
				})
				if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
					t.Errorf("error %v, want %v", err, tc.wantErr)
				}
				if v != tc.wantValue {
					t.Errorf("value %v, want %v", v, tc.wantValue)
				}
				if f.calls != tc.wantCalls || retries != tc.wantRetries {
					t.Errorf("%d decodes and %d retries, want %d and %d", f.calls, retries, tc.wantCalls, tc.wantRetries)
				}
			})
		})
	}
}

// TestRetryingEndsWithContext: a decode retried through an outage ends when ctx does, with
// ctx's error.
func TestRetryingEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		outage := &TransientError{ID: 7, Err: errors.New("connection refused")}
		f := &flaky{errs: make([]error, 1000)}
		for i := range f.errs {
			f.errs[i] = outage
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := Retrying(f, IsTransient).Decode(ctx, []byte("x"))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want the context's deadline", err)
		}
	})
}
