package sim

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/augment-connector/augment-connector/internal/api"
)

// interaction is one call (or chat) of a tenant, guarded by its tenant's mu.
type interaction struct {
	api.Interaction                // Variables in first-seen order of names
	index           map[string]int // name -> position in Variables
	lastWrite       time.Time      // zero until the first successful POST
	writes          int
	ended           bool
}

func newInteraction(ia api.Interaction, now time.Time) *interaction {
	if ia.CreateTime == "" {
		ia.CreateTime = now.UTC().Format(time.RFC3339)
	}
	vars := ia.Variables
	ia.Variables = nil
	n := &interaction{Interaction: ia, index: make(map[string]int)}
	n.merge(vars)
	return n
}

// merge applies one write: a variable replaces the earlier one of the same name with every
// attribute of the new one, keeping the name's first-seen position.
func (ia *interaction) merge(vars []api.Variable) {
	for _, v := range vars {
		if i, ok := ia.index[v.Name]; ok {
			ia.Variables[i] = v
			continue
		}
		ia.index[v.Name] = len(ia.Variables)
		ia.Variables = append(ia.Variables, v)
	}
}

// snapshot copies the interaction for use outside the tenant's lock.
func (ia *interaction) snapshot() api.Interaction {
	out := ia.Interaction
	out.Variables = slices.Clone(ia.Variables)
	if out.Variables == nil {
		out.Variables = []api.Variable{}
	}
	return out
}

// CreateInteraction makes an interaction exist for tenant ("" is the default tenant), as the
// platform does when a call arrives. createTime defaults to now; ia.Variables, if any, must pass
// api.Validate and become its first variables. An identifier in use, even by an ended
// interaction, returns ErrInteractionExists.
func (s *Server) CreateInteraction(tenantID string, ia api.Interaction) error {
	t, err := s.tenantOrDefault(tenantID)
	if err != nil {
		return fmt.Errorf("creating interaction: %w", err)
	}
	if ia.InteractionID == "" {
		return fmt.Errorf("creating interaction: interactionId is required")
	}
	if len(ia.Variables) > 0 {
		if err := api.Validate(ia.Variables); err != nil {
			return fmt.Errorf("creating interaction: %w", err)
		}
	}
	now := s.clock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.interactions[ia.InteractionID]; ok {
		return fmt.Errorf("creating interaction %q: %w", ia.InteractionID, ErrInteractionExists)
	}
	t.interactions[ia.InteractionID] = newInteraction(ia, now)
	return nil
}

// EndInteraction ends an interaction: later writes and reads get a 404, as for a call that is
// over. It stays listed on the pages.
func (s *Server) EndInteraction(tenantID, id string) error {
	t, err := s.tenantOrDefault(tenantID)
	if err != nil {
		return fmt.Errorf("ending interaction: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ia := t.interactions[id]
	if ia == nil || ia.ended {
		return fmt.Errorf("ending interaction %q: %w", id, ErrInteractionNotFound)
	}
	ia.ended = true
	return nil
}

// Interaction returns an interaction's context and merged variables as a GET would, ended ones
// included; ok is false if it was never created. tenant "" is the default tenant.
func (s *Server) Interaction(tenantID, id string) (api.Interaction, bool) {
	t, err := s.tenantOrDefault(tenantID)
	if err != nil {
		return api.Interaction{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ia := t.interactions[id]
	if ia == nil {
		return api.Interaction{}, false
	}
	return ia.snapshot(), true
}

// InteractionSummary is one interaction in a listing.
type InteractionSummary struct {
	Tenant        string    `json:"tenant"`
	InteractionID string    `json:"interactionId"`
	Channel       string    `json:"channel,omitempty"`
	ANI           string    `json:"ani,omitempty"`
	CallerName    string    `json:"callerName,omitempty"`
	CreateTime    string    `json:"createTime,omitempty"`
	Variables     int       `json:"variables"`
	Writes        int       `json:"writes"`
	LastWrite     time.Time `json:"lastWrite,omitzero"`
	Ended         bool      `json:"ended,omitempty"`
}

// Interactions lists every interaction of every tenant, the most recently written first.
func (s *Server) Interactions() []InteractionSummary {
	var out []InteractionSummary
	for _, t := range s.order {
		t.mu.Lock()
		for _, ia := range t.interactions {
			out = append(out, InteractionSummary{
				Tenant: t.id, InteractionID: ia.InteractionID, Channel: ia.Channel, ANI: ia.ANI,
				CallerName: ia.CallerName, CreateTime: ia.CreateTime, Variables: len(ia.Variables),
				Writes: ia.writes, LastWrite: ia.lastWrite, Ended: ia.ended,
			})
		}
		t.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b InteractionSummary) int {
		if c := b.LastWrite.Compare(a.LastWrite); c != 0 {
			return c
		}
		if c := cmp.Compare(b.CreateTime, a.CreateTime); c != 0 {
			return c
		}
		return cmp.Compare(a.Tenant+"\x00"+a.InteractionID, b.Tenant+"\x00"+b.InteractionID)
	})
	return out
}

// findInteraction resolves a page's interaction: in tenantID when given, else in the default
// tenant first, then in the others.
func (s *Server) findInteraction(tenantID, id string) (string, api.Interaction, bool, bool) {
	candidates := s.order
	if tenantID != "" {
		t := s.tenants[tenantID]
		if t == nil {
			return "", api.Interaction{}, false, false
		}
		candidates = []*tenant{t}
	}
	for _, t := range candidates {
		t.mu.Lock()
		ia := t.interactions[id]
		if ia != nil {
			snap, ended := ia.snapshot(), ia.ended
			t.mu.Unlock()
			return t.id, snap, ended, true
		}
		t.mu.Unlock()
	}
	return "", api.Interaction{}, false, false
}
