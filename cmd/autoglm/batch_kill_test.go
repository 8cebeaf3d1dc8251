package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/store/sqlite"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

// mainEnv makes the test binary run as autoglm itself (main), so that the tests below can
// start real `autoglm serve` processes and kill them.
const mainEnv = "AUTOGLM_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveProc is a running `autoglm serve`, with its log.
type serveProc struct {
	cmd  *exec.Cmd
	URL  string
	logs *testenv.LogBuffer
	done chan struct{}
}

func startServe(t *testing.T, cfgPath, dataDir string) *serveProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--config", cfgPath, "--addr", "127.0.0.1:0", "--data-dir", dataDir)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, logs: &testenv.LogBuffer{}, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			_, _ = p.logs.Write(append(sc.Bytes(), '\n'))
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && strings.Contains(rec.Msg, "listening on") && rec.Addr != "" {
				select {
				case addr <- rec.Addr:
				default:
				}
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("serve log:\n%s", p.logs.String())
		}
	})
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-p.done:
		t.Fatalf("autoglm serve exited before listening:\n%s", p.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatal("autoglm serve did not listen within 60s")
	}
	return p
}

// TestBatchSurvivesSIGKILL: `autoglm serve` killed with SIGKILL in the middle of a batch
// loses nothing. After a restart on the same data directory the batch completes; every line
// is in the output exactly once, and no line answered before the kill is sent upstream again.
func TestBatchSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts autoglm serve processes")
	}
	var mu sync.Mutex
	phase := 1
	requested := map[int]map[string]int{1: {}, 2: {}}
	mock := mockllm.New(mockllm.Options{Tokens: 2, TTFT: 40 * time.Millisecond})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req struct{ Messages []struct{ Content string } }
		if json.Unmarshal(b, &req) == nil && len(req.Messages) > 0 {
			mu.Lock()
			requested[phase][req.Messages[0].Content]++
			mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		mock.ServeHTTP(w, r)
	}))
	defer up.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "autoglm.yaml")
	cfg := fmt.Sprintf("models:\n  - name: glm-4-flash\n    backends:\n      - type: openai\n        base_url: %s/v1\n        model: m\nbatch:\n  concurrency: 2\n", up.URL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	const n = 40
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, `{"custom_id":"r%d","method":"POST","url":"/v1/chat/completions","body":{"model":"glm-4-flash","messages":[{"role":"user","content":"line r%d"}]}}`+"\n", i, i)
	}

	p := startServe(t, cfgPath, data)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("purpose", "batch")
	fw, _ := mw.CreateFormFile("file", "in.jsonl")
	_, _ = io.WriteString(fw, in.String())
	_ = mw.Close()
	var file struct{ ID string }
	call(t, "POST", p.URL+"/v1/files", mw.FormDataContentType(), buf.Bytes(), &file)
	var b struct {
		ID, Status    string
		OutputFileID  *string                                `json:"output_file_id"`
		RequestCounts struct{ Total, Completed, Failed int } `json:"request_counts"`
	}
	call(t, "POST", p.URL+"/v1/batches", "application/json",
		[]byte(`{"input_file_id":"`+file.ID+`","endpoint":"/v1/chat/completions","completion_window":"24h"}`), &b)
	for deadline := time.Now().Add(60 * time.Second); b.RequestCounts.Completed < 6; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("batch made no progress: %+v", b)
		}
		call(t, "GET", p.URL+"/v1/batches/"+b.ID, "", nil, &b)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if b.Status != "in_progress" {
		t.Fatalf("the batch ended before the kill (%s); the test needs slower lines", b.Status)
	}

	// What the killed process had committed.
	st, err := sqlite.Open(context.Background(), filepath.Join(data, "autoglm.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	answered := map[string]bool{}
	rows, err := st.ReadDB().Query(`SELECT custom_id FROM batch_lines WHERE batch_id = ? AND done = 1`, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		answered[id] = true
	}
	rows.Close()
	st.Close()
	if len(answered) == 0 || len(answered) == n {
		t.Fatalf("%d lines answered at the kill; want some but not all", len(answered))
	}

	mu.Lock()
	phase = 2
	mu.Unlock()
	p = startServe(t, cfgPath, data)
	for deadline := time.Now().Add(60 * time.Second); b.Status != "completed"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("batch not completed after the restart: %+v", b)
		}
		call(t, "GET", p.URL+"/v1/batches/"+b.ID, "", nil, &b)
	}
	if b.RequestCounts.Total != n || b.RequestCounts.Completed != n || b.RequestCounts.Failed != 0 || b.OutputFileID == nil {
		t.Fatalf("completed batch: %+v", b)
	}
	resp, err := http.Get(p.URL + "/v1/files/" + *b.OutputFileID + "/content")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r struct {
			CustomID string `json:"custom_id"`
			Response struct {
				StatusCode int `json:"status_code"`
			} `json:"response"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Response.StatusCode != 200 {
			t.Errorf("output line %q", l)
		}
		seen[r.CustomID]++
	}
	for i := range n {
		if id := fmt.Sprint("r", i); seen[id] != 1 {
			t.Errorf("%s is in the output %d times", id, seen[id])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range answered {
		if requested[2]["line "+id] != 0 {
			t.Errorf("%s was answered before the kill and sent upstream again after the restart", id)
		}
	}
	for i := range n {
		id := fmt.Sprint("r", i)
		if !answered[id] && requested[2]["line "+id] == 0 {
			t.Errorf("%s was not answered before the kill and not run after the restart", id)
		}
	}
	t.Logf("%d of %d lines answered before the kill; %d sent upstream after the restart", len(answered), n, len(requested[2]))
}

func call(t *testing.T, method, url, contentType string, body []byte, into any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("%s %s: %s", method, url, b)
	}
}
