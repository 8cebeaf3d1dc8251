package respstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/respstore"
	"github.com/open-autoglm/autoglm/internal/store"
	_ "github.com/open-autoglm/autoglm/internal/store/postgres"
	_ "github.com/open-autoglm/autoglm/internal/store/sqlite"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

func TestSQLite(t *testing.T) {
	dir := t.TempDir()
	cfg := storeConfig(t, "store:\n  driver: sqlite\n  path: resp.db\n")
	run(t, func() store.Store {
		st, err := store.Open(context.Background(), cfg, dir)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func TestPostgres(t *testing.T) {
	ctx := context.Background()
	cfg := storeConfig(t, "store:\n  driver: postgres\n  dsn: '"+testenv.PostgresSchemaDSN(t, "resptest")+"'\n")
	run(t, func() store.Store {
		st, err := store.Open(ctx, cfg, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

// storeConfig is the store section of a configuration, defaults filled in.
func storeConfig(t *testing.T, yaml string) config.Store {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Store
}

// run checks a store through open: responses survive reopening the database, are seen only
// by their owner, and delete once.
func run(t *testing.T, open func() store.Store) {
	ctx := context.Background()
	st := open()
	rs, err := respstore.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	r := &openai.StoredResponse{ID: "resp_1", Owner: "user:a", Model: "m", Created: time.Now(),
		Response: []byte(`{"id":"resp_1"}`), Input: []byte(`[]`), Context: []byte(`[{"role":"user","content":"hi"}]`),
		Items: map[string]json.RawMessage{"msg_1": json.RawMessage(`{"id":"msg_1","type":"message"}`)}}
	if err := rs.PutResponse(ctx, r); err != nil {
		t.Fatal(err)
	}
	// Another owner cannot overwrite it.
	if err := rs.PutResponse(ctx, &openai.StoredResponse{ID: "resp_1", Owner: "user:b", Response: []byte(`{}`), Input: []byte(`[]`), Context: []byte(`[]`)}); err != nil {
		t.Fatal(err)
	}
	rs.Close()
	st.Close()

	st = open()
	defer st.Close()
	rs, err = respstore.Open(ctx, st) // migrations are not applied twice
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	got, err := rs.GetResponse(ctx, "user:a", "resp_1")
	if err != nil || string(got.Response) != `{"id":"resp_1"}` || string(got.Context) != string(r.Context) || got.Model != "m" {
		t.Fatalf("after reopening: %+v %v", got, err)
	}
	if _, err := rs.GetResponse(ctx, "user:b", "resp_1"); apierr.KindOf(err) != apierr.NotFound {
		t.Errorf("another owner reads it: %v", err)
	}
	if items, err := rs.GetItems(ctx, "user:a", []string{"msg_1", "msg_2"}); err != nil || len(items) != 1 || string(items["msg_1"]) != `{"id":"msg_1","type":"message"}` {
		t.Errorf("items: %v %v", items, err)
	}
	if items, err := rs.GetItems(ctx, "user:b", []string{"msg_1"}); err != nil || len(items) != 0 {
		t.Errorf("another owner's items: %v %v", items, err)
	}
	if err := rs.DeleteResponse(ctx, "user:b", "resp_1"); apierr.KindOf(err) != apierr.NotFound {
		t.Errorf("another owner deletes it: %v", err)
	}
	if err := rs.DeleteResponse(ctx, "user:a", "resp_1"); err != nil {
		t.Fatal(err)
	}
	if err := rs.DeleteResponse(ctx, "user:a", "resp_1"); apierr.KindOf(err) != apierr.NotFound {
		t.Errorf("second delete: %v", err)
	}
	if _, err := rs.GetResponse(ctx, "user:a", "resp_1"); apierr.KindOf(err) != apierr.NotFound {
		t.Errorf("deleted response still there: %v", err)
	}
	if items, _ := rs.GetItems(ctx, "user:a", []string{"msg_1"}); len(items) != 0 {
		t.Errorf("deleted response's items still there: %v", items)
	}
}
