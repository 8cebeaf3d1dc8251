package usage_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/store"
	_ "github.com/open-autoglm/autoglm/internal/store/sqlite"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/usage"
)

// TestRecorder: one Record writes the usage record, hands the outcome to the observer, and
// charges it to the context's principal and trace id unless the outcome names its own.
func TestRecorder(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, config.Store{Driver: "sqlite"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := store.NewBatcher(st, store.BatcherOptions{})
	var seen []usage.Outcome
	rec := usage.NewRecorder(b, func(_ context.Context, o usage.Outcome) { seen = append(seen, o) })

	reqCtx := auth.NewContext(telemetry.WithTraceID(ctx, "trace-1"), &auth.Principal{KeyID: "key_a", UserID: "user_a"})
	rec.Record(reqCtx, usage.Outcome{Model: "m", Backend: "m#0", Status: http.StatusOK, Latency: time.Millisecond,
		Usage: usage.Tokens{PromptTokens: 3, CompletionTokens: 4}})
	// A task run names its own submitter and trace (the task id).
	rec.Record(ctx, usage.Outcome{Model: "m", Backend: "m#0", Status: http.StatusOK, KeyID: "key_b", TraceID: "task_1",
		Usage: usage.Tokens{PromptTokens: 5, CompletionTokens: 6, Estimated: true}})
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := st.ListUsage(ctx, store.UsageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Key, User, Trace, Model string
		Prompt, Completion      int64
	}
	var got []row
	for _, r := range page.Items {
		got = append(got, row{r.KeyID, r.UserID, r.TraceID, r.Model, r.PromptTokens, r.CompletionTokens})
	}
	want := []row{{"key_a", "user_a", "trace-1", "m", 3, 4}, {"key_b", "", "task_1", "m", 5, 6}}
	sortRows := cmpopts.SortSlices(func(a, b row) bool { return a.Trace < b.Trace })
	if diff := cmp.Diff(want, got, sortRows); diff != "" {
		t.Errorf("usage records (-want +got):\n%s", diff)
	}
	if len(seen) != 2 || seen[0].KeyID != "key_a" || seen[0].TraceID != "trace-1" || !seen[1].Usage.Estimated || seen[1].Usage.Total() != 11 {
		t.Errorf("observed %+v", seen)
	}
}

func TestEstimate(t *testing.T) {
	var c usage.Counter
	got := c.Estimate([]byte(`{"model":"m","messages":[{"role":"user","content":"Hello there"}]}`), "The quick brown fox jumps over the lazy dog.", 99)
	// cl100k_base: "Hello there\n" is 3 tokens, the answer 10.
	if want := (usage.Tokens{PromptTokens: 3, CompletionTokens: 10, Estimated: true}); got != want {
		t.Errorf("Estimate = %+v, want %+v", got, want)
	}
	if got := usage.RequestText([]byte(`{"prompt":["a","b"],"input":"c"}`)); got != "abc" {
		t.Errorf("RequestText = %q", got)
	}
}
