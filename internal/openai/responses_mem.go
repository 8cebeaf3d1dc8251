package openai

import (
	"context"
	"encoding/json"
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
	items map[string]ownedItem
}

type ownedItem struct {
	owner, response string
	item            json.RawMessage
}

// NewMemoryResponses returns a store of at most limit responses.
func NewMemoryResponses(limit int) *MemoryResponses {
	return &MemoryResponses{limit: max(limit, 1), byID: make(map[string]*StoredResponse), items: make(map[string]ownedItem)}
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
	for id, it := range r.Items {
		m.items[id] = ownedItem{owner: r.Owner, response: r.ID, item: it}
	}
	for len(m.byID) > m.limit && len(m.order) > 0 {
		m.drop(m.order[0])
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
		return nil, apierr.New(apierr.CodeResponseNotFound, "no such response")
	}
	return r, nil
}

// GetItems returns the owner's stored items among ids.
func (m *MemoryResponses) GetItems(_ context.Context, owner string, ids []string) (map[string]json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]json.RawMessage, len(ids))
	for _, id := range ids {
		if it, ok := m.items[id]; ok && it.owner == owner {
			out[id] = it.item
		}
	}
	return out, nil
}

// DeleteResponse deletes the owner's response id.
func (m *MemoryResponses) DeleteResponse(_ context.Context, owner, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.byID[id]
	if !ok || r.Owner != owner {
		return apierr.New(apierr.CodeResponseNotFound, "no such response")
	}
	m.drop(id)
	return nil
}

// drop forgets response id and its items.
func (m *MemoryResponses) drop(id string) {
	if r, ok := m.byID[id]; ok {
		for itemID := range r.Items {
			if it, ok := m.items[itemID]; ok && it.response == id {
				delete(m.items, itemID)
			}
		}
	}
	delete(m.byID, id)
}
