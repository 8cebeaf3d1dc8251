package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/open-autoglm/autoglm/internal/store"
)

// The values whose stored form differs between the two databases: times (INTEGER
// microseconds on SQLite, timestamptz on PostgreSQL) and lists of strings (JSON text on
// SQLite, text[] on PostgreSQL). An argument is made by a Dialect method; a column is read
// back with a Scan* destination that accepts either stored form, so the scanning code is
// the same for both.

// NullTime is the argument for a nullable time column: NULL for the zero time, Time(t)
// otherwise.
func (d Dialect) NullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.Time(t)
}

// ScanTime is a Scan destination for a time column of either dialect: microseconds since
// the epoch (SQLite) or a timestamp (PostgreSQL), in UTC; NULL is the zero time.
func ScanTime(t *time.Time) sql.Scanner { return (*timeDest)(t) }

type timeDest time.Time

func (p *timeDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*p = timeDest{}
	case int64:
		*p = timeDest(time.UnixMicro(v).UTC())
	case time.Time:
		*p = timeDest(v.UTC())
	default:
		return fmt.Errorf("sqldb: a %T is not a stored time", src)
	}
	return nil
}

// Strings is the argument for a list-of-strings column: JSON text, "" for an empty list,
// on SQLite; a text[], NULL for an empty list, on PostgreSQL.
func (d Dialect) Strings(v []string) any {
	if d.postgres {
		if len(v) == 0 {
			return nil
		}
		return v
	}
	if len(v) == 0 {
		return ""
	}
	b, _ := json.Marshal(v) // a []string always marshals
	return string(b)
}

// StringsCol is the select expression that reads list-of-strings column col as JSON text,
// "" for an empty list, for ScanStrings.
func (d Dialect) StringsCol(col string) string {
	if d.postgres {
		return "COALESCE(array_to_json(" + col + ")::text, '')"
	}
	return col
}

// ScanStrings is a Scan destination for a StringsCol expression; "" is a nil list.
func ScanStrings(v *[]string) sql.Scanner { return (*stringsDest)(v) }

type stringsDest []string

func (p *stringsDest) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("sqldb: a %T is not a stored list", src)
	}
	*p = nil
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, (*[]string)(p))
}

// ForUpdate is the clause that locks the rows a SELECT inside a write transaction reads
// until it commits: FOR UPDATE on PostgreSQL; nothing on SQLite, whose write transactions
// already exclude each other (BEGIN IMMEDIATE on the one writer).
func (d Dialect) ForUpdate() string {
	if d.postgres {
		return " FOR UPDATE"
	}
	return ""
}

// PrepareOnce reports whether a statement run often (a batch insert) should be prepared
// once by its caller: on SQLite, whose database/sql driver parses the text of every Exec;
// not on PostgreSQL, where pgx already keeps one prepared statement per text and
// connection, and a database/sql statement prepared besides it measured slower.
func (d Dialect) PrepareOnce() bool { return !d.postgres }

// RowQueryer runs a query that returns one row: *sql.DB, *sql.Tx and *sql.Conn.
type RowQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Now is the time a store stamps on the rows it writes (created, updated, revoked), to the
// microsecond, in UTC. On PostgreSQL it is the database's clock (clock_timestamp(), read
// through q), so replicas whose clocks disagree stamp rows on one clock; on SQLite, whose
// file one process writes, it is the process's clock, and a caller inside a write
// transaction holds the one writer, so times are taken in commit order.
func (d Dialect) Now(ctx context.Context, q RowQueryer) (time.Time, error) {
	if !d.postgres {
		return store.Micro(time.Now()), nil
	}
	var t time.Time
	if err := q.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&t); err != nil {
		return time.Time{}, err
	}
	return store.Micro(t), nil
}
