package sqlite_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/store"
	_ "github.com/open-autoglm/autoglm/internal/store/sqlite" // registers the "sqlite" driver
)

// A key's life: created, found by the hash of its secret, seen by a cache following
// KeysChangedSince, revoked, and its usage written through a Batcher and totalled for a quota.
func Example() {
	ctx := context.Background()
	dataDir, err := os.MkdirTemp("", "autoglm-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dataDir)

	// The "store" section with defaults: SQLite at <data-dir>/autoglm.db.
	s, err := store.Open(ctx, config.Store{Driver: "sqlite"}, dataDir)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	u, _ := s.CreateUser(ctx, store.User{ID: "usr_ada", Name: "ada", Role: "user"})
	secret := sha256.Sum256([]byte("agk-secret-shown-once"))
	k, err := s.CreateKey(ctx, store.Key{ID: "key_1", Prefix: "agk-secr", Hash: secret[:], UserID: u.ID,
		Role: "user", Models: []string{"stories260k"}})
	if err != nil {
		log.Fatal(err)
	}
	found, _ := s.KeyByHash(ctx, secret[:])
	fmt.Println("found", found.ID, "usable:", found.Usable(time.Now()))

	// A cache's first load, then a revocation, then the next poll.
	keys, next, _ := s.KeysChangedSince(ctx, time.Time{})
	fmt.Println("loaded", len(keys), "key")
	s.RevokeKey(ctx, k.ID)
	keys, _, _ = s.KeysChangedSince(ctx, next)
	fmt.Println("changed:", keys[0].ID, "usable:", keys[0].Usable(time.Now()))

	// The request path hands usage to a Batcher; Close writes what is queued.
	today := time.Now().UTC().Truncate(24 * time.Hour)
	b := store.NewBatcher(s, store.BatcherOptions{})
	for range 3 {
		b.Usage(store.UsageRecord{KeyID: k.ID, UserID: u.ID, Model: "stories260k", PromptTokens: 5, CompletionTokens: 40, Status: 200})
	}
	b.Close(ctx)
	t, _ := s.UsageTotals(ctx, store.UsageFilter{KeyID: k.ID, From: today, To: today.AddDate(0, 0, 1)})
	fmt.Println("today:", t.Requests, "requests,", t.Tokens(), "tokens")
	// Output:
	// found key_1 usable: true
	// loaded 1 key
	// changed: key_1 usable: false
	// today: 3 requests, 135 tokens
}
