package storetest

import (
	"context"
	"errors"
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
