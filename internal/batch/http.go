package batch

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/httpapi"
)

// Routes returns the Files and Batch API routes.
func (s *Service) Routes() []httpapi.Route {
	oa := apierr.ShapeOpenAI
	return []httpapi.Route{
		// The upload's own limit, with room for the multipart framing around the file.
		{Method: "POST", Pattern: "/v1/files", Shape: oa, Permission: auth.ModelsUse, Handler: s.uploadFile, MaxBody: s.opts.Config.MaxFileBytes + 64<<10},
		{Method: "GET", Pattern: "/v1/files", Shape: oa, Permission: auth.ModelsUse, Handler: s.listFiles},
		{Method: "GET", Pattern: "/v1/files/{id}", Shape: oa, Permission: auth.ModelsUse, Handler: s.getFile},
		{Method: "GET", Pattern: "/v1/files/{id}/content", Shape: oa, Permission: auth.ModelsUse, Handler: s.fileContent},
		{Method: "DELETE", Pattern: "/v1/files/{id}", Shape: oa, Permission: auth.ModelsUse, Handler: s.deleteFile},
		{Method: "POST", Pattern: "/v1/batches", Shape: oa, Permission: auth.ModelsUse, Handler: s.createBatch},
		{Method: "GET", Pattern: "/v1/batches", Shape: oa, Permission: auth.ModelsUse, Handler: s.listBatches},
		{Method: "GET", Pattern: "/v1/batches/{id}", Shape: oa, Permission: auth.ModelsUse, Handler: s.getBatch},
		{Method: "POST", Pattern: "/v1/batches/{id}/cancel", Shape: oa, Permission: auth.ModelsUse, Handler: s.cancelBatch},
	}
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(b)
	return err
}

func invalid(param, format string, args ...any) *apierr.Error {
	return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: param, Message: fmt.Sprintf(format, args...)}
}

// File is OpenAI's File object.
type File struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	Bytes     int64  `json:"bytes"`
	CreatedAt int64  `json:"created_at"`
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"`
	Status    string `json:"status"`
}

var errFileNotFound = &apierr.Error{Kind: apierr.NotFound, Code: apierr.CodeFileNotFound, Param: "file_id", Message: "no such file"}

// uploadFile is POST /v1/files: a multipart form with purpose and file. The file is read
// as it streams in and refused once it passes the limit.
func (s *Service) uploadFile(w http.ResponseWriter, r *http.Request) error {
	owner, _ := ownerOf(r.Context())
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
		return invalid("file", "upload the file as multipart/form-data with the fields purpose and file")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return invalid("file", "the multipart form cannot be read")
	}
	var purpose, filename string
	var content []byte
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return readError(err, s.opts.Config.MaxFileBytes)
		}
		switch part.FormName() {
		case "purpose":
			b, err := io.ReadAll(io.LimitReader(part, 64))
			if err != nil {
				return readError(err, s.opts.Config.MaxFileBytes)
			}
			purpose = string(b)
		case "file":
			filename = part.FileName()
			content, err = io.ReadAll(io.LimitReader(part, s.opts.Config.MaxFileBytes+1))
			if err != nil {
				return readError(err, s.opts.Config.MaxFileBytes)
			}
			if int64(len(content)) > s.opts.Config.MaxFileBytes {
				return tooLarge(s.opts.Config.MaxFileBytes)
			}
		}
		part.Close()
	}
	switch {
	case purpose == "":
		return invalid("purpose", "purpose is missing")
	case purpose != "batch":
		return invalid("purpose", "purpose must be \"batch\": this server keeps files for the Batch API only")
	case content == nil:
		return invalid("file", "the file field is missing")
	}
	if filename == "" {
		filename = "batch.jsonl"
	}
	if len(filename) > 255 {
		filename = filename[:255]
	}
	if _, err := ParseInput(content); err != nil {
		return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidFile, Param: "file", Message: "the file is not a valid batch input: " + err.Error(), Err: err} // its text is written for clients
	}
	f, err := s.putFile(r.Context(), owner, filename, purpose, content)
	if err != nil {
		return err
	}
	return writeJSON(w, f)
}

func tooLarge(max int64) error {
	return &apierr.Error{Kind: apierr.TooLarge, Code: apierr.CodeFileTooLarge, Param: "file",
		Message: "the file exceeds the limit of " + strconv.FormatInt(max, 10) + " bytes"}
}

func readError(err error, max int64) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(max)
	}
	return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: "file", Message: "the upload could not be read", Err: err}
}

func (s *Service) listFiles(w http.ResponseWriter, r *http.Request) error {
	owner, _ := ownerOf(r.Context())
	limit, err := listLimit(r, 10000)
	if err != nil {
		return err
	}
	purpose := r.URL.Query().Get("purpose")
	rows, err := s.r.QueryContext(r.Context(), s.q(`SELECT id, filename, purpose, bytes, created_us FROM batch_files
		WHERE owner = ? AND (? = '' OR purpose = ?) ORDER BY created_us DESC, id DESC LIMIT ?`), owner, purpose, purpose, limit+1)
	if err != nil {
		return err
	}
	defer rows.Close()
	data := []File{}
	for rows.Next() {
		f := File{Object: "file", Status: "processed"}
		var us int64
		if err := rows.Scan(&f.ID, &f.Filename, &f.Purpose, &f.Bytes, &us); err != nil {
			return err
		}
		f.CreatedAt = us / 1e6
		data = append(data, f)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	more := len(data) > limit
	if more {
		data = data[:limit]
	}
	return writeJSON(w, list(data, more, func(f File) string { return f.ID }))
}

type listDoc[T any] struct {
	Object  string `json:"object"`
	Data    []T    `json:"data"`
	FirstID string `json:"first_id"`
	LastID  string `json:"last_id"`
	HasMore bool   `json:"has_more"`
}

func list[T any](data []T, more bool, id func(T) string) listDoc[T] {
	d := listDoc[T]{Object: "list", Data: data, HasMore: more}
	if len(data) > 0 {
		d.FirstID, d.LastID = id(data[0]), id(data[len(data)-1])
	}
	return d
}

func listLimit(r *http.Request, max int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return min(max, 20), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, invalid("limit", "limit must be a whole number from 1 to %d", max)
	}
	return n, nil
}

func (s *Service) getFile(w http.ResponseWriter, r *http.Request) error {
	owner, _ := ownerOf(r.Context())
	f := File{ID: r.PathValue("id"), Object: "file", Status: "processed"}
	var us int64
	err := s.r.QueryRowContext(r.Context(), s.q(`SELECT filename, purpose, bytes, created_us FROM batch_files WHERE id = ? AND owner = ?`),
		f.ID, owner).Scan(&f.Filename, &f.Purpose, &f.Bytes, &us)
	if errors.Is(err, sql.ErrNoRows) {
		return errFileNotFound
	}
	if err != nil {
		return err
	}
	f.CreatedAt = us / 1e6
	return writeJSON(w, f)
}

func (s *Service) fileContent(w http.ResponseWriter, r *http.Request) error {
	owner, _ := ownerOf(r.Context())
	var content string
	err := s.r.QueryRowContext(r.Context(), s.q(`SELECT content FROM batch_files WHERE id = ? AND owner = ?`),
		r.PathValue("id"), owner).Scan(&content)
	if errors.Is(err, sql.ErrNoRows) {
		return errFileNotFound
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/jsonl")
	_, err = io.WriteString(w, content)
	return err
}

func (s *Service) deleteFile(w http.ResponseWriter, r *http.Request) error {
	owner, _ := ownerOf(r.Context())
	id := r.PathValue("id")
	res, err := s.w.ExecContext(r.Context(), s.q(`DELETE FROM batch_files WHERE id = ? AND owner = ?`), id, owner)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errFileNotFound
	}
	return writeJSON(w, map[string]any{"id": id, "object": "file", "deleted": true})
}

// putFile stores a file.
func (s *Service) putFile(ctx context.Context, owner, filename, purpose string, content []byte) (File, error) {
	f := File{ID: "file-" + randHex(12), Object: "file", Bytes: int64(len(content)), Filename: filename, Purpose: purpose, Status: "processed"}
	now := time.Now()
	f.CreatedAt = now.Unix()
	_, err := s.w.ExecContext(ctx, s.q(`INSERT INTO batch_files (id, owner, filename, purpose, bytes, created_us, content) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		f.ID, owner, f.Filename, f.Purpose, f.Bytes, now.UnixMicro(), string(content))
	if err != nil {
		return File{}, fmt.Errorf("batch: store file: %w", err)
	}
	return f, nil
}
