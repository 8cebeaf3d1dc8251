// Package hub speaks Hugging Face's model-hub HTTP layout, both ways: a Client lists a
// repository's files with their checksums and downloads them (resumable, verified), and
// Handler serves a local model store in the same layout, so that one node can pull from
// another exactly as it pulls from the hub or a mirror.
//
// The layout, relative to an endpoint such as https://huggingface.co:
//
//	GET {endpoint}/api/models/{owner}/{repo}/tree/{revision}   file list (LFS files carry sha256)
//	GET {endpoint}/api/models/{owner}/{repo}?blobs=true        the same list, older form
//	GET {endpoint}/{owner}/{repo}/resolve/{revision}/{file}    the file's bytes (Range supported)
package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultEndpoint is Hugging Face's hub.
const DefaultEndpoint = "https://huggingface.co"

// Errors a caller can test for with errors.Is.
var (
	// ErrNotFound: the repository, revision or file does not exist (or is hidden from the
	// token used).
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: the endpoint wants a token, or refused the one given.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrChecksum: the downloaded bytes do not match the size or checksum the file list
	// states. The bad data has been deleted.
	ErrChecksum = errors.New("checksum mismatch")
)

// File is one file of a repository.
type File struct {
	// Path is the file's path inside the repository ("model-q4_k_m.gguf").
	Path string `json:"path"`
	// Size is the file's size in bytes.
	Size int64 `json:"size"`
	// SHA256 is the hex SHA-256 of the content, stated for files kept in Git LFS (every
	// model file). Empty for small files kept in Git itself.
	SHA256 string `json:"sha256,omitempty"`
	// GitOID is the Git blob id (SHA-1 of "blob <size>\x00" + content), when stated.
	GitOID string `json:"git_oid,omitempty"`
}

// Client talks to one endpoint. The zero value talks to DefaultEndpoint anonymously.
type Client struct {
	// Endpoint is the hub's root URL, with any path prefix ("https://hf-mirror.com",
	// "http://node1:8080/hub"). Default DefaultEndpoint.
	Endpoint string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// HTTP sends the requests. Default: a client without an overall timeout (downloads are
	// long); each response must start within a minute.
	HTTP *http.Client
	// Attempts is how many times one download is tried, each retry resuming where the last
	// one stopped. Default 4.
	Attempts int
	// Backoff is the wait before the first retry, doubled for each later one. Default 1s.
	Backoff time.Duration
}

var defaultHTTP = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	ResponseHeaderTimeout: time.Minute,
	TLSHandshakeTimeout:   30 * time.Second,
	IdleConnTimeout:       90 * time.Second,
}}

func (c *Client) endpoint() string {
	if c.Endpoint == "" {
		return DefaultEndpoint
	}
	return strings.TrimRight(c.Endpoint, "/")
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

// repoRe is a repository id: owner/name of letters, digits, '-', '_' and '.'.
var repoRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$`)

// ValidRepo reports whether repo is a well-formed repository id ("owner/name").
func ValidRepo(repo string) bool {
	return repoRe.MatchString(repo) && !strings.Contains(repo, "..")
}

// ValidPath reports whether p is a safe relative file path inside a repository: no empty,
// "." or ".." segments, no backslashes or control characters.
func ValidPath(p string) bool {
	if p == "" || len(p) > 1024 || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f {
				return false
			}
		}
	}
	return true
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func (c *Client) get(ctx context.Context, u string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", "autoglm")
	return c.http().Do(req)
}

// statusError turns a non-2xx answer into an error naming what was asked for.
func statusError(resp *http.Response, what string) error {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%s: %w (HTTP 404)", what, ErrNotFound)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%s: %w (HTTP %d; set HF_TOKEN or --token if the repository is gated or private)", what, ErrUnauthorized, resp.StatusCode)
	}
	return fmt.Errorf("%s: HTTP %d", what, resp.StatusCode)
}

// treeEntry is one entry of GET /api/models/{repo}/tree/{rev}.
type treeEntry struct {
	Type string `json:"type"`
	Path string `json:"path"`
	Size int64  `json:"size"`
	OID  string `json:"oid"`
	LFS  *struct {
		OID  string `json:"oid"`
		Size int64  `json:"size"`
	} `json:"lfs"`
}

// modelInfo is the part of GET /api/models/{repo}?blobs=true that lists files.
type modelInfo struct {
	Siblings []struct {
		RFilename string `json:"rfilename"`
		Size      int64  `json:"size"`
		BlobID    string `json:"blobId"`
		LFS       *struct {
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
		} `json:"lfs"`
	} `json:"siblings"`
}

// maxListBytes bounds one page of a file list.
const maxListBytes = 32 << 20

// Files lists the files of repo at revision ("" is "main"), following pagination.
func (c *Client) Files(ctx context.Context, repo, revision string) ([]File, error) {
	if !ValidRepo(repo) {
		return nil, fmt.Errorf("invalid repository id %q (want owner/name)", repo)
	}
	if revision == "" {
		revision = "main"
	}
	u := c.endpoint() + "/api/models/" + escapePath(repo) + "/tree/" + url.PathEscape(revision) + "?recursive=true"
	var files []File
	for page := 0; u != ""; page++ {
		if page > 1000 {
			return nil, fmt.Errorf("list %s: too many pages", repo)
		}
		resp, err := c.get(ctx, u, nil)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", repo, err)
		}
		if resp.StatusCode == http.StatusNotFound && page == 0 {
			resp.Body.Close()
			return c.filesFromInfo(ctx, repo, revision)
		}
		if resp.StatusCode != http.StatusOK {
			err := statusError(resp, "list "+repo)
			resp.Body.Close()
			return nil, err
		}
		var entries []treeEntry
		err = json.NewDecoder(io.LimitReader(resp.Body, maxListBytes)).Decode(&entries)
		next := nextLink(resp.Header.Get("Link"))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("list %s: malformed file list: %w", repo, err)
		}
		for _, e := range entries {
			if e.Type != "file" || !ValidPath(e.Path) {
				continue
			}
			f := File{Path: e.Path, Size: e.Size, GitOID: e.OID}
			if e.LFS != nil {
				f.SHA256, f.Size, f.GitOID = e.LFS.OID, e.LFS.Size, ""
			}
			files = append(files, f)
		}
		u = ""
		if next != "" {
			if u, err = resolveRef(resp.Request.URL, next); err != nil {
				return nil, fmt.Errorf("list %s: bad pagination link: %w", repo, err)
			}
		}
	}
	return files, nil
}

// filesFromInfo reads the file list from the model-info document, for endpoints (older
// mirrors) without the tree API.
func (c *Client) filesFromInfo(ctx context.Context, repo, revision string) ([]File, error) {
	u := c.endpoint() + "/api/models/" + escapePath(repo)
	if revision != "main" {
		u += "/revision/" + url.PathEscape(revision)
	}
	resp, err := c.get(ctx, u+"?blobs=true", nil)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp, "repository "+repo)
	}
	var info modelInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxListBytes)).Decode(&info); err != nil {
		return nil, fmt.Errorf("list %s: malformed model info: %w", repo, err)
	}
	var files []File
	for _, s := range info.Siblings {
		if !ValidPath(s.RFilename) {
			continue
		}
		f := File{Path: s.RFilename, Size: s.Size, GitOID: s.BlobID}
		if s.LFS != nil {
			f.SHA256, f.Size, f.GitOID = s.LFS.SHA256, s.LFS.Size, ""
		}
		files = append(files, f)
	}
	return files, nil
}

var linkNextRe = regexp.MustCompile(`<([^>]*)>\s*;\s*rel="?next"?`)

func nextLink(h string) string {
	if m := linkNextRe.FindStringSubmatch(h); m != nil {
		return m[1]
	}
	return ""
}

func resolveRef(base *url.URL, ref string) (string, error) {
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	u := base.ResolveReference(r)
	if u.Scheme != base.Scheme || u.Host != base.Host {
		return "", fmt.Errorf("link leaves %s", base.Host)
	}
	return u.String(), nil
}

// Progress is told of a download's progress: bytes present so far (resumed bytes
// included) and the total. It is called often and must be quick.
type Progress func(done, total int64)

// PartialSuffix is appended to the destination path while a download is incomplete.
const PartialSuffix = ".partial"

// Download fetches f of repo at revision to dst. Bytes go first to dst+".partial"; a later
// call resumes from them with a Range request, and transient failures are retried, each
// retry resuming. The result is checked against f's size and SHA-256 (or Git blob id); on a
// mismatch the partial file is deleted and the error wraps ErrChecksum. dst appears only
// once verified.
func (c *Client) Download(ctx context.Context, repo, revision string, f File, dst string, progress Progress) error {
	if !ValidRepo(repo) || !ValidPath(f.Path) {
		return fmt.Errorf("invalid repository %q or file %q", repo, f.Path)
	}
	if revision == "" {
		revision = "main"
	}
	if f.SHA256 != "" && !isHex(f.SHA256, 64) {
		return fmt.Errorf("%s: the file list gives a malformed sha256 %q", f.Path, f.SHA256)
	}
	u := c.endpoint() + "/" + escapePath(repo) + "/resolve/" + url.PathEscape(revision) + "/" + escapePath(f.Path)
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = 4
	}
	backoff := c.Backoff
	if backoff <= 0 {
		backoff = time.Second
	}
	partial := dst + PartialSuffix
	var err error
	for try := 0; try < attempts; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff << (try - 1)):
			}
		}
		var retry bool
		retry, err = c.fetch(ctx, u, f, partial, progress)
		if err == nil || !retry || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return err
	}
	if err := verify(partial, f); err != nil {
		_ = os.Remove(partial)
		return err
	}
	return os.Rename(partial, dst)
}

// fetch brings partial up to f.Size bytes. retry says whether a failure is worth retrying.
func (c *Client) fetch(ctx context.Context, u string, f File, partial string, progress Progress) (retry bool, err error) {
	out, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return false, err
	}
	defer out.Close()
	st, err := out.Stat()
	if err != nil {
		return false, err
	}
	have := st.Size()
	if have > f.Size {
		// Longer than the file can be: start again.
		if err := out.Truncate(0); err != nil {
			return false, err
		}
		have = 0
	}
	if have == f.Size && f.Size > 0 {
		return false, nil
	}
	hdr := http.Header{}
	if have > 0 {
		hdr.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := c.get(ctx, u, hdr)
	if err != nil {
		return true, fmt.Errorf("download %s: %w", f.Path, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return true, fmt.Errorf("download %s: the server answered a different range (%q)", f.Path, resp.Header.Get("Content-Range"))
		}
	case http.StatusOK:
		// No range support (or no range asked): the body is the whole file.
		if err := out.Truncate(0); err != nil {
			return false, err
		}
		have = 0
	case http.StatusRequestedRangeNotSatisfiable:
		if err := out.Truncate(0); err != nil {
			return false, err
		}
		return true, fmt.Errorf("download %s: the server refused to resume; starting again", f.Path)
	default:
		err := statusError(resp, "download "+f.Path)
		return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, err
	}
	if _, err := out.Seek(have, io.SeekStart); err != nil {
		return false, err
	}
	w := &progressWriter{w: out, done: have, total: f.Size, fn: progress}
	if progress != nil {
		progress(have, f.Size)
	}
	// Never write past the stated size: a longer body is a corrupt answer.
	n, err := io.Copy(w, io.LimitReader(resp.Body, f.Size-have+1))
	if err != nil {
		return true, fmt.Errorf("download %s: interrupted after %d bytes: %w", f.Path, have+n, err)
	}
	if have+n < f.Size {
		return true, fmt.Errorf("download %s: interrupted after %d of %d bytes", f.Path, have+n, f.Size)
	}
	return false, nil
}

func contentRangeStart(h string) (int64, bool) {
	// "bytes START-END/TOTAL"
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

type progressWriter struct {
	w           io.Writer
	done, total int64
	fn          Progress
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
	return n, err
}

// verify checks the file at p against f's size and checksum.
func verify(p string, f File) error {
	in, err := os.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if st.Size() != f.Size {
		return fmt.Errorf("%s: %w: %d bytes received, the file list says %d; the download was deleted", f.Path, ErrChecksum, st.Size(), f.Size)
	}
	var h hash.Hash
	want := strings.ToLower(f.SHA256)
	kind := "sha256"
	switch {
	case want != "":
		h = sha256.New()
	case isHex(f.GitOID, 40):
		h, want, kind = sha1.New(), strings.ToLower(f.GitOID), "git blob id"
		fmt.Fprintf(h, "blob %d\x00", f.Size)
	default:
		return nil // nothing stated to check against; the size matched
	}
	if _, err := io.Copy(h, in); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s: %w: %s is %s, the file list says %s; the download was deleted", f.Path, ErrChecksum, kind, got, want)
	}
	return nil
}

// FileSHA256 returns the hex SHA-256 of the file at p.
func FileSHA256(p string) (string, error) {
	in, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer in.Close()
	h := sha256.New()
	if _, err := io.Copy(h, in); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// ResolveURL returns the download URL of file in repo at revision, for messages.
func (c *Client) ResolveURL(repo, revision, file string) string {
	if revision == "" {
		revision = "main"
	}
	return c.endpoint() + "/" + escapePath(repo) + "/resolve/" + url.PathEscape(revision) + "/" + escapePath(path.Clean(file))
}
