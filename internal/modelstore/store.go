// Package modelstore is the local store of model files pulled from a model hub (Hugging
// Face or a mirror, or another autoglm node), and the routes that serve it to other nodes in
// the hub's own layout.
//
// # Layout
//
// A store is a directory, by default <data-dir>/models/hub:
//
//	<owner>/<name>/<path>            a verified file, at its path inside the repository
//	<owner>/<name>/<path>.partial    an unfinished download; the next pull resumes it
//	<owner>/<name>/.autoglm.json     the manifest: endpoint, revision, and for every verified
//	                                 file its size, SHA-256 and the time it was pulled
//
// A file is listed in the manifest only once its size and checksum were verified, so the
// store never serves or loads a half-downloaded file. Two pulls of the same repository must
// not run at the same time.
package modelstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/hub"
)

// manifestName is the manifest's file name inside a repository's folder.
const manifestName = ".autoglm.json"

// ErrNotStored: the reference names nothing in the store.
var ErrNotStored = errors.New("not in the model store")

// Store is a model store rooted at Dir.
type Store struct {
	Dir string
}

// DefaultDir returns the store directory under a data directory.
func DefaultDir(dataDir string) string { return filepath.Join(dataDir, "models", "hub") }

// Entry is one stored file.
type Entry struct {
	Repo     string    `json:"-"`
	Path     string    `json:"path"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	GitOID   string    `json:"git_oid,omitempty"`
	PulledAt time.Time `json:"pulled_at"`
}

// Ref returns the reference that names this entry exactly.
func (e Entry) Ref() Ref { return Ref{Repo: e.Repo, File: e.Path} }

// manifest is a repository's .autoglm.json.
type manifest struct {
	Repo     string  `json:"repo"`
	Endpoint string  `json:"endpoint"`
	Revision string  `json:"revision"`
	Files    []Entry `json:"files"`
}

func (s *Store) repoDir(repo string) string { return filepath.Join(s.Dir, filepath.FromSlash(repo)) }

// FilePath returns where e's bytes are.
func (s *Store) FilePath(e Entry) string {
	return filepath.Join(s.repoDir(e.Repo), filepath.FromSlash(e.Path))
}

func (s *Store) readManifest(repo string) (manifest, error) {
	m := manifest{Repo: repo}
	data, err := os.ReadFile(filepath.Join(s.repoDir(repo), manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: malformed manifest: %w", repo, err)
	}
	m.Repo = repo
	for i := range m.Files {
		m.Files[i].Repo = repo
	}
	return m, nil
}

func (s *Store) writeManifest(m manifest) error {
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	dir := s.repoDir(m.Repo)
	tmp := filepath.Join(dir, manifestName+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, manifestName))
}

// Repo returns the verified files of repo, and the revision they were pulled at.
func (s *Store) Repo(repo string) ([]Entry, string, error) {
	if !hub.ValidRepo(repo) {
		return nil, "", fmt.Errorf("invalid repository id %q", repo)
	}
	m, err := s.readManifest(repo)
	return m.Files, m.Revision, err
}

// List returns every stored file, by repository then path.
func (s *Store) List() ([]Entry, error) {
	owners, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, o := range owners {
		if !o.IsDir() {
			continue
		}
		repos, err := os.ReadDir(filepath.Join(s.Dir, o.Name()))
		if err != nil {
			return nil, err
		}
		for _, r := range repos {
			repo := o.Name() + "/" + r.Name()
			if !r.IsDir() || !hub.ValidRepo(repo) {
				continue
			}
			m, err := s.readManifest(repo)
			if err != nil {
				return nil, err
			}
			out = append(out, m.Files...)
		}
	}
	return out, nil
}

// Resolve finds the stored file ref names, without the network.
func (s *Store) Resolve(ref Ref) (Entry, error) {
	m, err := s.readManifest(ref.Repo)
	if err != nil {
		return Entry{}, err
	}
	if len(m.Files) == 0 {
		return Entry{}, fmt.Errorf("%s: %w (run: autoglm pull %s)", ref, ErrNotStored, ref)
	}
	files := make([]hub.File, len(m.Files))
	for i, e := range m.Files {
		files[i] = hub.File{Path: e.Path, Size: e.Size, SHA256: e.SHA256}
	}
	f, err := ref.pick(files)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %v (run: autoglm pull %s)", ErrNotStored, err, ref)
	}
	for _, e := range m.Files {
		if e.Path == f.Path {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("%s: %w", ref, ErrNotStored)
}

// Path resolves a reference to the stored file's path.
func (s *Store) Path(ref string) (string, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	e, err := s.Resolve(r)
	if err != nil {
		return "", err
	}
	return s.FilePath(e), nil
}

// Remove deletes the stored files ref names: the one file it resolves to, or with a bare
// repository reference every file of the repository (partial downloads included). It
// returns what it removed.
func (s *Store) Remove(ref Ref) ([]Entry, error) {
	m, err := s.readManifest(ref.Repo)
	if err != nil {
		return nil, err
	}
	if ref.File == "" && ref.Quant == "" {
		if len(m.Files) == 0 {
			if _, err := os.Stat(s.repoDir(ref.Repo)); err != nil {
				return nil, fmt.Errorf("%s: %w", ref, ErrNotStored)
			}
		}
		if err := os.RemoveAll(s.repoDir(ref.Repo)); err != nil {
			return nil, err
		}
		s.pruneOwner(ref.Repo)
		return m.Files, nil
	}
	e, err := s.Resolve(ref)
	if err != nil {
		return nil, err
	}
	p := s.FilePath(e)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	_ = os.Remove(p + hub.PartialSuffix)
	kept := m.Files[:0]
	for _, f := range m.Files {
		if f.Path != e.Path {
			kept = append(kept, f)
		}
	}
	m.Files = kept
	if len(m.Files) == 0 {
		if err := os.RemoveAll(s.repoDir(ref.Repo)); err != nil {
			return nil, err
		}
		s.pruneOwner(ref.Repo)
		return []Entry{e}, nil
	}
	return []Entry{e}, s.writeManifest(m)
}

// pruneOwner removes the owner's folder once its last repository is gone.
func (s *Store) pruneOwner(repo string) {
	owner, _, _ := strings.Cut(repo, "/")
	_ = os.Remove(filepath.Join(s.Dir, owner)) // fails, harmlessly, while not empty
}

// PullOptions configure one pull.
type PullOptions struct {
	// Revision is the branch, tag or commit. Default "main".
	Revision string
	// Progress, when set, returns the progress callback for one file's download.
	Progress func(f hub.File) hub.Progress
}

// Pull resolves ref against the hub's file list, downloads the file unless the store
// already has it with the same checksum, verifies it and records it in the manifest.
func (s *Store) Pull(ctx context.Context, c *hub.Client, ref Ref, opt PullOptions) (Entry, error) {
	rev := opt.Revision
	if rev == "" {
		rev = "main"
	}
	files, err := c.Files(ctx, ref.Repo, rev)
	if err != nil {
		return Entry{}, err
	}
	var keep []hub.File
	for _, f := range files {
		if f.Path != manifestName && !strings.HasSuffix(f.Path, hub.PartialSuffix) {
			keep = append(keep, f)
		}
	}
	f, err := ref.pick(keep)
	if err != nil {
		return Entry{}, err
	}
	m, err := s.readManifest(ref.Repo)
	if err != nil {
		return Entry{}, err
	}
	dst := filepath.Join(s.repoDir(ref.Repo), filepath.FromSlash(f.Path))
	for _, e := range m.Files {
		if e.Path == f.Path && e.Size == f.Size && (f.SHA256 == "" || strings.EqualFold(e.SHA256, f.SHA256)) {
			if st, err := os.Stat(dst); err == nil && st.Size() == e.Size {
				return e, nil // already here and verified
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return Entry{}, err
	}
	var progress hub.Progress
	if opt.Progress != nil {
		progress = opt.Progress(f)
	}
	if err := c.Download(ctx, ref.Repo, rev, f, dst, progress); err != nil {
		return Entry{}, err
	}
	sum := strings.ToLower(f.SHA256)
	if sum == "" {
		if sum, err = hub.FileSHA256(dst); err != nil {
			return Entry{}, err
		}
	}
	e := Entry{Repo: ref.Repo, Path: f.Path, Size: f.Size, SHA256: sum, GitOID: f.GitOID, PulledAt: time.Now().UTC().Truncate(time.Second)}
	// Read the manifest again: another file of the repository may have been recorded since.
	if m, err = s.readManifest(ref.Repo); err != nil {
		return Entry{}, err
	}
	m.Endpoint, m.Revision = c.Endpoint, rev
	if m.Endpoint == "" {
		m.Endpoint = hub.DefaultEndpoint
	}
	files2 := m.Files[:0]
	for _, x := range m.Files {
		if x.Path != e.Path {
			files2 = append(files2, x)
		}
	}
	m.Files = append(files2, e)
	return e, s.writeManifest(m)
}
