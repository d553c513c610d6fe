package sim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/augment-connector/augment-connector/internal/api"
)

// maxAdminBody bounds the body of an admin request.
const maxAdminBody = 64 << 10

// decodeAdmin reads an admin request's JSON body strictly: unknown fields are errors, so a
// misspelt fault does not silently do nothing.
func decodeAdmin(w http.ResponseWriter, r *http.Request, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("decoding request: %w", err)
	}
	return nil
}

// guardAdmin wraps an admin handler that changes state. The admin endpoints have no
// authentication, so without it any web page the developer visits could change faults: a
// cross-site form POST (text/plain or form-encoded, which browsers send without asking) gets a
// 415, and a page reached through DNS rebinding (same origin, but its own name in the Host
// header) gets a 403.
func (s *Server) guardAdmin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.adminHostAllowed(r.Host) {
			writeError(w, http.StatusForbidden, "Host header is not the simulator's address; start it with --admin-host to allow another")
			return
		}
		if r.Method == http.MethodPost {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
				return
			}
		}
		next(w, r)
	}
}

// adminHostAllowed reports whether host (a Host header) names this simulator: its listen
// address, a loopback name (localhost, 127.0.0.1, [::1]) with its port, or one of
// Config.AdminHosts. Before Start (the Handler served by httptest) the port is not known, and
// a loopback name with any port matches.
func (s *Server) adminHostAllowed(host string) bool {
	for _, h := range s.cfg.AdminHosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = host, ""
	}
	loopback := strings.EqualFold(name, "localhost")
	if ip := net.ParseIP(name); ip != nil && ip.IsLoopback() {
		loopback = true
	}
	addr := s.addr.Load()
	if addr == nil {
		return loopback
	}
	if strings.EqualFold(host, *addr) {
		return true
	}
	_, listenPort, err := net.SplitHostPort(*addr)
	return err == nil && loopback && port == listenPort
}

func (s *Server) serveGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.FaultStatus())
}

func (s *Server) servePostFaults(w http.ResponseWriter, r *http.Request) {
	var p FaultPatch
	if err := decodeAdmin(w, r, &p); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st, err := s.PatchFaults(p)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// serveJournal writes the journal's entries after ?since=SEQ as NDJSON, one entry a line.
func (s *Server) serveJournal(w http.ResponseWriter, r *http.Request) {
	since, err := sinceParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	entries := s.Journal(since)
	w.Header().Set("Content-Type", "application/x-ndjson")
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range entries {
		if err := enc.Encode(&entries[i]); err != nil {
			return // the client went away
		}
	}
	_ = bw.Flush()
}

func (s *Server) serveStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) serveListInteractions(w http.ResponseWriter, _ *http.Request) {
	list := s.Interactions()
	if list == nil {
		list = []InteractionSummary{}
	}
	writeJSON(w, http.StatusOK, list)
}

// createInteractionRequest is the body of POST /sim/interactions: the contract's interaction
// context (and optionally first variables) plus the tenant it belongs to ("" the default).
type createInteractionRequest struct {
	Tenant string `json:"tenant"`
	api.Interaction
}

func (s *Server) serveCreateInteraction(w http.ResponseWriter, r *http.Request) {
	var req createInteractionRequest
	if err := decodeAdmin(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	err := s.CreateInteraction(req.Tenant, req.Interaction)
	switch {
	case errors.Is(err, ErrInteractionExists):
		writeError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	t, _ := s.tenantOrDefault(req.Tenant) // resolved by CreateInteraction
	ia, _ := s.Interaction(t.id, req.InteractionID)
	writeJSON(w, http.StatusCreated, createInteractionRequest{Tenant: t.id, Interaction: ia})
}

func (s *Server) serveEndInteraction(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r, "/sim/interactions/")
	if !ok {
		writeError(w, http.StatusNotFound, api.MsgNotFound)
		return
	}
	err := s.EndInteraction(r.URL.Query().Get("tenant"), id)
	switch {
	case errors.Is(err, ErrInteractionNotFound):
		writeError(w, http.StatusNotFound, api.MsgNotFound)
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) serveCA(w http.ResponseWriter, _ *http.Request) {
	if s.caPEM == nil {
		writeError(w, http.StatusNotFound, "No generated CA: the simulator serves plain HTTP or a given certificate")
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(s.caPEM)
}

// pathID returns the path-unescaped identifier after prefix; a bare "/" in it is not allowed,
// as in the API's path.
func pathID(r *http.Request, prefix string) (string, bool) {
	raw := strings.TrimPrefix(r.URL.EscapedPath(), prefix)
	if raw == "" || strings.Contains(raw, "/") {
		return "", false
	}
	id, err := url.PathUnescape(raw)
	return id, err == nil
}
