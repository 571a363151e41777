package pierredb_test

import (
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

func TestOpenSQLiteFileAndPragmas(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	path := filepath.Join(dir, "users.db")
	db, err := pierredb.Open("sqlite:"+path, storetest.Engines()[0].Key)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })

	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o700), st.Mode().Perm(), "the directory pierre creates is private")
	st, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), st.Mode().Perm(), "the database file is private")

	info := db.Info()
	assert.Equal(t, path, info.Location)
	assert.Equal(t, wantSQLiteDriver, info.Driver, "the suite runs on the driver this build selects")
	want := map[string]string{"journal_mode": "wal", "synchronous": "1", "foreign_keys": "1", "busy_timeout": "5000"}
	for k, v := range want {
		assert.Equal(t, v, info.Settings[k], "pragma %s", k)
	}

	// Every connection of both pools carries the pragmas, not just the first: hold
	// several reader connections at once so the pool has to open new ones.
	eng := pierredb.EngineOf(db)
	ctx := t.Context()
	var conns []*sql.Conn
	for i := 0; i < eng.Reader.DB.Stats().MaxOpenConnections; i++ {
		c, err := eng.Reader.DB.Conn(ctx)
		require.NoError(t, err)
		conns = append(conns, c)
		for pragma, want := range map[string]string{"foreign_keys": "1", "synchronous": "1", "busy_timeout": "5000", "query_only": "1", "journal_mode": "wal"} {
			var got string
			require.NoError(t, c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got))
			assert.Equal(t, want, strings.ToLower(got), "reader connection %d pragma %s", i, pragma)
		}
	}
	for _, c := range conns {
		require.NoError(t, c.Close())
	}
	var fk, qo string
	require.NoError(t, eng.Writer.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk))
	require.NoError(t, eng.Writer.QueryRowContext(ctx, "PRAGMA query_only").Scan(&qo))
	assert.Equal(t, "1", fk)
	assert.Equal(t, "0", qo)
	// The reader pool refuses writes.
	_, err = eng.Reader.ExecContext(ctx, "DELETE FROM system_settings")
	assert.Error(t, err)
}

func TestOpenSQLiteModes(t *testing.T) {
	key := storetest.Engines()[0].Key
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")

	for _, tc := range []struct {
		name string
		url  string
		want error
	}{
		{"rw requires the file", "sqlite:" + missing + "?mode=rw", pierredb.ErrNotFound},
		{"ro requires the file", "sqlite:" + missing + "?mode=ro", pierredb.ErrNotFound},
		{"fk cannot be turned off", "sqlite:" + missing + "?_fk=0", pierredb.ErrInvalidURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pierredb.Open(tc.url, key)
			require.ErrorIs(t, err, tc.want)
			_, statErr := os.Stat(missing)
			assert.ErrorIs(t, statErr, fs.ErrNotExist, "a failed open creates nothing")
		})
	}

	path := filepath.Join(dir, "users.db")
	db, err := pierredb.Open("sqlite:"+path+"?mode=rwc&cache=shared&_fk=1", key)
	require.NoError(t, err)
	id := db.Info().KeyringID
	require.NoError(t, db.Close())

	ro, err := pierredb.Open("sqlite:"+path+"?mode=ro", key)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ro.Close() })
	assert.True(t, ro.Info().ReadOnly)
	assert.Equal(t, id, ro.Info().KeyringID)
	_, err = ro.Keyring().Rotate(t.Context(), keyring.PurposeEncryption)
	assert.ErrorIs(t, err, pierredb.ErrReadOnly, "a read-only database refuses writes")

	rw, err := pierredb.Open("sqlite:"+path+"?mode=rw", key)
	require.NoError(t, err)
	require.NoError(t, rw.Close())
}

func TestOpenMemory(t *testing.T) {
	key := storetest.Engines()[0].Key
	a, err := pierredb.Open("sqlite::memory:", key)
	require.NoError(t, err)
	defer a.Close()
	b, err := pierredb.Open("sqlite::memory:", key)
	require.NoError(t, err)
	defer b.Close()
	assert.NotEqual(t, a.Info().KeyringID, b.Info().KeyringID, "each in-memory Database is its own database")
	assert.Equal(t, ":memory:", a.Info().Location)
	assert.NotEmpty(t, a.Info().MigrationsApplied)
}

func TestOpenErrors(t *testing.T) {
	key := storetest.Engines()[0].Key
	const password = "s3cr3t-Pa55w0rd"
	for _, tc := range []struct {
		name     string
		url      string
		key      keyring.MasterKey
		want     error
		contains []string
	}{
		{"unsupported scheme", "mysql://root@localhost/db", key, pierredb.ErrInvalidURL, []string{"sqlite:./data/users.db", "postgres://"}},
		{"no scheme", "users.db", key, pierredb.ErrInvalidURL, []string{"sqlite::memory:"}},
		{"missing key", "sqlite::memory:", keyring.MasterKey{}, keyring.ErrMasterKeyMissing, nil},
		{"unreachable server", "postgres://pierre:" + password + "@127.0.0.1:1/pierre?connect_timeout=2", key, pierredb.ErrUnreachable,
			[]string{"127.0.0.1:1", "not reachable", "DATABASE_URL"}},
		{"malformed postgres url", "postgres://pierre:" + password + "@[::1/x", key, pierredb.ErrInvalidURL, nil},
		// A keyword DSN is not a URL; its text before the first ':' is no scheme
		// and may hold the password.
		{"keyword dsn", "host=127.0.0.1 user=pierre password=" + password[:4] + ":" + password[4:], key, pierredb.ErrInvalidURL,
			[]string{"does not start with a scheme"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := pierredb.Open(tc.url, tc.key)
			require.ErrorIs(t, err, tc.want)
			for _, s := range tc.contains {
				assert.Contains(t, err.Error(), s)
			}
			for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
				assert.NotContains(t, text, password)
				assert.NotContains(t, text, password[:4])
			}
			assert.Less(t, time.Since(start), 10*time.Second)
		})
	}
}

func TestOpenFromEnv(t *testing.T) {
	key, err := keyring.Generate()
	require.NoError(t, err)
	dir := t.TempDir()
	t.Setenv(keyring.EnvMasterKeyPath, "")
	t.Setenv(keyring.EnvPreviousMasterKey, "")
	t.Setenv(pierredb.EnvAutoApproveUsers, "")
	t.Setenv(pierredb.EnvUsageFlushInterval, "")

	t.Run("defaults to sqlite under ./data", func(t *testing.T) {
		t.Chdir(dir)
		t.Setenv(pierredb.EnvDatabaseURL, "")
		t.Setenv(pierredb.EnvMaxConnections, "")
		t.Setenv(keyring.EnvMasterKey, key.EncodeBase64())
		db, err := pierredb.OpenFromEnv(t.Context())
		require.NoError(t, err)
		defer db.Close()
		assert.Equal(t, pierredb.SQLite, db.Backend())
		assert.FileExists(t, filepath.Join(dir, "data", "users.db"))
	})
	t.Run("bad pool size", func(t *testing.T) {
		t.Setenv(pierredb.EnvDatabaseURL, "sqlite::memory:")
		t.Setenv(pierredb.EnvMaxConnections, "lots")
		t.Setenv(keyring.EnvMasterKey, key.EncodeBase64())
		_, err := pierredb.OpenFromEnv(t.Context())
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
	t.Run("no master key", func(t *testing.T) {
		t.Setenv(pierredb.EnvDatabaseURL, "sqlite::memory:")
		t.Setenv(pierredb.EnvMaxConnections, "")
		t.Setenv(keyring.EnvMasterKey, "")
		_, err := pierredb.OpenFromEnv(t.Context())
		assert.ErrorIs(t, err, keyring.ErrMasterKeyMissing)
	})
	t.Run("auto-approval from the environment", func(t *testing.T) {
		t.Setenv(pierredb.EnvDatabaseURL, "sqlite::memory:")
		t.Setenv(pierredb.EnvMaxConnections, "")
		t.Setenv(keyring.EnvMasterKey, key.EncodeBase64())
		t.Setenv(pierredb.EnvAutoApproveUsers, "true")
		db, err := pierredb.OpenFromEnv(t.Context())
		require.NoError(t, err)
		defer db.Close()
		require.NoError(t, db.Settings().SetAutoApproveUsers(t.Context(), false), "the stored setting says no")
		u, err := db.Users().Create(t.Context(), pierredb.NewUser{Email: "env@example.com", Password: "correct horse battery"})
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusActive, u.Status, "AUTO_APPROVE_USERS overrides the stored setting")

		t.Setenv(pierredb.EnvAutoApproveUsers, "sometimes")
		_, err = pierredb.OpenFromEnv(t.Context())
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
	t.Run("usage flush interval from the environment", func(t *testing.T) {
		t.Setenv(pierredb.EnvDatabaseURL, "sqlite:"+filepath.Join(t.TempDir(), "flush.db"))
		t.Setenv(pierredb.EnvMaxConnections, "")
		t.Setenv(keyring.EnvMasterKey, key.EncodeBase64())
		for _, bad := range []string{"soon", "-1s", "2h", "1"} {
			t.Setenv(pierredb.EnvUsageFlushInterval, bad)
			_, err := pierredb.OpenFromEnv(t.Context())
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument, bad)
			assert.Contains(t, err.Error(), pierredb.EnvUsageFlushInterval)
		}
		stored := func(db *pierredb.Database, id string) int {
			var n int
			require.NoError(t, db.Bun().QueryRowContext(t.Context(),
				"SELECT COALESCE(SUM(request_count), 0) FROM api_key_usage WHERE api_key_id = ?", id).Scan(&n))
			return n
		}
		for _, tc := range []struct {
			value string
			want  int
		}{{"0", 3}, {"1h", 1}} {
			t.Setenv(pierredb.EnvUsageFlushInterval, tc.value)
			db, err := pierredb.OpenFromEnv(t.Context(), pierredb.WithAutoApproveUsers(true))
			require.NoError(t, err)
			u, err := db.Users().Create(t.Context(), pierredb.NewUser{Email: "flush-" + tc.value + "@example.com", Password: "correct horse battery"})
			require.NoError(t, err)
			tn, err := db.Tenants().Create(t.Context(), pierredb.NewTenant{Name: "F", Slug: "f-" + tc.value, OwnerUserID: u.ID})
			require.NoError(t, err)
			scope, err := db.Tenant(t.Context(), tn.ID)
			require.NoError(t, err)
			k, err := scope.APIKeys().Create(t.Context(), pierredb.NewAPIKey{UserID: u.ID, Name: "k"})
			require.NoError(t, err)
			for range 3 {
				_, err := db.APIKeys().Verify(t.Context(), k.Key.Reveal())
				require.NoError(t, err)
			}
			assert.Equal(t, tc.want, stored(db, k.ID), "%s=%s", pierredb.EnvUsageFlushInterval, tc.value)
			require.NoError(t, db.Close())
		}
	})
	t.Run("pool size from the environment", func(t *testing.T) {
		e := storetest.Engines()[1]
		e.Require(t)
		t.Setenv(pierredb.EnvDatabaseURL, e.NewURL(t))
		t.Setenv(pierredb.EnvMaxConnections, "3")
		t.Setenv(keyring.EnvMasterKey, key.EncodeHex())
		db, err := pierredb.OpenFromEnv(t.Context())
		require.NoError(t, err)
		defer db.Close()
		assert.Equal(t, 3, db.Stats().Write.MaxOpenConnections)
	})
}

func TestOpenLogs(t *testing.T) {
	var buf strings.Builder
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	db, err := pierredb.Open("sqlite::memory:", storetest.Engines()[0].Key, pierredb.WithLogger(logger))
	require.NoError(t, err)
	defer db.Close()
	assert.Contains(t, buf.String(), "migrations applied")
	assert.Contains(t, buf.String(), "backend=sqlite")
	assert.NotContains(t, buf.String(), storetest.Engines()[0].Key.EncodeBase64())
}
