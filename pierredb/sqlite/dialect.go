package sqlite

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// dialect is how SQLite differs from PostgreSQL once connected.
func dialect() engine.Dialect {
	return engine.Dialect{
		// Every write transaction begins IMMEDIATE on the single writer connection,
		// so it already excludes every other writer: no row lock clause.
		RowLock:     "",
		LockName:    lockName,
		TableExists: tableExists,
		Rebind:      rebind,
		TimeParam:   "?",
		Classify:    classify,
		// WAL commits with synchronous=NORMAL never wait for the disk.
		RelaxedCommitOne: "1",
		// One process serves a file: counts can wait in memory for a second.
		UsageFlushInterval: time.Second,
	}
}

// lockName is a no-op: write transactions are serial on SQLite, so a transaction
// that checks an invariant over many rows already runs alone.
func lockName(context.Context, bun.IDB, string) error { return nil }

// tableExists reports whether the main database holds a table (not a view) named
// table. SQLite has one schema per database file, so "pierre's schema" is main.
func tableExists(ctx context.Context, db bun.IDB, table string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", table).Scan(&n)
	if err != nil {
		return false, classify(err)
	}
	return n > 0, nil
}

// rebind is the identity: SQLite takes '?' placeholders as they are.
func rebind(query string) string { return query }
