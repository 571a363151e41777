package storetest

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// sqliteDir is the directory of a SQLite test URL.
func sqliteDir(url string) string { return filepath.Dir(strings.TrimPrefix(url, "sqlite:")) }

// readDir returns every file of dir with its bytes.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = b
	}
	return out
}

var _ = register("Open", "MigratesAndReopens", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)

		assert.Equal(t, e.Backend, db.Backend())
		require.NoError(t, db.Ping(ctx))
		status, err := db.Migrations(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, status)
		var names []string
		for _, m := range status {
			assert.True(t, m.Applied, "migration %s", m.Name)
			assert.False(t, m.AppliedAt.IsZero())
			names = append(names, m.Name)
		}
		info := db.Info()
		assert.Equal(t, names, info.MigrationsApplied, "a fresh database gets every migration")
		assert.Equal(t, e.Backend, info.Backend)
		assert.NotEmpty(t, info.Driver)
		assert.NotEmpty(t, info.KeyringID)
		assert.Equal(t, e.Key.Fingerprint(), info.MasterKeyFingerprint)
		stats := db.Stats()
		assert.Equal(t, e.Backend, stats.Backend)
		assert.Positive(t, stats.Write.MaxOpenConnections)

		// Opening a migrated database again applies nothing and finds the same keyring.
		again := e.OpenURL(t, url)
		assert.Empty(t, again.Info().MigrationsApplied)
		assert.Equal(t, info.KeyringID, again.Info().KeyringID)

		require.NoError(t, db.Close())
		require.NoError(t, db.Close(), "Close is idempotent")
		err = db.Ping(ctx)
		assert.ErrorIs(t, err, pierredb.ErrClosed)
		onePrefix(t, err)
		_, err = db.Users().Get(ctx, missingID)
		assert.ErrorIs(t, err, pierredb.ErrClosed)
		assert.NoError(t, again.Ping(ctx))
	})
})

// A wrong master key fails Open before any write. On SQLite the database files
// are byte-identical afterwards; on PostgreSQL the keyring is unchanged.
var _ = register("Open", "WrongKeyWritesNothing", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		url := e.NewURL(t)
		db, err := pierredb.Open(url, e.Key)
		require.NoError(t, err)
		wantID := db.Info().KeyringID
		require.NoError(t, db.Close())

		var before map[string][]byte
		if e.Backend == pierredb.SQLite {
			before = readDir(t, sqliteDir(url))
		}
		wrong, err := keyring.Generate()
		require.NoError(t, err)
		_, err = pierredb.Open(url, wrong)
		require.ErrorIs(t, err, keyring.ErrWrongMasterKey)
		assert.NotContains(t, err.Error(), wrong.EncodeBase64())
		assert.Contains(t, err.Error(), wrong.Fingerprint(), "the error names the fingerprints so operators can tell keys apart")
		onePrefix(t, err)

		if e.Backend == pierredb.SQLite {
			assert.Equal(t, before, readDir(t, sqliteDir(url)), "database files changed")
		}
		again := e.OpenURL(t, url)
		assert.Equal(t, wantID, again.Info().KeyringID)
		assert.Empty(t, again.Info().MigrationsApplied)
	})
})

// A database that has been opened before never gets a new keyring: with the
// keyring tables wiped by hand, Open fails with keyring.ErrKeyringMissing and
// writes nothing, whether or not the database held any user yet.
var _ = register("Open", "WipedKeyringIsNotReplaced", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		for _, withData := range []bool{false, true} {
			url := e.NewURL(t)
			db, err := pierredb.Open(url, e.Key)
			require.NoError(t, err)
			if withData {
				activeUser(t, db, "someone")
			}
			for _, q := range []string{"DELETE FROM keyring_keys", "DELETE FROM keyring_meta"} {
				_, err := db.Bun().ExecContext(t.Context(), q)
				require.NoError(t, err)
			}
			require.NoError(t, db.Close())

			var before map[string][]byte
			if e.Backend == pierredb.SQLite {
				before = readDir(t, sqliteDir(url))
			}
			_, err = pierredb.Open(url, e.Key)
			require.ErrorIs(t, err, keyring.ErrKeyringMissing, "with data: %v", withData)
			assert.Contains(t, err.Error(), "backup")
			onePrefix(t, err)
			if e.Backend == pierredb.SQLite {
				assert.Equal(t, before, readDir(t, sqliteDir(url)), "database files changed")
			} else {
				raw := e.OpenRaw(t, url)
				var n int
				require.NoError(t, raw.QueryRowContext(t.Context(), "SELECT count(*) FROM keyring_keys").Scan(&n))
				assert.Zero(t, n, "no new keyring was written")
			}
		}
	})
})

// Eight Databases (separate pools, as separate processes would have) open one
// fresh database at the same moment. All succeed, each migration is applied
// exactly once, and they agree on one keyring.
var _ = register("Open", "Concurrent", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		url := e.NewURL(t)
		const n = 8
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			dbs     = make([]*pierredb.Database, n)
			errs    = make([]error, n)
			applied = map[string]int{}
			mu      sync.Mutex
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				dbs[i], errs[i] = pierredb.OpenContext(t.Context(), url, e.Key)
				if errs[i] == nil {
					mu.Lock()
					for _, name := range dbs[i].Info().MigrationsApplied {
						applied[name]++
					}
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		for i := range n {
			require.NoError(t, errs[i], "open %d", i)
			t.Cleanup(func() { _ = dbs[i].Close() })
		}
		status, err := dbs[0].Migrations(t.Context())
		require.NoError(t, err)
		for _, m := range status {
			assert.Equal(t, 1, applied[m.Name], "migration %s applied once", m.Name)
		}
		assert.Equal(t, len(status), rawCount(t, dbs[0], "SELECT count(*) FROM pierredb_migrations"), "one record per migration")
		for i := 1; i < n; i++ {
			assert.Equal(t, dbs[0].Info().KeyringID, dbs[i].Info().KeyringID)
		}
		assert.Equal(t, 1, rawCount(t, dbs[0], "SELECT count(*) FROM keyring_keys WHERE purpose = 'encryption'"), "exactly one data key")
	})
})

var _ = register("Open", "WithoutMigrations", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		url := e.NewURL(t)
		_, err := pierredb.OpenContext(t.Context(), url, e.Key, pierredb.WithoutMigrations())
		require.ErrorIs(t, err, pierredb.ErrSchemaNotCurrent)
		assert.Contains(t, err.Error(), "0001")

		e.OpenURL(t, url)
		db := e.OpenURL(t, url, pierredb.WithoutMigrations())
		assert.Empty(t, db.Info().MigrationsApplied)

		// A database migrated by a newer pierre is refused rather than misread.
		_, err = db.Bun().ExecContext(t.Context(), "INSERT INTO pierredb_migrations (name, group_id) VALUES ('9999', 99)")
		require.NoError(t, err)
		_, err = pierredb.OpenContext(t.Context(), url, e.Key)
		require.ErrorIs(t, err, pierredb.ErrSchemaNotCurrent)
		assert.Contains(t, err.Error(), "9999")
		onePrefix(t, err)
	})
})

// A value that would become SQL if the server read backslashes as escapes
// (standard_conforming_strings off) stays a value: the session pierre uses
// always has the setting on, whatever the URL asks for. Before the connector
// forced it, this display name made every user an admin and approved every
// pending user.
var _ = register("Open", "SessionSettingsCannotChangeEscaping", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		if e.Backend == pierredb.Postgres {
			url += "&options=-c%20standard_conforming_strings%3Doff"
		}
		db := e.OpenURL(t, url)
		if e.Backend == pierredb.Postgres {
			assert.Equal(t, "on", db.Info().Settings["standard_conforming_strings"])
		}
		owner := activeUser(t, db, "owner")
		victim := pendingUser(t, db, "victim")
		const evil = `\' , is_admin = true, user_status = 'active' --`
		u, err := db.Users().Update(ctx, owner.ID, pierredb.UserUpdate{DisplayName: ptr(evil)})
		require.NoError(t, err)
		assert.Equal(t, evil, u.DisplayName)
		tn, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: evil, Slug: "evil-" + owner.ID[len(owner.ID)-8:], OwnerUserID: owner.ID})
		require.NoError(t, err)
		name := evil + " again"
		tn, err = db.Tenants().Update(ctx, tn.ID, pierredb.TenantUpdate{Name: &name})
		require.NoError(t, err)
		assert.Equal(t, name, tn.Name)
		got, err := db.Tenants().Get(ctx, tn.ID)
		require.NoError(t, err)
		assert.Equal(t, name, got.Name, "the name round-trips unchanged")

		yes := true
		admins, err := db.Users().Count(ctx, pierredb.UserFilter{IsAdmin: &yes})
		require.NoError(t, err)
		assert.Zero(t, admins, "nobody became an admin")
		v, err := db.Users().Get(ctx, victim.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusPending, v.Status, "nobody was approved")
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM users WHERE is_admin = ?", true), "the raw table agrees: no admin")
		assert.Equal(t, 1, rawCount(t, db, "SELECT count(*) FROM users WHERE display_name = ?", evil), "one user holds the name")
	})
})

// The query log names every statement with its engine and duration, and never a
// value: no password, hash, email or token reaches it, from prepared
// statements or from bun's statements that carry their values inline.
var _ = register("Open", "QueryLogHidesValues", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		var logs logBuffer
		db := e.Open(t, pierredb.WithQueryLog(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		email := uniqueEmail("logged")
		u, err := db.Users().Create(ctx, pierredb.NewUser{Email: email, Password: Password, DisplayName: "Secret Name"})
		require.NoError(t, err)
		_, err = db.Users().Approve(ctx, u.ID, pierredb.ByService("log-test"))
		require.NoError(t, err)
		_, err = db.Authenticate(ctx, email, Password)
		require.NoError(t, err)
		_, err = db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Hidden Club", Slug: "hidden-club", OwnerUserID: u.ID})
		require.NoError(t, err)
		var hash string
		require.NoError(t, db.Bun().QueryRowContext(ctx, "SELECT password_hash FROM users WHERE id = ?", u.ID).Scan(&hash))

		out := logs.String()
		assert.Contains(t, out, "pierredb: query")
		assert.Contains(t, out, "engine="+string(e.Backend))
		assert.Contains(t, out, "duration=")
		assert.Contains(t, out, "INSERT INTO users", "prepared statements are logged")
		assert.Contains(t, out, "INSERT INTO \\\"tenant_users\\\"", "bun's statements are logged")
		for _, secret := range []string{Password, hash, email, "Secret Name", "Hidden Club", "hidden-club"} {
			assert.NotContains(t, out, secret)
		}
	})
})
