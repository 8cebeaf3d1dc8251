// Package admintest provides an in-memory admin.Store for tests of the admin API and of the
// server with authentication on. It follows the store package's documented contract closely
// enough for those tests (newest-first lists, cursor pages, KeysChangedSince, user disabling
// marking keys changed) but it is a fake: no durability, linear scans.
package admintest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/store"
)

var _ admin.Store = (*Store)(nil)

// Store is the fake. Its zero value is not usable; call NewStore.
type Store struct {
	mu    sync.Mutex
	users []store.User // in creation order
	keys  []store.Key
	usage []store.UsageRecord
	audit []store.AuditRecord
	seq   int64
	// batches are the batch ids Append applied; kept for the store's life, which in a test
	// is shorter than store.BatchMemory.
	batches map[string]bool
	// FailAppend makes Append fail, to test what happens when audit records cannot be written.
	FailAppend atomic.Bool
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{} }

func (s *Store) now() time.Time { return store.Micro(time.Now()) }

func page[T any](items []T, p store.ListParams) (store.Page[T], error) {
	start := 0
	if p.Cursor != "" {
		c, err := store.ParseCursor(p.Cursor)
		if err != nil {
			return store.Page[T]{}, err
		}
		start = int(c.Seq)
	}
	limit := store.PageLimit(p.Limit)
	if start > len(items) {
		start = len(items)
	}
	end := min(start+limit, len(items))
	out := store.Page[T]{Items: slices.Clone(items[start:end])}
	if end < len(items) {
		out.Next = store.Cursor{Seq: int64(end)}.String()
	}
	return out, nil
}

func newestFirst[T any](items []T, keep func(*T) bool) []T {
	var out []T
	for i := len(items) - 1; i >= 0; i-- {
		if keep(&items[i]) {
			out = append(out, items[i])
		}
	}
	return out
}

// CreateUser implements store.Users.
func (s *Store) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.Name == "" {
		return store.User{}, fmt.Errorf("%w: name is required", store.ErrInvalid)
	}
	if u.ID == "" {
		u.ID = store.NewID("usr")
	}
	for _, o := range s.users {
		if o.ID == u.ID || o.Name == u.Name {
			return store.User{}, store.ErrConflict
		}
	}
	u.CreatedAt, u.UpdatedAt = s.now(), s.now()
	s.users = append(s.users, u)
	return u, nil
}

// GetUser implements store.Users.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.ID == id {
			return u, nil
		}
	}
	return store.User{}, store.ErrNotFound
}

// ListUsers implements store.Users.
func (s *Store) ListUsers(ctx context.Context, p store.ListParams) (store.Page[store.User], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return page(newestFirst(s.users, func(*store.User) bool { return true }), p)
}

// UpdateUser implements store.Users.
func (s *Store) UpdateUser(ctx context.Context, p store.UpdateUserParams) (store.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.users {
		u := &s.users[i]
		if u.ID != p.ID {
			continue
		}
		was := u.Disabled
		p.Apply(u)
		now := s.now()
		if u.Disabled != was {
			for j := range s.keys {
				if s.keys[j].UserID == u.ID {
					s.keys[j].UserDisabled = u.Disabled
					s.keys[j].UpdatedAt = now
				}
			}
		}
		u.UpdatedAt = now
		return *u, nil
	}
	return store.User{}, store.ErrNotFound
}

// CreateKey implements store.Keys.
func (s *Store) CreateKey(ctx context.Context, k store.Key) (store.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k.ID == "" || len(k.Hash) == 0 || k.Role == "" {
		return store.Key{}, fmt.Errorf("%w: id, hash and role are required", store.ErrInvalid)
	}
	for _, o := range s.keys {
		if o.ID == k.ID || string(o.Hash) == string(k.Hash) {
			return store.Key{}, store.ErrConflict
		}
	}
	if k.UserID != "" {
		found := false
		for _, u := range s.users {
			if u.ID == k.UserID {
				found, k.UserDisabled = true, u.Disabled
			}
		}
		if !found {
			return store.Key{}, fmt.Errorf("%w: no user %q", store.ErrInvalid, k.UserID)
		}
	}
	k.CreatedAt, k.UpdatedAt, k.RevokedAt = s.now(), s.now(), time.Time{}
	k.ExpiresAt = store.Micro(k.ExpiresAt)
	k.Hash = slices.Clone(k.Hash)
	k.Models = slices.Clone(k.Models)
	s.keys = append(s.keys, k)
	return k, nil
}

func (s *Store) findKey(match func(*store.Key) bool) (*store.Key, error) {
	for i := range s.keys {
		if match(&s.keys[i]) {
			return &s.keys[i], nil
		}
	}
	return nil, store.ErrNotFound
}

// GetKey implements store.Keys.
func (s *Store) GetKey(ctx context.Context, id string) (store.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.findKey(func(k *store.Key) bool { return k.ID == id })
	if err != nil {
		return store.Key{}, err
	}
	return *k, nil
}

// KeyByHash implements store.Keys.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (store.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.findKey(func(k *store.Key) bool { return string(k.Hash) == string(hash) })
	if err != nil {
		return store.Key{}, err
	}
	return *k, nil
}

// ListKeys implements store.Keys.
func (s *Store) ListKeys(ctx context.Context, p store.ListKeysParams) (store.Page[store.Key], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return page(newestFirst(s.keys, func(k *store.Key) bool {
		return (p.UserID == "" || k.UserID == p.UserID) && (p.IncludeRevoked || k.RevokedAt.IsZero())
	}), p.ListParams)
}

// UpdateKey implements store.Keys.
func (s *Store) UpdateKey(ctx context.Context, p store.UpdateKeyParams) (store.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.findKey(func(k *store.Key) bool { return k.ID == p.ID })
	if err != nil {
		return store.Key{}, err
	}
	if p.Name != nil {
		k.Name = *p.Name
	}
	if p.Role != nil {
		k.Role = *p.Role
	}
	if p.Models != nil {
		k.Models = slices.Clone(*p.Models)
	}
	if p.ExpiresAt != nil {
		k.ExpiresAt = store.Micro(*p.ExpiresAt)
	}
	k.UpdatedAt = s.now()
	return *k, nil
}

// RevokeKey implements store.Keys.
func (s *Store) RevokeKey(ctx context.Context, id string) (store.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.findKey(func(k *store.Key) bool { return k.ID == id })
	if err != nil {
		return store.Key{}, err
	}
	if k.RevokedAt.IsZero() {
		k.RevokedAt = s.now()
		k.UpdatedAt = k.RevokedAt
	}
	return *k, nil
}

// KeysChangedSince implements store.Keys.
func (s *Store) KeysChangedSince(ctx context.Context, since time.Time) ([]store.Key, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []store.Key
	for _, k := range s.keys {
		if !k.UpdatedAt.Before(since) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b store.Key) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
	return out, now.Add(-store.ChangeOverlap), nil
}

func (f *usageMatch) match(r *store.UsageRecord) bool {
	return (f.KeyID == "" || r.KeyID == f.KeyID) && (f.UserID == "" || r.UserID == f.UserID) &&
		(f.Model == "" || r.Model == f.Model) && (f.From.IsZero() || !r.Time.Before(f.From)) &&
		(f.To.IsZero() || r.Time.Before(f.To))
}

type usageMatch store.UsageFilter

// UsageTotals implements store.Usage.
func (s *Store) UsageTotals(ctx context.Context, f store.UsageFilter) (store.UsageTotals, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := usageMatch(f)
	var t store.UsageTotals
	for i := range s.usage {
		if r := &s.usage[i]; m.match(r) {
			t.Requests++
			t.PromptTokens += r.PromptTokens
			t.CompletionTokens += r.CompletionTokens
		}
	}
	return t, nil
}

// ListUsage implements store.Usage.
func (s *Store) ListUsage(ctx context.Context, q store.UsageQuery) (store.Page[store.UsageRecord], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := usageMatch(q.UsageFilter)
	return page(newestFirst(s.usage, m.match), q.ListParams)
}

// DeleteUsageBefore implements store.Usage.
func (s *Store) DeleteUsageBefore(ctx context.Context, t time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.usage)
	s.usage = slices.DeleteFunc(s.usage, func(r store.UsageRecord) bool { return r.Time.Before(t) })
	return int64(n - len(s.usage)), nil
}

// ListAudit implements store.Audit.
func (s *Store) ListAudit(ctx context.Context, q store.AuditQuery) (store.Page[store.AuditRecord], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return page(newestFirst(s.audit, func(r *store.AuditRecord) bool {
		return (q.Actor == "" || r.Actor == q.Actor) && (q.Action == "" || r.Action == q.Action) &&
			(q.Target == "" || r.Target == q.Target) && (q.Result == "" || r.Result == q.Result) &&
			(q.From.IsZero() || !r.Time.Before(q.From)) && (q.To.IsZero() || r.Time.Before(q.To))
	}), q.ListParams)
}

// DeleteAuditBefore implements store.Audit.
func (s *Store) DeleteAuditBefore(ctx context.Context, t time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.audit)
	s.audit = slices.DeleteFunc(s.audit, func(r store.AuditRecord) bool { return r.Time.Before(t) })
	return int64(n - len(s.audit)), nil
}

// Append implements store.Store's Append, applying each batch id once.
func (s *Store) Append(ctx context.Context, batch string, usage []store.UsageRecord, audit []store.AuditRecord) error {
	if s.FailAppend.Load() {
		return errors.New("admintest: append failing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if batch != "" {
		if s.batches[batch] {
			return nil
		}
		if s.batches == nil {
			s.batches = make(map[string]bool)
		}
		s.batches[batch] = true
	}
	for _, u := range usage {
		s.seq++
		u.ID = s.seq
		u.Time = store.Micro(u.Time)
		s.usage = append(s.usage, u)
	}
	for _, a := range audit {
		s.seq++
		a.ID = s.seq
		a.Time = store.Micro(a.Time)
		a.Details = store.Details(a.Details)
		s.audit = append(s.audit, a)
	}
	return nil
}

// Audit returns every audit record, oldest first.
func (s *Store) Audit() []store.AuditRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.audit)
}
