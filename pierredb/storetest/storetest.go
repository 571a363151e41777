// Package storetest is pierredb's conformance suite: every behaviour of every
// domain, run against every database engine pierredb supports (SQLite always,
// PostgreSQL when PIERREDB_TEST_POSTGRES_URL names a server). A host runs all of
// it against its own PostgreSQL server with one line in a test file:
//
//	func TestPierre(t *testing.T) { storetest.Conformance(t) }
//
// and can use the same engines for its own integration tests:
//
//	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
//		db := e.Open(t)
//		...
//	})
//
// Each test gets a database of its own (a file in t.TempDir(), or a fresh
// PostgreSQL schema dropped when the test ends), so tests run in parallel.
//
// Environment:
//
//	PIERREDB_TEST_POSTGRES_URL   e.g. postgres://postgres@127.0.0.1:5432/postgres
//	PIERREDB_REQUIRE_POSTGRES=1  a missing or unreachable server fails the test instead of skipping it
package storetest

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver for schema management
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// Environment variables the suite reads.
const (
	EnvPostgresURL     = "PIERREDB_TEST_POSTGRES_URL"
	EnvRequirePostgres = "PIERREDB_REQUIRE_POSTGRES"
)

// suiteCase is one behaviour test of the conformance suite, registered by the
// file of its domain.
type suiteCase struct {
	domain, name string
	run          func(t *testing.T)
}

var suite []suiteCase

// register adds a behaviour test to the suite; each domain file registers its
// own. run calls Run (or Engine methods) to reach the engines.
func register(domain, name string, run func(t *testing.T)) bool {
	suite = append(suite, suiteCase{domain: domain, name: name, run: run})
	return true
}

// Conformance runs every behaviour test of every domain on every available
// engine, as subtests named <Domain>/<Test>/<engine>: SQLite always, PostgreSQL
// when PIERREDB_TEST_POSTGRES_URL is set (and PIERREDB_REQUIRE_POSTGRES=1 makes a
// missing server a failure instead of a skip).
func Conformance(t *testing.T) {
	cases := slices.Clone(suite)
	slices.SortStableFunc(cases, func(a, b suiteCase) int {
		return cmp.Or(cmp.Compare(a.domain, b.domain), cmp.Compare(a.name, b.name))
	})
	byDomain := map[string][]suiteCase{}
	var domains []string
	for _, c := range cases {
		if _, ok := byDomain[c.domain]; !ok {
			domains = append(domains, c.domain)
		}
		byDomain[c.domain] = append(byDomain[c.domain], c)
	}
	for _, d := range domains {
		t.Run(d, func(t *testing.T) {
			for _, c := range byDomain[d] {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t)
				})
			}
		})
	}
}

// Engine is one database engine under test.
type Engine struct {
	// Backend is the engine; its name is the subtest name ("sqlite", "postgres").
	Backend pierredb.Backend
	// Key is the master key Open uses for this engine's databases.
	Key keyring.MasterKey
}

// Engines lists the engines to run: SQLite, and PostgreSQL unless it is
// unavailable and not required.
func Engines() []Engine {
	return []Engine{{Backend: pierredb.SQLite, Key: testKey}, {Backend: pierredb.Postgres, Key: testKey}}
}

// testKey is one fixed master key for all test databases of a process: tests that
// need another key make their own.
var testKey = func() keyring.MasterKey {
	k, err := keyring.Generate()
	if err != nil {
		panic(err)
	}
	return k
}()

// Run runs fn once per engine as subtests named after the engine, so test names
// read TestX/sqlite/... and TestX/postgres/....
func Run(t *testing.T, fn func(t *testing.T, e Engine)) {
	t.Helper()
	for _, e := range Engines() {
		t.Run(string(e.Backend), func(t *testing.T) {
			e.Require(t)
			fn(t, e)
		})
	}
}

// RunOn runs fn as Run does, on one engine only: for a behaviour that only one
// engine can show (SQLite's text timestamps, say), so that no engine reports a
// skipped subtest.
func RunOn(t *testing.T, backend pierredb.Backend, fn func(t *testing.T, e Engine)) {
	t.Helper()
	for _, e := range Engines() {
		if e.Backend == backend {
			t.Run(string(e.Backend), func(t *testing.T) {
				e.Require(t)
				fn(t, e)
			})
		}
	}
}

// Require skips (or, with PIERREDB_REQUIRE_POSTGRES=1, fails) t when the engine
// cannot run here.
func (e Engine) Require(t testing.TB) {
	t.Helper()
	if e.Backend != pierredb.Postgres {
		return
	}
	if _, err := adminDB(); err != nil {
		if os.Getenv(EnvRequirePostgres) == "1" {
			t.Fatalf("PostgreSQL is required (%s=1) but unavailable: %v", EnvRequirePostgres, err)
		}
		t.Skipf("PostgreSQL tests skipped: %v", err)
	}
}

// NewURL returns the URL of a fresh, empty database for t, removed when t ends:
// a file in t.TempDir() for SQLite, a new schema (via search_path) for PostgreSQL.
func (e Engine) NewURL(t testing.TB) string {
	t.Helper()
	e.Require(t)
	switch e.Backend {
	case pierredb.SQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "pierre.db")
	default:
		return newPostgresSchema(t)
	}
}

// Open opens a fresh database for t with the engine's key and closes it when t
// ends.
func (e Engine) Open(t testing.TB, opts ...pierredb.Option) *pierredb.Database {
	t.Helper()
	return e.OpenURL(t, e.NewURL(t), opts...)
}

// OpenURL opens url with the engine's key and closes it when t ends.
func (e Engine) OpenURL(t testing.TB, url string, opts ...pierredb.Option) *pierredb.Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := pierredb.OpenContext(ctx, url, e.Key, opts...)
	if err != nil {
		t.Fatalf("open %s test database: %v", e.Backend, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

var admin struct {
	once sync.Once
	db   *sql.DB
	err  error
}

// adminDB is the connection used to create and drop test schemas.
func adminDB() (*sql.DB, error) {
	admin.once.Do(func() {
		raw := os.Getenv(EnvPostgresURL)
		if raw == "" {
			admin.err = errNoURL
			return
		}
		db, err := sql.Open("pgx", raw)
		if err != nil {
			admin.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			_ = db.Close()
			admin.err = err
			return
		}
		db.SetMaxOpenConns(4)
		admin.db = db
	})
	return admin.db, admin.err
}

type noURLError struct{}

func (noURLError) Error() string { return EnvPostgresURL + " is not set" }

var errNoURL = noURLError{}

func newPostgresSchema(t testing.TB) string {
	t.Helper()
	db, err := adminDB()
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "pierretest_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		// Cleanups run after the test's context is cancelled: use a fresh one.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(os.Getenv(EnvPostgresURL))
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgresURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// OpenRaw opens url (a URL from NewURL) with the plain database/sql driver,
// bypassing pierre, and closes it when t ends: for tests that must look at or
// tamper with the stored bytes the way an operator with sqlite3 or psql would.
func (e Engine) OpenRaw(t testing.TB, url string) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	switch e.Backend {
	case pierredb.SQLite:
		db, err = sql.Open(sqliteshim.ShimName, "file:"+strings.TrimPrefix(url, "sqlite:"))
	default:
		db, err = sql.Open("pgx", url)
	}
	if err != nil {
		t.Fatalf("open raw %s connection: %v", e.Backend, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
