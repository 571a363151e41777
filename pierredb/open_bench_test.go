package pierredb_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// BenchmarkOpen measures Open end to end, each figure beside a floor measured
// in the same run (BENCHMARKS.md, "Opening a database"):
//
//	Open/<engine>/fresh           an empty database: every migration, a new keyring
//	Open/<engine>/migrated        a reopen: nothing to apply, the stored keyring unlocked
//	Open/sqlite/floor-fresh       a new file opened as pierre opens it: a writer pool and a
//	                              reader pool, each connection's pragmas, and their read-back
//	Open/sqlite/floor-migrated    the same on the migrated file (its schema is not read)
//	Open/postgres/floor           connect (TCP, startup, authentication) and run one query
//
// Close is outside the timer in every row. The figures move from process to
// process, so run the binary several times with -count 1 and compare each
// process's ratios (PIERREDB_BENCH_ROUNDS runs the rows in turn that many
// times within a process):
//
//	go test -c -o /tmp/pierredb.test ./pierredb/
//	for i in 1 2 3 4 5; do PIERREDB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//	  /tmp/pierredb.test -test.run '^$' -test.bench BenchmarkOpen -test.benchtime 20x -test.count 1; done
func BenchmarkOpen(b *testing.B) {
	for _, e := range storetest.Engines() {
		b.Run(string(e.Backend), rounds(func(b *testing.B) {
			e.Require(b)
			b.Run("fresh", func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					url := e.NewURL(b)
					b.StartTimer()
					db, err := pierredb.OpenContext(b.Context(), url, e.Key)
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					_ = db.Close()
					b.StartTimer()
				}
			})
			url := e.NewURL(b)
			db, err := pierredb.OpenContext(b.Context(), url, e.Key)
			if err != nil {
				b.Fatal(err)
			}
			pierreTLS := db.Info().Settings["ssl"]
			_ = db.Close()
			b.Run("migrated", func(b *testing.B) {
				for b.Loop() {
					db, err := pierredb.OpenContext(b.Context(), url, e.Key)
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					_ = db.Close()
					b.StartTimer()
				}
			})
			if e.Backend == pierredb.SQLite {
				b.Run("floor-fresh", func(b *testing.B) {
					dir := b.TempDir()
					i := 0
					for b.Loop() {
						i++
						closeFn, err := sqliteFloor(b.Context(), filepath.Join(dir, fmt.Sprintf("floor%d.db", i)), true)
						if err != nil {
							b.Fatal(err)
						}
						b.StopTimer()
						closeFn()
						b.StartTimer()
					}
				})
				b.Run("floor-migrated", func(b *testing.B) {
					path := strings.TrimPrefix(url, "sqlite:")
					for b.Loop() {
						closeFn, err := sqliteFloor(b.Context(), path, false)
						if err != nil {
							b.Fatal(err)
						}
						b.StopTimer()
						closeFn()
						b.StartTimer()
					}
				})
				return
			}
			b.Run("floor", func(b *testing.B) {
				// pgx would prefer TLS; pierre connects to a loopback server
				// without it: the floor uses the same transport.
				u, err := neturl.Parse(url)
				if err != nil {
					b.Fatal(err)
				}
				if q := u.Query(); q.Get("sslmode") == "" && pierreTLS == "false" {
					q.Set("sslmode", "disable")
					u.RawQuery = q.Encode()
				}
				for b.Loop() {
					pool, err := sql.Open("pgx", u.String())
					if err != nil {
						b.Fatal(err)
					}
					var one int
					if err := pool.QueryRowContext(b.Context(), "SELECT 1").Scan(&one); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					_ = pool.Close()
					b.StartTimer()
				}
			})
		}))
	}
}

// sqliteFloor opens a SQLite file as pierre's sqlite package does, and nothing
// more: a writer pool of one connection and a reader pool, each connection
// running its pragmas, then each pool's pragmas read back on one connection.
// create makes the file first (0600), as pierre does on first start.
func sqliteFloor(ctx context.Context, path string, create bool) (func(), error) {
	if create {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		_ = f.Close()
	}
	base := (&neturl.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()
	busy := "PRAGMA busy_timeout = 5000"
	writer := sql.OpenDB(&floorConnector{dsn: base + "?mode=rw&_txlock=immediate",
		pragmas: []string{busy, "PRAGMA foreign_keys = ON", "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"}})
	writer.SetMaxOpenConns(1)
	reader := sql.OpenDB(&floorConnector{dsn: base + "?mode=rw",
		pragmas: []string{busy, "PRAGMA foreign_keys = ON", "PRAGMA synchronous = NORMAL", "PRAGMA query_only = ON"}})
	reader.SetMaxOpenConns(2)
	closeFn := func() { _ = reader.Close(); _ = writer.Close() }
	for _, p := range []*sql.DB{writer, reader} {
		if err := floorReadBack(ctx, p); err != nil {
			closeFn()
			return nil, err
		}
	}
	return closeFn, nil
}

func floorReadBack(ctx context.Context, pool *sql.DB) error {
	conn, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, p := range []string{"foreign_keys", "synchronous", "busy_timeout", "journal_mode", "query_only"} {
		var v string
		if err := conn.QueryRowContext(ctx, "PRAGMA "+p).Scan(&v); err != nil {
			return fmt.Errorf("read back %s: %w", p, err)
		}
	}
	return nil
}

type floorConnector struct {
	dsn     string
	pragmas []string
}

func (c *floorConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := sqliteshim.Driver().Open(c.dsn)
	if err != nil {
		return nil, err
	}
	for _, p := range c.pragmas {
		if _, err := conn.(driver.ExecerContext).ExecContext(ctx, p, nil); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

func (c *floorConnector) Driver() driver.Driver { return sqliteshim.Driver() }
