//go:build !cgosqlite

package pierredb_test

// wantSQLiteDriver is the driver sqliteshim picks without -tags cgosqlite on the
// platforms CI runs (linux/amd64).
const wantSQLiteDriver = "modernc.org/sqlite"
