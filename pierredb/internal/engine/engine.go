// Package engine is the contract between pierredb and its dialect packages
// (pierredb/sqlite, pierredb/postgres). A dialect opens connections and builds an
// Engine: the pools, the migrations, and every way the engine differs from the
// other one, as data and functions. pierredb writes each query once against the
// Engine and never asks which engine it runs on.
//
// Dialects import this package, never pierredb itself, so imports run one way.
package engine

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"sync"
	"time"

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
	// ReadOnly reports that the database was opened read-only (SQLite mode=ro).
	ReadOnly bool
	// Info describes the connection for diagnostics: no secrets.
	Info Info

	Dialect

	// LockMigrations serialises migration runs across processes and returns the
	// function that releases the lock. It may be nil when the Writer transactions
	// alone serialise writers (SQLite).
	LockMigrations func(ctx context.Context) (unlock func(), err error)
	// PrepareSchema runs under the migration lock before migrations (PostgreSQL
	// creates the schema that pierre's tables live in). It may be nil.
	PrepareSchema func(ctx context.Context) error
	// Close releases every pool the dialect opened (and none the host lent it).
	Close func() error
}

// Dialect is everything that differs between the engines once connected.
type Dialect struct {
	// RowLock is the locking clause a SELECT takes on rows that its transaction
	// will change ("UPDATE" on PostgreSQL), or "" where a write transaction already
	// excludes every other writer (SQLite's IMMEDIATE transactions).
	RowLock string
	// LockName takes a lock named name that lasts until tx ends, so that
	// transactions that check an invariant over many rows (another admin remains,
	// another owner remains) run one at a time. It is a no-op where write
	// transactions are already serial (SQLite).
	LockName func(ctx context.Context, tx bun.IDB, name string) error
	// TableExists reports whether pierre's schema holds table.
	TableExists func(ctx context.Context, db bun.IDB, table string) (bool, error)
	// TimeParam is how a statement writes a bound timestamp where the engine
	// cannot tell its type from a column (a branch of CASE): "?" on SQLite, which
	// stores timestamps as text, "CAST(? AS TIMESTAMPTZ)" on PostgreSQL.
	TimeParam string
	// Rebind turns the '?' placeholders of a hand-written statement into the
	// engine's own. Statements passed to it hold no '?' inside literals.
	Rebind func(query string) string
	// Classify maps a driver error onto the sentinel errors of this package and
	// keeps the driver error in the chain. It returns nil for nil.
	Classify func(err error) error
	// RelaxedCommitOne is an SQL expression of value 1 which, evaluated in a
	// statement that runs on its own (not in an explicit transaction), lets the
	// statement's commit return before its WAL record is on disk: on PostgreSQL it
	// sets synchronous_commit to off for that transaction only. It is "1" on
	// SQLite, whose commits in WAL mode with synchronous=NORMAL never wait for the
	// disk. Only request counting uses it.
	RelaxedCommitOne string
	// UsageFlushInterval is how often request counts kept in memory are written
	// by default: SQLite serves a database file from one process, so counts can
	// be kept in memory and written in batches; PostgreSQL databases are shared
	// by many instances, which count in the database per request (zero).
	UsageFlushInterval time.Duration
	// WritingCTE reports that a statement may hold INSERT … RETURNING in its
	// WITH clause and read the rows it returns (PostgreSQL), so that a lookup
	// and a write can share one round trip. SQLite allows only SELECT there.
	WritingCTE bool
}

// ForUpdate is the SQL suffix that locks the rows a SELECT reads until the
// transaction ends: " FOR UPDATE", or "" where RowLock is empty.
func (d Dialect) ForUpdate() string {
	if d.RowLock == "" {
		return ""
	}
	return " FOR " + d.RowLock
}

// Info is what a dialect reports about an open database.
type Info struct {
	// Driver is the Go driver in use: "modernc.org/sqlite", "github.com/mattn/go-sqlite3"
	// or "github.com/jackc/pgx/v5".
	Driver string
	// Location is where the data lives, with any password removed: a file path,
	// ":memory:", or host:port/database.
	Location string
	// Schema is the PostgreSQL schema that holds pierre's tables ("" on SQLite).
	Schema string
	// Settings holds the connection settings read back from the server after they were
	// applied (SQLite pragmas; PostgreSQL search_path, application_name, ...).
	Settings map[string]string
}

// Stats returns the pool statistics of the writer and reader pools.
func (e *Engine) Stats() (write, read sql.DBStats) {
	return e.Writer.DB.Stats(), e.Reader.DB.Stats()
}

// Connect functions are registered by the dialect packages for their public
// connector types, so that pierredb can open a connector without a dialect
// exporting a function that returns this package's types.
var (
	connectMu sync.RWMutex
	connects  = map[string]func(ctx context.Context, connector any) (*Engine, error){}
)

// Register records how to open the connectors of dialect name. Dialect packages
// call it from init.
func Register(name string, connect func(ctx context.Context, connector any) (*Engine, error)) {
	connectMu.Lock()
	defer connectMu.Unlock()
	connects[name] = connect
}

// Connect opens connector, which names its dialect.
func Connect(ctx context.Context, dialect string, connector any) (*Engine, error) {
	connectMu.RLock()
	connect := connects[dialect]
	connectMu.RUnlock()
	if connect == nil {
		return nil, fmt.Errorf("%w: no dialect %q is linked in; use a connector from pierredb/sqlite or pierredb/postgres", ErrInvalidArgument, dialect)
	}
	return connect(ctx, connector)
}
