// Package sqlite is pierredb's SQLite connector: file and in-memory databases,
// per-connection pragmas that are read back at startup, a single-connection writer
// pool whose transactions begin IMMEDIATE beside a small query_only reader pool, the
// embedded SQLite migrations and the mapping of SQLite errors onto pierredb's
// sentinel errors.
//
// pierredb.Open picks this package for "sqlite:" URLs, so most applications never
// name it. A host that keeps its settings elsewhere builds a Connector from a path
// and settings and hands it to pierredb.OpenConnector:
//
//	c, err := sqlite.NewConnector(sqlite.Config{Path: "/var/lib/pierre/users.db", BusyTimeout: 2 * time.Second})
//	// handle err
//	db, err := pierredb.OpenConnector(ctx, c, key)
//
// ParseURL turns a "sqlite:" URL into the same Config.
//
// It works with either driver that bun's sqliteshim selects: modernc.org/sqlite (the
// default, pure Go) or github.com/mattn/go-sqlite3 (build with -tags cgosqlite).
// Pragmas are executed as statements on every new connection rather than spelled in
// the DSN, because each driver silently ignores the other's DSN pragma syntax.
package sqlite
