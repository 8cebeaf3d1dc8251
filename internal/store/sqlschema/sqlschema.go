// Package sqlschema applies the append-only migrations of each component that keeps its own
// tables in the store's database (tasks, stored responses, batches), recorded in a
// per-component version table and serialised between replicas on PostgreSQL. The SQL of a
// migration is written once for both dialects.
package sqlschema

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/store/sqldb"
)

// Schema describes one component's migrations.
type Schema struct {
	// Name prefixes errors ("task", "batch").
	Name string
	// Table records the applied versions (created when missing).
	Table string
	// Lock is the PostgreSQL advisory lock key that serialises migrations between replicas.
	Lock int64
	// Migrations are applied in order, each once; version i+1 is Migrations[i]. Append only.
	// Each is one or more statements separated by ';', valid on both dialects.
	Migrations []string
}

// Migrate applies the migrations db has not seen yet, in one transaction. A database
// whose recorded version is newer than len(Migrations) is refused: an older binary must
// not run against tables it does not know.
func Migrate(ctx context.Context, db *sql.DB, d sqldb.Dialect, s Schema) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: migrate: %w", s.Name, err)
	}
	defer func() { _ = tx.Rollback() }()
	if d.IsPostgres() {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, s.Lock); err != nil {
			return fmt.Errorf("%s: migrate: %w", s.Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+s.Table+` (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("%s: migrate: %w", s.Name, err)
	}
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM `+s.Table).Scan(&have); err != nil {
		return fmt.Errorf("%s: migrate: %w", s.Name, err)
	}
	if have > len(s.Migrations) {
		return fmt.Errorf("%s: schema version %d is newer than this binary knows (%d); upgrade autoglm", s.Name, have, len(s.Migrations))
	}
	for v := have + 1; v <= len(s.Migrations); v++ {
		for _, stmt := range strings.Split(s.Migrations[v-1], ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("%s: migration %d: %w", s.Name, v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO `+s.Table+` (version, applied_at) VALUES (?, ?)`), v, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("%s: migration %d: %w", s.Name, v, err)
		}
	}
	return tx.Commit()
}
