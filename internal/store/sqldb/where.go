package sqldb

import (
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/store"
)

// Where builds a WHERE clause of ANDed conditions for list and filter queries. Conditions
// are written with ? placeholders; SQL renders the whole query in the dialect.
type Where struct {
	d     Dialect
	conds []string
	args  []any
}

// Where starts an empty clause.
func (d Dialect) Where() *Where { return &Where{d: d} }

// Add appends cond with its arguments.
func (w *Where) Add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// Eq adds col = v unless v is empty (no filter).
func (w *Where) Eq(col, v string) {
	if v != "" {
		w.Add(col+" = ?", v)
	}
}

// Period adds from <= col < to; a zero bound is open.
func (w *Where) Period(col string, from, to time.Time) {
	if !from.IsZero() {
		w.Add(col+" >= ?", w.d.Time(from))
	}
	if !to.IsZero() {
		w.Add(col+" < ?", w.d.Time(to))
	}
}

// After continues a (time DESC, id DESC) listing after cursor; an empty cursor is the
// first page. A cursor that is not a (time, id) one is store.ErrInvalid.
func (w *Where) After(cursor, timeCol, idCol string) error {
	if cursor == "" {
		return nil
	}
	c, err := store.ParseCursor(cursor)
	if err != nil || c.Time.IsZero() {
		return w.d.Invalid("", "malformed cursor")
	}
	t := w.d.Time(c.Time)
	if w.d.postgres {
		// A row comparison is one index range on PostgreSQL.
		w.Add("("+timeCol+", "+idCol+") < (?, ?)", t, c.ID)
	} else {
		w.Add("("+timeCol+" < ? OR ("+timeCol+" = ? AND "+idCol+" < ?))", t, t, c.ID)
	}
	return nil
}

// AfterSeq continues an id DESC listing of records after cursor.
func (w *Where) AfterSeq(cursor string) error {
	if cursor == "" {
		return nil
	}
	c, err := store.ParseCursor(cursor)
	if err != nil || !c.Time.IsZero() || c.ID != "" {
		return w.d.Invalid("", "malformed cursor")
	}
	w.Add("id < ?", c.Seq)
	return nil
}

// String is the clause, " WHERE ...", with ? placeholders; empty when there are no
// conditions.
func (w *Where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// SQL is head + the clause + tail in the dialect, with the arguments of the conditions
// followed by extra (for placeholders in tail, such as LIMIT ?).
func (w *Where) SQL(head, tail string, extra ...any) (string, []any) {
	args := make([]any, 0, len(w.args)+len(extra))
	args = append(append(args, w.args...), extra...)
	return w.d.Rebind(head + w.String() + tail), args
}

// PageOf makes a page from rows fetched with LIMIT limit+1: a row beyond limit means
// there is a next page, continuing after the last item kept (at returns its cursor).
func PageOf[T any](rows []T, limit int, at func(T) store.Cursor) store.Page[T] {
	if len(rows) <= limit {
		return store.Page[T]{Items: rows}
	}
	rows = rows[:limit]
	return store.Page[T]{Items: rows, Next: at(rows[limit-1]).String()}
}
