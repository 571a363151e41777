//go:build cgosqlite

package pierredb_test

// wantSQLiteDriver is the driver sqliteshim picks with -tags cgosqlite.
const wantSQLiteDriver = "github.com/mattn/go-sqlite3"
