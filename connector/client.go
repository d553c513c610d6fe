package connector

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/augment-connector/augment-connector/internal/api"
)

// outcome classifies one attempt of a write, decided once, here (docs/DESIGN.md, "Failure classes").
type outcome int

const (
	outcomeDone      outcome = iota // 2xx
	outcomePermanent                // 400 and other 4xx that no retry can fix: dead-letter
	outcomeBlocked                  // 401, 403, 3xx: the tenant's token or endpoint is refused
	outcomeNotFound                 // 404: the interaction is not registered (yet) or has ended
	outcomeThrottled                // 429
	outcomeTransient                // 5xx, timeout, connection error
)

func (o outcome) String() string {
	switch o {
	case outcomeDone:
		return "done"
	case outcomePermanent:
		return "permanent"
	case outcomeBlocked:
		return "blocked"
	case outcomeNotFound:
		return "not_found"
	case outcomeThrottled:
		return "throttled"
	default:
		return "transient"
	}
}

// maxErrBody caps how much of an error response is read, as Prometheus's remote-write client
// does: an error page must not cost memory.
const maxErrBody = 1024

// maxRetryAfter caps a Retry-After: one rate window plus a margin. A longer (or negative, or
// unparseable-as-a-number) delay would park the tenant's writes far beyond anything the API's
// per-minute limit can require.
const maxRetryAfter = 90 * time.Second

// attemptResult is what one HTTP attempt came to.
type attemptResult struct {
	outcome    outcome
	status     int           // 0 when no response arrived
	retryAfter time.Duration // from a Retry-After header, if any, at most maxRetryAfter
	// retryAfterCapped says the header asked for more than maxRetryAfter (or was negative).
	retryAfterCapped bool
	// unconfirmed marks a 2xx whose body did not confirm the write (empty, not JSON, or
	// without "status":"success"): accepted, since the contract does not promise the body,
	// but counted.
	unconfirmed bool
	// redirect names the status and the Location host of a 3xx, which is never followed.
	redirect string
	message  string // the API's message, or the transport error; never a value or token
	// mayBeSent says that, when no response arrived (status 0), the request may still have
	// been written: a connection was obtained for it before it failed. A request that failed
	// before any connection carried it (DNS, dial, TLS handshake, a request that could not be
	// built) was never sent.
	mayBeSent bool
}

// use says how the attempt used its reservation of the budget: answered when a response
// arrived (whatever its status, the API saw it), uncertain when none did after the request
// may have been written (a timeout, a reset, a cancel), unused when it never left.
func (r attemptResult) use() use {
	switch {
	case r.status != 0:
		return useAnswered
	case r.mayBeSent:
		return useUncertain
	default:
		return useUnused
	}
}

// apiClient writes variables to one tenant's Data Augmentation API. It holds one http.Client
// whose keep-alive pool is sized to the tenant's concurrency, so steady traffic reuses
// connections instead of opening one per request.
type apiClient struct {
	base     string // scheme://host[:port][/prefix], no trailing slash
	tenantID string
	dataForm bool
	timeout  time.Duration
	hc       *http.Client
	now      func() time.Time // reads Retry-After dates; the tenant's clock

	mu    sync.Mutex // guards token and auth
	token string     // the action token; never logged
	auth  string     // "Basic ..." header value built from tenantID and token; never logged
}

// TenantOptions are the settings of one tenant's writer.
type TenantOptions struct {
	BaseURL  string // e.g. https://vcc-na12.8x8.com
	TenantID string // the Basic auth user
	Token    string // the action token, the Basic auth password
	// ReloadToken, when set, reads the token again (from the file it came from): it is
	// called before each probe of a blocked tenant, so a rotated secret heals the tenant
	// without a restart. Its errors must not carry the token.
	ReloadToken       func() (string, error)
	RequestsPerMinute int           // the tenant's budget; default 100
	Concurrency       int           // requests in flight at most; default 16
	RequestTimeout    time.Duration // per attempt; default 10s
	TLS               *tls.Config   // nil for the system roots
	DataForm          bool          // send {"data":[{"variables":[...]}]} instead of {"variables":[...]}
	// NotFoundGrace is how long after its data's time a record may still meet a 404 because its
	// interaction has not appeared yet (a CRM change ahead of the call's registration): a
	// younger record's 404 is retried a few times on a growing schedule within the grace, at
	// the lowest priority; an older one's is final at once. Default 30s.
	NotFoundGrace time.Duration
	// OnGone is what becomes of a later record for an identifier whose 404 was final (it is
	// remembered for goneMemory): OnGoneDeadLetter (the default; class not_found) or
	// OnGoneSkip (reason gone). Either way no request is made.
	OnGone          string
	MaxRetryElapsed time.Duration // 0: transient errors are retried forever
	// BlockedProbeInterval is how often the tenant sends one probe while it is blocked (its
	// answers were 401, 403 or a redirect); default 15s.
	BlockedProbeInterval time.Duration
}

func (o *TenantOptions) defaults() {
	if o.RequestsPerMinute <= 0 {
		o.RequestsPerMinute = api.DefaultRequestsPerMinute
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.BlockedProbeInterval <= 0 {
		o.BlockedProbeInterval = blockedProbeInterval
	}
	if o.NotFoundGrace <= 0 {
		o.NotFoundGrace = 30 * time.Second
	}
	if o.OnGone == "" {
		o.OnGone = OnGoneDeadLetter
	}
}

func newAPIClient(o TenantOptions) (*apiClient, error) {
	u, err := url.Parse(o.BaseURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("parsing base URL %q: want scheme://host[/path prefix]", o.BaseURL)
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     o.TLS,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        o.Concurrency,
		MaxIdleConnsPerHost: o.Concurrency,
		MaxConnsPerHost:     o.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false, // the API is plain HTTP/1.1 keep-alive; h2 gains nothing here
	}
	c := &apiClient{
		base:     BaseEndpoint(o.BaseURL),
		tenantID: o.TenantID,
		dataForm: o.DataForm,
		timeout:  o.RequestTimeout,
		now:      time.Now,
		// A redirect is never followed: a 301/302/303 would turn the POST into a GET that
		// answers 200 with nothing written, and a 307/308 would re-send the token and the
		// body wherever Location points, plain http:// included. The 3xx itself comes back
		// and is classified (see post).
		hc: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	c.setToken(o.Token)
	return c, nil
}

// BaseEndpoint is the URL that identifiers are appended to for a tenant whose base URL is
// baseURL: any path of baseURL is kept as a prefix (a gateway, or another published path of
// the vendor's), followed by the contract's path.
func BaseEndpoint(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil {
		return strings.TrimRight(baseURL, "/") + strings.TrimSuffix(api.PathPrefix, "/")
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/") + strings.TrimSuffix(api.PathPrefix, "/")
}

// setToken replaces the action token; it reports whether it changed.
func (c *apiClient) setToken(token string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.auth != "" && token == c.token {
		return false
	}
	c.token = token
	c.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(c.tenantID+":"+token))
	return true
}

func (c *apiClient) authHeader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.auth
}

// url is where a request for identifier goes.
func (c *apiClient) url(identifier string) string {
	return c.base + "/" + url.PathEscape(identifier)
}

// close releases idle connections.
func (c *apiClient) close() { c.hc.CloseIdleConnections() }

// post sends one attempt of body to identifier and classifies the answer.
func (c *apiClient) post(ctx context.Context, identifier string, body []byte) attemptResult {
	return c.postWithin(ctx, identifier, body, 0)
}

// postWithin is post with the attempt's timeout capped at within (0: the tenant's request
// timeout), as the attempt's reservation of the budget allows.
func (c *apiClient) postWithin(ctx context.Context, identifier string, body []byte, within time.Duration) attemptResult {
	timeout := c.timeout
	if within > 0 && within < timeout {
		timeout = within
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Whether a connection was obtained for the request: from then on it may have been
	// written, so a failure without a response is uncertain, not unused.
	var gotConn atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(identifier), bytes.NewReader(body))
	if err != nil {
		return attemptResult{outcome: outcomePermanent, message: "building request: " + err.Error()}
	}
	req.Header.Set("Authorization", c.authHeader())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "augment-connector")
	resp, err := c.hc.Do(req)
	if err != nil {
		return attemptResult{outcome: outcomeTransient, message: transportMessage(err), mayBeSent: gotConn.Load()}
	}
	defer resp.Body.Close()
	res := attemptResult{status: resp.StatusCode}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxOKBody))
		// Drain so the connection goes back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		classifyOK(&res, b)
		return res
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		res.outcome = outcomeBlocked
		res.redirect = redirectMessage(resp.StatusCode, resp.Header.Get("Location"))
		res.message = res.redirect
		return res
	}
	res.outcome = statusOutcome(resp.StatusCode)
	if res.outcome == outcomeThrottled || res.outcome == outcomeTransient {
		res.retryAfter, res.retryAfterCapped = parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	res.message = errorMessage(resp.StatusCode, b)
	return res
}

// maxOKBody caps how much of a 2xx body is read to confirm the write: the contract's success
// body is about a hundred bytes.
const maxOKBody = 4096

// statusOutcome classifies a non-2xx, non-3xx status, or the code of an error body.
func statusOutcome(status int) outcome {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return outcomeBlocked
	case status == http.StatusNotFound:
		return outcomeNotFound
	case status == http.StatusTooManyRequests:
		return outcomeThrottled
	case status == http.StatusRequestTimeout || status >= 500:
		return outcomeTransient
	case status >= 400:
		return outcomePermanent
	default:
		return outcomeTransient // not an error status at all: nothing says the write landed
	}
}

// classifyOK decides what a 2xx with body b means. The contract's success body is
// {"status":"success",...}; one with "status":"error" is an error whatever the status line
// says, classified by its code (a missing or odd code: transient, so it is retried, never
// counted as written). The vendor's documentation does not promise a body, so an empty or
// unrecognised one is accepted but marked unconfirmed, for a metric.
func classifyOK(res *attemptResult, b []byte) {
	res.outcome = outcomeDone
	var body struct {
		Status  string `json:"status"`
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if len(bytes.TrimSpace(b)) == 0 || json.Unmarshal(b, &body) != nil {
		res.unconfirmed = true
		return
	}
	switch body.Status {
	case "success":
	case "error":
		res.outcome = statusOutcome(body.Code)
		if res.outcome == outcomeBlocked && body.Code != http.StatusUnauthorized && body.Code != http.StatusForbidden {
			res.outcome = outcomeTransient
		}
		msg := body.Message
		if msg == "" {
			msg = "no message"
		}
		res.message = fmt.Sprintf("HTTP %d with an error body (code %d): %s", res.status, body.Code, truncate(msg, 200))
		if body.Code >= 400 && body.Code < 600 {
			res.status = body.Code // classified, counted and dead-lettered as that status
		}
	default:
		res.unconfirmed = true
	}
}

// redirectMessage describes a 3xx by its status and the host it points to (never the whole
// Location, which may carry a path or query of anything).
func redirectMessage(status int, location string) string {
	host := "no Location"
	if u, err := url.Parse(location); err == nil && u.Host != "" {
		host = u.Scheme + "://" + u.Host
	} else if location != "" {
		host = "a relative Location on the same host"
	}
	return fmt.Sprintf("HTTP %d redirect to %s: redirects are never followed; check the tenant's cluster or baseURL", status, host)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// errorMessage extracts the API's message from an error body, or describes the status.
func errorMessage(status int, body []byte) string {
	var e api.ErrorResponse
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return fmt.Sprintf("HTTP %d: %s", status, e.Message)
	}
	return fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
}

// transportMessage describes a transport error without the request URL's userinfo (there is
// none: credentials go in a header) and short enough for a log line.
func transportMessage(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "request timed out"
	}
	return err.Error()
}

// parseRetryAfter reads a Retry-After header in either form, delay-seconds or an HTTP date,
// capped at maxRetryAfter: a negative or overflowing number of seconds, or a date further than
// the cap, means the cap. capped reports that the cap applied.
func parseRetryAfter(v string, now time.Time) (d time.Duration, capped bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isInteger(v) {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil || s < 0 || s > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(s) * time.Second, false
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		switch {
		case d <= 0:
			return 0, false
		case d > maxRetryAfter:
			return maxRetryAfter, true
		}
		return d, false
	}
	return 0, false
}

// isInteger reports whether v is an optionally signed run of decimal digits.
func isInteger(v string) bool {
	v = strings.TrimPrefix(strings.TrimPrefix(v, "-"), "+")
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// StatusError is an answer of the API other than the one asked for, with its status: a 404
// for an interaction that does not exist proves the token was accepted, a 401 that it was not.
type StatusError struct {
	Status  int
	Message string // what the answer said, never the token
}

func (e *StatusError) Error() string { return e.Message }

// GetInteraction reads an interaction's context and variables through the API's GET, for an
// operator who wants to see what landed. It makes one attempt, outside any pacer: callers
// should use it sparingly, as it counts against the tenant's budget.
func GetInteraction(ctx context.Context, o TenantOptions, identifier string) (api.Interaction, error) {
	o.defaults()
	c, err := newAPIClient(o)
	if err != nil {
		return api.Interaction{}, err
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := api.CheckIdentifier(identifier); err != nil {
		return api.Interaction{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(identifier), nil)
	if err != nil {
		return api.Interaction{}, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Authorization", c.authHeader())
	req.Header.Set("User-Agent", "augment-connector")
	resp, err := c.hc.Do(req)
	if err != nil {
		return api.Interaction{}, fmt.Errorf("reading interaction: %s", transportMessage(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return api.Interaction{}, fmt.Errorf("reading interaction: %s", redirectMessage(resp.StatusCode, resp.Header.Get("Location")))
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
		return api.Interaction{}, &StatusError{Status: resp.StatusCode, Message: "reading interaction: " + errorMessage(resp.StatusCode, b)}
	}
	var ia api.Interaction
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ia); err != nil {
		return api.Interaction{}, fmt.Errorf("decoding interaction: %w", err)
	}
	return ia, nil
}
