package openai

import (
	"context"
	"sync"

	"github.com/open-autoglm/autoglm/internal/apierr"
)

// DefaultMemoryResponses is how many responses the in-memory store keeps.
const DefaultMemoryResponses = 10000

// MemoryResponses is a ResponseStore in memory that keeps the most recent responses, up to a
// limit; the oldest is dropped first. It is what a server without a database uses.
type MemoryResponses struct {
	mu    sync.Mutex
	limit int
	byID  map[string]*StoredResponse
	order []string // ids, oldest first (deleted ids stay until they reach the front)
}

// NewMemoryResponses returns a store of at most limit responses.
func NewMemoryResponses(limit int) *MemoryResponses {
	return &MemoryResponses{limit: max(limit, 1), byID: make(map[string]*StoredResponse)}
}

var _ ResponseStore = (*MemoryResponses)(nil)

// PutResponse stores r.
func (m *MemoryResponses) PutResponse(_ context.Context, r *StoredResponse) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[r.ID]; !ok {
		m.order = append(m.order, r.ID)
	}
	m.byID[r.ID] = r
	for len(m.byID) > m.limit && len(m.order) > 0 {
		delete(m.byID, m.order[0])
		m.order = m.order[1:]
	}
	if len(m.order) > 2*m.limit {
		kept := m.order[:0:0]
		for _, id := range m.order {
			if _, ok := m.byID[id]; ok {
				kept = append(kept, id)
			}
		}
		m.order = kept
	}
	return nil
}

// GetResponse returns the owner's response id.
func (m *MemoryResponses) GetResponse(_ context.Context, owner, id string) (*StoredResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.byID[id]
	if !ok || r.Owner != owner {
		return nil, apierr.New(apierr.NotFound, "response_not_found", "no such response")
	}
	return r, nil
}

// DeleteResponse deletes the owner's response id.
func (m *MemoryResponses) DeleteResponse(_ context.Context, owner, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.byID[id]
	if !ok || r.Owner != owner {
		return apierr.New(apierr.NotFound, "response_not_found", "no such response")
	}
	delete(m.byID, id)
	return nil
}
