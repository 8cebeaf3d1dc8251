package sqldb_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/open-autoglm/autoglm/internal/store/sqldb"
)

func TestScanTime(t *testing.T) {
	want := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)
	for _, src := range []any{want.UnixMicro(), want.In(time.FixedZone("x", 3600))} {
		var got time.Time
		if err := sqldb.ScanTime(&got).Scan(src); err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("Scan(%#v) = %v, %v; want %v in UTC", src, got, err, want)
		}
	}
	got := want
	if err := sqldb.ScanTime(&got).Scan(nil); err != nil || !got.IsZero() {
		t.Errorf("Scan(NULL) = %v, %v; want the zero time", got, err)
	}
	if err := sqldb.ScanTime(&got).Scan("2026-03-04"); err == nil {
		t.Error("Scan of a string as a time succeeded")
	}
	if v := sqldb.SQLite.NullTime(time.Time{}); v != nil {
		t.Errorf("NullTime(zero) = %v, want NULL", v)
	}
	if v := sqldb.SQLite.NullTime(want); v != want.UnixMicro() {
		t.Errorf("sqlite NullTime = %v", v)
	}
}

func TestStrings(t *testing.T) {
	list := []string{"glm-4", `a "quoted", name`}
	if got := sqldb.SQLite.Strings(list); got != `["glm-4","a \"quoted\", name"]` {
		t.Errorf("sqlite Strings = %#v", got)
	}
	if got := sqldb.SQLite.Strings(nil); got != "" {
		t.Errorf("sqlite Strings(nil) = %#v, want empty text", got)
	}
	if got := sqldb.Postgres.Strings(nil); got != nil {
		t.Errorf("postgres Strings(nil) = %#v, want NULL", got)
	}
	if got, ok := sqldb.Postgres.Strings(list).([]string); !ok || !cmp.Equal(got, list) {
		t.Errorf("postgres Strings = %#v", got)
	}
	for _, src := range []any{sqldb.SQLite.Strings(list), []byte(sqldb.SQLite.Strings(list).(string))} {
		var got []string
		if err := sqldb.ScanStrings(&got).Scan(src); err != nil || !cmp.Equal(got, list) {
			t.Errorf("ScanStrings(%#v) = %#v, %v", src, got, err)
		}
	}
	got := list
	if err := sqldb.ScanStrings(&got).Scan(""); err != nil || got != nil {
		t.Errorf("ScanStrings(\"\") = %#v, %v; want nil", got, err)
	}
	if err := sqldb.ScanStrings(&got).Scan("{a,b}"); err == nil {
		t.Error("ScanStrings read a PostgreSQL array literal; StringsCol must be used")
	}
}
