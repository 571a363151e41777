// Package engine is the contract between pierredb and its dialect packages
// (pierredb/sqlite, pierredb/postgres). A dialect opens connections and returns an
// Engine; pierredb writes every query once against the Engine's bun handles.
// Dialects import this package, never pierredb itself, so imports run one way.
package engine

import (
	"context"
	"database/sql"
	"io/fs"

	"github.com/uptrace/bun"
)

// Backend names a database engine.
type Backend string

// The supported backends.
const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// Engine is an open database as a dialect hands it to pierredb.
type Engine struct {
	Backend Backend
	// Writer runs every write and every transaction. On SQLite it is a pool of one
	// connection whose transactions begin IMMEDIATE; on PostgreSQL it is the pool.
	Writer *bun.DB
	// Reader runs plain reads. On SQLite it is a separate query_only pool; on
	// PostgreSQL (and SQLite in memory) it is the same pool as Writer.
	Reader *bun.DB
	// Migrations holds this dialect's *.sql migrations at its root, and nothing else.
	Migrations fs.FS
	// LockMigrations serialises migration runs across processes and returns the
	// function that releases the lock. It may be nil when the Writer transactions
	// alone serialise writers (SQLite).
	LockMigrations func(ctx context.Context) (unlock func(), err error)
	// PrepareSchema runs under the migration lock before migrations (PostgreSQL
	// creates the schema named by search_path). It may be nil.
	PrepareSchema func(ctx context.Context) error
	// Classify maps a driver error onto the sentinel errors of this package and keeps
	// the driver error in the chain. It returns nil for nil.
	Classify func(err error) error
	// ReadOnly reports that the database was opened read-only (SQLite mode=ro).
	ReadOnly bool
	// Info describes the connection for diagnostics: no secrets.
	Info Info
	// Close releases every pool.
	Close func() error
}

// Info is what a dialect reports about an open database.
type Info struct {
	// Driver is the Go driver in use: "modernc.org/sqlite", "github.com/mattn/go-sqlite3"
	// or "github.com/jackc/pgx/v5".
	Driver string
	// Location is where the data lives, with any password removed: a file path,
	// ":memory:", or host:port/database.
	Location string
	// Settings holds the connection settings read back from the server after they were
	// applied (SQLite pragmas; PostgreSQL search_path, application_name, ...).
	Settings map[string]string
}

// Stats returns the pool statistics of the writer and reader pools.
func (e *Engine) Stats() (write, read sql.DBStats) {
	return e.Writer.DB.Stats(), e.Reader.DB.Stats()
}
