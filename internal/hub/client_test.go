package hub_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/engine/synth"
	"github.com/open-autoglm/autoglm/internal/hub"
)

// fakeHub serves files in the hub's layout and lets a test break the transfers.
type fakeHub struct {
	*httptest.Server
	repo  string
	files map[string][]byte // path → content
	// sha overrides the SHA-256 the file list states for a path.
	sha map[string]string
	// noTree answers 404 on the tree API (an older mirror).
	noTree bool
	// token, when set, is required as a bearer token.
	token string

	mu sync.Mutex
	// cutAfter, when > 0, ends the next body of a file after that many bytes (once).
	cutAfter int
	// corrupt flips a byte of every body served from offset > 0 (a mirror serving other
	// bytes on resume).
	corrupt bool
	// ignoreRange answers 200 with the whole file to Range requests.
	ignoreRange bool
	ranges      []string // Range headers seen on file requests
	auths       []string // Authorization headers seen
}

func newFakeHub(t *testing.T, repo string, files map[string][]byte) *fakeHub {
	h := &fakeHub{repo: repo, files: files, sha: map[string]string{}}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	return h
}

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.auths = append(h.auths, r.Header.Get("Authorization"))
	h.mu.Unlock()
	if h.token != "" && r.Header.Get("Authorization") != "Bearer "+h.token {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/api/models/"+h.repo+"/tree/main":
		if h.noTree {
			http.NotFound(w, r)
			return
		}
		var out []map[string]any
		for name, b := range h.files {
			e := map[string]any{"type": "file", "path": name, "size": len(b), "oid": gitOID(b)}
			if strings.HasSuffix(name, ".gguf") {
				e["lfs"] = map[string]any{"oid": h.sum(name), "size": len(b), "pointerSize": 130}
			}
			out = append(out, e)
		}
		out = append(out, map[string]any{"type": "directory", "path": "sub", "oid": "x", "size": 0})
		_ = json.NewEncoder(w).Encode(out)
	case p == "/api/models/"+h.repo:
		var sibs []map[string]any
		for name, b := range h.files {
			sibs = append(sibs, map[string]any{"rfilename": name, "size": len(b), "lfs": map[string]any{"sha256": h.sum(name), "size": len(b)}})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": h.repo, "siblings": sibs})
	case strings.HasPrefix(p, "/"+h.repo+"/resolve/main/"):
		name := strings.TrimPrefix(p, "/"+h.repo+"/resolve/main/")
		b, ok := h.files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.mu.Lock()
		h.ranges = append(h.ranges, r.Header.Get("Range"))
		cut, corrupt, ignore := h.cutAfter, h.corrupt, h.ignoreRange
		h.cutAfter = 0
		h.mu.Unlock()
		start := 0
		if rg := r.Header.Get("Range"); rg != "" && !ignore {
			fmt.Sscanf(rg, "bytes=%d-", &start)
			if start >= len(b) {
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				return
			}
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(b)-1, len(b)))
			w.Header().Set("Content-Length", fmt.Sprint(len(b)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		}
		body := append([]byte(nil), b[start:]...)
		if corrupt && start > 0 {
			body[0] ^= 0xff
		}
		if cut > 0 && cut < len(body) {
			_, _ = w.Write(body[:cut])
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
			// Abort the connection mid-body, like a network failure.
			panic(http.ErrAbortHandler)
		}
		_, _ = w.Write(body)
	default:
		http.NotFound(w, r)
	}
}

func (h *fakeHub) sum(name string) string {
	if s, ok := h.sha[name]; ok {
		return s
	}
	s := sha256.Sum256(h.files[name])
	return hex.EncodeToString(s[:])
}

func gitOID(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func synthFile(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := synth.Write(&buf, synth.Spec{Arch: "qwen2", Dim: 32, Layers: 2, Heads: 4, KVHeads: 2, FFN: 64, Vocab: 400, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fileOf(t *testing.T, c *hub.Client, name string) hub.File {
	t.Helper()
	files, err := c.Files(context.Background(), "acme/tiny-GGUF", "main")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == name {
			return f
		}
	}
	t.Fatalf("%s not listed in %v", name, files)
	return hub.File{}
}

func TestFilesListsWithChecksums(t *testing.T) {
	model := synthFile(t)
	h := newFakeHub(t, "acme/tiny-GGUF", map[string][]byte{"tiny-Q8_0.gguf": model, "README.md": []byte("# tiny\n")})
	for _, noTree := range []bool{false, true} {
		h.noTree = noTree
		c := &hub.Client{Endpoint: h.URL}
		files, err := c.Files(context.Background(), "acme/tiny-GGUF", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 2 {
			t.Fatalf("noTree=%v: %d files (%v), want 2 (directories left out)", noTree, len(files), files)
		}
		f := fileOf(t, c, "tiny-Q8_0.gguf")
		s := sha256.Sum256(model)
		if f.SHA256 != hex.EncodeToString(s[:]) || f.Size != int64(len(model)) {
			t.Errorf("noTree=%v: %+v: wrong size or sha256", noTree, f)
		}
	}
}

func TestDownloadVerifies(t *testing.T) {
	model := synthFile(t)
	h := newFakeHub(t, "acme/tiny-GGUF", map[string][]byte{"tiny-Q8_0.gguf": model, "README.md": []byte("# tiny\n")})
	c := &hub.Client{Endpoint: h.URL, Backoff: time.Millisecond}
	dir := t.TempDir()
	for _, name := range []string{"tiny-Q8_0.gguf", "README.md"} { // LFS sha256; Git blob id
		dst := filepath.Join(dir, name)
		var last int64
		err := c.Download(context.Background(), "acme/tiny-GGUF", "main", fileOf(t, c, name), dst, func(done, total int64) { last = done })
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dst)
		if !bytes.Equal(got, h.files[name]) {
			t.Fatalf("%s: content differs", name)
		}
		if last != int64(len(got)) {
			t.Errorf("%s: progress ended at %d of %d", name, last, len(got))
		}
		if _, err := os.Stat(dst + hub.PartialSuffix); !os.IsNotExist(err) {
			t.Errorf("%s: partial file left behind", name)
		}
	}
}

func TestDownloadResumesAfterInterruption(t *testing.T) {
	model := synthFile(t)
	h := newFakeHub(t, "acme/tiny-GGUF", map[string][]byte{"tiny-Q8_0.gguf": model})
	c := &hub.Client{Endpoint: h.URL, Backoff: time.Millisecond}
	f := fileOf(t, c, "tiny-Q8_0.gguf")
	dst := filepath.Join(t.TempDir(), "m.gguf")

	// In-call retry: the first body breaks after 1000 bytes; the retry asks for the rest.
	h.cutAfter = 1000
	if err := c.Download(context.Background(), "acme/tiny-GGUF", "main", f, dst, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, model) {
		t.Fatal("resumed download differs from the file")
	}
	if want := []string{"", "bytes=1000-"}; fmt.Sprint(h.ranges) != fmt.Sprint(want) {
		t.Errorf("range headers %q, want %q", h.ranges, want)
	}

	// Across calls: a run that stops (one attempt, connection cut) leaves the partial file;
	// the next run sends a Range for the rest.
	os.Remove(dst)
	h.ranges = nil
	h.cutAfter = 3000
	one := &hub.Client{Endpoint: h.URL, Attempts: 1}
	if err := one.Download(context.Background(), "acme/tiny-GGUF", "main", f, dst, nil); err == nil {
		t.Fatal("cut download reported success")
	}
	if st, err := os.Stat(dst + hub.PartialSuffix); err != nil || st.Size() != 3000 {
		t.Fatalf("partial file after the cut: %v %v, want 3000 bytes", st, err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatal("unverified file appeared at the destination")
	}
	if err := one.Download(context.Background(), "acme/tiny-GGUF", "main", f, dst, nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"", "bytes=3000-"}; fmt.Sprint(h.ranges) != fmt.Sprint(want) {
		t.Errorf("range headers %q, want %q", h.ranges, want)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, model) {
		t.Fatal("resumed download differs from the file")
	}
}

func TestDownloadServerWithoutRanges(t *testing.T) {
	model := synthFile(t)
	h := newFakeHub(t, "acme/tiny-GGUF", map[string][]byte{"tiny-Q8_0.gguf": model})
	h.ignoreRange = true
	c := &hub.Client{Endpoint: h.URL, Attempts: 1}
	f := fileOf(t, c, "tiny-Q8_0.gguf")
	dst := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(dst+hub.PartialSuffix, model[:500], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Download(context.Background(), "acme/tiny-GGUF", "main", f, dst, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, model) {
		t.Fatal("a 200 answer to a Range request was appended instead of replacing the partial file")
	}
}

func TestDownloadRefusesCorruption(t *testing.T) {
	model := synthFile(t)
	cases := []struct {
		name  string
		setup func(h *fakeHub, dst string)
	}{
		{"wrong sha256 in the file list", func(h *fakeHub, dst string) {
			h.sha["tiny-Q8_0.gguf"] = strings.Repeat("ab", 32)
		}},
		{"other bytes served on resume", func(h *fakeHub, dst string) {
			h.cutAfter, h.corrupt = 2000, true
		}},
		{"corrupted partial file on disk", func(h *fakeHub, dst string) {
			bad := append([]byte(nil), model[:4000]...)
			bad[100] ^= 1
			_ = os.WriteFile(dst+hub.PartialSuffix, bad, 0o600)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHub(t, "acme/tiny-GGUF", map[string][]byte{"tiny-Q8_0.gguf": model})
			c := &hub.Client{Endpoint: h.URL, Backoff: time.Millisecond}
			dst := filepath.Join(t.TempDir(), "m.gguf")
			tc.setup(h, dst)
			f := fileOf(t, c, "tiny-Q8_0.gguf")
			err := c.Download(context.Background(), "acme/tiny-GGUF", "main", f, dst, nil)
			if !errors.Is(err, hub.ErrChecksum) {
				t.Fatalf("err = %v, want a checksum mismatch", err)
			}
			for _, p := range []string{dst, dst + hub.PartialSuffix} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s kept after a checksum mismatch", filepath.Base(p))
				}
			}
			// The next attempt starts clean and succeeds once the hub is right again.
			delete(h.sha, "tiny-Q8_0.gguf")
			h.corrupt = false
			if err := c.Download(context.Background(), "acme/tiny-GGUF", "main", fileOf(t, c, "tiny-Q8_0.gguf"), dst, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNotFoundAndToken(t *testing.T) {
	model := synthFile(t)
	h := newFakeHub(t, "acme/tiny-GGUF", map[string][]byte{"tiny-Q8_0.gguf": model})
	c := &hub.Client{Endpoint: h.URL, Attempts: 1}
	if _, err := c.Files(context.Background(), "acme/missing", "main"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("missing repository: %v, want ErrNotFound", err)
	}
	err := c.Download(context.Background(), "acme/tiny-GGUF", "main", hub.File{Path: "nope.gguf", Size: 10}, filepath.Join(t.TempDir(), "x"), nil)
	if !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("missing file: %v, want ErrNotFound", err)
	}

	h.token = "hf_secret"
	if _, err := c.Files(context.Background(), "acme/tiny-GGUF", "main"); !errors.Is(err, hub.ErrUnauthorized) {
		t.Errorf("without the token: %v, want ErrUnauthorized", err)
	}
	h.auths = nil
	ct := &hub.Client{Endpoint: h.URL + "/", Token: "hf_secret"}
	f := fileOf(t, ct, "tiny-Q8_0.gguf")
	if err := ct.Download(context.Background(), "acme/tiny-GGUF", "main", f, filepath.Join(t.TempDir(), "m"), nil); err != nil {
		t.Fatal(err)
	}
	for _, a := range h.auths {
		if a != "Bearer hf_secret" {
			t.Errorf("request sent Authorization %q", a)
		}
	}
	if len(h.auths) != 2 {
		t.Errorf("%d requests, want 2 (list, download)", len(h.auths))
	}
}

func TestValidPath(t *testing.T) {
	for _, p := range []string{"a.gguf", "sub/a.gguf", "a b.gguf"} {
		if !hub.ValidPath(p) {
			t.Errorf("%q refused", p)
		}
	}
	for _, p := range []string{"", "/a", "../a", "a/../b", "a//b", "a\\b", "./a", "a\x00"} {
		if hub.ValidPath(p) {
			t.Errorf("%q accepted", p)
		}
	}
	for _, r := range []string{"a/b", "Qwen/Qwen2.5-0.5B-Instruct-GGUF"} {
		if !hub.ValidRepo(r) {
			t.Errorf("repo %q refused", r)
		}
	}
	for _, r := range []string{"a", "a/b/c", "../b", "a/..", "a/.b", ""} {
		if hub.ValidRepo(r) {
			t.Errorf("repo %q accepted", r)
		}
	}
}
