package config

import (
	"strings"
	"time"
)

// Store is the "store" section: where users, API keys, usage and audit records (and later the
// task queue) live.
type Store struct {
	// Driver is "sqlite" (embedded, one process) or "postgres" (shared by replicas).
	// Default "sqlite".
	Driver string `yaml:"driver"`
	// Path is the SQLite database file. A relative path is taken relative to the server's data
	// directory. Default "autoglm.db" (so <data-dir>/autoglm.db). Only for driver sqlite.
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string (URL or key=value form; pgxpool settings such as
	// pool_max_conns are accepted). Required for driver postgres, refused for sqlite. Write
	// secrets as ${ENV} references. Default: none.
	DSN string `yaml:"dsn"`
	// ReadConns is the number of SQLite reader connections (there is always exactly one
	// writer). Default 4. Only for driver sqlite.
	ReadConns int `yaml:"read_conns"`
	// Batch configures the asynchronous writer of usage and audit records.
	Batch StoreBatch `yaml:"batch"`
	// AuditRetention is how long audit records are kept. Default 2160h (90 days).
	AuditRetention Duration `yaml:"audit_retention"`
	// UsageRetention is how long usage records are kept; at least 768h (32 days) so that
	// monthly quotas see a whole month. Default 9600h (400 days).
	UsageRetention Duration `yaml:"usage_retention"`
}

// StoreBatch configures how usage and audit records from the request path are queued and
// written in batches.
type StoreBatch struct {
	// Size is the most records written in one transaction; a batch is written as soon as this
	// many are queued. Default 512.
	Size int `yaml:"size"`
	// Interval is the longest a queued record waits before its batch is written. Default 200ms.
	Interval Duration `yaml:"interval"`
	// Queue bounds the records held in memory while the store is slow or down; records
	// arriving when it is full are dropped and counted. Default 65536.
	Queue int `yaml:"queue"`
}

// Store defaults.
const (
	DefaultStoreDriver     = "sqlite"
	DefaultStorePath       = "autoglm.db"
	DefaultStoreReadConns  = 4
	DefaultBatchSize       = 512
	DefaultBatchInterval   = 200 * time.Millisecond
	DefaultBatchQueue      = 65536
	DefaultAuditRetention  = 90 * 24 * time.Hour
	DefaultUsageRetention  = 400 * 24 * time.Hour
	minUsageRetention      = 32 * 24 * time.Hour
	maxStoreReadConns      = 256
	maxBatchSize           = 100000
	minBatchInterval       = time.Millisecond
	maxBatchIntervalLength = time.Minute
)

// withDefaults returns a copy with empty fields set to their defaults.
func (x Store) withDefaults() Store {
	if x.Driver == "" {
		x.Driver = DefaultStoreDriver
	}
	if x.Driver == "sqlite" {
		if x.Path == "" {
			x.Path = DefaultStorePath
		}
		if x.ReadConns == 0 {
			x.ReadConns = DefaultStoreReadConns
		}
	}
	if x.Batch.Size == 0 {
		x.Batch.Size = DefaultBatchSize
	}
	if x.Batch.Interval == 0 {
		x.Batch.Interval = Duration(DefaultBatchInterval)
	}
	if x.Batch.Queue == 0 {
		x.Batch.Queue = DefaultBatchQueue
	}
	if x.AuditRetention == 0 {
		x.AuditRetention = Duration(DefaultAuditRetention)
	}
	if x.UsageRetention == 0 {
		x.UsageRetention = Duration(DefaultUsageRetention)
	}
	return x
}

// validate reports each bad field through bad, naming it by its full path ("store.…").
func (x Store) validate(bad func(path, format string, args ...any)) {
	switch x.Driver {
	case "sqlite":
		if x.DSN != "" {
			bad("store.dsn", "is for driver postgres; driver sqlite takes store.path")
		}
		// The driver reads parameters after '?' in a file name, so one there would be taken
		// for options instead of part of the name.
		if strings.ContainsAny(x.Path, "?#") || strings.HasPrefix(x.Path, "file:") {
			bad("store.path", "must be a plain file path without '?', '#' or a file: prefix, got %q", x.Path)
		}
		if x.ReadConns < 1 || x.ReadConns > maxStoreReadConns {
			bad("store.read_conns", "must be between 1 and %d, got %d", maxStoreReadConns, x.ReadConns)
		}
	case "postgres":
		if x.DSN == "" {
			bad("store.dsn", "is required for driver postgres")
		}
		if x.Path != "" {
			bad("store.path", "is for driver sqlite; driver postgres takes store.dsn")
		}
		if x.ReadConns != 0 {
			bad("store.read_conns", "is for driver sqlite; set pool_max_conns in store.dsn instead")
		}
	default:
		bad("store.driver", "must be sqlite or postgres, got %q", x.Driver)
	}
	if x.Batch.Size < 1 || x.Batch.Size > maxBatchSize {
		bad("store.batch.size", "must be between 1 and %d, got %d", maxBatchSize, x.Batch.Size)
	}
	if d := x.Batch.Interval.D(); d < minBatchInterval || d > maxBatchIntervalLength {
		bad("store.batch.interval", "must be between 1ms and 1m, got %s", d)
	}
	if x.Batch.Queue < x.Batch.Size {
		bad("store.batch.queue", "must be at least store.batch.size (%d), got %d", x.Batch.Size, x.Batch.Queue)
	}
	if x.AuditRetention < 0 {
		bad("store.audit_retention", "must not be negative")
	}
	if d := x.UsageRetention.D(); d < minUsageRetention {
		bad("store.usage_retention", "must be at least 768h (32 days) so monthly quotas see a whole month, got %s", d)
	}
}
