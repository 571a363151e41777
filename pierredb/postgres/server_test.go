package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// The tests in this file need a server: PIERREDB_TEST_POSTGRES_URL, for example
// postgres://postgres@127.0.0.1:5432/postgres, as a role that may create roles,
// databases and schemas. Every object they create has a unique name and is
// dropped in t.Cleanup.

func serverURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("PIERREDB_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("PIERREDB_TEST_POSTGRES_URL is not set")
	}
	return u
}

// withURL returns base changed by edit.
func withURL(t testing.TB, base string, edit func(u *url.URL, q url.Values)) string {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	q, err := parseQuery(u.RawQuery)
	require.NoError(t, err)
	edit(u, q)
	u.RawQuery = encodeQuery(q) // '+' is a plus sign for libpq and pgx
	return u.String()
}

func withParam(t testing.TB, base, key, value string) string {
	return withURL(t, base, func(_ *url.URL, q url.Values) { q.Set(key, value) })
}

func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// adminExec runs statements as the test URL's role on a connection of its own.
func adminExec(t *testing.T, sqls ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, serverURL(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	for _, s := range sqls {
		_, err := conn.Exec(ctx, s)
		require.NoError(t, err, s)
	}
}

// cleanup registers statements to run at the end of the test, even if its
// context is gone.
func cleanup(t testing.TB, sqls ...string) {
	t.Helper()
	url := serverURL(t)
	ctx := context.WithoutCancel(t.Context())
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer conn.Close(ctx)
		for _, s := range sqls {
			if _, err := conn.Exec(ctx, s); err != nil {
				t.Errorf("cleanup %s: %v", s, err)
			}
		}
	})
}

// dropSchemaLater creates nothing; it drops schema when the test ends.
func dropSchemaLater(t testing.TB, schema string) {
	cleanup(t, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
}

func connect(t testing.TB, c *Connector) (*engine.Engine, error) {
	t.Helper()
	e, err := engine.Connect(t.Context(), "postgres", c)
	if err == nil {
		t.Cleanup(func() { _ = e.Close() })
	}
	return e, err
}

func openURL(t testing.TB, raw string) *engine.Engine {
	t.Helper()
	c, err := NewConnector(Config{URL: raw, MaxConns: 4})
	require.NoError(t, err)
	e, err := connect(t, c)
	require.NoError(t, err)
	return e
}

// evil are display names that become SQL when standard_conforming_strings is
// off and bun escapes them for on.
var evil = []string{
	`\' , is_admin = true --`,
	`\'`,
	`\`,
	`a\\'b`,
	`\''); DROP TABLE users; --`,
	`O'Brien`,
}

// roundTrip formats each evil string into SQL text with bun and reads it back.
func roundTrip(ctx context.Context, db bun.IDB) error {
	for _, s := range evil {
		var got string
		if err := db.NewSelect().ColumnExpr("?", s).Scan(ctx, &got); err != nil {
			return err
		}
		if got != s {
			return errors.New("value changed: " + got)
		}
	}
	return nil
}

// TestStandardConformingStringsCannotBeTurnedOff tries every way of turning
// standard_conforming_strings off. Each control shows that the way works on a
// plain connection and breaks bun's formatted SQL; through the connector the
// session still has it on (startup parameters win) on every connection, or the
// open fails with ErrUnsafeSession.
func TestStandardConformingStringsCannotBeTurnedOff(t *testing.T) {
	base := serverURL(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) string // returns the URL
	}{
		{"URL options parameter", func(t *testing.T) string {
			return withParam(t, base, "options", "-c standard_conforming_strings=off")
		}},
		{"URL options long form", func(t *testing.T) string {
			return withParam(t, base, "options", "--standard-conforming-strings=off")
		}},
		{"URL parameter", func(t *testing.T) string {
			return withParam(t, base, "standard_conforming_strings", "off")
		}},
		{"URL parameter, other spelling", func(t *testing.T) string {
			return withParam(t, base, "Standard_Conforming_Strings", "off")
		}},
		{"PGOPTIONS", func(t *testing.T) string {
			t.Setenv("PGOPTIONS", "-c standard_conforming_strings=off")
			return base
		}},
		{"ALTER ROLE", func(t *testing.T) string {
			role := uniqueName("pierre_scs_")
			adminExec(t, "CREATE ROLE "+role+" LOGIN", "ALTER ROLE "+role+" SET standard_conforming_strings = off")
			cleanup(t, "DROP ROLE IF EXISTS "+role)
			return withURL(t, base, func(u *url.URL, _ url.Values) { u.User = url.User(role) })
		}},
		{"ALTER DATABASE", func(t *testing.T) string {
			db := uniqueName("pierre_scs_")
			adminExec(t, "CREATE DATABASE "+db, "ALTER DATABASE "+db+" SET standard_conforming_strings = off")
			cleanup(t, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			return withURL(t, base, func(u *url.URL, _ url.Values) { u.Path = "/" + db })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.setup(t)

			t.Run("control: a plain pgx session has it off and bun's SQL breaks", func(t *testing.T) {
				if strings.Contains(tc.name, "spelling") {
					t.Skip("a mixed-case parameter is not unique to this case")
				}
				cfg, err := pgx.ParseConfig(raw)
				require.NoError(t, err)
				cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
				plain := bun.NewDB(stdlib.OpenDB(*cfg), pgdialect.New())
				defer plain.Close()
				var scs string
				require.NoError(t, plain.QueryRowContext(ctx, "SHOW standard_conforming_strings").Scan(&scs))
				require.Equal(t, "off", scs)
				assert.Error(t, roundTrip(ctx, plain), "without the fix the values become SQL")
			})

			c, err := NewConnector(Config{URL: raw, MaxConns: 3})
			require.NoError(t, err)
			e, err := connect(t, c)
			if err != nil {
				require.ErrorIs(t, err, engine.ErrUnsafeSession)
				return
			}
			assert.Equal(t, "on", e.Info.Settings["standard_conforming_strings"])
			// Three sessions at once: each new connection is pinned.
			var conns []*sql.Conn
			for range 3 {
				conn, err := e.Writer.DB.Conn(ctx)
				require.NoError(t, err)
				conns = append(conns, conn)
			}
			for _, conn := range conns {
				var scs string
				require.NoError(t, conn.QueryRowContext(ctx, "SHOW standard_conforming_strings").Scan(&scs))
				assert.Equal(t, "on", scs)
				// bun's formatted SQL, run on this very session.
				for _, s := range evil {
					var got string
					require.NoError(t, conn.QueryRowContext(ctx, e.Writer.NewSelect().ColumnExpr("?", s).String()).Scan(&got))
					assert.Equal(t, s, got)
				}
				_ = conn.Close()
			}
			require.NoError(t, roundTrip(ctx, e.Writer))
		})
	}
}

// TestSessionTurnedOffLaterIsDiscarded: a pooled connection whose session loses
// standard_conforming_strings is discarded before it is used again.
func TestSessionTurnedOffLaterIsDiscarded(t *testing.T) {
	e := openURL(t, serverURL(t))
	ctx := t.Context()
	e.Writer.DB.SetMaxOpenConns(1)
	var before, after int
	require.NoError(t, e.Writer.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&before))
	_, err := e.Writer.ExecContext(ctx, "SET standard_conforming_strings = off")
	require.NoError(t, err)
	require.NoError(t, roundTrip(ctx, e.Writer))
	require.NoError(t, e.Writer.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&after))
	assert.NotEqual(t, before, after, "the session was replaced")
	var scs string
	require.NoError(t, e.Writer.QueryRowContext(ctx, "SHOW standard_conforming_strings").Scan(&scs))
	assert.Equal(t, "on", scs)
}

// whereIs returns the schemas holding table.
func whereIs(t *testing.T, db bun.IDB, table string) []string {
	t.Helper()
	var schemas []string
	err := db.NewRaw("SELECT table_schema FROM information_schema.tables WHERE table_name = ? ORDER BY 1", table).Scan(t.Context(), &schemas)
	require.NoError(t, err)
	return schemas
}

// TestTablesLandInTheFirstSchema: pierre's tables go to the first search_path
// schema, folded as PostgreSQL folds it, and its sessions see that schema alone.
func TestTablesLandInTheFirstSchema(t *testing.T) {
	base := serverURL(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name        string
		searchPath  func(name string) string
		schema      func(name string) string
		inPublicToo bool // a table of that name already exists in public
	}{
		{"mixed case, unquoted, folds to lower case",
			func(n string) string { return "Pierre" + n + ",public" },
			func(n string) string { return "pierre" + strings.ToLower(n) }, false},
		{"mixed case, quoted, kept exactly",
			func(n string) string { return `"Pierre` + n + `",public` },
			func(n string) string { return "Pierre" + n }, false},
		{"second,public with a deployment in public",
			func(n string) string { return "second" + n + ",public" },
			func(n string) string { return "second" + strings.ToLower(n) }, true},
		{"quote, comma and space in a quoted name",
			func(n string) string { return `"pierre""q, ` + n + `" , public` },
			func(n string) string { return `pierre"q, ` + n }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := uniqueName("X")
			schema := tc.schema(n)
			table := uniqueName("probe_")
			dropSchemaLater(t, schema)
			if tc.inPublicToo {
				adminExec(t, "CREATE TABLE public."+table+" (id int)")
				cleanup(t, "DROP TABLE IF EXISTS public."+table)
			}

			e := openURL(t, withParam(t, base, "search_path", tc.searchPath(n)))
			assert.Equal(t, schema, e.Info.Schema)
			assert.Equal(t, pgx.Identifier{schema}.Sanitize(), e.Info.Settings["search_path"])

			exists, err := e.TableExists(ctx, e.Writer, table)
			require.NoError(t, err)
			assert.False(t, exists, "a table in another schema is not pierre's")

			require.NoError(t, e.PrepareSchema(ctx))
			require.NoError(t, e.PrepareSchema(ctx), "idempotent")
			var current string
			require.NoError(t, e.Writer.QueryRowContext(ctx, "SELECT current_schema()").Scan(&current))
			assert.Equal(t, schema, current)

			_, err = e.Writer.ExecContext(ctx, "CREATE TABLE "+table+" (id int)")
			require.NoError(t, err)
			_, err = e.Writer.ExecContext(ctx, "INSERT INTO "+table+" VALUES (1)")
			require.NoError(t, err)

			want := []string{schema}
			if tc.inPublicToo {
				want = []string{"public", schema}
				var n int
				require.NoError(t, e.Writer.QueryRowContext(ctx, "SELECT count(*) FROM public."+table).Scan(&n))
				assert.Zero(t, n, "public's table was not touched")
			}
			assert.ElementsMatch(t, want, whereIs(t, e.Writer, table))
			exists, err = e.TableExists(ctx, e.Writer, table)
			require.NoError(t, err)
			assert.True(t, exists)
		})
	}
}

// TestTwoDeploymentsInOneDatabase: two schemas of one database never see each
// other's tables nor wait for each other's named locks.
func TestTwoDeploymentsInOneDatabase(t *testing.T) {
	base := serverURL(t)
	ctx := t.Context()
	a, b := uniqueName("pierre_a_"), uniqueName("pierre_b_")
	dropSchemaLater(t, a)
	dropSchemaLater(t, b)
	ea := openURL(t, withParam(t, base, "search_path", a))
	eb := openURL(t, withParam(t, base, "search_path", b))
	for _, e := range []*engine.Engine{ea, eb} {
		require.NoError(t, e.PrepareSchema(ctx))
		_, err := e.Writer.ExecContext(ctx, "CREATE TABLE users (id int)")
		require.NoError(t, err)
	}
	_, err := ea.Writer.ExecContext(ctx, "INSERT INTO users VALUES (1), (2)")
	require.NoError(t, err)
	var n int
	require.NoError(t, eb.Writer.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n))
	assert.Zero(t, n)

	// A named lock held in a's transaction blocks a, not b.
	txa, err := ea.Writer.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = txa.Rollback() }()
	require.NoError(t, ea.LockName(ctx, txa, "admins"))

	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	require.NoError(t, eb.Writer.RunInTx(short, nil, func(ctx context.Context, tx bun.Tx) error {
		return eb.LockName(ctx, tx, "admins")
	}), "another schema's deployment does not wait")

	blocked, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	err = ea.Writer.RunInTx(blocked, nil, func(ctx context.Context, tx bun.Tx) error {
		return ea.LockName(ctx, tx, "admins")
	})
	assert.Error(t, err, "the same deployment waits")
	require.NoError(t, ea.Writer.RunInTx(short, nil, func(ctx context.Context, tx bun.Tx) error {
		return ea.LockName(ctx, tx, "owners")
	}), "another name does not wait")

	assert.ErrorIs(t, ea.LockName(ctx, ea.Writer, "admins"), engine.ErrInvalidArgument, "outside a transaction")
	assert.Equal(t, " FOR UPDATE", ea.ForUpdate())
	assert.Equal(t, "SELECT $1, $2", ea.Rebind("SELECT ?, ?"))
}

// TestMigrationLock: a second instance waits for the migration lock, and the
// lock is gone once released.
func TestMigrationLock(t *testing.T) {
	base := serverURL(t)
	schema := uniqueName("pierre_lock_")
	dropSchemaLater(t, schema)
	raw := withParam(t, base, "search_path", schema)
	adminExec(t, "CREATE SCHEMA "+schema)

	pool, err := pgxpool.New(t.Context(), raw)
	require.NoError(t, err)
	defer pool.Close()
	lent, err := FromPool(pool)
	require.NoError(t, err)
	own, err := NewConnector(Config{URL: raw})
	require.NoError(t, err)

	for name, c := range map[string]*Connector{"URL": own, "lent pool": lent} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			e1, err := connect(t, c)
			require.NoError(t, err)
			e2, err := connect(t, c)
			require.NoError(t, err)
			assert.Equal(t, schema, e1.Info.Schema)

			unlock, err := e1.LockMigrations(ctx)
			require.NoError(t, err)
			var once sync.Once
			defer once.Do(unlock) // also when an assertion below stops the test
			assert.True(t, advisoryHeld(t, migrationLockKey(schema)))

			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			_, err = e2.LockMigrations(short)
			assert.Error(t, err, "the second instance waits")

			var wg sync.WaitGroup
			wg.Go(func() {
				unlock2, err := e2.LockMigrations(ctx)
				if assert.NoError(t, err) {
					unlock2()
				}
			})
			time.Sleep(100 * time.Millisecond)
			once.Do(unlock)
			wg.Wait()
			assert.False(t, advisoryHeld(t, migrationLockKey(schema)))
		})
	}
	require.NoError(t, pool.Ping(t.Context()), "the host's pool is still open")
}

func advisoryHeld(t *testing.T, key int64) bool {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, serverURL(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var held bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid = (($1::bigint >> 32) & 4294967295)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1)`, key).Scan(&held)
	require.NoError(t, err)
	return held
}

// TestLentPools: pools the host lends are shared, checked and never closed.
func TestLentPools(t *testing.T) {
	base := serverURL(t)
	ctx := t.Context()
	schema := uniqueName("pierre_lent_")
	dropSchemaLater(t, schema)
	adminExec(t, "CREATE SCHEMA "+schema)
	raw := withParam(t, base, "search_path", schema)

	t.Run("pgxpool", func(t *testing.T) {
		pool, err := pgxpool.New(ctx, raw)
		require.NoError(t, err)
		defer pool.Close()
		c, err := FromPool(pool)
		require.NoError(t, err)
		assert.Equal(t, "postgres", c.Dialect())
		e, err := connect(t, c)
		require.NoError(t, err)
		assert.Equal(t, schema, e.Info.Schema)
		assert.Equal(t, "on", e.Info.Settings["standard_conforming_strings"])
		assert.NotEmpty(t, e.Info.Location)
		assert.Nil(t, e.PrepareSchema)
		require.NoError(t, roundTrip(ctx, e.Writer))
		_, err = e.Writer.ExecContext(ctx, "CREATE TABLE lent_probe (id int)")
		require.NoError(t, err)
		assert.Equal(t, []string{schema}, whereIs(t, e.Writer, "lent_probe"))
		require.NoError(t, e.Close())
		require.NoError(t, pool.Ping(ctx), "closing the engine leaves the host's pool open")
		var one int
		require.NoError(t, pool.QueryRow(ctx, "SELECT 1").Scan(&one))
	})

	t.Run("sql.DB", func(t *testing.T) {
		db, err := sql.Open("pgx", raw)
		require.NoError(t, err)
		defer db.Close()
		c, err := FromDB(db)
		require.NoError(t, err)
		e, err := connect(t, c)
		require.NoError(t, err)
		assert.Equal(t, schema, e.Info.Schema)
		assert.Contains(t, e.Info.Location, "/")
		assert.NotContains(t, e.Info.Location, "@")
		exists, err := e.TableExists(ctx, e.Reader, "lent_probe")
		require.NoError(t, err)
		assert.True(t, exists)
		require.NoError(t, e.Close())
		require.NoError(t, db.PingContext(ctx), "closing the engine leaves the host's pool open")
	})

	t.Run("standard_conforming_strings off is refused", func(t *testing.T) {
		cfg, err := pgxpool.ParseConfig(raw)
		require.NoError(t, err)
		cfg.ConnConfig.RuntimeParams["standard_conforming_strings"] = "off"
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		defer pool.Close()
		c, err := FromPool(pool)
		require.NoError(t, err)
		_, err = connect(t, c)
		require.ErrorIs(t, err, engine.ErrUnsafeSession)
		assert.Contains(t, err.Error(), "standard_conforming_strings")

		db, err := sql.Open("pgx", withParam(t, raw, "options", "-c standard_conforming_strings=off"))
		require.NoError(t, err)
		defer db.Close()
		c, err = FromDB(db)
		require.NoError(t, err)
		_, err = connect(t, c)
		require.ErrorIs(t, err, engine.ErrUnsafeSession)
	})

	t.Run("a pooled session turned off later is refused", func(t *testing.T) {
		cfg, err := pgxpool.ParseConfig(raw)
		require.NoError(t, err)
		cfg.MaxConns = 2
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		defer pool.Close()
		c, err := FromPool(pool)
		require.NoError(t, err)
		e, err := connect(t, c)
		require.NoError(t, err)
		// The host turns it off on every connection of its pool.
		var held []*pgxpool.Conn
		for range 2 {
			conn, err := pool.Acquire(ctx)
			require.NoError(t, err)
			_, err = conn.Exec(ctx, "SET standard_conforming_strings = off")
			require.NoError(t, err)
			held = append(held, conn)
		}
		for _, conn := range held {
			conn.Release()
		}
		err = roundTrip(ctx, e.Writer)
		require.ErrorIs(t, err, engine.ErrUnsafeSession)
	})

	t.Run("no schema of search_path exists", func(t *testing.T) {
		missing := uniqueName("Pierre_Missing_")
		pool, err := pgxpool.New(ctx, withParam(t, base, "search_path", missing))
		require.NoError(t, err)
		defer pool.Close()
		c, err := FromPool(pool)
		require.NoError(t, err)
		_, err = connect(t, c)
		require.ErrorIs(t, err, engine.ErrUnsafeSession)
		assert.Contains(t, err.Error(), pgx.Identifier{strings.ToLower(missing)}.Sanitize())
		assert.Contains(t, err.Error(), "CREATE SCHEMA")
	})

	t.Run("a pool of one connection is refused", func(t *testing.T) {
		cfg, err := pgxpool.ParseConfig(raw)
		require.NoError(t, err)
		cfg.MaxConns = 1
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		defer pool.Close()
		c, err := FromPool(pool)
		require.NoError(t, err)
		_, err = connect(t, c)
		assert.ErrorIs(t, err, engine.ErrInvalidArgument)

		db, err := sql.Open("pgx", raw)
		require.NoError(t, err)
		defer db.Close()
		db.SetMaxOpenConns(1)
		c, err = FromDB(db)
		require.NoError(t, err)
		_, err = connect(t, c)
		assert.ErrorIs(t, err, engine.ErrInvalidArgument)
	})
}

// TestPrepareSchemaWithoutCreateOnDatabase: a role given a ready-made schema,
// without the CREATE privilege on the database, can still start.
func TestPrepareSchemaWithoutCreateOnDatabase(t *testing.T) {
	base := serverURL(t)
	ctx := t.Context()
	role := uniqueName("pierre_role_")
	schema := uniqueName("pierre_ready_")
	adminExec(t, "CREATE ROLE "+role+" LOGIN", "CREATE SCHEMA "+schema+" AUTHORIZATION "+role)
	cleanup(t, "DROP SCHEMA IF EXISTS "+schema+" CASCADE", "DROP ROLE IF EXISTS "+role)
	asRole := func(searchPath string) string {
		return withURL(t, base, func(u *url.URL, q url.Values) {
			u.User = url.User(role)
			q.Set("search_path", searchPath)
		})
	}

	e := openURL(t, asRole(schema))
	_, err := e.Writer.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema)
	require.Error(t, err, "control: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database")
	require.NoError(t, e.PrepareSchema(ctx))
	_, err = e.Writer.ExecContext(ctx, "CREATE TABLE probe (id int)")
	require.NoError(t, err)
	assert.Equal(t, []string{schema}, whereIs(t, e.Writer, "probe"))

	e2 := openURL(t, asRole(uniqueName("pierre_nope_")))
	err = e2.PrepareSchema(ctx)
	require.Error(t, err, "a missing schema the role may not create")
	assert.Contains(t, err.Error(), "create schema")
}

// TestUniqueViolationColumns: a unique violation names the key's columns and
// never its values.
func TestUniqueViolationColumns(t *testing.T) {
	base := serverURL(t)
	ctx := t.Context()
	schema := uniqueName("pierre_uniq_")
	dropSchemaLater(t, schema)
	e := openURL(t, withParam(t, base, "search_path", schema))
	require.NoError(t, e.PrepareSchema(ctx))
	_, err := e.Writer.ExecContext(ctx, `CREATE TABLE t (tenant_id text, "Slug Name" text, v timestamptz, UNIQUE (tenant_id, "Slug Name"))`)
	require.NoError(t, err)
	const secret = "secret-slug-value"
	_, err = e.Writer.ExecContext(ctx, "INSERT INTO t VALUES (?, ?, NULL)", "t1", secret)
	require.NoError(t, err)
	_, err = e.Writer.ExecContext(ctx, "INSERT INTO t VALUES (?, ?, NULL)", "t1", secret)
	err = e.Classify(err)
	require.ErrorIs(t, err, engine.ErrAlreadyExists)
	assert.Equal(t, []string{"tenant_id", "Slug Name"}, engine.UniqueColumns(err))
	assert.NotContains(t, err.Error(), secret)

	for _, tc := range []struct {
		query string
		arg   any
	}{
		{"INSERT INTO t VALUES ('x', ?, NULL)", "nul\x00byte"},
		{"INSERT INTO t VALUES ('x', 'y', ?::timestamptz)", "294277-01-01 00:00:00+00"},
		{"INSERT INTO t VALUES ('x', 'y', ?::timestamptz)", "2024-01-01 00:00:00+99"},
	} {
		_, err := e.Writer.DB.ExecContext(ctx, rebind(tc.query), tc.arg)
		err = e.Classify(err)
		assert.ErrorIs(t, err, engine.ErrInvalidArgument, "%s", tc.arg)
		t.Log(err)
	}
}

// TestConnectionRejectedHidesPassword: the server refusing a login names the
// user and database, never the password.
func TestConnectionRejectedHidesPassword(t *testing.T) {
	base := serverURL(t)
	const secret = "s3cr3t-pw"
	raw := withURL(t, base, func(u *url.URL, _ url.Values) {
		u.User = url.UserPassword(u.User.Username(), secret)
		u.Path = "/" + uniqueName("no_such_db_")
	})
	c, err := NewConnector(Config{URL: raw})
	require.NoError(t, err)
	_, err = connect(t, c)
	require.ErrorIs(t, err, engine.ErrConnectionRejected)
	assert.NotContains(t, err.Error(), secret)
	assert.Contains(t, err.Error(), "does not exist")

	// A password in the query with an unescaped '&' turns its tail into a
	// parameter the server does not know; its name is not repeated.
	c, err = NewConnector(Config{URL: base + "?password=ab&" + secret + "=x"})
	require.NoError(t, err)
	_, err = connect(t, c)
	require.ErrorIs(t, err, engine.ErrConnectionRejected)
	assert.NotContains(t, err.Error(), secret)
	c, err = NewConnector(Config{URL: base + "?application_name=" + secret + "&lock_timeout=" + secret})
	require.NoError(t, err)
	_, err = connect(t, c)
	require.ErrorIs(t, err, engine.ErrConnectionRejected)
	assert.NotContains(t, err.Error(), secret)
	t.Log(err)
}

func TestCheckPinned(t *testing.T) {
	good := session{standardConformingStrings: "on", clientEncoding: "UTF8", timeZone: "UTC", searchPath: `"s"`}
	p := pinnedSettings("s")
	require.NoError(t, checkPinned(good, p))
	for name, edit := range map[string]func(s *session){
		"standard_conforming_strings": func(s *session) { s.standardConformingStrings = "off" },
		"client_encoding":             func(s *session) { s.clientEncoding = "SJIS" },
		"TimeZone":                    func(s *session) { s.timeZone = "Europe/Paris" },
		"search_path":                 func(s *session) { s.searchPath = `"s", public` },
	} {
		s := good
		edit(&s)
		err := checkPinned(s, p)
		assert.ErrorIs(t, err, engine.ErrUnsafeSession, name)
		assert.Contains(t, err.Error(), name)
	}
}

func TestCheckLent(t *testing.T) {
	good := session{standardConformingStrings: "on", clientEncoding: "UTF8", timeZone: "Europe/Paris", searchPath: "app", currentSchema: "app"}
	require.NoError(t, checkLent(good), "TimeZone is not required of a lent pool")
	for _, tc := range []struct {
		name string
		edit func(s *session)
		want string
	}{
		{"standard_conforming_strings", func(s *session) { s.standardConformingStrings = "off" }, "standard_conforming_strings"},
		{"client_encoding", func(s *session) { s.clientEncoding = "LATIN1" }, "client_encoding"},
		{"no schema", func(s *session) { s.currentSchema = ""; s.searchPath = "App, public" }, `schema "app"`},
		{"no schema, $user", func(s *session) {
			s.currentSchema, s.searchPath, s.sessionUser = "", `"$user", public`, "Alice"
		}, `schema "Alice"`},
		{"no schema, odd search_path", func(s *session) { s.currentSchema = ""; s.searchPath = "" }, "first schema it names"},
	} {
		s := good
		tc.edit(&s)
		err := checkLent(s)
		assert.ErrorIs(t, err, engine.ErrUnsafeSession, tc.name)
		assert.Contains(t, err.Error(), tc.want, tc.name)
	}
}

// TestRelaxedCommitEndsWithItsTransaction: the expression the usage counter
// evaluates turns synchronous_commit off for its own statement's transaction,
// and the connection is back to the server's setting for the next one, also
// when the statement ran inside an explicit transaction, which keeps it to
// the end.
func TestRelaxedCommitEndsWithItsTransaction(t *testing.T) {
	c, err := NewConnector(Config{URL: serverURL(t), MaxConns: 1})
	require.NoError(t, err)
	e, err := connect(t, c)
	require.NoError(t, err)
	ctx := t.Context()
	show := func(db bun.IDB) string {
		t.Helper()
		var v string
		require.NoError(t, db.QueryRowContext(ctx, "SHOW synchronous_commit").Scan(&v))
		return v
	}
	require.Equal(t, "on", show(e.Writer), "the control: this server commits synchronously")

	var one int
	var during string
	require.NoError(t, e.Writer.QueryRowContext(ctx,
		"SELECT "+e.RelaxedCommitOne+", current_setting('synchronous_commit')").Scan(&one, &during))
	assert.Equal(t, 1, one)
	assert.Equal(t, "off", during, "relaxed while its statement's transaction lasts")
	assert.Equal(t, "on", show(e.Writer), "and not one statement longer, on the pool's only connection")

	tx, err := e.Writer.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT "+e.RelaxedCommitOne).Scan(&one))
	assert.Equal(t, "off", show(tx), "inside a transaction it lasts to the commit: pierre never evaluates it there")
	require.NoError(t, tx.Commit())
	assert.Equal(t, "on", show(e.Writer))
}
