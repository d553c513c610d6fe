package sim

import (
	"maps"
	"sync"
	"time"

	"github.com/augment-connector/augment-connector/internal/api"
)

// Entry is one API request in the journal.
type Entry struct {
	// Seq numbers entries from 1 in the order they were recorded.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Method is POST or GET.
	Method string `json:"method"`
	// Tenant is the tenant the credential names when it is a configured one (even if the token
	// is wrong), else "".
	Tenant string `json:"tenant,omitempty"`
	// Identifier is the interaction identifier, path-unescaped.
	Identifier string `json:"identifier"`
	// Status is the HTTP status sent; 0 when the connection was closed without a response.
	Status int `json:"status"`
	// Message is the error message sent, or what dropped the connection.
	Message string `json:"message,omitempty"`
	// Variables are a POST's variables as received (decoded again from the body kept), values
	// included, private ones too: the journal is a test oracle on loopback; the pages mask
	// them. Absent when the body did not decode.
	Variables []api.Variable `json:"variables,omitempty"`
}

// Stats counts every API request since start, beyond what the journal still holds.
type Stats struct {
	Total uint64 `json:"total"`
	// ByStatus counts requests by HTTP status; 0 is a connection closed without a response.
	ByStatus map[int]uint64 `json:"byStatus"`
	// ByTenant counts requests whose credential named a configured tenant.
	ByTenant map[string]TenantStats `json:"byTenant"`
	// VariablesSet is the sum of variablesSet of the successful POSTs.
	VariablesSet uint64 `json:"variablesSet"`
	// JournalFirstSeq and JournalLastSeq bound the entries the journal still holds (0 when
	// empty).
	JournalFirstSeq uint64 `json:"journalFirstSeq"`
	JournalLastSeq  uint64 `json:"journalLastSeq"`
}

// TenantStats counts one tenant's requests.
type TenantStats struct {
	Total        uint64         `json:"total"`
	ByStatus     map[int]uint64 `json:"byStatus"`
	VariablesSet uint64         `json:"variablesSet"`
}

// journalEntry is an Entry as the journal keeps it: a POST's variables stay in the body as
// received (bytes without pointers, which the garbage collector need not scan however many
// entries the ring holds) and are decoded again when the entry is read.
type journalEntry struct {
	Entry            // Variables unset
	body      []byte // the POST body, when it decoded
	variables int    // how many it decoded to
}

// journal is a ring of the last size entries plus counters of all of them, so memory stays
// bounded however long the simulator runs.
type journal struct {
	mu      sync.Mutex
	size    int
	entries []journalEntry // ring: grows to size, then entry seq s is at (s-1)%size
	nextSeq uint64
	total   uint64
	varsSet uint64
	status  map[int]uint64
	tenants map[string]*TenantStats
}

func newJournal(size int) *journal {
	return &journal{size: size, nextSeq: 1, status: make(map[int]uint64), tenants: make(map[string]*TenantStats)}
}

func (j *journal) add(e *journalEntry) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e.Seq = j.nextSeq
	j.nextSeq++
	if len(j.entries) < j.size {
		j.entries = append(j.entries, *e)
	} else {
		j.entries[(e.Seq-1)%uint64(j.size)] = *e
	}
	j.total++
	j.status[e.Status]++
	set := uint64(0)
	if e.Method == "POST" && e.Status == 200 {
		set = uint64(e.variables)
		j.varsSet += set
	}
	if e.Tenant != "" {
		ts := j.tenants[e.Tenant]
		if ts == nil {
			ts = &TenantStats{ByStatus: make(map[int]uint64)}
			j.tenants[e.Tenant] = ts
		}
		ts.Total++
		ts.ByStatus[e.Status]++
		ts.VariablesSet += set
	}
}

// since returns the entries after seq still held, oldest first.
func (j *journal) since(seq uint64) []Entry {
	j.mu.Lock()
	first := j.nextSeq - uint64(len(j.entries))
	start := max(seq+1, first)
	var held []journalEntry
	for s := start; s < j.nextSeq; s++ {
		held = append(held, j.entries[(s-1)%uint64(j.size)])
	}
	j.mu.Unlock()
	if len(held) == 0 {
		return nil
	}
	out := make([]Entry, len(held))
	for i, e := range held {
		out[i] = e.Entry
		if e.body != nil {
			// It decoded when it arrived; decoding is deterministic.
			out[i].Variables, _ = decodeRequest(e.body)
		}
	}
	return out
}

func (j *journal) stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := Stats{
		Total:        j.total,
		ByStatus:     maps.Clone(j.status),
		ByTenant:     make(map[string]TenantStats, len(j.tenants)),
		VariablesSet: j.varsSet,
	}
	for id, ts := range j.tenants {
		st.ByTenant[id] = TenantStats{Total: ts.Total, ByStatus: maps.Clone(ts.ByStatus), VariablesSet: ts.VariablesSet}
	}
	if n := uint64(len(j.entries)); n > 0 {
		st.JournalFirstSeq, st.JournalLastSeq = j.nextSeq-n, j.nextSeq-1
	}
	return st
}

// Journal returns the journal's entries after seq (0 for all it still holds), oldest first. The
// ring keeps the last Config.JournalSize entries.
func (s *Server) Journal(since uint64) []Entry { return s.journal.since(since) }

// Stats returns the counters of every API request since start.
func (s *Server) Stats() Stats { return s.journal.stats() }
