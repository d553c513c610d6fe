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
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/augment-connector/augment-connector/internal/api"
)

// outcome classifies one attempt of a write, decided once, here (DESIGN.md, failure classes).
type outcome int

const (
	outcomeDone      outcome = iota // 2xx
	outcomePermanent                // 400 and other 4xx that no retry can fix: dead-letter
	outcomeBlocked                  // 401, 403: the tenant's token is refused
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

// attemptResult is what one HTTP attempt came to.
type attemptResult struct {
	outcome    outcome
	status     int           // 0 when no response arrived
	retryAfter time.Duration // from a Retry-After header, if any
	message    string        // the API's message, or the transport error; never a value or token
}

// apiClient writes variables to one tenant's Data Augmentation API. It holds one http.Client
// whose keep-alive pool is sized to the tenant's concurrency, so steady traffic reuses
// connections instead of opening one per request.
type apiClient struct {
	base     string // scheme://host[:port], no trailing slash
	auth     string // "Basic ..." header value; never logged
	dataForm bool
	timeout  time.Duration
	hc       *http.Client
}

// TenantOptions are the settings of one tenant's writer.
type TenantOptions struct {
	BaseURL           string        // e.g. https://vcc-na12.8x8.com
	TenantID          string        // the Basic auth user
	Token             string        // the action token, the Basic auth password
	RequestsPerMinute int           // the tenant's budget; default 100
	Concurrency       int           // requests in flight at most; default 16
	RequestTimeout    time.Duration // per attempt; default 10s
	TLS               *tls.Config   // nil for the system roots
	DataForm          bool          // send {"data":[{"variables":[...]}]} instead of {"variables":[...]}
	NotFoundWindow    time.Duration // how long 404s are retried before dead-lettering; default 30s
	MaxRetryElapsed   time.Duration // 0: transient errors are retried forever
	// BlockedProbeInterval is how often a write is retried while the tenant answers 401/403;
	// default 15s.
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
	if o.NotFoundWindow <= 0 {
		o.NotFoundWindow = 30 * time.Second
	}
}

func newAPIClient(o TenantOptions) (*apiClient, error) {
	u, err := url.Parse(o.BaseURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("parsing base URL %q: want scheme://host", o.BaseURL)
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
	return &apiClient{
		base:     strings.TrimRight(u.Scheme+"://"+u.Host, "/"),
		auth:     "Basic " + base64.StdEncoding.EncodeToString([]byte(o.TenantID+":"+o.Token)),
		dataForm: o.DataForm,
		timeout:  o.RequestTimeout,
		hc:       &http.Client{Transport: tr},
	}, nil
}

// close releases idle connections.
func (c *apiClient) close() { c.hc.CloseIdleConnections() }

// post sends one attempt of body to identifier and classifies the answer.
func (c *apiClient) post(ctx context.Context, identifier string, body []byte) attemptResult {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+api.PathPrefix+url.PathEscape(identifier), bytes.NewReader(body))
	if err != nil {
		return attemptResult{outcome: outcomePermanent, message: "building request: " + err.Error()}
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "augment-connector")
	resp, err := c.hc.Do(req)
	if err != nil {
		return attemptResult{outcome: outcomeTransient, message: transportMessage(err)}
	}
	defer resp.Body.Close()
	res := attemptResult{status: resp.StatusCode}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		// Drain so the connection goes back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		res.outcome = outcomeDone
		return res
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		res.outcome = outcomeBlocked
	case resp.StatusCode == http.StatusNotFound:
		res.outcome = outcomeNotFound
	case resp.StatusCode == http.StatusTooManyRequests:
		res.outcome = outcomeThrottled
		res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		res.outcome = outcomeTransient
		res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	default:
		res.outcome = outcomePermanent
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	res.message = errorMessage(resp.StatusCode, b)
	return res
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

// parseRetryAfter reads a Retry-After header in either form: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+api.PathPrefix+url.PathEscape(identifier), nil)
	if err != nil {
		return api.Interaction{}, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("User-Agent", "augment-connector")
	resp, err := c.hc.Do(req)
	if err != nil {
		return api.Interaction{}, fmt.Errorf("reading interaction: %s", transportMessage(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
		return api.Interaction{}, fmt.Errorf("reading interaction: %s", errorMessage(resp.StatusCode, b))
	}
	var ia api.Interaction
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ia); err != nil {
		return api.Interaction{}, fmt.Errorf("decoding interaction: %w", err)
	}
	return ia, nil
}
