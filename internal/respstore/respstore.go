// Package respstore keeps the stored responses of the OpenAI Responses API in the store's
// database (SQLite or PostgreSQL), so previous_response_id and GET /v1/responses/{id} work
// across restarts and replicas.
//
// Its tables come from its own migrations, recorded in response_schema, like the task
// system's: the store's migrations never touch them.
package respstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/open-autoglm/autoglm/internal/store/sqlschema"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/postgres"
	"github.com/open-autoglm/autoglm/internal/store/sqlite"
)

// Store is an openai.ResponseStore on a SQL database.
type Store struct {
	w, r     *sql.DB
	postgres bool
	owned    *sql.DB // closed by Close (PostgreSQL's database/sql view of the pool)
}

var _ openai.ResponseStore = (*Store)(nil)

// migrations are applied in order, each once, recorded in response_schema. Append only.
var migrations = []string{
	`CREATE TABLE responses (
		id         TEXT PRIMARY KEY,
		owner      TEXT NOT NULL,
		model      TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		response   TEXT NOT NULL,
		input      TEXT NOT NULL,
		context    TEXT NOT NULL
	);
	CREATE INDEX responses_created ON responses (created_at)`,
	// 2: the input and output items of stored responses, by id, for item_reference inputs.
	`CREATE TABLE response_items (
		id          TEXT PRIMARY KEY,
		owner       TEXT NOT NULL,
		response_id TEXT NOT NULL,
		item        TEXT NOT NULL
	);
	CREATE INDEX response_items_response ON response_items (response_id)`,
}

// migrationLock is the PostgreSQL advisory lock that serialises migrations between replicas.
const migrationLock = 0x72657370 // "resp"

// Open opens the response tables in st's database, creating them when needed.
func Open(ctx context.Context, st store.Store) (*Store, error) {
	s := &Store{}
	switch v := st.(type) {
	case *sqlite.Store:
		s.w, s.r = v.WriteDB(), v.ReadDB()
	case *postgres.Store:
		db := stdlib.OpenDBFromPool(v.Pool())
		s.w, s.r, s.postgres, s.owned = db, db, true, db
	default:
		return nil, fmt.Errorf("respstore: store %T is not supported", st)
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Close releases what Open made; the store itself stays open.
func (s *Store) Close() error {
	if s.owned != nil {
		return s.owned.Close()
	}
	return nil
}

func (s *Store) q(query string) string {
	return sqlschema.Rebind(s.postgres, query)
}

func (s *Store) migrate(ctx context.Context) error {
	return sqlschema.Migrate(ctx, s.w, s.postgres, sqlschema.Schema{Name: "respstore", Table: "response_schema", Lock: int64(migrationLock), Migrations: migrations})
}

// PutResponse stores r and its items in one transaction, replacing a response of the same
// id and owner.
func (s *Store) PutResponse(ctx context.Context, r *openai.StoredResponse) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("respstore: put %s: %w", r.ID, err)
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO responses (id, owner, model, created_at, response, input, context)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET response = excluded.response, input = excluded.input, context = excluded.context
		WHERE responses.owner = excluded.owner`),
		r.ID, r.Owner, r.Model, r.Created.UnixMicro(), string(r.Response), string(r.Input), string(r.Context))
	if err != nil {
		return fmt.Errorf("respstore: put %s: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // another owner's response has this id; nothing of this one is kept
	}
	for id, it := range r.Items {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO response_items (id, owner, response_id, item) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET item = excluded.item, response_id = excluded.response_id
			WHERE response_items.owner = excluded.owner`), id, r.Owner, r.ID, string(it)); err != nil {
			return fmt.Errorf("respstore: put %s: item %s: %w", r.ID, id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("respstore: put %s: %w", r.ID, err)
	}
	return nil
}

// GetItems returns the owner's stored items among ids.
func (s *Store) GetItems(ctx context.Context, owner string, ids []string) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(ids))
	for _, id := range ids {
		var it string
		err := s.r.QueryRowContext(ctx, s.q(`SELECT item FROM response_items WHERE id = ? AND owner = ?`), id, owner).Scan(&it)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("respstore: item %s: %w", id, err)
		}
		out[id] = json.RawMessage(it)
	}
	return out, nil
}

var errNotFound = apierr.New(apierr.CodeResponseNotFound, "no such response")

// GetResponse returns the owner's response id.
func (s *Store) GetResponse(ctx context.Context, owner, id string) (*openai.StoredResponse, error) {
	r := &openai.StoredResponse{ID: id, Owner: owner}
	var created int64
	var resp, input, conv string
	err := s.r.QueryRowContext(ctx, s.q(`SELECT model, created_at, response, input, context FROM responses WHERE id = ? AND owner = ?`),
		id, owner).Scan(&r.Model, &created, &resp, &input, &conv)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("respstore: get %s: %w", id, err)
	}
	r.Created = time.UnixMicro(created).UTC()
	r.Response, r.Input, r.Context = []byte(resp), []byte(input), []byte(conv)
	return r, nil
}

// DeleteResponse deletes the owner's response id.
func (s *Store) DeleteResponse(ctx context.Context, owner, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("respstore: delete %s: %w", id, err)
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, s.q(`DELETE FROM responses WHERE id = ? AND owner = ?`), id, owner)
	if err != nil {
		return fmt.Errorf("respstore: delete %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNotFound
	}
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM response_items WHERE response_id = ?`), id); err != nil {
		return fmt.Errorf("respstore: delete %s: %w", id, err)
	}
	return tx.Commit()
}

// DeleteBefore deletes the responses created before t and returns how many went.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	if _, err := s.w.ExecContext(ctx, s.q(`DELETE FROM response_items WHERE response_id IN (SELECT id FROM responses WHERE created_at < ?)`), t.UnixMicro()); err != nil {
		return 0, fmt.Errorf("respstore: delete before: %w", err)
	}
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM responses WHERE created_at < ?`), t.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("respstore: delete before: %w", err)
	}
	return res.RowsAffected()
}
