package cache_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/cache"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

func newCache(t *testing.T, mutate func(*config.Cache)) *cache.Cache {
	t.Helper()
	cfg := config.Cache{Enabled: true}
	if mutate != nil {
		mutate(&cfg)
	}
	full := config.Config{Cache: cfg}.WithDefaults()
	c, err := cache.New(full.Cache, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

const chatRoute = "/v1/chat/completions"

func TestDecide(t *testing.T) {
	c := newCache(t, func(cfg *config.Cache) {
		cfg.Models = map[string]config.CacheModel{"sampled": {CacheSampled: true}, "off": {Disabled: true}}
	})
	base := `{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}`
	p := c.Decide(chatRoute, "m", []byte(base), "", cache.Owner{})
	if !p.Cacheable() || !p.Read || !p.Write || p.TTL != 10*time.Minute {
		t.Fatalf("temperature 0 should be cacheable: %+v", p)
	}
	same := []string{
		`{"messages":[{"content":"hi","role":"user"}],"temperature":0.0,"model":"alias","stream":true,"stream_options":{"include_usage":true},"user":"u1"}`,
		"{\n \"temperature\": 0, \"messages\": [ {\"role\":\"user\", \"content\":\"hi\"} ] }",
	}
	for _, s := range same {
		if q := c.Decide(chatRoute, "m", []byte(s), "", cache.Owner{}); q.Key != p.Key {
			t.Errorf("equivalent request got another key: %s", s)
		}
	}
	different := []struct{ route, model, body string }{
		{chatRoute, "m", `{"temperature":0,"messages":[{"role":"user","content":"hi!"}]}`},
		{chatRoute, "m", `{"temperature":0,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`},
		{chatRoute, "other", base},
		{"/v1/completions", "m", base},
	}
	for _, d := range different {
		if q := c.Decide(d.route, d.model, []byte(d.body), "", cache.Owner{}); q.Key == p.Key || q.Key == "" {
			t.Errorf("different request %v got key %q", d, q.Key)
		}
	}
	notCacheable := []struct{ model, body, cc string }{
		{"m", `{"temperature":0.7,"messages":[]}`, ""},
		{"m", `{"messages":[]}`, ""}, // no temperature means 1
		{"m", base, "no-store"},
		{"off", base, ""},
		{"m", `not json`, ""},
	}
	for _, n := range notCacheable {
		if q := c.Decide(chatRoute, n.model, []byte(n.body), n.cc, cache.Owner{}); q.Cacheable() {
			t.Errorf("%v should not be cacheable: %+v", n, q)
		}
	}
	if q := c.Decide(chatRoute, "sampled", []byte(`{"temperature":1,"messages":[]}`), "", cache.Owner{}); !q.Cacheable() {
		t.Error("cache_sampled model should cache sampled requests")
	}
	if q := c.Decide(chatRoute, "m", []byte(base), "No-Cache", cache.Owner{}); !q.Cacheable() || q.Read || !q.Write {
		t.Errorf("no-cache must skip the read and still store: %+v", q)
	}
	if q := c.Decide("/v1/embeddings", "m", []byte(`{"input":"x"}`), "", cache.Owner{}); !q.Cacheable() {
		t.Error("embeddings are deterministic and always cacheable")
	}
	var nilCache *cache.Cache
	if nilCache.Decide(chatRoute, "m", []byte(base), "", cache.Owner{}).Cacheable() {
		t.Error("a nil cache caches nothing")
	}
}

func TestGetSetTTL(t *testing.T) {
	c := newCache(t, nil)
	ctx := context.Background()
	if _, ok := c.Get(ctx, "k"); ok {
		t.Fatal("hit on an empty cache")
	}
	c.Set(ctx, "k", &cache.Entry{Body: []byte(`{"a":1}`), TTL: 80 * time.Millisecond})
	if e, ok := c.Get(ctx, "k"); !ok || string(e.Body) != `{"a":1}` {
		t.Fatal("miss after set")
	}
	time.Sleep(200 * time.Millisecond)
	if _, ok := c.Get(ctx, "k"); ok {
		t.Error("entry outlived its TTL")
	}
	st := c.Stats()
	if st.Hits != 1 || st.Misses != 2 || st.Stores != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestByteBound(t *testing.T) {
	c := newCache(t, func(cfg *config.Cache) { cfg.MaxBytes = 64 << 10; cfg.MaxEntryBytes = 8 << 10 })
	ctx := context.Background()
	body := []byte(strings.Repeat("x", 4<<10))
	for i := range 200 {
		c.Set(ctx, fmt.Sprint("k", i), &cache.Entry{Body: body, TTL: time.Minute})
	}
	c.CleanUp()
	c.Set(ctx, "huge", &cache.Entry{Body: make([]byte, 16<<10), TTL: time.Minute})
	if _, ok := c.Get(ctx, "huge"); ok {
		t.Error("an entry over max_entry_bytes was stored")
	}
	kept := 0
	for i := range 200 {
		if _, ok := c.Get(ctx, fmt.Sprint("k", i)); ok {
			kept++
		}
	}
	// 64 KiB holds at most 15 entries of 4 KiB plus overhead.
	if kept == 0 || kept > 16 {
		t.Errorf("%d entries of 4 KiB kept under a 64 KiB bound", kept)
	}
}

func TestCoalescing(t *testing.T) {
	c := newCache(t, nil)
	var leaders, upstream atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]string, 100)
	for i := range 100 {
		wg.Go(func() {
			leader, finish, e, err := c.Join(context.Background(), "key")
			if leader {
				leaders.Add(1)
				<-release // hold the call open until every goroutine has joined
				upstream.Add(1)
				e = &cache.Entry{Body: []byte("answer"), TTL: time.Minute}
				finish(e, nil)
			} else if err != nil {
				t.Error(err)
				return
			}
			results[i] = string(e.Body)
		})
	}
	// Wait until the 99 followers are parked (the coalesced count moves only after release, so
	// poll the inflight state indirectly by giving the scheduler time).
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	if leaders.Load() != 1 || upstream.Load() != 1 {
		t.Fatalf("%d leaders, %d upstream calls; want 1 and 1", leaders.Load(), upstream.Load())
	}
	for i, r := range results {
		if r != "answer" {
			t.Fatalf("request %d got %q", i, r)
		}
	}
	if got := c.Stats().Coalesced; got != 99 {
		t.Errorf("coalesced %d, want 99", got)
	}
	// A failed leader releases its followers with the error and the key is free again.
	leader, finish, _, _ := c.Join(context.Background(), "k2")
	if !leader {
		t.Fatal("want leader")
	}
	done := make(chan error)
	go func() { _, _, _, err := c.Join(context.Background(), "k2"); done <- err }()
	time.Sleep(20 * time.Millisecond)
	finish(nil, nil)
	if err := <-done; err != cache.ErrNotCached {
		t.Errorf("follower of an uncacheable answer got %v", err)
	}
	if leader, _, _, _ := c.Join(context.Background(), "k2"); !leader {
		t.Error("key still held after finish")
	}
}

// TestAssembleReplay checks that a stream from the mock upstream assembles into the document
// its non-streamed answer has, and that replaying the document yields an equivalent stream.
func TestAssembleReplay(t *testing.T) {
	up := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 9}))
	defer up.Close()
	fetch := func(path, body string) []byte {
		resp, err := http.Post(up.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	for _, tc := range []struct {
		chat       bool
		path, body string
	}{
		{true, "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"tell me"}]%s}`},
		{false, "/v1/completions", `{"model":"m","prompt":"tell me"%s}`},
	} {
		plain := fetch(tc.path, fmt.Sprintf(tc.body, ""))
		stream := fetch(tc.path, fmt.Sprintf(tc.body, `,"stream":true,"stream_options":{"include_usage":true}`))
		doc, ok := cache.Assemble(tc.chat, stream)
		if !ok {
			t.Fatalf("could not assemble %s", stream)
		}
		var want, got map[string]any
		_ = json.Unmarshal(plain, &want)
		_ = json.Unmarshal(doc, &got)
		for _, m := range []map[string]any{want, got} {
			delete(m, "id")
			delete(m, "created")
			for _, ch := range m["choices"].([]any) {
				delete(ch.(map[string]any), "logprobs")
			}
		}
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got)
		if string(wj) != string(gj) {
			t.Errorf("assembled document differs\n got %s\nwant %s", gj, wj)
		}
		replay, ok := cache.Replay(tc.chat, doc, true)
		if !ok {
			t.Fatal("replay failed")
		}
		again, ok := cache.Assemble(tc.chat, replay)
		if !ok || string(again) != string(doc) {
			t.Errorf("replay does not assemble back\n got %s\nwant %s", again, doc)
		}
		if !strings.HasSuffix(string(replay), "data: [DONE]\n\n") || !strings.Contains(string(replay), `"usage"`) {
			t.Errorf("replay: %s", replay)
		}
		noUsage, _ := cache.Replay(tc.chat, doc, false)
		if strings.Contains(string(noUsage), `"usage"`) {
			t.Error("usage chunk without include_usage")
		}
	}
	// Streams that cannot be represented are refused.
	for _, bad := range []string{
		"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n", // no [DONE]
		"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"c\"}]}}]}\n\ndata: [DONE]\n\n",
		"data: {\"error\":{\"message\":\"boom\"}}\n\ndata: [DONE]\n\n",
	} {
		if _, ok := cache.Assemble(true, []byte(bad)); ok {
			t.Errorf("assembled an unrepresentable stream %q", bad)
		}
	}
}

func TestRedisSecondTier(t *testing.T) {
	addr := testenv.RedisAddr(t)
	prefix := fmt.Sprintf("autoglm:test:%d:", time.Now().UnixNano())
	mk := func() *cache.Cache {
		return newCache(t, func(cfg *config.Cache) { cfg.Redis = config.CacheRedis{Addr: addr, Prefix: prefix} })
	}
	a, b := mk(), mk() // two replicas
	ctx := context.Background()
	a.Set(ctx, "shared", &cache.Entry{Body: []byte(`{"x":1}`), TTL: time.Minute})
	e, ok := b.Get(ctx, "shared")
	if !ok || string(e.Body) != `{"x":1}` {
		t.Fatal("replica b did not find replica a's entry in Redis")
	}
	if st := b.Stats(); st.L2Hits != 1 || st.L2Errors != 0 {
		t.Errorf("stats %+v", st)
	}
	if e.TTL <= 50*time.Second || e.TTL > time.Minute {
		t.Errorf("promoted entry TTL %v, want the remaining Redis TTL", e.TTL)
	}
	// Now in b's L1: a second Get does not touch Redis.
	if _, ok := b.Get(ctx, "shared"); !ok || b.Stats().L2Hits != 1 {
		t.Error("entry was not promoted to L1")
	}
	a.Set(ctx, "short", &cache.Entry{Body: []byte(`1`), TTL: 100 * time.Millisecond})
	time.Sleep(300 * time.Millisecond)
	if _, ok := b.Get(ctx, "short"); ok {
		t.Error("Redis entry outlived its TTL")
	}
}

// TestDecideScope: an entry is shared only within the caller's scope.
func TestDecideScope(t *testing.T) {
	body := []byte(`{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}`)
	alice1 := cache.Owner{UserID: "alice", KeyID: "key-a1"}
	alice2 := cache.Owner{UserID: "alice", KeyID: "key-a2"}
	aliceJWT := cache.Owner{UserID: "alice"}
	bob := cache.Owner{UserID: "bob", KeyID: "key-b"}
	loneKey := cache.Owner{KeyID: "key-x"}
	otherLoneKey := cache.Owner{KeyID: "key-y"}
	userNamedLikeKey := cache.Owner{UserID: "key-x"}
	anon := cache.Owner{}
	type pair struct {
		a, b cache.Owner
		same bool
	}
	for scope, pairs := range map[string][]pair{
		"user": {
			{alice1, alice2, true}, {alice1, aliceJWT, true}, {alice1, bob, false}, {alice1, anon, false},
			{loneKey, otherLoneKey, false}, {loneKey, userNamedLikeKey, false}, {anon, anon, true},
		},
		"key": {
			{alice1, alice2, false}, {alice1, aliceJWT, false}, {aliceJWT, aliceJWT, true}, {alice1, alice1, true},
			{alice1, bob, false}, {loneKey, userNamedLikeKey, false}, {alice1, anon, false},
		},
		"global": {{alice1, bob, true}, {alice1, anon, true}, {loneKey, otherLoneKey, true}},
	} {
		c := newCache(t, func(cfg *config.Cache) { cfg.Scope = scope })
		for _, p := range pairs {
			ka := c.Decide(chatRoute, "m", body, "", p.a).Key
			kb := c.Decide(chatRoute, "m", body, "", p.b).Key
			if ka == "" || (ka == kb) != p.same {
				t.Errorf("scope %s: %+v and %+v share the entry: %v, want %v", scope, p.a, p.b, ka == kb, p.same)
			}
		}
	}
	// The default is per user.
	c := newCache(t, nil)
	if c.Decide(chatRoute, "m", body, "", alice1).Key == c.Decide(chatRoute, "m", body, "", bob).Key {
		t.Error("the default scope shares entries between users")
	}
}
