package sim

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/internal/api"
)

//go:embed templates/*.html
var templateFS embed.FS

// pageRefreshSeconds is how often the pages reload themselves to follow the writes.
const pageRefreshSeconds = 2

func parsePages() (*template.Template, error) {
	t, err := template.New("pages").Funcs(template.FuncMap{
		"pathEscape": url.PathEscape,
		"mask":       func() string { return Mask },
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parsing page templates: %w", err)
	}
	return t, nil
}

type indexPage struct {
	Refresh      int
	Stats        Stats
	Faults       string
	Interactions []InteractionSummary
}

type interactionPage struct {
	Refresh     int
	Tenant      string
	Interaction api.Interaction
	Ended       bool
	ANI         string
	Rows        []DisplayRow
	Hidden      int
	Routes      []RouteResult
}

// refreshParam reads ?refresh=SECONDS (0 turns the reload off, for a test or a screenshot).
func refreshParam(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("refresh"))
	if err != nil || n < 0 || n > 3600 {
		return pageRefreshSeconds
	}
	return n
}

func (s *Server) serveIndexPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "index", indexPage{
		Refresh:      refreshParam(r),
		Stats:        s.Stats(),
		Faults:       summarizeFaults(s.FaultStatus()),
		Interactions: s.Interactions(),
	})
}

func (s *Server) serveInteractionPage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r, "/interactions/")
	var (
		tenantID string
		ia       api.Interaction
		ended    bool
	)
	if ok {
		tenantID, ia, ended, ok = s.findInteraction(r.URL.Query().Get("tenant"), id)
	}
	if !ok {
		http.Error(w, "Interaction not found", http.StatusNotFound)
		return
	}
	page := interactionPage{
		Refresh:     refreshParam(r),
		Tenant:      tenantID,
		Interaction: ia,
		Ended:       ended,
		ANI:         FormatValue("phone", ia.ANI),
		Rows:        AgentRows(ia.Variables),
	}
	page.Hidden = len(ia.Variables) - len(page.Rows)
	for _, rt := range s.cfg.Routes {
		page.Routes = append(page.Routes, EvaluateRoute(rt, ia.Variables))
	}
	s.render(w, http.StatusOK, "interaction", page)
}

// render executes a page into a buffer first, so a template error becomes a clean 500.
func (s *Server) render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("rendering page", zap.String("page", name), zap.Error(err))
		http.Error(w, "rendering page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// summarizeFaults describes the faults in force in a few words, "" when there are none.
func summarizeFaults(f FaultStatus) string {
	var parts []string
	if f.Latency > 0 || f.LatencyJitter > 0 {
		parts = append(parts, fmt.Sprintf("latency %v+%v", time.Duration(f.Latency), time.Duration(f.LatencyJitter)))
	}
	if f.ErrorRate > 0 {
		parts = append(parts, fmt.Sprintf("500 rate %g", f.ErrorRate))
	}
	if f.DropRate > 0 {
		parts = append(parts, fmt.Sprintf("drop rate %g", f.DropRate))
	}
	if f.Outage != nil {
		parts = append(parts, fmt.Sprintf("outage %s for %.0f s", f.Outage.Mode, f.Outage.RemainingSeconds))
	}
	if len(f.Revoked) > 0 {
		parts = append(parts, "revoked "+strings.Join(f.Revoked, ","))
	}
	for _, fc := range f.Force429 {
		parts = append(parts, fmt.Sprintf("%d forced 429 for %s", fc.Count, fc.Tenant))
	}
	return strings.Join(parts, "; ")
}
