package sim

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/internal/api"
)

// jsonContentType is shared by every JSON response; net/http only reads it.
var jsonContentType = []string{"application/json"}

// Messages of the simulator's own errors and journal notes (the contract's are in package api).
const (
	msgMethodNotAllowed = "Method not allowed"
	msgTooLarge         = "Invalid request body: larger than %d bytes"
	msgReadingBody      = "Invalid request body: reading it failed"
	noteDropped         = "connection dropped (fault)"
	noteOutage          = "connection dropped (outage)"
	noteClientGone      = "client gone during injected latency"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathPrefix+"{identifier...}", s.serveAPI)
	mux.HandleFunc("GET "+api.PathPrefix+"{identifier...}", s.serveAPI)
	mux.HandleFunc("/api/", s.serveAPIFallback)
	mux.HandleFunc("GET /sim/faults", s.serveGetFaults)
	mux.HandleFunc("POST /sim/faults", s.guardAdmin(s.servePostFaults))
	mux.HandleFunc("GET /sim/journal", s.serveJournal)
	mux.HandleFunc("GET /sim/stats", s.serveStats)
	mux.HandleFunc("GET /sim/interactions", s.serveListInteractions)
	mux.HandleFunc("POST /sim/interactions", s.guardAdmin(s.serveCreateInteraction))
	mux.HandleFunc("DELETE /sim/interactions/{id...}", s.guardAdmin(s.serveEndInteraction))
	mux.HandleFunc("GET /sim/ca.pem", s.serveCA)
	mux.HandleFunc("GET /{$}", s.serveIndexPage)
	mux.HandleFunc("GET /interactions/{id...}", s.serveInteractionPage)
	return mux
}

// serveAPI serves POST and GET /api/v1/interaction/data/{identifier}. The checks run in the
// order a request meets them at the real service: network latency, an outage of the whole
// service, authentication, the tenant's rate limit, the injected faults, then the request
// itself (body, validation, the interaction). Every request is journaled once, with the status
// it got.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	now := s.clock()
	post := r.Method == http.MethodPost
	// The identifier is opaque and path-escaped: %2F is part of it, a bare "/" is not.
	id, validID := pathID(r, api.PathPrefix)
	if !validID {
		id = strings.TrimPrefix(r.URL.EscapedPath(), api.PathPrefix)
	}
	claimed, token, hasAuth := r.BasicAuth()
	t := s.tenants[claimed]
	e := journalEntry{Entry: Entry{Time: now, Method: r.Method, Identifier: id}}
	if t != nil {
		e.Tenant = t.id
	}

	delay, outage, revoked := s.before(now, claimed)
	if delay > 0 {
		if err := s.sleep(r.Context(), delay); err != nil {
			e.Message = noteClientGone
			s.record(&e)
			return
		}
	}
	switch outage {
	case OutageError:
		s.fail(w, &e, http.StatusInternalServerError, api.MsgInternal)
		return
	case OutageRefuse:
		s.drop(w, &e, noteOutage)
		return
	}
	if !authenticate(t, token, hasAuth) || revoked {
		s.fail(w, &e, http.StatusUnauthorized, api.MsgAuthFailed)
		return
	}
	// The window's log must be in time order: read the clock under its lock. (With the time
	// read at the top of the handler, two concurrent requests could log out of order, and the
	// window then compared a later one with a slot that was not the oldest, answering 429 to a
	// client that kept the limit exactly: seen at the backlog benchmark's window boundaries.)
	t.mu.Lock()
	admitted, wait := t.window.admit(s.clock())
	t.mu.Unlock()
	if !admitted {
		if s.cfg.RetryAfter {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
		}
		s.fail(w, &e, http.StatusTooManyRequests, api.MsgRateLimited)
		return
	}
	switch v, retryAfter := s.judge(t.id); v {
	case verdictForce429:
		if retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		}
		s.fail(w, &e, http.StatusTooManyRequests, api.MsgRateLimited)
		return
	case verdictDrop:
		s.drop(w, &e, noteDropped)
		return
	case verdictError:
		s.fail(w, &e, http.StatusInternalServerError, api.MsgInternal)
		return
	}
	if post {
		s.setVariables(w, r, t, &e, validID)
	} else {
		s.getInteraction(w, t, &e, validID)
	}
}

// setVariables reads, decodes and validates a POST body and applies it to the interaction:
// all of it or, on any error, none of it.
func (s *Server) setVariables(w http.ResponseWriter, r *http.Request, t *tenant, e *journalEntry, validID bool) {
	body, err := s.readBody(r)
	if err != nil {
		s.fail(w, e, http.StatusBadRequest, err.Error())
		return
	}
	vars, err := decodeRequest(body)
	if err == nil {
		// The journal keeps the body as received and decodes it when read: bytes without
		// pointers cost the garbage collector nothing to keep, unlike decoded variables.
		e.body, e.variables = body, len(vars)
		err = api.Validate(vars)
	}
	if err != nil {
		s.fail(w, e, http.StatusBadRequest, err.Error())
		return
	}
	if !validID {
		s.fail(w, e, http.StatusNotFound, api.MsgNotFound)
		return
	}
	t.mu.Lock()
	ia := t.interactions[e.Identifier]
	if ia == nil && s.cfg.AutoCreate {
		ia = newInteraction(api.Interaction{InteractionID: e.Identifier}, e.Time)
		t.interactions[e.Identifier] = ia
	}
	if ia == nil || ia.ended {
		t.mu.Unlock()
		s.fail(w, e, http.StatusNotFound, api.MsgNotFound)
		return
	}
	ia.merge(vars)
	ia.lastWrite = e.Time
	ia.writes++
	t.mu.Unlock()

	e.Status = http.StatusOK
	s.record(e)
	out := make([]byte, 0, 128+len(e.Identifier))
	out = append(out, `{"status":"success","message":"Variables successfully set","interactionId":`...)
	out = appendJSONString(out, e.Identifier)
	out = append(out, `,"variablesSet":`...)
	out = strconv.AppendInt(out, int64(len(vars)), 10)
	out = append(out, '}')
	w.Header()["Content-Type"] = jsonContentType
	_, _ = w.Write(out)
}

func (s *Server) getInteraction(w http.ResponseWriter, t *tenant, e *journalEntry, validID bool) {
	var (
		snap  api.Interaction
		found bool
	)
	if validID {
		t.mu.Lock()
		if ia := t.interactions[e.Identifier]; ia != nil && !ia.ended {
			snap, found = ia.snapshot(), true
		}
		t.mu.Unlock()
	}
	if !found {
		s.fail(w, e, http.StatusNotFound, api.MsgNotFound)
		return
	}
	e.Status = http.StatusOK
	s.record(e)
	writeJSON(w, http.StatusOK, snap)
}

// authenticate checks a credential in constant time: the tokens' SHA-256 digests are compared,
// so neither a token's content nor its length shows in the timing, and an unknown tenant costs
// the same as a wrong token.
func authenticate(t *tenant, token string, hasAuth bool) bool {
	sum := sha256.Sum256([]byte(token))
	want := &[sha256.Size]byte{}
	if t != nil {
		want = &t.tokenHash
	}
	return subtle.ConstantTimeCompare(sum[:], want[:]) == 1 && hasAuth && t != nil
}

// errReadingBody is the 400 of a body that could not be read to its end.
var errReadingBody = errors.New(msgReadingBody)

// readBody reads the body, refusing more than MaxBodyBytes. The buffer is sized from
// Content-Length when there is one, so the usual body costs one allocation of its own size.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, fmt.Errorf(msgTooLarge, limit)
	}
	size := int64(512)
	if r.ContentLength >= 0 {
		size = r.ContentLength + 1 // room to see the end without growing
	}
	buf := make([]byte, 0, size)
	lr := io.LimitedReader{R: r.Body, N: limit + 1}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errReadingBody
		}
	}
	if int64(len(buf)) > limit {
		return nil, fmt.Errorf(msgTooLarge, limit)
	}
	return buf, nil
}

// fail sends the contract's error body and journals the request.
func (s *Server) fail(w http.ResponseWriter, e *journalEntry, code int, msg string) {
	e.Status, e.Message = code, msg
	s.record(e)
	writeError(w, code, msg)
}

// drop closes the connection without a response: a hijacked HTTP/1 connection is closed; an
// HTTP/2 stream, which cannot be hijacked, is reset by aborting the handler.
func (s *Server) drop(w http.ResponseWriter, e *journalEntry, note string) {
	e.Message = note
	s.record(e)
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (s *Server) record(e *journalEntry) {
	s.journal.add(e)
	if ce := s.log.Check(zap.DebugLevel, "api request"); ce != nil {
		ce.Write(zap.String("method", e.Method), zap.String("tenant", e.Tenant),
			zap.String("identifier", e.Identifier), zap.Int("status", e.Status),
			zap.Int("variables", e.variables), zap.String("message", e.Message))
	}
}

// serveAPIFallback answers other paths and methods under /api/ in the contract's error shape.
func (s *Server) serveAPIFallback(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, api.PathPrefix) {
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, msgMethodNotAllowed)
		return
	}
	writeError(w, http.StatusNotFound, "Not found")
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, api.ErrorResponse{Status: api.StatusError, Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"status":"error","code":500,"message":"Internal server error"}`)
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// appendJSONString appends s as a JSON string: as is when it is plain ASCII, through
// encoding/json otherwise.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// sinceParam reads ?since=N.
func sinceParam(r *http.Request) (uint64, error) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("since must be a sequence number, got %q", v)
	}
	return n, nil
}
