package sim

import "time"

// window is a sliding-window log of a tenant's requests: the times of the last limit requests,
// oldest first from next. A request is admitted when fewer than limit requests fall in the
// RateWindow before it. Every request is logged, admitted or not, so a client that retries
// without waiting stays throttled: the API counts attempts, not successes, and a connector that
// paces itself by its own attempts never sees a 429.
type window struct {
	limit int         // 0: no limit
	times []time.Time // ring of up to limit entries
	next  int         // index of the oldest entry once the ring is full
}

// admit logs a request at now and reports whether it is within the limit. When it is not,
// retryAfter is how long until the oldest request in the window leaves it.
func (w *window) admit(now time.Time) (ok bool, retryAfter time.Duration) {
	if w.limit <= 0 {
		return true, 0
	}
	if len(w.times) < w.limit {
		w.times = append(w.times, now)
		return true, 0
	}
	ok = now.Sub(w.times[w.next]) >= RateWindow
	w.times[w.next] = now
	w.next = (w.next + 1) % w.limit
	if ok {
		return true, 0
	}
	return false, w.times[w.next].Add(RateWindow).Sub(now)
}

// retryAfterSeconds rounds d up to whole seconds, at least 1, for a Retry-After header.
func retryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
