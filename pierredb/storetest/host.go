package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb"
)

// hostActivities is a host's own table, as a fitness MCP server would keep it:
// tenant-owned, tied to a member by a composite foreign key into pierre's
// tenant_users.
func hostActivities(extra ...string) pierredb.HostMigrations {
	table := func(ts, blob string) string {
		return `CREATE TABLE activities (
    id         TEXT NOT NULL PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    started_at ` + ts + ` NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users (tenant_id, user_id) ON DELETE CASCADE
);
--bun:split
CREATE INDEX idx_activities_member ON activities (tenant_id, user_id, started_at);
`
	}
	sqlite := fstest.MapFS{"0001_activities.tx.up.sql": {Data: []byte(table("TEXT", "BLOB"))}}
	postgres := fstest.MapFS{"0001_activities.tx.up.sql": {Data: []byte(table("TIMESTAMPTZ", "BYTEA"))}}
	for i, sql := range extra {
		name := []string{"0002_more.tx.up.sql", "0003_more.tx.up.sql"}[i]
		sqlite[name] = &fstest.MapFile{Data: []byte(sql)}
		postgres[name] = &fstest.MapFile{Data: []byte(sql)}
	}
	return pierredb.HostMigrations{Name: "fitness", SQLite: sqlite, Postgres: postgres}
}

type activity struct {
	bun.BaseModel `bun:"table:activities"`
	ID            string `bun:"id,pk"`
	TenantID      string `bun:"tenant_id"`
	UserID        string `bun:"user_id"`
	Kind          string `bun:"kind"`
	StartedAt     string `bun:"started_at"`
}

// A host's own migrations run after pierre's and are recorded apart; its
// statements and pierre's share one transaction through RunInTx, which commits
// or rolls back both; its queries filter by the scope's tenant.
var _ = register("Host", "TablesAndTransactions", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url, pierredb.WithHostMigrations(hostActivities()))
		status, err := db.Migrations(ctx)
		require.NoError(t, err)
		var host []string
		for _, m := range status {
			assert.True(t, m.Applied, "%s %s", m.Set, m.Name)
			if m.Set == "fitness" {
				host = append(host, m.Name)
			}
		}
		assert.Equal(t, []string{"0001"}, host)
		assert.Equal(t, 1, rawCount(t, db, "SELECT count(*) FROM fitness_migrations"), "recorded apart from pierre's")
		again := e.OpenURL(t, url, pierredb.WithHostMigrations(hostActivities()))
		assert.Empty(t, again.Info().MigrationsApplied, "nothing pending on reopen")

		owner := activeUser(t, db, "owner")
		_, scope := newTenant(t, db, owner)
		_, other := newTenant(t, db, activeUser(t, db, "other"))
		now := "2026-11-30T07:00:00.000000Z"

		// Committed together: a member created by pierre and the host's row.
		var created pierredb.User
		err = db.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			u, err := scope.Members().CreateUser(ctx, pierredb.NewUser{Email: uniqueEmail("runner"), Password: Password})
			if err != nil {
				return err
			}
			created = u
			// pierre reads inside the transaction see its writes.
			if _, err := scope.Members().GetUser(ctx, u.ID); err != nil {
				return err
			}
			_, err = tx.NewInsert().Model(&activity{ID: "a1", TenantID: scope.ID(), UserID: u.ID, Kind: "run", StartedAt: now}).Exec(ctx)
			return err
		})
		require.NoError(t, err)
		_, err = db.Users().Get(ctx, created.ID)
		require.NoError(t, err)

		// Rolled back together: the host's failure undoes pierre's write too.
		boom := errors.New("host failure")
		var ghost pierredb.User
		err = db.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			u, err := scope.Members().CreateUser(ctx, pierredb.NewUser{Email: uniqueEmail("ghost"), Password: Password})
			if err != nil {
				return err
			}
			ghost = u
			if _, err := tx.NewInsert().Model(&activity{ID: "a2", TenantID: scope.ID(), UserID: u.ID, Kind: "ride", StartedAt: now}).Exec(ctx); err != nil {
				return err
			}
			return boom
		})
		require.ErrorIs(t, err, boom)
		_, err = db.Users().Get(ctx, ghost.ID)
		assert.ErrorIs(t, err, pierredb.ErrNotFound, "pierre's write was rolled back")
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM activities WHERE id = 'a2'"))

		// The host's table is tenant-owned: the schema refuses a row of another
		// tenant pointing at this member, and queries filter by the scope.
		_, err = db.Bun().NewInsert().Model(&activity{ID: "a3", TenantID: other.ID(), UserID: created.ID, Kind: "swim", StartedAt: now}).Exec(ctx)
		assert.True(t, isForeignKeyError(err), "refused by the foreign key: %v", err)
		var mine []activity
		require.NoError(t, db.Bun().NewSelect().Model(&mine).Where("tenant_id = ? AND user_id = ?", scope.ID(), created.ID).Scan(ctx))
		assert.Len(t, mine, 1)

		// An operation that fails inside the transaction explains itself from
		// within it (on SQLite the transaction holds the only writer
		// connection: reading outside it would wait for ever).
		waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		err = db.RunInTx(waitCtx, func(ctx context.Context, _ bun.Tx) error {
			_, err := db.Users().Approve(ctx, owner.ID, pierredb.ByService("host"))
			return err
		})
		assert.ErrorIs(t, err, pierredb.ErrConflict, "owner is active already")
		err = db.RunInTx(waitCtx, func(ctx context.Context, _ bun.Tx) error {
			_, err := db.Users().Suspend(ctx, missingID)
			return err
		})
		assert.ErrorIs(t, err, pierredb.ErrNotFound)

		// Nested transactions are refused rather than deadlocking.
		err = db.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
			return db.RunInTx(ctx, func(context.Context, bun.Tx) error { return nil })
		})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)

		// Deleting the member removes the host's rows with it (the host's FK).
		require.NoError(t, scope.Members().Remove(ctx, created.ID))
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM activities"))
	})
})

// A host migration that fails is rolled back and named; the database stays as
// it was before it, and the next Open with a fixed migration goes on.
var _ = register("Host", "FailedMigrationIsRolledBack", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		e.OpenURL(t, url, pierredb.WithHostMigrations(hostActivities()))
		bad := hostActivities("CREATE TABLE kudos (id TEXT PRIMARY KEY);\n--bun:split\nCREATE TABLE kudos (id TEXT PRIMARY KEY);")
		_, err := pierredb.OpenContext(ctx, url, e.Key, pierredb.WithHostMigrations(bad))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "fitness migration 0002_more failed and was rolled back")
		onePrefix(t, err)
		raw := e.OpenRaw(t, url)
		var n int
		require.NoError(t, raw.QueryRowContext(ctx, "SELECT count(*) FROM fitness_migrations").Scan(&n))
		assert.Equal(t, 1, n, "0002 was not recorded")
		good := hostActivities("CREATE TABLE kudos (id TEXT PRIMARY KEY);")
		db := e.OpenURL(t, url, pierredb.WithHostMigrations(good))
		assert.Equal(t, []string{"0002"}, db.Info().MigrationsApplied)
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM kudos"))

		for _, name := range []string{"", "Fitness", "pierre", "1abc", "a-b", "x\x00"} {
			_, err := pierredb.OpenContext(ctx, url, e.Key, pierredb.WithHostMigrations(pierredb.HostMigrations{Name: name, SQLite: good.SQLite, Postgres: good.Postgres}))
			assert.ErrorIs(t, err, pierredb.ErrInvalidArgument, "name %q", name)
		}
	})
})

// hostFiles is a HostMigrations named fitness whose engines both read files.
func hostFiles(files fstest.MapFS) pierredb.HostMigrations {
	return pierredb.HostMigrations{Name: "fitness", SQLite: files, Postgres: files}
}

// Open refuses, before applying anything, host migration files that bun would
// apply otherwise than the host means.
var _ = register("Host", "MisplacedMigrationsAreRefused", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		good := hostActivities()
		create := &fstest.MapFile{Data: []byte("CREATE TABLE kudos (id TEXT PRIMARY KEY);")}
		// Good files for the engine under test, a wrong one for the other:
		// Open says so here already.
		otherBad := good
		bad := fstest.MapFS{"0001_activities.tx.up.sql": good.SQLite.(fstest.MapFS)["0001_activities.tx.up.sql"], "0002_more.up.sql": create}
		if e.Backend == pierredb.Postgres {
			otherBad.SQLite = bad
		} else {
			otherBad.Postgres = bad
		}
		for _, tc := range []struct {
			name string
			opts []pierredb.Option
			says []string // the error names the file and what to do
		}{
			{"not transactional", []pierredb.Option{pierredb.WithHostMigrations(hostFiles(fstest.MapFS{"0001_kudos.up.sql": create}))},
				[]string{"0001_kudos.up.sql", "rename it to 0001_kudos.tx.up.sql"}},
			{"not transactional on the other engine", []pierredb.Option{pierredb.WithHostMigrations(otherBad)},
				[]string{"0002_more.up.sql", "rename it to 0002_more.tx.up.sql"}},
			{"in subdirectories", []pierredb.Option{pierredb.WithHostMigrations(hostFiles(fstest.MapFS{
				"sqlite/0001_kudos.tx.up.sql": create, "postgres/0001_kudos.tx.up.sql": create}))},
				[]string{"postgres/0001_kudos.tx.up.sql", "subdirectory", "root"}},
			{"misnamed", []pierredb.Option{pierredb.WithHostMigrations(hostFiles(fstest.MapFS{
				"0001_kudos.tx.up.sql": create, "0002_forgot_up.sql": create}))},
				[]string{"0002_forgot_up.sql", "NNNN_comment.tx.up.sql"}},
			{"upper-case extension", []pierredb.Option{pierredb.WithHostMigrations(hostFiles(fstest.MapFS{"0001_kudos.tx.up.SQL": create}))},
				[]string{"0001_kudos.tx.up.SQL"}},
			{"down without up", []pierredb.Option{pierredb.WithHostMigrations(hostFiles(fstest.MapFS{
				"0001_kudos.tx.up.sql": create, "0002_more.tx.down.sql": create}))},
				[]string{"0002_more.tx.down.sql", "0002_more.tx.up.sql"}},
			{"one number twice", []pierredb.Option{pierredb.WithHostMigrations(hostFiles(fstest.MapFS{
				"0001_kudos.tx.up.sql": create, "0001_more.tx.up.sql": create}))},
				[]string{"0001_kudos.tx.up.sql", "0001_more.tx.up.sql", "same number"}},
		} {
			url := e.NewURL(t)
			db, err := pierredb.OpenContext(ctx, url, e.Key, tc.opts...)
			if db != nil {
				_ = db.Close()
			}
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument, tc.name)
			for _, s := range tc.says {
				assert.Contains(t, err.Error(), s, tc.name)
			}
			onePrefix(t, err)
			// Refused before any migration ran: the host's first one too.
			_, err = e.OpenRaw(t, url).ExecContext(ctx, "SELECT count(*) FROM fitness_migrations")
			assert.Error(t, err, "%s: no host migration was applied", tc.name)
		}

		// What is not a migration may sit beside them, and a down file beside
		// its up file (pierre never runs it).
		files := fstest.MapFS{"README.md": {Data: []byte("# migrations")}, "0001_kudos.tx.up.sql": create,
			"0001_kudos.tx.down.sql": {Data: []byte("DROP TABLE kudos;")}}
		db := e.Open(t, pierredb.WithHostMigrations(hostFiles(files)))
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM kudos"))
	})
})

// A host migration that fails midway leaves the database exactly as it was:
// its catalog and its rows, those of tables the migration had changed first
// included.
var _ = register("Host", "FailedMigrationLeavesNothing", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		badges := "CREATE TABLE badges (name TEXT PRIMARY KEY);\n--bun:split\nINSERT INTO badges (name) VALUES ('gold');"
		e.OpenURL(t, url, pierredb.WithHostMigrations(hostActivities(badges)))
		raw := e.OpenRaw(t, url)
		snapshot := func() []string {
			queries := []string{"SELECT name FROM fitness_migrations ORDER BY 1", "SELECT name FROM badges ORDER BY 1"}
			if e.Backend == pierredb.SQLite {
				queries = append(queries, "SELECT type || ' ' || name || ' ' || COALESCE(sql, '') FROM sqlite_master ORDER BY 1")
			} else {
				queries = append(queries,
					"SELECT table_name || '.' || column_name || ' ' || data_type FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1",
					"SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1")
			}
			var out []string
			for _, q := range queries {
				rows, err := raw.QueryContext(ctx, q)
				require.NoError(t, err, q)
				for rows.Next() {
					var s string
					require.NoError(t, rows.Scan(&s))
					out = append(out, s)
				}
				require.NoError(t, rows.Err())
				require.NoError(t, rows.Close())
			}
			return out
		}
		before := snapshot()
		require.Contains(t, before, "gold")

		failing := strings.Join([]string{
			"INSERT INTO badges (name) VALUES ('silver');",
			"DELETE FROM badges WHERE name = 'gold';",
			"ALTER TABLE badges ADD COLUMN note TEXT;",
			"CREATE TABLE kudos (id TEXT PRIMARY KEY);",
			"CREATE INDEX idx_badges_note ON badges (note);",
			"CREATE TABLE kudos (id TEXT PRIMARY KEY);", // fails: it exists
		}, "\n--bun:split\n")
		_, err := pierredb.OpenContext(ctx, url, e.Key, pierredb.WithHostMigrations(hostActivities(badges, failing)))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "fitness migration 0003_more failed and was rolled back")
		assert.Equal(t, before, snapshot(), "the database is as it was before the migration")

		// And a fixed migration then applies.
		db := e.OpenURL(t, url, pierredb.WithHostMigrations(hostActivities(badges, "CREATE TABLE kudos (id TEXT PRIMARY KEY);")))
		assert.Equal(t, []string{"0003"}, db.Info().MigrationsApplied)
	})
})

// Two host sets with one name would share one <name>_migrations table, each
// taking the other's records for its own: Open refuses the second.
var _ = register("Host", "DuplicateSetNamesAreRefused", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		other := hostFiles(fstest.MapFS{"0001_kudos.tx.up.sql": {Data: []byte("CREATE TABLE kudos (id TEXT PRIMARY KEY);")}})
		db, err := pierredb.OpenContext(ctx, url, e.Key, pierredb.WithHostMigrations(hostActivities()), pierredb.WithHostMigrations(other))
		if db != nil {
			_ = db.Close()
		}
		require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		assert.Contains(t, err.Error(), `two host migration sets are named "fitness"`)
		onePrefix(t, err)
		_, err = e.OpenRaw(t, url).ExecContext(ctx, "SELECT count(*) FROM fitness_migrations")
		assert.Error(t, err, "no host migration was applied")
	})
})
