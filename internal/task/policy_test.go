package task

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/store/sqlite"
)

// bareService is a service without workers or registry over a fresh SQLite file, for
// testing the queue's decisions directly.
func bareService(t *testing.T, policy string) *Service {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "q.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := DBFor(st)
	if err != nil {
		t.Fatal(err)
	}
	cfg := (&config.Config{Tasks: config.Task{Policy: policy}}).WithDefaults().Tasks
	s, err := New(context.Background(), Options{Config: cfg, DB: db})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type sub struct {
	owner    string
	prompt   string
	priority int
	max      int
}

// claimOrder submits the tasks in order and returns their prompts in the order claims take
// them (claimed tasks stay running, as if their workers were busy).
func claimOrder(t *testing.T, s *Service, subs []sub) []string {
	t.Helper()
	ctx := context.Background()
	byID := map[string]string{}
	for _, x := range subs {
		tk, _, err := s.Submit(ctx, Caller{Owner: x.owner}, Submission{Spec: Spec{Kind: KindCode, Model: "m", Prompt: x.prompt, Priority: x.priority, MaxTokens: x.max}})
		if err != nil {
			t.Fatal(err)
		}
		byID[tk.ID] = x.prompt
	}
	var order []string
	for {
		c, err := s.claim(ctx, "m")
		if err != nil {
			t.Fatal(err)
		}
		if c == nil {
			return order
		}
		order = append(order, byID[c.id])
	}
}

func TestPolicies(t *testing.T) {
	one := []sub{
		{"k", "a", 0, 100}, {"k", "b", 5, 300}, {"k", "c", 5, 10}, {"k", "d", -1, 50},
	}
	for _, tc := range []struct {
		policy string
		want   string
	}{
		{config.PolicyFIFO, "abcd"},
		{config.PolicyPriority, "bcad"},
		{config.PolicyShortestFirst, "cdab"},
		{config.PolicyLoadAware, "abcd"},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			got := strings.Join(claimOrder(t, bareService(t, tc.policy), one), "")
			if got != tc.want {
				t.Errorf("order %s, want %s", got, tc.want)
			}
		})
	}
}

// TestFairness: a key that queued many tasks first does not hold back another key's tasks;
// claims alternate between keys by their running counts.
func TestFairness(t *testing.T) {
	var subs []sub
	for i := range 6 {
		subs = append(subs, sub{"key:a", "a" + string(rune('0'+i)), 0, 10})
	}
	subs = append(subs, sub{"key:b", "b0", 0, 10}, sub{"key:b", "b1", 0, 10}, sub{"key:c", "c0", 9, 10})
	got := claimOrder(t, bareService(t, config.PolicyFIFO), subs)
	want := []string{"a0", "b0", "c0", "a1", "b1", "a2", "a3", "a4", "a5"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claim order (-want +got):\n%s", diff)
	}
	// Under priority, fairness still comes first, priority orders within a key and breaks
	// ties: c0 (priority 9) goes first among keys with nothing running.
	got = claimOrder(t, bareService(t, config.PolicyPriority), subs)
	if got[0] != "c0" || !slices.Contains(got[:3], "a0") || !slices.Contains(got[:3], "b0") {
		t.Errorf("priority with fairness: %v", got)
	}
}

func TestListAndVisibility(t *testing.T) {
	s := bareService(t, config.PolicyFIFO)
	ctx := context.Background()
	alice, bob, admin := Caller{Owner: "key:alice"}, Caller{Owner: "key:bob"}, Caller{Owner: "key:root", All: true}
	var aliceIDs []string
	for i := range 5 {
		tk, _, err := s.Submit(ctx, alice, Submission{Spec: Spec{Kind: KindCode, Model: "m", Prompt: strings.Repeat("x", i+1)}})
		if err != nil {
			t.Fatal(err)
		}
		aliceIDs = append(aliceIDs, tk.ID)
	}
	bobTask, _, err := s.Submit(ctx, bob, Submission{Spec: Spec{Kind: KindChat, Model: "m", Input: []byte(`{"messages":[]}`)}})
	if err != nil {
		t.Fatal(err)
	}
	// Pages of two, newest first, through the cursor.
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		items, next, err := s.List(ctx, alice, ListParams{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range items {
			got = append(got, tk.ID)
		}
		if next == "" {
			break
		}
		cursor = next
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	want := slices.Clone(aliceIDs)
	slices.Reverse(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alice's pages (-want +got):\n%s", diff)
	}
	if _, err := s.Get(ctx, alice, bobTask.ID); err != ErrNotFound {
		t.Errorf("alice sees bob's task: %v", err)
	}
	if _, err := s.Cancel(ctx, alice, bobTask.ID); err != ErrNotFound {
		t.Errorf("alice cancels bob's task: %v", err)
	}
	if _, err := s.Get(ctx, admin, bobTask.ID); err != nil {
		t.Errorf("admin does not see bob's task: %v", err)
	}
	all, _, err := s.List(ctx, admin, ListParams{Limit: 100})
	if err != nil || len(all) != 6 {
		t.Errorf("admin lists %d tasks, %v", len(all), err)
	}
	chats, _, err := s.List(ctx, admin, ListParams{Kind: KindChat})
	if err != nil || len(chats) != 1 || chats[0].ID != bobTask.ID {
		t.Errorf("kind filter: %v %v", chats, err)
	}
	if _, _, err := s.List(ctx, admin, ListParams{Status: "weird"}); err == nil {
		t.Error("unknown status accepted")
	}
	if _, _, err := s.List(ctx, admin, ListParams{Cursor: "!!"}); err == nil {
		t.Error("malformed cursor accepted")
	}
}

func TestExtractCode(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []CodeBlock
	}{
		{"one block", "Here:\n```go\nfunc f() {}\n```\nDone.", []CodeBlock{{Language: "go", Code: "func f() {}"}}},
		{"two blocks", "```python\na = 1\n```\ntext\n~~~js\nlet b\n~~~\n", []CodeBlock{{Language: "python", Code: "a = 1"}, {Language: "javascript", Code: "let b"}}},
		{"untagged", "```\nx\n```", []CodeBlock{{Language: "rust", Code: "x"}}},
		{"unclosed", "```c\nint x;\n", []CodeBlock{{Language: "c", Code: "int x;"}}},
		{"bare code", "  print(1)\n", []CodeBlock{{Language: "rust", Code: "print(1)"}}},
		{"empty", "", nil},
		{"tag with attributes", "```ts {title=a.ts}\nconst x = 1\n```", []CodeBlock{{Language: "typescript", Code: "const x = 1"}}},
		{"inner fence text", "```md\n``` not a close\n```", []CodeBlock{{Language: "md", Code: "``` not a close"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ExtractCode(tc.text, "rust")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzExtractCode(f *testing.F) {
	for _, s := range []string{"```go\nx\n```", "~~~\n", "```a b\n```\n```", "plain", "\n```\n\n```py"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		blocks := ExtractCode(s, "go")
		total := 0
		for _, b := range blocks {
			if b.Language == "" {
				t.Fatalf("block without language in %q", s)
			}
			total += len(b.Code)
		}
		if total > len(s) {
			t.Fatalf("blocks hold more text than the input: %q", s)
		}
	})
}

func TestRetention(t *testing.T) {
	s := bareService(t, config.PolicyFIFO)
	ctx := context.Background()
	var ids []string
	for range 3 {
		tk, _, err := s.Submit(ctx, Caller{}, Submission{Spec: Spec{Kind: KindCode, Model: "m", Prompt: "x"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	for _, id := range ids[:2] {
		if _, err := s.Cancel(ctx, Caller{All: true}, id); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteFinishedBefore(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("nothing is old enough yet: deleted %d, %v", n, err)
	}
	n, err := s.DeleteFinishedBefore(ctx, time.Now().Add(time.Second))
	if err != nil || n != 2 {
		t.Fatalf("deleted %d, %v; want the 2 finished tasks", n, err)
	}
	if _, err := s.Get(ctx, Caller{All: true}, ids[0]); err != ErrNotFound {
		t.Errorf("deleted task still there: %v", err)
	}
	if evs, _ := s.Events(ctx, ids[0], 0, 10); len(evs) != 0 {
		t.Errorf("deleted task's events remain: %v", evs)
	}
	if tk, err := s.Get(ctx, Caller{All: true}, ids[2]); err != nil || tk.Status != StatusQueued {
		t.Errorf("queued task: %+v %v", tk, err)
	}
}

func TestCallerOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *auth.Principal
		want Caller
	}{
		{"auth off", nil, Caller{All: true}},
		{"api key", &auth.Principal{Method: auth.MethodAPIKey, KeyID: "k1", UserID: "u1", Role: auth.RoleUser}, Caller{Owner: "key:k1", KeyID: "k1", UserID: "u1"}},
		{"jwt user", &auth.Principal{Method: auth.MethodJWT, UserID: "u2", Role: auth.RoleUser}, Caller{Owner: "user:u2", UserID: "u2"}},
		{"admin key", &auth.Principal{Method: auth.MethodAPIKey, KeyID: "k3", Role: auth.RoleAdmin}, Caller{Owner: "key:k3", All: true, KeyID: "k3"}},
		{"bootstrap admin", &auth.Principal{Method: auth.MethodAdminKey, UserID: auth.AdminKeyUser, Role: auth.RoleAdmin}, Caller{Owner: "user:" + auth.AdminKeyUser, All: true, UserID: auth.AdminKeyUser}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/tasks", nil)
			if tc.p != nil {
				r = r.WithContext(auth.NewContext(r.Context(), tc.p))
			}
			if got := CallerOf(r); got != tc.want {
				t.Errorf("CallerOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}
