package faults_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/open-autoglm/autoglm/api"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory, unmounted when the test ends.
// Mounting needs root (and, in a container, the capability); where it is not permitted the
// test is skipped, and under CI=true any other failure fails it.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "autoglm-faults-full-")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0755", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		_ = os.Remove(dir)
		// Not permitted (not root, or a container without the capability) is a reason to
		// skip even in CI; any other failure as root is not.
		low := strings.ToLower(string(out))
		denied := os.Geteuid() != 0 || strings.Contains(low, "permission denied") || strings.Contains(low, "not permitted")
		if os.Getenv("CI") == "true" && !denied {
			t.Fatalf("mount tmpfs as root: %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here (%v %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
			return
		}
		_ = os.Remove(dir)
	})
	return dir
}

// fill writes a file until the file system is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	// The last partial block too.
	for {
		if _, err := f.Write(buf[:512]); err != nil {
			break
		}
	}
	return path
}

// TestSQLiteDiskFull runs a gateway whose SQLite database is on a small tmpfs, fills the
// disk under it, and checks: requests that only read keep working; writes that must
// succeed (a new key, a task) fail with a clear error; usage records that cannot be written
// are counted in /metrics and logged, never lost silently; once space returns everything
// works again; the database passes PRAGMA integrity_check and holds every record /metrics
// counted as written.
func TestSQLiteDiskFull(t *testing.T) {
	dir := mountTmpfs(t, 32<<20)
	mock := mockllm(t, "mockllm")
	g := serve(t, "gateway", fmt.Sprintf(`server:
  shutdown_timeout: 5s
store:
  batch: {interval: 100ms}
models:
  - name: mock
    backends: [{type: openai, base_url: "%s/v1"}]
    health: {probe: none}
`, mock.URL), filepath.Join(dir, "data"), "AUTOGLM_ADMIN_KEY="+adminKey)
	admin := api.NewClient(g.URL, client).WithAPIKey(adminKey)
	k, err := admin.CreateKey(context.Background(), &api.CreateKeyRequest{Name: "before"})
	if err != nil {
		t.Fatal(err)
	}
	var chats atomic.Int64
	chat := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		var next atomic.Int64
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					chats.Add(1)
					if a := do(t, "POST", g.URL+"/v1/chat/completions", k.Secret, chatBody); a.status != http.StatusOK {
						t.Errorf("chat: %d %s", a.status, a.body)
					}
				}
			}()
		}
		wg.Wait()
	}
	records := func(state string) float64 { return g.metric(t, "autoglm_usage_records_total", `state="`+state+`"`) }
	settled := func() {
		t.Helper()
		// Every record accepted is written or given up (after its retries).
		eventually(t, 60*time.Second, "usage records settled", func() bool {
			return records("queued") == records("written")+records("failed")
		})
	}
	chat(20)
	settled()

	filler := fill(t, dir)
	t.Log("disk full")
	// Enough records to need new pages whatever space SQLite's write-ahead log had left.
	chat(600)
	// A write the caller waits for fails with a clear error in the documented shape.
	_, err = admin.CreateKey(context.Background(), &api.CreateKeyRequest{Name: "during"})
	var apiErr *api.StatusError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable || apiErr.RetryAfter == 0 {
		t.Errorf("creating a key on a full disk: %v; want 503 with Retry-After", err)
	} else {
		t.Logf("creating a key on a full disk: %d %s %s", apiErr.StatusCode, apiErr.Code, apiErr.Message)
	}
	a := do(t, "POST", g.URL+"/v1/generate/code", k.Secret, `{"model":"mock","prompt":"p","language":"go"}`)
	t.Logf("submitting a task on a full disk: %d %s", a.status, a.body)
	if a.status != http.StatusServiceUnavailable {
		t.Errorf("submitting a task on a full disk: %d %s; want 503", a.status, a.body)
	}
	// Reads keep working: the key list.
	if _, err := admin.ListKeys(context.Background(), api.ListKeysOptions{}); err != nil {
		t.Errorf("listing keys on a full disk: %v", err)
	}
	settled()
	lost := records("failed") + records("dropped")
	t.Logf("records on the full disk: written %.0f, failed %.0f, dropped %.0f", records("written"), records("failed"), records("dropped"))
	if lost == 0 {
		t.Errorf("no usage record was counted as failed or dropped while the disk was full")
	}
	if !g.logged("giving up a batch") && !g.logged("dropping records") {
		t.Errorf("the lost records were not logged")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	t.Log("space back")
	written := records("written")
	chat(20)
	eventually(t, 60*time.Second, "usage written again", func() bool { return records("written") >= written+20 })
	if _, err := admin.CreateKey(context.Background(), &api.CreateKeyRequest{Name: "after"}); err != nil {
		t.Errorf("creating a key once space is back: %v", err)
	}
	if a := do(t, "POST", g.URL+"/v1/generate/code", k.Secret, `{"model":"mock","prompt":"p","language":"go"}`); a.status != http.StatusAccepted {
		t.Errorf("submitting a task once space is back: %d %s", a.status, a.body)
	}
	settled()
	written, lost = records("written"), records("failed")+records("dropped")
	g.stop(t)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "data", "autoglm.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("PRAGMA integrity_check: %q %v", check, err)
	}
	var usage, audit int
	if err := db.QueryRow("SELECT (SELECT count(*) FROM usage_records), (SELECT count(*) FROM audit_records)").Scan(&usage, &audit); err != nil {
		t.Fatal(err)
	}
	t.Logf("database: %d usage and %d audit records; /metrics: %.0f written, %.0f lost; %d chat requests", usage, audit, written, lost, chats.Load())
	if float64(usage+audit) < written {
		t.Errorf("the database holds %d records, /metrics counted %.0f written", usage+audit, written)
	}
	if float64(usage)+lost < float64(chats.Load()) {
		t.Errorf("%d chat requests, but %d usage records stored and %.0f counted lost: some were lost silently", chats.Load(), usage, lost)
	}
}
