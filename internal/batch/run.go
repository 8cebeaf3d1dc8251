package batch

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/store/sqldb"
)

// Run runs batch lines, batch.concurrency at a time, and finalizes batches, until ctx is
// canceled. Lines running then are not answered; their leases are released so they run
// again.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range s.opts.Config.Concurrency {
		wg.Go(func() { s.work(ctx) })
	}
	wg.Go(func() {
		t := time.NewTimer(s.opts.Poll)
		defer t.Stop()
		due := func() (time.Time, error) { return s.nextFinal(ctx) }
		for {
			s.finalizeReady(ctx)
			t.Reset(sqldb.PollWait(s.dialect, s.opts.Poll, due))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-s.answered:
			}
		}
	})
	wg.Wait()
}

func (s *Service) work(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	due := func() (time.Time, error) { return s.nextLine(ctx) }
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
		for ctx.Err() == nil {
			l, err := s.claim(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("batch: taking a line failed", "err", err)
				}
				break
			}
			if l == nil {
				break
			}
			// One wake-up reaches one worker: pass it on, so that a batch's lines are
			// taken by as many workers as are free.
			select {
			case s.wake <- struct{}{}:
			default:
			}
			s.run(ctx, l)
		}
		t.Reset(sqldb.PollWait(s.dialect, s.opts.Poll, due))
	}
}

// nextLine is when the earliest unanswered line of a running batch may be taken (the zero
// time: there is none), for the workers' wait on SQLite (sqldb.PollWait): when its lease
// runs out, or when the wait a rate limit gave it ends. New batches wake a worker.
func (s *Service) nextLine(ctx context.Context) (time.Time, error) {
	// claim takes the leases that ended before now: one millisecond after the end.
	return sqldb.ScanDue(s.polls.QueryRowContext(ctx, s.q(`SELECT MIN(l.lease_until) + 1 FROM batch_lines AS l JOIN batches AS b ON b.id = l.batch_id
		WHERE b.status = 'in_progress' AND l.done = 0`)), time.UnixMilli)
}

// nextFinal is when finalizeReady may next find work that nothing announces (the zero
// time: none), for its wait on SQLite (sqldb.PollWait): the earliest expiry of a running
// batch, or at once while a batch is being cancelled (it ends when the leases of its lines
// under way are answered or run out). A batch whose last line is answered, and a
// cancellation, wake it.
func (s *Service) nextFinal(ctx context.Context) (time.Time, error) {
	return sqldb.ScanDue(s.polls.QueryRowContext(ctx, s.q(`SELECT MIN(CASE WHEN status = 'cancelling' THEN 0 ELSE expires_at + 1 END)
		FROM batches WHERE status IN ('in_progress', 'cancelling')`)), func(sec int64) time.Time { return time.Unix(sec, 0) })
}

// claimed is a line this process holds the lease of.
type claimed struct {
	batchID  string
	idx      int64
	customID string
	body     string
	url      string
	identity string
}

// claim takes the next unanswered, untaken line of the oldest running batch, or returns nil.
func (s *Service) claim(ctx context.Context) (*claimed, error) {
	for range 8 {
		now := time.Now().UnixMilli()
		l := &claimed{}
		err := s.polls.QueryRowContext(ctx, s.q(`SELECT l.batch_id, l.idx, l.custom_id, l.body, b.endpoint, b.identity
			FROM batch_lines AS l JOIN batches AS b ON b.id = l.batch_id
			WHERE b.status = 'in_progress' AND l.done = 0 AND l.lease_until < ?
			ORDER BY b.created_us, b.id, l.idx LIMIT 1`), now).Scan(&l.batchID, &l.idx, &l.customID, &l.body, &l.url, &l.identity)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		took, err := s.takeLine(ctx, l, now+s.opts.Lease.Milliseconds(), now)
		if err != nil {
			return nil, err
		}
		if took {
			return l, nil
		}
	}
	return nil, nil
}

// lineResult is one line of an output or error file.
type lineResult struct {
	ID       string        `json:"id"`
	CustomID string        `json:"custom_id"`
	Response *lineResponse `json:"response"`
	Error    *lineError    `json:"error"`
}

type lineResponse struct {
	StatusCode int             `json:"status_code"`
	RequestID  string          `json:"request_id"`
	Body       json.RawMessage `json:"body"`
}

type lineError struct {
	Code    apierr.Code `json:"code"`
	Message string      `json:"message"`
}

// run serves one line through the gateway and commits its answer, unless the line must
// wait (a rate limit) or the process is stopping.
func (s *Service) run(ctx context.Context, l *claimed) {
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(s.opts.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				_ = s.renewLine(lctx, l, time.Now().Add(s.opts.Lease).UnixMilli())
			}
		}
	}()
	res := lineResult{ID: "batch_req_" + randHex(12), CustomID: l.customID}
	wait := s.serve(lctx, l, &res)
	stop()
	<-renewed
	if ctx.Err() != nil {
		s.release(l, 0)
		return
	}
	if wait > 0 {
		s.release(l, wait)
		return
	}
	if err := s.answer(ctx, l, &res); err != nil && ctx.Err() == nil {
		s.log.Warn("batch: recording a line's answer failed", "batch", l.batchID, "line", l.idx, "err", err)
	}
}

// serve runs the line's request. It returns how long to wait before the line runs again
// when a rate limit refused it; otherwise res holds the line's answer.
func (s *Service) serve(ctx context.Context, l *claimed, res *lineResult) time.Duration {
	if s.opts.Principal != nil {
		var id auth.Identity
		if err := json.Unmarshal([]byte(l.identity), &id); err != nil {
			res.Error = &lineError{Code: apierr.CodeInternalError, Message: "the batch's credential cannot be read"}
			return 0
		}
		p, err := s.opts.Principal(id)
		if err != nil {
			res.Error = &lineError{Code: apierr.CodeInvalidAPIKey, Message: "the credential this batch was created with is no longer valid"}
			return 0
		}
		ctx = auth.NewContext(ctx, p)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, strings.NewReader(l.body))
	if err != nil {
		res.Error = &lineError{Code: apierr.CodeInvalidRequest, Message: "the request cannot be built"}
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "127.0.0.1:0"
	rec := &recorder{header: http.Header{}}
	s.opts.Handler().ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status == http.StatusTooManyRequests {
		var e struct {
			Error struct {
				Type string `json:"type"`
			} `json:"error"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &e)
		if e.Error.Type != "insufficient_quota" {
			wait := time.Second
			if n, err := strconv.Atoi(rec.header.Get("Retry-After")); err == nil && n > 0 {
				wait = time.Duration(n) * time.Second
			}
			return wait
		}
	}
	body := bytes.TrimSpace(rec.body.Bytes())
	if !json.Valid(body) {
		res.Error = &lineError{Code: apierr.CodeInvalidResponse, Message: "the answer to this request is not JSON"}
		return 0
	}
	res.Response = &lineResponse{StatusCode: rec.status, RequestID: rec.header.Get("X-Request-Id"), Body: json.RawMessage(body)}
	return 0
}

// release gives a line's lease back, to run again after wait.
func (s *Service) release(l *claimed, wait time.Duration) {
	until := int64(0)
	if wait > 0 {
		until = time.Now().Add(wait).UnixMilli()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.releaseLine(ctx, l, until)
}

// answer commits a line's answer and the batch's counters in one transaction, only while
// the line is unanswered and its batch still running: a line is answered once.
func (s *Service) answer(ctx context.Context, l *claimed, res *lineResult) error {
	ok := res.Response != nil && res.Response.StatusCode >= 200 && res.Response.StatusCode < 300
	doc, err := json.Marshal(res)
	if err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	// The batch row first (see stmtCountCompleted): it is conditional on the batch still
	// running.
	if counted, err := s.countAnswer(ctx, tx, l, ok); err != nil || !counted {
		return err // nil when the batch has ended
	}
	if answered, err := s.answerLine(ctx, tx, l, ok, string(doc)); err != nil || !answered {
		return err // nil when answered already; the rollback undoes the count
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	select {
	case s.answered <- struct{}{}:
	default:
	}
	return nil
}

// finalizeReady ends the batches that are done: every line answered (completed), cancelled
// with no line running, or past their window (expired).
func (s *Service) finalizeReady(ctx context.Context) {
	s.finalizing.Lock()
	defer s.finalizing.Unlock()
	now := time.Now()
	rows, err := s.polls.QueryContext(ctx, s.q(`SELECT b.id, b.status, b.expires_at FROM batches AS b
		WHERE (b.status = 'in_progress' AND (b.expires_at < ? OR NOT EXISTS (SELECT 1 FROM batch_lines AS l WHERE l.batch_id = b.id AND l.done = 0)))
		OR (b.status = 'cancelling' AND NOT EXISTS (SELECT 1 FROM batch_lines AS l WHERE l.batch_id = b.id AND l.done = 0 AND l.lease_until > ? AND l.lease_owner <> ''))
		ORDER BY b.created_us LIMIT 50`), now.Unix(), now.UnixMilli())
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("batch: looking for finished batches failed", "err", err)
		}
		return
	}
	type ready struct {
		id, status string
		expires    int64
	}
	var list []ready
	for rows.Next() {
		var r ready
		if err := rows.Scan(&r.id, &r.status, &r.expires); err != nil {
			rows.Close()
			return
		}
		list = append(list, r)
	}
	rows.Close()
	for _, r := range list {
		to := "completed"
		switch {
		case r.status == "cancelling":
			to = "cancelled"
		case r.expires < now.Unix():
			to = "expired"
		}
		if err := s.finalize(ctx, r.id, r.status, to); err != nil && ctx.Err() == nil {
			s.log.Warn("batch: finalizing failed", "batch", r.id, "err", err)
		}
	}
}

// finalize writes the output and error files and moves the batch from status from to its
// terminal status to, in one transaction conditional on from.
func (s *Service) finalize(ctx context.Context, id, from, to string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	// The status change comes first: it takes the batch row (see answer) and makes every
	// later answer of this batch's lines a no-op.
	now := time.Now()
	owner, ok, err := s.finishBatch(ctx, tx, id, from, to, now.Unix())
	if err != nil || !ok {
		return err
	}
	rows, err := tx.QueryContext(ctx, s.q(`SELECT ok, result FROM batch_lines WHERE batch_id = ? AND done = 1 ORDER BY idx`), id)
	if err != nil {
		return err
	}
	var out, bad bytes.Buffer
	for rows.Next() {
		var ok int
		var res string
		if err := rows.Scan(&ok, &res); err != nil {
			rows.Close()
			return err
		}
		b := &out
		if ok == 0 {
			b = &bad
		}
		b.WriteString(res)
		b.WriteByte('\n')
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	files := [2]string{}
	for i, b := range []*bytes.Buffer{&out, &bad} {
		if b.Len() == 0 {
			continue
		}
		files[i] = "file-" + randHex(12)
		name := id + "_output.jsonl"
		if i == 1 {
			name = id + "_error.jsonl"
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO batch_files (id, owner, filename, purpose, bytes, created_us, content) VALUES (?, ?, ?, 'batch_output', ?, ?, ?)`),
			files[i], owner, name, b.Len(), now.UnixMicro(), b.String()); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(stmtSetBatchFiles), files[0], files[1], id); err != nil {
		return err
	}
	return tx.Commit()
}

// recorder is the ResponseWriter of a line's request.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

// maxAnswer bounds one line's answer kept in memory.
const maxAnswer = 32 << 20

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len()+len(p) > maxAnswer {
		return 0, errors.New("batch: answer too large")
	}
	return r.body.Write(p)
}

func (r *recorder) Flush() {}
