package batch

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
)

// Batch is OpenAI's Batch object.
type Batch struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Endpoint         string            `json:"endpoint"`
	InputFileID      string            `json:"input_file_id"`
	CompletionWindow string            `json:"completion_window"`
	Status           string            `json:"status"`
	OutputFileID     *string           `json:"output_file_id,omitempty"`
	ErrorFileID      *string           `json:"error_file_id,omitempty"`
	CreatedAt        int64             `json:"created_at"`
	InProgressAt     *int64            `json:"in_progress_at,omitempty"`
	ExpiresAt        *int64            `json:"expires_at,omitempty"`
	FinalizingAt     *int64            `json:"finalizing_at,omitempty"`
	CompletedAt      *int64            `json:"completed_at,omitempty"`
	FailedAt         *int64            `json:"failed_at,omitempty"`
	ExpiredAt        *int64            `json:"expired_at,omitempty"`
	CancellingAt     *int64            `json:"cancelling_at,omitempty"`
	CancelledAt      *int64            `json:"cancelled_at,omitempty"`
	RequestCounts    RequestCounts     `json:"request_counts"`
	Metadata         map[string]string `json:"metadata"`
	Errors           *json.RawMessage  `json:"errors,omitempty"`
}

// RequestCounts are a batch's line counts.
type RequestCounts struct {
	Total     int64 `json:"total"`
	Completed int64 `json:"completed"`
	Failed    int64 `json:"failed"`
}

const batchColumns = `id, endpoint, input_file_id, completion_window, metadata, status, created_us, in_progress_at, expires_at,
	finalizing_at, completed_at, failed_at, expired_at, cancelling_at, cancelled_at, output_file_id, error_file_id, total, completed, failed`

func scanBatch(row interface{ Scan(...any) error }) (*Batch, error) {
	b := &Batch{Object: "batch"}
	var meta, out, errf string
	var created int64
	var ts [8]int64
	if err := row.Scan(&b.ID, &b.Endpoint, &b.InputFileID, &b.CompletionWindow, &meta, &b.Status, &created,
		&ts[0], &ts[1], &ts[2], &ts[3], &ts[4], &ts[5], &ts[6], &ts[7], &out, &errf,
		&b.RequestCounts.Total, &b.RequestCounts.Completed, &b.RequestCounts.Failed); err != nil {
		return nil, err
	}
	b.CreatedAt = created / 1e6
	for i, p := range []**int64{&b.InProgressAt, &b.ExpiresAt, &b.FinalizingAt, &b.CompletedAt, &b.FailedAt, &b.ExpiredAt, &b.CancellingAt, &b.CancelledAt} {
		if ts[i] != 0 {
			v := ts[i]
			*p = &v
		}
	}
	if out != "" {
		b.OutputFileID = &out
	}
	if errf != "" {
		b.ErrorFileID = &errf
	}
	if meta != "" && meta != "null" {
		_ = json.Unmarshal([]byte(meta), &b.Metadata)
	}
	return b, nil
}

var errBatchNotFound = &apierr.Error{Kind: apierr.NotFound, Code: apierr.CodeBatchNotFound, Param: "batch_id", Message: "no such batch"}

func (s *Service) loadBatch(ctx context.Context, owner, id string) (*Batch, error) {
	b, err := scanBatch(s.r.QueryRowContext(ctx, s.q(`SELECT `+batchColumns+` FROM batches WHERE id = ? AND owner = ?`), id, owner))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errBatchNotFound
	}
	return b, err
}

// createBatch is POST /v1/batches. The input file was checked when it was uploaded; here
// each line's url must be the batch's endpoint. The batch and its lines are committed in
// one transaction, and the batch starts in_progress.
func (s *Service) createBatch(w http.ResponseWriter, r *http.Request) error {
	owner, p := ownerOf(r.Context())
	var req struct {
		InputFileID      string            `json:"input_file_id"`
		Endpoint         string            `json:"endpoint"`
		CompletionWindow string            `json:"completion_window"`
		Metadata         map[string]string `json:"metadata"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err := dec.Decode(&req); err != nil {
		return invalid("", "the body must be a JSON object with input_file_id, endpoint and completion_window")
	}
	switch {
	case req.InputFileID == "":
		return invalid("input_file_id", "input_file_id is missing")
	case !endpoints[req.Endpoint]:
		return invalid("endpoint", "endpoint must be /v1/chat/completions, /v1/embeddings or /v1/completions")
	case req.CompletionWindow != "24h":
		return invalid("completion_window", "completion_window must be \"24h\"")
	case len(req.Metadata) > 16:
		return invalid("metadata", "metadata holds at most 16 pairs")
	}
	for k, v := range req.Metadata {
		if len(k) > 64 || len(v) > 512 {
			return invalid("metadata", "metadata keys are at most 64 characters and values at most 512")
		}
	}
	var content, purpose string
	err := s.r.QueryRowContext(r.Context(), s.q(`SELECT content, purpose FROM batch_files WHERE id = ? AND owner = ?`), req.InputFileID, owner).Scan(&content, &purpose)
	if errors.Is(err, sql.ErrNoRows) {
		return &apierr.Error{Kind: apierr.NotFound, Code: apierr.CodeFileNotFound, Param: "input_file_id", Message: "no such file"}
	}
	if err != nil {
		return err
	}
	if purpose != "batch" {
		return invalid("input_file_id", "the file's purpose is %q, not \"batch\"", purpose)
	}
	lines, err := ParseInput([]byte(content))
	if err != nil {
		return invalid("input_file_id", "the file is not a valid batch input: %s", err)
	}
	for i, l := range lines {
		if l.URL != req.Endpoint {
			return invalid("input_file_id", "request %d (custom_id %q) calls %s, not the batch's endpoint %s", i+1, l.CustomID, l.URL, req.Endpoint)
		}
	}
	ident := []byte("{}")
	if p != nil {
		ident, _ = json.Marshal(p.Identity())
	}
	meta, _ := json.Marshal(req.Metadata)
	now := time.Now()
	id := "batch_" + randHex(12)
	tx, err := s.w.BeginTx(r.Context(), nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(r.Context(), s.q(`INSERT INTO batches (id, owner, identity, endpoint, input_file_id, completion_window, metadata,
		status, created_us, in_progress_at, expires_at, total) VALUES (?, ?, ?, ?, ?, ?, ?, 'in_progress', ?, ?, ?, ?)`),
		id, owner, string(ident), req.Endpoint, req.InputFileID, req.CompletionWindow, string(meta),
		now.UnixMicro(), now.Unix(), now.Add(24*time.Hour).Unix(), len(lines)); err != nil {
		return fmt.Errorf("batch: create: %w", err)
	}
	stmt, err := tx.PrepareContext(r.Context(), s.q(`INSERT INTO batch_lines (batch_id, idx, custom_id, body) VALUES (?, ?, ?, ?)`))
	if err != nil {
		return fmt.Errorf("batch: create: %w", err)
	}
	defer stmt.Close()
	for i, l := range lines {
		if _, err := stmt.ExecContext(r.Context(), id, i, l.CustomID, string(l.Body)); err != nil {
			return fmt.Errorf("batch: create: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("batch: create: %w", err)
	}
	s.poke()
	b, err := s.loadBatch(r.Context(), owner, id)
	if err != nil {
		return err
	}
	return writeJSON(w, b)
}

func (s *Service) getBatch(w http.ResponseWriter, r *http.Request) error {
	owner, _ := ownerOf(r.Context())
	b, err := s.loadBatch(r.Context(), owner, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, b)
}

// listBatches is GET /v1/batches: newest first, after a batch id, limit 1 to 100.
func (s *Service) listBatches(w http.ResponseWriter, r *http.Request) error {
	owner, _ := ownerOf(r.Context())
	limit, err := listLimit(r, 100)
	if err != nil {
		return err
	}
	before := int64(1) << 62
	afterID := ""
	if after := r.URL.Query().Get("after"); after != "" {
		err := s.r.QueryRowContext(r.Context(), s.q(`SELECT created_us FROM batches WHERE id = ? AND owner = ?`), after, owner).Scan(&before)
		if errors.Is(err, sql.ErrNoRows) {
			return invalid("after", "after names no batch of yours")
		}
		if err != nil {
			return err
		}
		afterID = after
	}
	rows, err := s.r.QueryContext(r.Context(), s.q(`SELECT `+batchColumns+` FROM batches WHERE owner = ?
		AND (created_us < ? OR (created_us = ? AND id < ?)) ORDER BY created_us DESC, id DESC LIMIT ?`),
		owner, before, before, afterOrMax(afterID), limit+1)
	if err != nil {
		return err
	}
	defer rows.Close()
	data := []*Batch{}
	for rows.Next() {
		b, err := scanBatch(rows)
		if err != nil {
			return err
		}
		data = append(data, b)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	more := len(data) > limit
	if more {
		data = data[:limit]
	}
	return writeJSON(w, list(data, more, func(b *Batch) string { return b.ID }))
}

func afterOrMax(id string) string {
	if id == "" {
		return "\U0010FFFF"
	}
	return id
}

// cancelBatch is POST /v1/batches/{id}/cancel: no new line starts; once the lines running
// have finished the batch is cancelled, with the answers it has in its files.
func (s *Service) cancelBatch(w http.ResponseWriter, r *http.Request) error {
	owner, _ := ownerOf(r.Context())
	id := r.PathValue("id")
	res, err := s.w.ExecContext(r.Context(), s.q(stmtCancelBatch), time.Now().Unix(), id, owner)
	if err != nil {
		return err
	}
	b, err := s.loadBatch(r.Context(), owner, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 && b.Status != "cancelling" && b.Status != "cancelled" {
		return &apierr.Error{Kind: apierr.Conflict, Code: apierr.CodeBatchNotCancellable, Param: "batch_id",
			Message: "a batch with status " + b.Status + " cannot be cancelled"}
	}
	s.poke()
	return writeJSON(w, b)
}

// poke wakes an idle worker and the finalizer.
func (s *Service) poke() {
	for _, c := range []chan struct{}{s.wake, s.answered} {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}
