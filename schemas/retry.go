package schemas

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// RetryMaxInterval caps the wait between retries of a decode that failed for a transient
// reason (the registry is unreachable): long enough not to hammer a registry that is down,
// short enough that decoding resumes soon after it is back.
const RetryMaxInterval = 30 * time.Second

// RetryingDecoder is a Decoder that retries the decodes a retry can fix. Create it with
// Retrying. It is safe for concurrent use if its decoder is.
type RetryingDecoder struct {
	dec         Decoder
	isTransient func(error) bool
}

// Retrying returns dec retrying every decode that fails with an error isTransient accepts (a
// registry outage, such as IsTransient's): with exponential backoff, a fresh one per decode,
// up to RetryMaxInterval between tries and with no limit on their number, since such an
// error says nothing about the record. It returns the first other error, or ctx's once ctx
// ends. A nil isTransient retries nothing.
func Retrying(dec Decoder, isTransient func(error) bool) *RetryingDecoder {
	if isTransient == nil {
		isTransient = func(error) bool { return false }
	}
	return &RetryingDecoder{dec: dec, isTransient: isTransient}
}

// Decode implements Decoder.
func (d *RetryingDecoder) Decode(ctx context.Context, b []byte) (any, error) {
	return d.DecodeNotify(ctx, b, nil)
}

// DecodeNotify is Decode calling onRetry (may be nil) before each wait, with the error and the
// wait, so the caller can log the retry with what it knows of the record. When it returns an
// error and ctx has ended, the decode was abandoned, not failed.
func (d *RetryingDecoder) DecodeNotify(ctx context.Context, b []byte, onRetry func(err error, wait time.Duration)) (any, error) {
	var bo *backoff.ExponentialBackOff
	for {
		v, err := d.dec.Decode(ctx, b)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil || !d.isTransient(err) {
			return nil, err
		}
		if bo == nil {
			bo = backoff.NewExponentialBackOff()
			bo.MaxElapsedTime = 0
			bo.MaxInterval = RetryMaxInterval
			bo.Reset()
		}
		wait := bo.NextBackOff()
		if onRetry != nil {
			onRetry(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
