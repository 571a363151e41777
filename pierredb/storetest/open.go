package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

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

// queryLogEntry is one statement of the query log, as its JSON handler writes
// it.
type queryLogEntry struct {
	Msg      string        `json:"msg"`
	Duration time.Duration `json:"duration"` // nanoseconds
	Query    string        `json:"query"`
	Err      string        `json:"err"`
}

// openLogged opens a fresh database whose query log goes, as JSON, to the
// returned buffer.
func openLogged(t *testing.T, e Engine) (*pierredb.Database, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	return e.Open(t, pierredb.WithQueryLog(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))), logs
}

// loggedSince runs op and returns the statements it logged.
func loggedSince(t *testing.T, logs *logBuffer, op func()) []queryLogEntry {
	t.Helper()
	from := len(logs.String())
	op()
	var out []queryLogEntry
	for line := range strings.Lines(logs.String()[from:]) {
		var e queryLogEntry
		require.NoError(t, json.Unmarshal([]byte(line), &e), "%s", line)
		if e.Msg == "pierredb: query" {
			out = append(out, e)
		}
	}
	return out
}

// The query log keeps no value that a host's statement carries, whatever the
// text around it: an apostrophe in a comment or a quoted identifier, a dollar
// quote or an escape string on PostgreSQL, a bracket or backtick identifier on
// SQLite, through raw statements and bun's builders alike.
var _ = register("Open", "QueryLogHidesHostValues", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db, logs := openLogged(t, e)
		_, err := db.Bun().ExecContext(ctx, "CREATE TABLE host_tokens (id INTEGER PRIMARY KEY, tok TEXT NOT NULL)")
		require.NoError(t, err)
		pg := e.Backend == pierredb.Postgres
		cases := []struct {
			name   string
			skip   bool
			run    func(ctx context.Context, tx bun.Tx, secret string) error
			logged string // what the log shows of the statement
		}{
			{name: "apostrophe in a line comment, raw", logged: "INSERT INTO host_tokens", run: func(ctx context.Context, tx bun.Tx, secret string) error {
				_, err := tx.ExecContext(ctx, "-- store the member's provider token\nINSERT INTO host_tokens (id, tok) VALUES (1, ?)", secret)
				return err
			}},
			{name: "apostrophe in a line comment, bun", logged: "INSERT INTO host_tokens", run: func(ctx context.Context, tx bun.Tx, secret string) error {
				_, err := tx.NewRaw("-- store the member's provider token\nINSERT INTO host_tokens (id, tok) VALUES (2, ?)", secret).Exec(ctx)
				return err
			}},
			{name: "apostrophe in a block comment", logged: "UPDATE host_tokens", run: func(ctx context.Context, tx bun.Tx, secret string) error {
				_, err := tx.NewRaw("/* the member's token */ UPDATE host_tokens SET tok = ? WHERE id = 2", secret).Exec(ctx)
				return err
			}},
			{name: "apostrophe in a quoted identifier", logged: `host_tokens AS "o'brien"`, run: func(ctx context.Context, tx bun.Tx, secret string) error {
				var ids []int64
				return tx.NewSelect().TableExpr(`host_tokens AS "o'brien"`).Column("id").Where("tok = ?", secret).Scan(ctx, &ids)
			}},
			{name: "nested block comment", skip: !pg, logged: "UPDATE host_tokens", run: func(ctx context.Context, tx bun.Tx, secret string) error {
				_, err := tx.NewRaw("/* outer /* it's */ member's */ UPDATE host_tokens SET tok = ? WHERE id = 1", secret).Exec(ctx)
				return err
			}},
			{name: "dollar quote", skip: !pg, logged: "INSERT INTO host_tokens", run: func(ctx context.Context, tx bun.Tx, secret string) error {
				_, err := tx.NewRaw("INSERT INTO host_tokens (id, tok) VALUES (3, $$it's$$ || ?)", secret).Exec(ctx)
				return err
			}},
			{name: "escape string", skip: !pg, logged: "INSERT INTO host_tokens", run: func(ctx context.Context, tx bun.Tx, secret string) error {
				_, err := tx.NewRaw(`INSERT INTO host_tokens (id, tok) VALUES (4, E'it\'s' || ?)`, secret).Exec(ctx)
				return err
			}},
			{name: "bracket identifier", skip: pg, logged: "host_tokens AS [o'brien]", run: func(ctx context.Context, tx bun.Tx, secret string) error {
				var ids []int64
				return tx.NewSelect().TableExpr(`host_tokens AS [o'brien]`).Column("id").Where("tok = ?", secret).Scan(ctx, &ids)
			}},
			{name: "backtick identifier", skip: pg, logged: "host_tokens AS `o'brien`", run: func(ctx context.Context, tx bun.Tx, secret string) error {
				var ids []int64
				return tx.NewSelect().TableExpr("host_tokens AS `o'brien`").Column("id").Where("tok = ?", secret).Scan(ctx, &ids)
			}},
			{name: "failed statement", logged: "INSERT INTO host_tokens", run: func(ctx context.Context, tx bun.Tx, secret string) error {
				// A second row with id 1: its error is logged, without the value.
				_, err := tx.NewRaw("-- the member's token again\nINSERT INTO host_tokens (id, tok) VALUES (1, ?)", secret).Exec(ctx)
				return err
			}},
		}
		for i, tc := range cases {
			if tc.skip {
				continue
			}
			secret := fmt.Sprintf("HOSTSECRET-%d-xyz789", i)
			entries := loggedSince(t, logs, func() {
				err := db.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error { return tc.run(ctx, tx, secret) })
				if tc.name == "failed statement" {
					require.Error(t, err)
				} else {
					require.NoError(t, err, tc.name)
				}
			})
			var shown bool
			for _, entry := range entries {
				shown = shown || strings.Contains(entry.Query, tc.logged)
				assert.NotContains(t, entry.Query+entry.Err, "HOSTSECRET", tc.name)
			}
			assert.True(t, shown, "%s: the statement is logged, readably: %+v", tc.name, entries)
		}
	})
})

// A statement that fails is logged with its error, also when the failure shows
// only as its row is read (an INSERT … RETURNING), inside RunInTx and out; and
// a statement run in RunInTx is logged with its own duration, once it has run.
var _ = register("Open", "QueryLogFailedStatements", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db, logs := openLogged(t, e)
		owner := activeUser(t, db, "owner")
		_, scope := newTenant(t, db, owner)
		email := uniqueEmail("dup")
		_, err := db.Users().Create(ctx, pierredb.NewUser{Email: email, Password: Password})
		require.NoError(t, err)
		_, err = scope.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: owner.ID, Name: "taken-name"})
		require.NoError(t, err)

		inTx := func(op func(ctx context.Context) error) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				return db.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error { return op(ctx) })
			}
		}
		createUser := func(email string) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				_, err := db.Users().Create(ctx, pierredb.NewUser{Email: email, Password: Password})
				return err
			}
		}
		createKey := func(name string) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				_, err := scope.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: owner.ID, Name: name})
				return err
			}
		}
		for _, tc := range []struct {
			name, statement string
			op              func(ctx context.Context) error
			fails           bool
		}{
			{"user", "INSERT INTO users", createUser(uniqueEmail("new")), false},
			{"duplicate user", "INSERT INTO users", createUser(email), true},
			{"user in RunInTx", "INSERT INTO users", inTx(createUser(uniqueEmail("new"))), false},
			{"duplicate user in RunInTx", "INSERT INTO users", inTx(createUser(email)), true},
			{"API key", "INSERT INTO api_keys", createKey("new-name"), false},
			{"duplicate API key", "INSERT INTO api_keys", createKey("taken-name"), true},
			{"API key in RunInTx", "INSERT INTO api_keys", inTx(createKey("other-name")), false},
			{"duplicate API key in RunInTx", "INSERT INTO api_keys", inTx(createKey("taken-name")), true},
		} {
			entries := loggedSince(t, logs, func() {
				err := tc.op(ctx)
				require.Equal(t, tc.fails, err != nil, "%s: %v", tc.name, err)
			})
			var found []queryLogEntry
			for _, entry := range entries {
				if strings.Contains(entry.Query, tc.statement) {
					found = append(found, entry)
				}
			}
			require.Len(t, found, 1, "%s: %+v", tc.name, entries)
			if tc.fails {
				assert.NotEmpty(t, found[0].Err, "%s: the failure is logged", tc.name)
				assert.NotContains(t, found[0].Err, email, tc.name)
			} else {
				assert.Empty(t, found[0].Err, tc.name)
			}
			// Logged after it ran: no real statement takes under a microsecond.
			assert.GreaterOrEqual(t, found[0].Duration, time.Microsecond, "%s: the statement's own duration", tc.name)
		}
	})
})

// Re-encryption logs its batch reads and its compare-and-swap writes like
// every other statement, without their values.
var _ = register("Open", "QueryLogReencrypt", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db, logs := openLogged(t, e)
		owner := activeUser(t, db, "owner")
		_, scope := newTenant(t, db, owner)
		tok, err := scope.OAuthTokens().Put(ctx, accessOnly(owner.ID, pierredb.ProviderStrava, "logged"))
		require.NoError(t, err)
		_, err = db.Keyring().Rotate(ctx, keyring.PurposeEncryption)
		require.NoError(t, err)
		var res pierredb.ReencryptResult
		entries := loggedSince(t, logs, func() {
			res, err = db.Rotation().ReencryptBatch(ctx, 10)
			require.NoError(t, err)
		})
		require.Equal(t, 1, res.Rewritten)
		var read, written bool
		for _, entry := range entries {
			read = read || strings.HasPrefix(entry.Query, "SELECT access_token_encrypted")
			written = written || strings.HasPrefix(entry.Query, "UPDATE user_oauth_tokens SET access_token_encrypted = ?")
			assert.NotContains(t, entry.Query, tok.AccessToken.Reveal())
		}
		assert.True(t, read, "the batch read is logged: %+v", entries)
		assert.True(t, written, "the compare-and-swap is logged: %+v", entries)
	})
})

// Open/QueryLogLockTimeout (PostgreSQL): a guard that pierre runs in its own
// transaction and that fails only when its row is read (a lock timeout on the
// tenant row that AddMember locks) is logged with that error, not as a
// success.
var _ = register("Open", "QueryLogLockTimeout", func(t *testing.T) {
	RunOn(t, pierredb.Postgres, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db, logs := openLogged(t, e)
		owner := activeUser(t, db, "owner")
		joiner := activeUser(t, db, "joiner")
		tenant, scope := newTenant(t, db, owner)

		holder, err := db.Bun().BeginTx(ctx, nil)
		require.NoError(t, err)
		defer func() { _ = holder.Rollback() }()
		_, err = holder.ExecContext(ctx, "SELECT id FROM tenants WHERE id = ? FOR UPDATE", tenant.ID)
		require.NoError(t, err)

		entries := loggedSince(t, logs, func() {
			err := db.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
				if _, err := tx.ExecContext(ctx, "SET LOCAL lock_timeout = '100ms'"); err != nil {
					return err
				}
				_, err := scope.Members().Add(ctx, joiner.ID, pierredb.RoleMember)
				return err
			})
			require.Error(t, err, "the tenant row is locked")
		})
		var found []queryLogEntry
		for _, entry := range entries {
			if strings.Contains(entry.Query, "FROM tenants WHERE id") && strings.Contains(entry.Query, "FOR UPDATE") {
				found = append(found, entry)
			}
		}
		require.Len(t, found, 1, "%+v", entries)
		assert.Contains(t, found[0].Err, "55P03", "the lock timeout is logged with the statement")
		assert.GreaterOrEqual(t, found[0].Duration, 50*time.Millisecond, "and the time it waited")
	})
})
