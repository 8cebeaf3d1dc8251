package modelstore

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/hub"
)

// HubPrefix is where a node serves its store. Point another node at it with
// HF_ENDPOINT=http://node1:8080/hub (or hub.endpoint in its configuration).
const HubPrefix = "/hub"

// Routes serves the store read-only in the hub's layout under HubPrefix, so that other nodes
// pull from this one (permission models.pull). One pattern carries the three kinds of
// request, because the hub's paths start with a repository owner that may be any name:
//
//	GET /hub/api/models/{owner}/{name}/tree/{revision}
//	GET /hub/api/models/{owner}/{name}
//	GET /hub/{owner}/{name}/resolve/{revision}/{path...}     (Range and HEAD supported)
//
// Only verified files are listed or served; the revision must be "main" or the one the
// files were pulled at.
func (s *Store) Routes() []httpapi.Route {
	return []httpapi.Route{{Method: "GET", Pattern: HubPrefix + "/{path...}", Shape: apierr.ShapeEnvelope, Permission: auth.ModelsPull, Handler: s.serveHub}}
}

func notFound(what string) error {
	return apierr.New(apierr.CodeNotFound, what+" is not in this node's model store")
}

func (s *Store) serveHub(w http.ResponseWriter, r *http.Request) error {
	p := r.PathValue("path")
	segs := strings.Split(p, "/")
	if len(segs) >= 4 && segs[0] == "api" && segs[1] == "models" {
		repo := segs[2] + "/" + segs[3]
		switch {
		case len(segs) == 4:
			return s.serveInfo(w, repo)
		case len(segs) >= 6 && segs[4] == "tree":
			if len(segs) > 6 {
				// A folder inside the repository: the store lists every file from the root.
				return notFound("that folder")
			}
			return s.serveTree(w, repo, segs[5])
		case len(segs) >= 6 && segs[4] == "revision":
			return s.serveInfo(w, repo)
		}
		return notFound("that path")
	}
	if len(segs) >= 5 && segs[2] == "resolve" {
		return s.serveFile(w, r, segs[0]+"/"+segs[1], segs[3], strings.Join(segs[4:], "/"))
	}
	return notFound("that path")
}

func (s *Store) stored(repo, rev string) ([]Entry, error) {
	if !hub.ValidRepo(repo) {
		return nil, notFound("that repository")
	}
	files, pulledAt, err := s.Repo(repo)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, notFound("repository " + repo)
	}
	if rev != "" && rev != "main" && rev != pulledAt {
		return nil, notFound("revision " + rev)
	}
	return files, nil
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

type lfsInfo struct {
	OID  string `json:"oid"`
	Size int64  `json:"size"`
}

type treeItem struct {
	Type string  `json:"type"`
	OID  string  `json:"oid"`
	Size int64   `json:"size"`
	Path string  `json:"path"`
	LFS  lfsInfo `json:"lfs"`
}

func (s *Store) serveTree(w http.ResponseWriter, repo, rev string) error {
	files, err := s.stored(repo, rev)
	if err != nil {
		return err
	}
	out := make([]treeItem, len(files))
	for i, e := range files {
		out[i] = treeItem{Type: "file", OID: e.GitOID, Size: e.Size, Path: e.Path, LFS: lfsInfo{OID: e.SHA256, Size: e.Size}}
	}
	return writeJSON(w, out)
}

type sibling struct {
	RFilename string `json:"rfilename"`
	Size      int64  `json:"size"`
	LFS       struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"lfs"`
}

func (s *Store) serveInfo(w http.ResponseWriter, repo string) error {
	files, err := s.stored(repo, "")
	if err != nil {
		return err
	}
	sibs := make([]sibling, len(files))
	for i, e := range files {
		sibs[i].RFilename, sibs[i].Size = e.Path, e.Size
		sibs[i].LFS.SHA256, sibs[i].LFS.Size = e.SHA256, e.Size
	}
	return writeJSON(w, map[string]any{"id": repo, "modelId": repo, "siblings": sibs})
}

func (s *Store) serveFile(w http.ResponseWriter, r *http.Request, repo, rev, path string) error {
	files, err := s.stored(repo, rev)
	if err != nil {
		return err
	}
	for _, e := range files {
		if e.Path != path {
			continue
		}
		f, err := os.Open(s.FilePath(e))
		if err != nil {
			return notFound("file " + path)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.Size() != e.Size {
			return apierr.New(apierr.CodeFileChanged, "the stored file does not match its manifest")
		}
		w.Header().Set("ETag", `"`+e.SHA256+`"`)
		w.Header().Set("X-Linked-Size", itoa(e.Size))
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", st.ModTime(), f)
		return nil
	}
	return notFound("file " + path)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
