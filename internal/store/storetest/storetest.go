// Package storetest is the conformance suite every store driver passes: each method of
// store.Store, pagination edges, key changes seen through KeysChangedSince, quota totals
// across day boundaries, audit filters and retention, many concurrent writers, batch ids
// applied once however often (and however concurrently) a batch is retried, migrations
// applied twice and Opens racing on a fresh database. It also holds the shared benchmarks.
//
// A driver's test calls Run with a NewDB for its database:
//
//	func TestConformance(t *testing.T) { storetest.Run(t, newDB) }
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/open-autoglm/autoglm/internal/store"
)

// NewDB prepares a fresh, empty database and returns a function that opens a store on it.
// Each call of open opens another store on the same database (a restart, or a second
// replica); open registers Close with tb.Cleanup and fails tb on error.
type NewDB func(tb testing.TB) (open func(tb testing.TB) store.Store)

// Run runs the whole suite; every subtest gets its own database.
func Run(t *testing.T, newDB NewDB) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newDB NewDB)
	}{
		{"Users", testUsers},
		{"UserPagination", testUserPagination},
		{"Keys", testKeys},
		{"KeyPagination", testKeyPagination},
		{"KeysChangedSince", testKeysChangedSince},
		{"UsageTotals", testUsageTotals},
		{"ListUsage", testListUsage},
		{"Audit", testAudit},
		{"Retention", testRetention},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ConcurrentAppends", testConcurrentAppends},
		{"BatchIDs", testBatchIDs},
		{"ConcurrentRetries", testConcurrentRetries},
		{"LargeAppend", testLargeAppend},
		{"Reopen", testReopen},
		{"RacingOpens", testRacingOpens},
		{"Batcher", testBatcher},
		{"BatcherLostCommit", testBatcherLostCommit},
		{"Canceled", testCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newDB) })
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// result holds a call's value and error until must checks it: try(s.GetUser(ctx, id)).must(t).
type result[T any] struct {
	v   T
	err error
}

func try[T any](v T, err error) result[T] { return result[T]{v, err} }

func (r result[T]) must(t testing.TB) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

type result2[A, B any] struct {
	a   A
	b   B
	err error
}

func try2[A, B any](a A, b B, err error) result2[A, B] { return result2[A, B]{a, b, err} }

func (r result2[A, B]) must(t testing.TB) (A, B) {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.a, r.b
}

func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want %v", what, err, target)
	}
}

func ptr[T any](v T) *T { return &v }

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// recent reports whether t was set by the store just now (it has no clock of its own to
// compare with on PostgreSQL, so allow for skew between the database and the test).
func recent(t time.Time) bool {
	d := time.Since(t)
	return !t.IsZero() && d > -time.Minute && d < time.Minute && t.Location() == time.UTC
}

func testUsers(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	s := newDB(t)(t)

	a := try(s.CreateUser(ctx, store.User{Name: "alice", Email: "alice@example.com", Role: "admin"})).must(t)
	if a.ID == "" || !recent(a.CreatedAt) || !a.UpdatedAt.Equal(a.CreatedAt) {
		t.Fatalf("created user %+v: want an id and fresh times", a)
	}
	b := try(s.CreateUser(ctx, store.User{ID: "u-bob", Name: "bob", Role: "user"})).must(t)
	if b.ID != "u-bob" {
		t.Errorf("explicit id not kept: %q", b.ID)
	}
	got := try(s.GetUser(ctx, a.ID)).must(t)
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("GetUser differs from CreateUser's result (-create +get):\n%s", diff)
	}

	_, err := s.CreateUser(ctx, store.User{ID: "u-bob", Name: "bobby", Role: "user"})
	wantErr(t, "duplicate id", err, store.ErrConflict)
	_, err = s.CreateUser(ctx, store.User{Name: "bob", Role: "user"})
	wantErr(t, "duplicate name", err, store.ErrConflict)
	_, err = s.CreateUser(ctx, store.User{Role: "user"})
	wantErr(t, "no name", err, store.ErrInvalid)
	_, err = s.CreateUser(ctx, store.User{Name: "carol"})
	wantErr(t, "no role", err, store.ErrInvalid)
	_, err = s.GetUser(ctx, "nobody")
	wantErr(t, "get unknown", err, store.ErrNotFound)

	up := try(s.UpdateUser(ctx, store.UpdateUserParams{ID: b.ID, Role: ptr("admin"), Email: ptr("b@example.com")})).must(t)
	if up.Role != "admin" || up.Email != "b@example.com" || up.Name != "bob" || up.Disabled {
		t.Errorf("after update: %+v", up)
	}
	if up.UpdatedAt.Before(b.UpdatedAt) || !up.CreatedAt.Equal(b.CreatedAt) {
		t.Errorf("update times: created %v→%v, updated %v→%v", b.CreatedAt, up.CreatedAt, b.UpdatedAt, up.UpdatedAt)
	}
	up = try(s.UpdateUser(ctx, store.UpdateUserParams{ID: b.ID, Disabled: ptr(true)})).must(t)
	if !up.Disabled || up.Role != "admin" {
		t.Errorf("after disable: %+v", up)
	}
	if got := try(s.GetUser(ctx, b.ID)).must(t); diff(got, up) != "" {
		t.Errorf("GetUser after update (-get +update):\n%s", diff(got, up))
	}
	_, err = s.UpdateUser(ctx, store.UpdateUserParams{ID: b.ID, Name: ptr("alice")})
	wantErr(t, "rename onto another user", err, store.ErrConflict)
	_, err = s.UpdateUser(ctx, store.UpdateUserParams{ID: b.ID, Role: ptr("")})
	wantErr(t, "empty role", err, store.ErrInvalid)
	_, err = s.UpdateUser(ctx, store.UpdateUserParams{ID: "nobody", Role: ptr("user")})
	wantErr(t, "update unknown", err, store.ErrNotFound)
}

func diff(a, b any) string { return cmp.Diff(a, b) }

func testUserPagination(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	s := newDB(t)(t)

	empty := try(s.ListUsers(ctx, store.ListParams{})).must(t)
	if len(empty.Items) != 0 || empty.Next != "" {
		t.Fatalf("empty store lists %+v", empty)
	}
	var want []string
	for i := range 25 {
		u := try(s.CreateUser(ctx, store.User{Name: fmt.Sprintf("user%02d", i), Role: "user"})).must(t)
		want = append(want, u.ID)
	}
	slices.Reverse(want) // newest first
	for _, limit := range []int{1, 7, 10, 24, 25, 26, 0} {
		var ids []string
		cursor := ""
		pages := 0
		for {
			p := try(s.ListUsers(ctx, store.ListParams{Cursor: cursor, Limit: limit})).must(t)
			pages++
			for _, u := range p.Items {
				ids = append(ids, u.ID)
			}
			if l := store.PageLimit(limit); len(p.Items) > l || (p.Next != "" && len(p.Items) != l) {
				t.Fatalf("limit %d: page of %d items, next %q", limit, len(p.Items), p.Next)
			}
			if p.Next == "" {
				break
			}
			if pages > 30 {
				t.Fatalf("limit %d: pagination does not end", limit)
			}
			cursor = p.Next
		}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("limit %d: ids over all pages (-want +got):\n%s", limit, diff)
		}
		if wantPages := (25 + store.PageLimit(limit) - 1) / store.PageLimit(limit); pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d (an exact fit must not leave an empty last page)", limit, pages, wantPages)
		}
	}
	_, err := s.ListUsers(ctx, store.ListParams{Cursor: "not a cursor"})
	wantErr(t, "bad cursor", err, store.ErrInvalid)
}

func newKey(id, user string) store.Key {
	return store.Key{ID: id, Prefix: "agk-" + id[:min(4, len(id))], Hash: hash(id), UserID: user, Role: "user", Name: "key " + id}
}

func testKeys(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	s := newDB(t)(t)
	u := try(s.CreateUser(ctx, store.User{Name: "alice", Role: "user"})).must(t)

	expires := time.Now().Add(24 * time.Hour)
	k := newKey("k1", u.ID)
	k.Models = []string{"glm-4", "stories"}
	k.ExpiresAt = expires
	k.RevokedAt = time.Now() // ignored on create
	created := try(s.CreateKey(ctx, k)).must(t)
	want := k
	want.ExpiresAt = store.Micro(expires)
	want.RevokedAt = time.Time{}
	want.CreatedAt, want.UpdatedAt = created.CreatedAt, created.UpdatedAt
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created key (-want +got):\n%s", diff)
	}
	if !recent(created.CreatedAt) || !created.UpdatedAt.Equal(created.CreatedAt) || !created.Usable(time.Now()) ||
		created.Usable(expires.Add(time.Second)) {
		t.Errorf("created key times or usability wrong: %+v", created)
	}
	for name, get := range map[string]func() (store.Key, error){
		"GetKey":    func() (store.Key, error) { return s.GetKey(ctx, "k1") },
		"KeyByHash": func() (store.Key, error) { return s.KeyByHash(ctx, hash("k1")) },
	} {
		if diff := cmp.Diff(created, try(get()).must(t)); diff != "" {
			t.Errorf("%s (-created +got):\n%s", name, diff)
		}
	}
	// A key without a user, with no allow-list and no expiry.
	free := try(s.CreateKey(ctx, store.Key{ID: "k2", Prefix: "agk-k2", Hash: hash("k2"), Role: "admin"})).must(t)
	if free.UserID != "" || free.Models != nil || !free.ExpiresAt.IsZero() || !free.Usable(time.Now()) {
		t.Errorf("ownerless key: %+v", free)
	}

	_, err := s.CreateKey(ctx, newKey("k1", u.ID))
	wantErr(t, "duplicate id", err, store.ErrConflict)
	dupHash := newKey("k3", u.ID)
	dupHash.Hash = hash("k1")
	_, err = s.CreateKey(ctx, dupHash)
	wantErr(t, "duplicate hash", err, store.ErrConflict)
	_, err = s.CreateKey(ctx, newKey("k4", "nobody"))
	wantErr(t, "unknown user", err, store.ErrInvalid)
	_, err = s.CreateKey(ctx, store.Key{ID: "k5", Role: "user"})
	wantErr(t, "no hash", err, store.ErrInvalid)
	_, err = s.GetKey(ctx, "nope")
	wantErr(t, "get unknown", err, store.ErrNotFound)
	_, err = s.KeyByHash(ctx, hash("nope"))
	wantErr(t, "unknown hash", err, store.ErrNotFound)

	// Updates.
	up := try(s.UpdateKey(ctx, store.UpdateKeyParams{ID: "k1", Name: ptr("renamed"), Role: ptr("admin"),
		Models: ptr([]string{"only"}), ExpiresAt: ptr(time.Time{})})).must(t)
	if up.Name != "renamed" || up.Role != "admin" || !slices.Equal(up.Models, []string{"only"}) || !up.ExpiresAt.IsZero() {
		t.Errorf("after update: %+v", up)
	}
	if up.UpdatedAt.Before(created.UpdatedAt) || !up.CreatedAt.Equal(created.CreatedAt) || up.Prefix != created.Prefix {
		t.Errorf("update changed what it should not: %+v", up)
	}
	up = try(s.UpdateKey(ctx, store.UpdateKeyParams{ID: "k1", Models: ptr([]string(nil))})).must(t)
	if up.Models != nil || up.Name != "renamed" {
		t.Errorf("clearing models: %+v", up)
	}
	_, err = s.UpdateKey(ctx, store.UpdateKeyParams{ID: "nope", Name: ptr("x")})
	wantErr(t, "update unknown", err, store.ErrNotFound)

	// Revocation is idempotent and keeps the first time.
	r1 := try(s.RevokeKey(ctx, "k1")).must(t)
	if r1.RevokedAt.IsZero() || !r1.RevokedAt.Equal(r1.UpdatedAt) || r1.Usable(time.Now()) {
		t.Fatalf("revoked key: %+v", r1)
	}
	r2 := try(s.RevokeKey(ctx, "k1")).must(t)
	if !r2.RevokedAt.Equal(r1.RevokedAt) {
		t.Errorf("second revoke moved RevokedAt %v → %v", r1.RevokedAt, r2.RevokedAt)
	}
	if got := try(s.KeyByHash(ctx, hash("k1"))).must(t); !got.RevokedAt.Equal(r1.RevokedAt) {
		t.Errorf("KeyByHash after revoke: %+v", got)
	}
	// A revoked key can be updated and stays revoked.
	if got := try(s.UpdateKey(ctx, store.UpdateKeyParams{ID: "k1", Name: ptr("dead")})).must(t); got.RevokedAt.IsZero() {
		t.Errorf("update un-revoked the key")
	}
	_, err = s.RevokeKey(ctx, "nope")
	wantErr(t, "revoke unknown", err, store.ErrNotFound)

	// Disabling the owner makes the key unusable and shows on the key.
	try(s.UpdateUser(ctx, store.UpdateUserParams{ID: u.ID, Disabled: ptr(true)})).must(t)
	k6 := try(s.CreateKey(ctx, newKey("k6", u.ID))).must(t)
	if !k6.UserDisabled || k6.Usable(time.Now()) {
		t.Errorf("key of a disabled user: %+v", k6)
	}
}

func testKeyPagination(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	s := newDB(t)(t)
	a := try(s.CreateUser(ctx, store.User{Name: "a", Role: "user"})).must(t)
	b := try(s.CreateUser(ctx, store.User{Name: "b", Role: "user"})).must(t)
	var all, ofA, live []string
	for i := range 30 {
		owner := a.ID
		if i%3 == 0 {
			owner = b.ID
		}
		id := fmt.Sprintf("key%02d", i)
		try(s.CreateKey(ctx, newKey(id, owner))).must(t)
		if i%5 == 4 {
			try(s.RevokeKey(ctx, id)).must(t)
		} else {
			live = append(live, id)
		}
		all = append(all, id)
		if owner == a.ID {
			ofA = append(ofA, id)
		}
	}
	slices.Reverse(all)
	slices.Reverse(live)
	slices.Reverse(ofA)
	list := func(p store.ListKeysParams) []string {
		var ids []string
		for n := 0; ; n++ {
			page := try(s.ListKeys(ctx, p)).must(t)
			for _, k := range page.Items {
				ids = append(ids, k.ID)
				if p.UserID != "" && k.UserID != p.UserID {
					t.Errorf("list of %s has key %s of %s", p.UserID, k.ID, k.UserID)
				}
			}
			if page.Next == "" || n > 40 {
				return ids
			}
			p.Cursor = page.Next
		}
	}
	for _, limit := range []int{1, 4, 30, 1000} {
		if diff := cmp.Diff(all, list(store.ListKeysParams{ListParams: store.ListParams{Limit: limit}, IncludeRevoked: true})); diff != "" {
			t.Errorf("all keys, limit %d (-want +got):\n%s", limit, diff)
		}
		if diff := cmp.Diff(live, list(store.ListKeysParams{ListParams: store.ListParams{Limit: limit}})); diff != "" {
			t.Errorf("live keys, limit %d (-want +got):\n%s", limit, diff)
		}
		var liveA []string
		for _, id := range ofA {
			if slices.Contains(live, id) {
				liveA = append(liveA, id)
			}
		}
		if diff := cmp.Diff(liveA, list(store.ListKeysParams{ListParams: store.ListParams{Limit: limit}, UserID: a.ID})); diff != "" {
			t.Errorf("a's live keys, limit %d (-want +got):\n%s", limit, diff)
		}
	}
	if got := list(store.ListKeysParams{UserID: "nobody"}); len(got) != 0 {
		t.Errorf("unknown user has keys %v", got)
	}
	_, err := s.ListKeys(ctx, store.ListKeysParams{ListParams: store.ListParams{Cursor: store.Cursor{Seq: 3}.String()}})
	wantErr(t, "record cursor on keys", err, store.ErrInvalid)
}

func testKeysChangedSince(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	open := newDB(t)
	s, replica := open(t), open(t)
	u := try(s.CreateUser(ctx, store.User{Name: "alice", Role: "user"})).must(t)
	for _, id := range []string{"k1", "k2", "k3"} {
		try(s.CreateKey(ctx, newKey(id, u.ID))).must(t)
	}

	// A cache on the second replica: first load, then follow changes.
	cache := map[string]store.Key{}
	var since time.Time
	poll := func() {
		t.Helper()
		keys, next := try2(replica.KeysChangedSince(ctx, since)).must(t)
		if next.Before(since) {
			t.Fatalf("next %v is before since %v", next, since)
		}
		for i, k := range keys {
			if i > 0 && k.UpdatedAt.Before(keys[i-1].UpdatedAt) {
				t.Errorf("changes out of order: %s at %v after %v", k.ID, k.UpdatedAt, keys[i-1].UpdatedAt)
			}
			if k.UpdatedAt.Before(since) {
				t.Errorf("key %s changed at %v, before since %v", k.ID, k.UpdatedAt, since)
			}
			if old, ok := cache[k.ID]; !ok || !k.UpdatedAt.Before(old.UpdatedAt) {
				cache[k.ID] = k
			}
		}
		since = next
	}
	poll()
	if len(cache) != 3 {
		t.Fatalf("first load has %d keys, want 3", len(cache))
	}
	if !since.Before(time.Now().Add(time.Minute)) || since.IsZero() {
		t.Fatalf("next after first load = %v", since)
	}

	// A revocation on the first replica is on the second after its next poll.
	try(s.RevokeKey(ctx, "k2")).must(t)
	poll()
	if cache["k2"].RevokedAt.IsZero() || !cache["k1"].RevokedAt.IsZero() {
		t.Errorf("after revoke: k1 %+v, k2 %+v", cache["k1"], cache["k2"])
	}
	// So are a new key, an update and disabling the owner, and enabling again.
	try(s.CreateKey(ctx, newKey("k4", u.ID))).must(t)
	try(s.UpdateKey(ctx, store.UpdateKeyParams{ID: "k3", Models: ptr([]string{"m"})})).must(t)
	poll()
	if _, ok := cache["k4"]; !ok || !slices.Equal(cache["k3"].Models, []string{"m"}) {
		t.Errorf("new or updated key not seen: %+v", cache)
	}
	try(s.UpdateUser(ctx, store.UpdateUserParams{ID: u.ID, Disabled: ptr(true)})).must(t)
	poll()
	for id, k := range cache {
		if !k.UserDisabled || k.Usable(time.Now()) {
			t.Errorf("key %s still usable after its user was disabled", id)
		}
	}
	try(s.UpdateUser(ctx, store.UpdateUserParams{ID: u.ID, Disabled: ptr(false)})).must(t)
	poll()
	if k := cache["k1"]; k.UserDisabled || !k.Usable(time.Now()) {
		t.Errorf("key k1 not usable after its user was enabled again: %+v", k)
	}
	// Nothing changes after a moment still to come.
	keys, _ := try2(replica.KeysChangedSince(ctx, time.Now().Add(time.Hour))).must(t)
	if len(keys) != 0 {
		t.Errorf("changes in the future: %v", keys)
	}
}

// day is a fixed UTC midnight in the past, so the test does not depend on today's date.
var day = time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)

func usageAt(t time.Time, key, user, model string, in, out int64) store.UsageRecord {
	return store.UsageRecord{Time: t, KeyID: key, UserID: user, Model: model, Backend: "b1",
		PromptTokens: in, CompletionTokens: out, Latency: 1500 * time.Microsecond, Status: 200, TraceID: "tr"}
}

func testUsageTotals(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	s := newDB(t)(t)
	next := day.AddDate(0, 0, 1) // April 1st: a new day and a new month
	recs := []store.UsageRecord{
		usageAt(day.Add(-time.Microsecond), "k1", "u1", "m1", 1, 1),                       // March 30, last µs
		usageAt(day, "k1", "u1", "m1", 10, 20),                                            // March 31, first µs
		usageAt(day.Add(12*time.Hour), "k1", "u1", "m2", 100, 200),                        // March 31, noon
		usageAt(next.Add(-time.Microsecond), "k1", "u1", "m1", 1000, 2000),                // March 31, last µs
		usageAt(next, "k1", "u1", "m1", 10000, 20000),                                     // April 1, first µs
		usageAt(next.Add(time.Hour), "k2", "u1", "m1", 100000, 200000),                    // another key
		usageAt(next.Add(2*time.Hour), "k3", "u2", "m1", 1000000, 2000000),                // another user
		usageAt(next.Add(time.Hour+500*time.Nanosecond), "k1", "u1", "m1", 3, 4),          // sub-µs part dropped
		usageAt(day.AddDate(0, 0, -30).Add(time.Minute), "k1", "u1", "m1", 7, 7),          // March 1
		usageAt(time.Date(2026, 2, 28, 23, 59, 0, 0, time.UTC), "k1", "u1", "m1", 99, 99), // February
		usageAt(next.AddDate(0, 1, 0), "k1", "u1", "m1", 5, 5),                            // May 1
		usageAt(next.AddDate(0, 1, 0).Add(-time.Microsecond), "k1", "u1", "m1", 6, 6),     // April 30, last µs
	}
	if err := s.Append(ctx, "", recs, nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		f    store.UsageFilter
		want store.UsageTotals
	}{
		{"k1 on March 31", store.UsageFilter{KeyID: "k1", From: day, To: next}, tot(3, 1110, 2220)},
		{"k1 on April 1", store.UsageFilter{KeyID: "k1", From: next, To: next.AddDate(0, 0, 1)}, tot(2, 10003, 20004)},
		{"k1 in March", store.UsageFilter{KeyID: "k1", From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: next},
			tot(5, 1118, 2228)},
		{"k1 in April", store.UsageFilter{KeyID: "k1", From: next, To: next.AddDate(0, 1, 0)}, tot(3, 10009, 20010)},
		{"u1 on April 1", store.UsageFilter{UserID: "u1", From: next, To: next.AddDate(0, 0, 1)}, tot(3, 110003, 220004)},
		{"m2 ever", store.UsageFilter{Model: "m2"}, tot(1, 100, 200)},
		{"k1 m1 from April", store.UsageFilter{KeyID: "k1", Model: "m1", From: next}, tot(4, 10014, 20015)},
		{"everything", store.UsageFilter{}, tot(12, 1111231, 2222342)},
		{"nobody", store.UsageFilter{KeyID: "k9"}, tot(0, 0, 0)},
		{"k1 on March 31 after its first µs", store.UsageFilter{KeyID: "k1", From: day.Add(time.Microsecond), To: next}, tot(2, 1100, 2200)},
		{"u1 until April 1", store.UsageFilter{UserID: "u1", To: next}, tot(6, 1217, 2327)},
		{"u1 until April 1, 00:00:00.000001", store.UsageFilter{UserID: "u1", To: next.Add(time.Microsecond)}, tot(7, 11217, 22327)},
		{"empty period", store.UsageFilter{KeyID: "k1", From: next, To: next}, store.UsageTotals{}},
	}
	for _, tc := range cases {
		got := try(s.UsageTotals(ctx, tc.f)).must(t)
		if got != tc.want {
			t.Errorf("%s: totals %+v, want %+v", tc.name, got, tc.want)
		}
		if raw := rawTotals(t, s, tc.f); raw != got {
			t.Errorf("%s: totals %+v differ from the sum of the records %+v", tc.name, got, raw)
		}
	}
	if got := (store.UsageTotals{PromptTokens: 2, CompletionTokens: 3}).Tokens(); got != 5 {
		t.Errorf("Tokens() = %d", got)
	}
}

// rawTotals sums the records ListUsage returns for f: what UsageTotals must answer, whether
// a driver reads the records or a rollup.
func rawTotals(t testing.TB, s store.Store, f store.UsageFilter) store.UsageTotals {
	t.Helper()
	var sum store.UsageTotals
	q := store.UsageQuery{UsageFilter: f, ListParams: store.ListParams{Limit: store.MaxLimit}}
	for n := 0; ; n++ {
		p := try(s.ListUsage(context.Background(), q)).must(t)
		for _, r := range p.Items {
			sum.Requests++
			sum.PromptTokens += r.PromptTokens
			sum.CompletionTokens += r.CompletionTokens
		}
		if p.Next == "" {
			return sum
		}
		if n > 1000 {
			t.Fatal("usage pagination does not end")
		}
		q.Cursor = p.Next
	}
}

func tot(requests, prompt, completion int64) store.UsageTotals {
	return store.UsageTotals{Requests: requests, PromptTokens: prompt, CompletionTokens: completion}
}

func testListUsage(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	s := newDB(t)(t)
	var want []store.UsageRecord
	for i := range 23 {
		r := usageAt(day.Add(time.Duration(i)*time.Minute), fmt.Sprintf("k%d", i%3), "u1", "m1", int64(i), int64(2*i))
		r.TraceID = fmt.Sprintf("trace-%d", i)
		r.Status = 200 + i
		r.Latency = time.Duration(i)*time.Millisecond + 123*time.Microsecond
		want = append(want, r)
	}
	// Written in three transactions, as a Batcher would.
	for _, chunk := range [][]store.UsageRecord{want[:10], want[10:11], want[11:]} {
		if err := s.Append(ctx, "", chunk, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Append(ctx, "", nil, nil); err != nil {
		t.Fatalf("empty append: %v", err)
	}
	slices.Reverse(want)
	var got []store.UsageRecord
	q := store.UsageQuery{ListParams: store.ListParams{Limit: 5}}
	for n := 0; ; n++ {
		p := try(s.ListUsage(ctx, q)).must(t)
		got = append(got, p.Items...)
		if p.Next == "" || n > 10 {
			break
		}
		q.Cursor = p.Next
	}
	ids := map[int64]bool{}
	for i := range got {
		if got[i].ID == 0 || ids[got[i].ID] {
			t.Fatalf("record %d has id %d (zero or repeated)", i, got[i].ID)
		}
		ids[got[i].ID] = true
		got[i].ID = 0
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records over all pages (-want +got):\n%s", diff)
	}

	p := try(s.ListUsage(ctx, store.UsageQuery{UsageFilter: store.UsageFilter{KeyID: "k1",
		From: day.Add(4 * time.Minute), To: day.Add(13 * time.Minute)}})).must(t)
	var traces []string
	for _, r := range p.Items {
		traces = append(traces, r.TraceID)
	}
	if diff := cmp.Diff([]string{"trace-10", "trace-7", "trace-4"}, traces); diff != "" || p.Next != "" {
		t.Errorf("filtered usage (-want +got):\n%s (next %q)", diff, p.Next)
	}
	_, err := s.ListUsage(ctx, store.UsageQuery{ListParams: store.ListParams{Cursor: "%%%"}})
	wantErr(t, "bad cursor", err, store.ErrInvalid)

	// A record without a time gets the time it was written.
	if err := s.Append(ctx, "", []store.UsageRecord{{KeyID: "now", Model: "m"}}, nil); err != nil {
		t.Fatal(err)
	}
	p = try(s.ListUsage(ctx, store.UsageQuery{UsageFilter: store.UsageFilter{KeyID: "now"}})).must(t)
	if len(p.Items) != 1 || !recent(p.Items[0].Time) {
		t.Errorf("record without time: %+v", p.Items)
	}
}

func testAudit(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	s := newDB(t)(t)
	actions := []string{"key.create", "key.revoke", "user.create"}
	var recs []store.AuditRecord
	for i := range 30 {
		recs = append(recs, store.AuditRecord{
			Time:       day.Add(time.Duration(i) * time.Hour),
			Actor:      fmt.Sprintf("actor%d", i%2),
			Action:     actions[i%3],
			Target:     fmt.Sprintf("target%d", i%5),
			ClientAddr: "192.0.2.1:5555",
			Result:     []string{"ok", "denied"}[i%4/3],
			Details:    json.RawMessage(fmt.Sprintf(`{"i": %d, "models": ["a", "b"]}`, i)),
		})
	}
	recs[0].Details = nil                           // none: stored as {}
	recs[1].Details = json.RawMessage(`not json {`) // kept as a JSON string
	// Audit records can share a transaction with usage records.
	if err := s.Append(ctx, "", []store.UsageRecord{usageAt(day, "k", "u", "m", 1, 1)}, recs); err != nil {
		t.Fatal(err)
	}
	all := listAudit(t, s, store.AuditQuery{ListParams: store.ListParams{Limit: 7}})
	if len(all) != 30 {
		t.Fatalf("listed %d audit records, want 30", len(all))
	}
	for i, got := range all {
		src := recs[29-i] // newest first
		if got.ID == 0 || !got.Time.Equal(src.Time) || got.Actor != src.Actor || got.Action != src.Action ||
			got.Target != src.Target || got.ClientAddr != src.ClientAddr || got.Result != src.Result {
			t.Errorf("record %d: got %+v, want %+v", i, got, src)
		}
		wantDetails := string(store.Details(src.Details))
		if !sameJSON(t, got.Details, []byte(wantDetails)) {
			t.Errorf("record %d: details %s, want %s", i, got.Details, wantDetails)
		}
	}
	if !sameJSON(t, all[29].Details, []byte(`{}`)) || !sameJSON(t, all[28].Details, []byte(`"not json {"`)) {
		t.Errorf("empty and invalid details stored as %s and %s", all[29].Details, all[28].Details)
	}

	count := func(q store.AuditQuery, pred func(store.AuditRecord) bool) {
		t.Helper()
		want := 0
		for _, r := range recs {
			if pred(r) {
				want++
			}
		}
		got := listAudit(t, s, q)
		for _, r := range got {
			if !pred(r) {
				t.Errorf("query %+v returned %+v", q, r)
			}
		}
		if len(got) != want || want == 0 {
			t.Errorf("query %+v: %d records, want %d (>0)", q, len(got), want)
		}
	}
	count(store.AuditQuery{Actor: "actor1"}, func(r store.AuditRecord) bool { return r.Actor == "actor1" })
	count(store.AuditQuery{Action: "key.revoke", ListParams: store.ListParams{Limit: 3}},
		func(r store.AuditRecord) bool { return r.Action == "key.revoke" })
	count(store.AuditQuery{Target: "target3", Result: "denied"},
		func(r store.AuditRecord) bool { return r.Target == "target3" && r.Result == "denied" })
	from, to := day.Add(5*time.Hour), day.Add(17*time.Hour)
	count(store.AuditQuery{From: from, To: to, Actor: "actor0", ListParams: store.ListParams{Limit: 2}},
		func(r store.AuditRecord) bool {
			return !r.Time.Before(from) && r.Time.Before(to) && r.Actor == "actor0"
		})
	if got := listAudit(t, s, store.AuditQuery{Actor: "nobody"}); len(got) != 0 {
		t.Errorf("unknown actor: %v", got)
	}
	_, err := s.ListAudit(ctx, store.AuditQuery{ListParams: store.ListParams{Cursor: store.Cursor{ID: "x", Time: day}.String()}})
	wantErr(t, "key cursor on audit", err, store.ErrInvalid)
}

func sameJSON(t testing.TB, a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func listAudit(t testing.TB, s store.Store, q store.AuditQuery) []store.AuditRecord {
	t.Helper()
	var out []store.AuditRecord
	for n := 0; ; n++ {
		p := try(s.ListAudit(context.Background(), q)).must(t)
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		if n > 100 {
			t.Fatal("audit pagination does not end")
		}
		q.Cursor = p.Next
	}
}

func testRetention(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	s := newDB(t)(t)
	var usage []store.UsageRecord
	var audit []store.AuditRecord
	for i := range 40 {
		at := day.Add(time.Duration(i) * time.Hour)
		usage = append(usage, usageAt(at, "k", "u", "m", 1, 1))
		audit = append(audit, store.AuditRecord{Time: at, Actor: "a", Action: "x", Result: "ok"})
	}
	if err := s.Append(ctx, "", usage, audit); err != nil {
		t.Fatal(err)
	}
	cut := day.Add(24 * time.Hour)
	if n := try(s.DeleteAuditBefore(ctx, cut)).must(t); n != 24 {
		t.Errorf("deleted %d audit records, want 24", n)
	}
	if n := try(s.DeleteAuditBefore(ctx, cut)).must(t); n != 0 {
		t.Errorf("second deletion removed %d", n)
	}
	left := listAudit(t, s, store.AuditQuery{})
	if len(left) != 16 || left[len(left)-1].Time.Before(cut) {
		t.Errorf("after retention %d audit records, oldest %v", len(left), left[len(left)-1].Time)
	}
	// Audit deletion leaves usage alone, and the other way round.
	if tot := try(s.UsageTotals(ctx, store.UsageFilter{})).must(t); tot.Requests != 40 {
		t.Errorf("usage records after audit retention: %d", tot.Requests)
	}
	if n := try(s.DeleteUsageBefore(ctx, cut.Add(time.Hour))).must(t); n != 25 {
		t.Errorf("deleted %d usage records, want 25", n)
	}
	if tot := try(s.UsageTotals(ctx, store.UsageFilter{})).must(t); tot.Requests != 15 {
		t.Errorf("usage records after retention: %d, want 15", tot.Requests)
	}
	// Totals read from a daily rollup must still match the records left.
	for _, f := range []store.UsageFilter{{}, {KeyID: "k"}, {UserID: "u", From: day.AddDate(0, 0, 1)},
		{KeyID: "k", From: day, To: day.AddDate(0, 0, 1)}, {KeyID: "k", To: day.AddDate(0, 0, 2)}} {
		if got, raw := try(s.UsageTotals(ctx, f)).must(t), rawTotals(t, s, f); got != raw {
			t.Errorf("after retention, totals for %+v: %+v, but the records sum to %+v", f, got, raw)
		}
	}
	if got := listAudit(t, s, store.AuditQuery{}); len(got) != 16 {
		t.Errorf("audit records after usage retention: %d", len(got))
	}
}

// testConcurrentWriters runs 50 goroutines that create users and keys, revoke, append
// records and read, all at once: every call must succeed (on SQLite, none may answer
// "database is locked").
func testConcurrentWriters(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	s := newDB(t)(t)
	const workers, rounds = 50, 6
	var failures atomic.Int64
	var firstErr sync.Once
	fail := func(err error) {
		if err != nil {
			failures.Add(1)
			firstErr.Do(func() { t.Errorf("concurrent call failed: %v", err) })
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			u, err := s.CreateUser(ctx, store.User{Name: fmt.Sprintf("w%d", w), Role: "user"})
			fail(err)
			for r := range rounds {
				id := fmt.Sprintf("w%d-k%d", w, r)
				_, err := s.CreateKey(ctx, newKey(id, u.ID))
				fail(err)
				fail(s.Append(ctx, "", []store.UsageRecord{usageAt(day, id, u.ID, "m", 1, 2), usageAt(day, id, u.ID, "m", 3, 4)},
					[]store.AuditRecord{{Time: day, Actor: u.ID, Action: "key.create", Target: id, Result: "ok"}}))
				switch r % 4 {
				case 0:
					_, err = s.RevokeKey(ctx, id)
				case 1:
					_, err = s.KeyByHash(ctx, hash(id))
				case 2:
					_, err = s.UsageTotals(ctx, store.UsageFilter{KeyID: id})
				case 3:
					_, _, err = s.KeysChangedSince(ctx, time.Now().Add(-time.Second))
				}
				fail(err)
			}
		})
	}
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of %d concurrent calls failed", n, workers*(rounds*3+1))
	}
	tot := try(s.UsageTotals(ctx, store.UsageFilter{})).must(t)
	if want := (store.UsageTotals{Requests: 2 * workers * rounds, PromptTokens: 4 * workers * rounds, CompletionTokens: 6 * workers * rounds}); tot != want {
		t.Errorf("totals %+v, want %+v", tot, want)
	}
	keys, _ := try2(s.KeysChangedSince(ctx, time.Time{})).must(t)
	if len(keys) != workers*rounds {
		t.Errorf("%d keys, want %d", len(keys), workers*rounds)
	}
}

// testConcurrentAppends appends batches that share keys and days from two replicas at once,
// in different orders, while retention deletes run: no deadlock, no lost update of the
// daily totals.
// testLargeAppend writes one Append larger than a driver's statement or batch sizes: every
// record arrives once, in order, and the rollup of its 150 (key, day) pairs matches them.
func testLargeAppend(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	s := newDB(t)(t)
	const n = 333
	usage := make([]store.UsageRecord, n)
	audit := make([]store.AuditRecord, n-100)
	for i := range usage {
		usage[i] = usageAt(day.Add(time.Duration(i%3)*24*time.Hour+time.Duration(i)*time.Second),
			fmt.Sprintf("k%02d", i%50), "u", "m", int64(i), 1)
	}
	for i := range audit {
		audit[i] = store.AuditRecord{Time: day.Add(time.Duration(i) * time.Second), Actor: "a", Action: "x",
			Target: fmt.Sprint(i), Result: "ok", Details: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
	}
	if err := s.Append(ctx, "", usage, audit); err != nil {
		t.Fatal(err)
	}
	var got []store.UsageRecord
	for p := (store.UsageQuery{ListParams: store.ListParams{Limit: 100}}); ; {
		page := try(s.ListUsage(ctx, p)).must(t)
		got = append(got, page.Items...)
		if page.Next == "" {
			break
		}
		p.Cursor = page.Next
	}
	if len(got) != n {
		t.Fatalf("listed %d usage records, want %d", len(got), n)
	}
	for i, r := range got {
		want := usage[n-1-i] // newest first
		if r.PromptTokens != want.PromptTokens || !r.Time.Equal(want.Time) || r.KeyID != want.KeyID {
			t.Fatalf("record %d: %+v, want %+v", i, r, want)
		}
	}
	for _, f := range []store.UsageFilter{{}, {KeyID: "k07"}, {KeyID: "k49", From: day.AddDate(0, 0, 1), To: day.AddDate(0, 0, 2)}} {
		if tot, raw := try(s.UsageTotals(ctx, f)).must(t), rawTotals(t, s, f); tot != raw || tot.Requests == 0 {
			t.Errorf("totals for %+v: %+v, but the records sum to %+v", f, tot, raw)
		}
	}
	if all := try(s.UsageTotals(ctx, store.UsageFilter{})).must(t); all != tot(n, n*(n-1)/2, n) {
		t.Errorf("totals %+v", all)
	}
	a := listAudit(t, s, store.AuditQuery{})
	if len(a) != len(audit) {
		t.Fatalf("listed %d audit records, want %d", len(a), len(audit))
	}
	if last := a[0]; last.Target != fmt.Sprint(len(audit)-1) || !sameJSON(t, last.Details, audit[len(audit)-1].Details) {
		t.Errorf("newest audit record %+v", last)
	}
}

func testConcurrentAppends(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	open := newDB(t)
	replicas := []store.Store{open(t), open(t)}
	const workers, batches, size = 8, 10, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			s := replicas[w%2]
			for b := range batches {
				recs := make([]store.UsageRecord, size)
				for i := range recs {
					n := (w*7 + b*3 + i) % 6
					if w%2 == 1 {
						n = 5 - n // the other replica walks the keys the other way round
					}
					recs[i] = usageAt(day.Add(time.Duration(n%3)*24*time.Hour+time.Duration(i)*time.Minute),
						fmt.Sprintf("k%d", n), "u", "m", 1, int64(n))
				}
				if err := s.Append(ctx, "", recs, nil); err != nil {
					t.Error(err)
					return
				}
			}
			if w == 0 {
				if _, err := s.DeleteUsageBefore(ctx, day.Add(time.Hour)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for _, f := range []store.UsageFilter{{}, {KeyID: "k3"}, {UserID: "u", From: day.AddDate(0, 0, 1)},
		{KeyID: "k1", From: day, To: day.AddDate(0, 0, 2)}} {
		got, raw := try(replicas[1].UsageTotals(ctx, f)).must(t), rawTotals(t, replicas[0], f)
		if got != raw {
			t.Errorf("totals for %+v: %+v, but the records sum to %+v", f, got, raw)
		}
	}
}

// batchPruner is what the suite needs to make a store forget batch ids without waiting for
// store.BatchMemory: the SQL stores' PruneBatches.
type batchPruner interface {
	PruneBatches(ctx context.Context, before time.Time) (int64, error)
}

// testBatchIDs: Append applies a batch id once. Its second Append writes neither records nor
// rollup and returns nil; another id, or none, writes again; a pruned id is forgotten.
func testBatchIDs(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	s := newDB(t)(t)
	usage := []store.UsageRecord{usageAt(day, "k", "u", "m", 1, 2), usageAt(day.Add(time.Hour), "k", "u", "m", 3, 4)}
	audit := []store.AuditRecord{{Time: day, Actor: "a", Action: "batch", Result: "ok"}}
	appendBatch := func(id string) {
		t.Helper()
		if err := s.Append(ctx, id, usage, audit); err != nil {
			t.Fatalf("Append(%q): %v", id, err)
		}
	}
	check := func(when string, times int64) {
		t.Helper()
		want := store.UsageTotals{Requests: 2 * times, PromptTokens: 4 * times, CompletionTokens: 6 * times}
		// The first filter reads the daily rollup, the second (naming a model) the records.
		for _, f := range []store.UsageFilter{{KeyID: "k"}, {KeyID: "k", Model: "m"}} {
			if got := try(s.UsageTotals(ctx, f)).must(t); got != want {
				t.Errorf("%s: totals for %+v = %+v, want %+v", when, f, got, want)
			}
		}
		if got := try(s.ListAudit(ctx, store.AuditQuery{Action: "batch"})).must(t); int64(len(got.Items)) != times {
			t.Errorf("%s: %d audit records, want %d", when, len(got.Items), times)
		}
	}

	first := store.NewBatchID()
	appendBatch(first)
	appendBatch(first)
	check("one batch appended twice", 1)
	second := store.NewBatchID()
	appendBatch(second)
	check("another batch", 2)
	appendBatch("")
	appendBatch("")
	check("two batches without an id", 4)

	pr, ok := s.(batchPruner)
	if !ok {
		t.Fatalf("%T cannot prune batch ids (no PruneBatches)", s)
	}
	if n := try(pr.PruneBatches(ctx, time.Now().Add(-store.BatchMemory))).must(t); n != 0 {
		t.Errorf("pruning ids older than %v removed %d just written", store.BatchMemory, n)
	}
	appendBatch(first)
	check("the first batch again, within BatchMemory", 4)
	if n := try(pr.PruneBatches(ctx, time.Now().Add(time.Minute))).must(t); n != 2 {
		t.Errorf("pruning every id removed %d, want 2", n)
	}
	appendBatch(first)
	check("the first batch again, after its id was pruned", 5)
}

// testConcurrentRetries: attempts at one batch that overlap, from two replicas, apply it
// once and all return nil (on PostgreSQL the later ones wait for the first's row lock).
func testConcurrentRetries(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	open := newDB(t)
	replicas := []store.Store{open(t), open(t)}
	const batches, attempts = 5, 6
	var wg sync.WaitGroup
	for b := range batches {
		id := store.NewBatchID()
		recs := []store.UsageRecord{usageAt(day, "k", "u", "m", 1, int64(b)), usageAt(day.Add(time.Minute), "k", "u", "m", 1, 1)}
		for a := range attempts {
			wg.Go(func() {
				if err := replicas[a%2].Append(ctx, id, recs, nil); err != nil {
					t.Errorf("batch %d attempt %d: %v", b, a, err)
				}
			})
		}
	}
	wg.Wait()
	want := store.UsageTotals{Requests: 2 * batches, PromptTokens: 2 * batches, CompletionTokens: batches + batches*(batches-1)/2}
	for _, f := range []store.UsageFilter{{KeyID: "k"}, {KeyID: "k", Model: "m"}} {
		if got := try(replicas[1].UsageTotals(ctx, f)).must(t); got != want {
			t.Errorf("totals for %+v = %+v, want %+v (each batch once)", f, got, want)
		}
	}
}

func testReopen(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	open := newDB(t)
	s := open(t)
	u := try(s.CreateUser(ctx, store.User{Name: "alice", Role: "user"})).must(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Opening again finds every migration applied and the data in place.
	for range 2 {
		s = open(t)
		if got := try(s.GetUser(ctx, u.ID)).must(t); got.Name != "alice" {
			t.Fatalf("after reopen: %+v", got)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	try(s.CreateKey(ctx, newKey("k1", u.ID))).must(t)
}

// testRacingOpens opens several stores on a fresh database at once, as replicas starting
// together do: each must succeed, and the schema must be usable through all of them.
func testRacingOpens(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	open := newDB(t)
	const n = 4
	stores := make([]store.Store, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i] = open(t) })
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, s := range stores {
		try(s.CreateUser(ctx, store.User{Name: fmt.Sprintf("u%d", i), Role: "user"})).must(t)
	}
	p := try(stores[0].ListUsers(ctx, store.ListParams{})).must(t)
	if len(p.Items) != n {
		t.Errorf("%d users through replica 0, want %d", len(p.Items), n)
	}
}

// testBatcher writes through a Batcher from many goroutines and checks every record landed.
func testBatcher(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	s := newDB(t)(t)
	b := store.NewBatcher(s, store.BatcherOptions{Size: 64, Interval: 5 * time.Millisecond, Queue: 100000})
	const workers, each = 20, 250
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				b.Usage(usageAt(day, fmt.Sprintf("k%d", w), "u", "m", 1, int64(i)))
				if i%50 == 0 {
					b.Audit(store.AuditRecord{Actor: "a", Action: "x", Result: "ok"})
				}
			}
		})
	}
	wg.Wait()
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	tot := try(s.UsageTotals(ctx, store.UsageFilter{})).must(t)
	if tot.Requests != workers*each || tot.PromptTokens != workers*each {
		t.Errorf("after Flush: %+v, want %d records", tot, workers*each)
	}
	if n := len(listAudit(t, s, store.AuditQuery{})); n != workers*each/50 {
		t.Errorf("%d audit records, want %d", n, workers*each/50)
	}
	b.Usage(usageAt(day, "last", "u", "m", 1, 1))
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if tot := try(s.UsageTotals(ctx, store.UsageFilter{KeyID: "last"})).must(t); tot.Requests != 1 {
		t.Errorf("record queued before Close not written")
	}
	st := b.Stats()
	if st.Dropped != 0 || st.Failed != 0 || st.Written != workers*each+workers*each/50+1 {
		t.Errorf("stats %+v", st)
	}
}

// lostCommit is a store whose first attempt at each batch commits but reports failure, as
// when an attempt's deadline expires while its COMMIT goes through.
type lostCommit struct {
	store.Store
	mu   sync.Mutex
	seen map[string]bool
}

func (l *lostCommit) Append(ctx context.Context, batch string, usage []store.UsageRecord, audit []store.AuditRecord) error {
	if err := l.Store.Append(ctx, batch, usage, audit); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[batch] {
		return nil
	}
	l.seen[batch] = true
	return fmt.Errorf("commit: %w", context.DeadlineExceeded)
}

// testBatcherLostCommit: a batch whose first attempt committed although the Batcher saw it
// fail is in the store once, not once per attempt; the records and the rollup agree.
func testBatcherLostCommit(t *testing.T, newDB NewDB) {
	ctx := ctxT(t)
	s := newDB(t)(t)
	l := &lostCommit{Store: s, seen: make(map[string]bool)}
	b := store.NewBatcher(l, store.BatcherOptions{Size: 10, Interval: time.Hour, Queue: 1000})
	for i := range 95 {
		b.Usage(usageAt(day.Add(time.Duration(i)*time.Second), "lost", "u", "m", 1, 2))
		if i%10 == 0 {
			b.Audit(store.AuditRecord{Actor: "a", Action: "lost", Result: "ok"})
		}
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Written != 95+10 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
	want := store.UsageTotals{Requests: 95, PromptTokens: 95, CompletionTokens: 190}
	for _, f := range []store.UsageFilter{{KeyID: "lost"}, {KeyID: "lost", Model: "m"}} {
		if got := try(s.UsageTotals(ctx, f)).must(t); got != want {
			t.Errorf("totals for %+v = %+v, want %+v", f, got, want)
		}
	}
	if n := len(listAudit(t, s, store.AuditQuery{Action: "lost"})); n != 10 {
		t.Errorf("%d audit records, want 10", n)
	}
	if l.seen[""] {
		t.Error("the Batcher wrote a batch without an id")
	}
}

func testCanceled(t *testing.T, newDB NewDB) {
	s := newDB(t)(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.CreateUser(ctx, store.User{Name: "x", Role: "user"}); err == nil {
		t.Error("CreateUser with a canceled context succeeded")
	}
	if err := s.Append(ctx, "", []store.UsageRecord{usageAt(day, "k", "u", "m", 1, 1)}, nil); err == nil {
		t.Error("Append with a canceled context succeeded")
	}
	// A canceled call leaves the store usable.
	ctx = ctxT(t)
	try(s.CreateUser(ctx, store.User{Name: "x", Role: "user"})).must(t)
}
