package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Shared is a store's database as other packages use it for tables of their own (the task
// queue, batches, stored responses), so that they need not know which driver opened it.
type Shared struct {
	// W runs every write (and reads inside write transactions). On SQLite it is the store's
	// single writer connection, so writes to other tables queue behind the store's in Go.
	W *sql.DB
	// R runs reads outside transactions. On SQLite it is the query-only reader pool.
	R *sql.DB
	// Postgres selects PostgreSQL's SQL dialect ($n placeholders, SKIP LOCKED, NOTIFY); see
	// sqlschema.Rebind.
	Postgres bool
	// Listen, on PostgreSQL, LISTENs on channel on a connection of its own, calls ready once
	// listening and fn with the payload of each notification, until ctx ends or the
	// connection fails (its error is returned). Nil on SQLite, where one process owns the
	// database and nothing needs to be heard.
	Listen func(ctx context.Context, channel string, ready func(), fn func(payload string)) error
	// Close releases what Share made for this use; the store itself stays open.
	Close func() error
}

// Sharer is implemented by stores whose database other tables may share: both drivers.
type Sharer interface {
	// Share returns the database handles; call Close on the result when done with them.
	Share() Shared
}

// Share returns the shared database of st, or an error when its driver has none.
func Share(st Store) (Shared, error) {
	s, ok := st.(Sharer)
	if !ok {
		return Shared{}, fmt.Errorf("store: %T does not share its database", st)
	}
	return s.Share(), nil
}
