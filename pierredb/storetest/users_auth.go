package storetest

// The Users domain, continued: passwords, Authenticate and last_active.

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"golang.org/x/crypto/bcrypt"

	"github.com/pierre-mcp/pierre/pierredb"
)

// rawPasswordHash reads a user's password_hash straight from the table.
func rawPasswordHash(t testing.TB, db *pierredb.Database, id string) string {
	t.Helper()
	var h string
	require.NoError(t, db.Bun().QueryRowContext(context.Background(),
		"SELECT password_hash FROM users WHERE id = ?", id).Scan(&h))
	return h
}

// setRawPasswordHash replaces a user's password_hash behind the store's back.
func setRawPasswordHash(t testing.TB, db *pierredb.Database, id, hash string) {
	t.Helper()
	_, err := db.Bun().ExecContext(context.Background(), "UPDATE users SET password_hash = ? WHERE id = ?", hash, id)
	require.NoError(t, err)
}

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

// argonParams parses an argon2id PHC string (16-byte salt, 32-byte key) and
// returns its m, t and p.
func argonParams(t testing.TB, phc string) [3]int {
	t.Helper()
	g := phcRE.FindStringSubmatch(phc)
	require.NotNil(t, g, "not an argon2id PHC string with a 16-byte salt and 32-byte key: %.20s…", phc)
	var out [3]int
	for i := range out {
		out[i], _ = strconv.Atoi(g[i+1])
	}
	return out
}

var _ = register("Users", "Passwords", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		u := activeUser(t, db, "pw")
		const reset, next = "Reset-Passw0rd-by-admin", "Next-Passw0rd-by-user"

		// SetPassword: an admin reset, no old password needed.
		for _, tc := range []struct {
			name, id, pw string
			want         error
		}{
			{"too short", u.ID, "short", pierredb.ErrPasswordTooShort},
			{"too long", u.ID, strings.Repeat("y", 4097), pierredb.ErrPasswordTooLong},
			{"empty id", "", reset, pierredb.ErrInvalidArgument},
			{"unknown user", uuid.NewString(), reset, pierredb.ErrNotFound},
		} {
			t.Run("set "+tc.name, func(t *testing.T) {
				err := db.Users().SetPassword(ctx, tc.id, tc.pw)
				require.ErrorIs(t, err, tc.want)
				onePrefix(t, err)
				noLeak(t, err, tc.pw, Password)
			})
		}
		before := rawPasswordHash(t, db, u.ID)
		require.NoError(t, db.Users().SetPassword(ctx, u.ID, reset))
		after := rawPasswordHash(t, db, u.ID)
		assert.NotEqual(t, before, after)
		assert.Equal(t, [3]int{19456, 2, 1}, argonParams(t, after))
		_, err := db.Authenticate(ctx, u.Email, reset)
		require.NoError(t, err)
		_, err = db.Authenticate(ctx, u.Email, Password)
		require.ErrorIs(t, err, pierredb.ErrInvalidCredentials, "the old password no longer works")

		// ChangePassword: the current password is required.
		for _, tc := range []struct {
			name, id, current, next string
			want                    error
		}{
			{"wrong current password", u.ID, "Wrong-current-passw0rd", next, pierredb.ErrInvalidCredentials},
			{"new one too short", u.ID, reset, "short", pierredb.ErrPasswordTooShort},
			{"new one too long", u.ID, reset, strings.Repeat("z", 4097), pierredb.ErrPasswordTooLong},
			{"over-long current password", u.ID, strings.Repeat("z", 4097), next, pierredb.ErrInvalidCredentials}, // just wrong
			{"unknown user", uuid.NewString(), reset, next, pierredb.ErrNotFound},
			{"empty id", "", reset, next, pierredb.ErrInvalidArgument},
		} {
			t.Run("change "+tc.name, func(t *testing.T) {
				err := db.Users().ChangePassword(ctx, tc.id, tc.current, tc.next)
				require.ErrorIs(t, err, tc.want)
				onePrefix(t, err)
				noLeak(t, err, tc.current, tc.next, reset)
				assert.Equal(t, after, rawPasswordHash(t, db, u.ID), "a refused change leaves the hash alone")
			})
		}

		require.NoError(t, db.Users().ChangePassword(ctx, u.ID, reset, next))
		assert.Equal(t, [3]int{19456, 2, 1}, argonParams(t, rawPasswordHash(t, db, u.ID)))
		got, err := db.Authenticate(ctx, u.Email, next)
		require.NoError(t, err, "the new password works")
		assert.Equal(t, u.ID, got.ID)
		_, err = db.Authenticate(ctx, u.Email, reset)
		require.ErrorIs(t, err, pierredb.ErrInvalidCredentials, "the old password fails")
	})
})

var _ = register("Users", "Authenticate", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		active := activeUser(t, db, "active")
		pending := pendingUser(t, db, "pending")
		suspended := activeUser(t, db, "suspended")
		_, err := db.Users().Suspend(ctx, suspended.ID)
		require.NoError(t, err)
		const wrong = "Wr0ng-Passw0rd-attempt"

		got, err := db.Authenticate(ctx, active.Email, Password)
		require.NoError(t, err)
		assert.Equal(t, active.ID, got.ID)
		assert.Equal(t, pierredb.StatusActive, got.Status)
		assert.False(t, got.LastActive.IsZero(), "a login records last_active")
		got, err = db.Authenticate(ctx, "  "+strings.ToUpper(active.Email)+" ", Password)
		require.NoError(t, err, "the email is normalised on the login path too")
		assert.Equal(t, active.ID, got.ID)

		for _, tc := range []struct {
			name, email, pw string
			want            error
		}{
			{"wrong password", active.Email, wrong, pierredb.ErrInvalidCredentials},
			{"password in another case", active.Email, strings.ToUpper(Password), pierredb.ErrInvalidCredentials},
			{"empty password", active.Email, "", pierredb.ErrInvalidCredentials},
			{"over-long password", active.Email, strings.Repeat(wrong, 200), pierredb.ErrInvalidCredentials},
			{"unknown email", "nobody@example.com", Password, pierredb.ErrInvalidCredentials},
			{"malformed email", "not an email", Password, pierredb.ErrInvalidCredentials},
			{"empty email", "", Password, pierredb.ErrInvalidCredentials},
			{"email with a hidden character", "\u200b" + active.Email, Password, pierredb.ErrInvalidCredentials},
			{"email not UTF-8", active.Email + "\xff", Password, pierredb.ErrInvalidCredentials},
			{"pending, right password", pending.Email, Password, pierredb.ErrUserPending},
			{"pending, wrong password", pending.Email, wrong, pierredb.ErrInvalidCredentials},
			{"suspended, right password", suspended.Email, Password, pierredb.ErrUserSuspended},
			{"suspended, wrong password", suspended.Email, wrong, pierredb.ErrInvalidCredentials},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u, err := db.Authenticate(ctx, tc.email, tc.pw)
				require.ErrorIs(t, err, tc.want)
				assert.Zero(t, u, "a failed login returns no user")
				onePrefix(t, err)
				noLeak(t, err, tc.pw, Password, wrong)
				if tc.want == pierredb.ErrInvalidCredentials {
					// Wrong password and unknown email are one and the same error.
					assert.Equal(t, "pierredb: authenticate: "+pierredb.ErrInvalidCredentials.Error(), err.Error())
					if tc.email != "" {
						assert.NotContains(t, err.Error(), tc.email)
					}
				}
			})
		}
	})
})

// AuthenticateRehash: a login upgrades an imported bcrypt hash and a hash below
// the current policy, and a failed upgrade does not fail the login.
var _ = register("Users", "AuthenticateRehash", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		params := func(id string) [3]int {
			t.Helper()
			return argonParams(t, rawPasswordHash(t, db, id))
		}

		t.Run("bcrypt import", func(t *testing.T) {
			u := activeUser(t, db, "legacy")
			legacy, err := bcrypt.GenerateFromPassword([]byte(Password), bcrypt.MinCost)
			require.NoError(t, err)
			setRawPasswordHash(t, db, u.ID, string(legacy))

			_, err = db.Authenticate(ctx, u.Email, "not-the-legacy-password")
			require.ErrorIs(t, err, pierredb.ErrInvalidCredentials)
			assert.Equal(t, string(legacy), rawPasswordHash(t, db, u.ID), "a failed login rehashes nothing")

			got, err := db.Authenticate(ctx, u.Email, Password)
			require.NoError(t, err, "a bcrypt hash verifies")
			assert.Equal(t, u.ID, got.ID)
			assert.Equal(t, [3]int{19456, 2, 1}, params(u.ID), "and is replaced by argon2id at policy")
			_, err = db.Authenticate(ctx, u.Email, Password)
			require.NoError(t, err, "the new hash verifies")
		})

		t.Run("policy raised", func(t *testing.T) {
			u := activeUser(t, db, "policy")
			require.Equal(t, [3]int{19456, 2, 1}, params(u.ID))
			strict := e.OpenURL(t, url, pierredb.WithPasswordPolicy(pierredb.PasswordPolicy{Iterations: 3}))

			_, err := strict.Authenticate(ctx, u.Email, Password)
			require.NoError(t, err)
			assert.Equal(t, [3]int{19456, 3, 1}, params(u.ID), "rehashed to the raised policy")

			stored := rawPasswordHash(t, db, u.ID)
			_, err = db.Authenticate(ctx, u.Email, Password)
			require.NoError(t, err, "an instance with the lower policy still verifies it")
			assert.Equal(t, stored, rawPasswordHash(t, db, u.ID), "and never lowers the cost")
		})

		t.Run("rehash failure does not fail the login", func(t *testing.T) {
			u := activeUser(t, db, "refused")
			stored := rawPasswordHash(t, db, u.ID)
			var logs logBuffer
			strict := e.OpenURL(t, url, pierredb.WithPasswordPolicy(pierredb.PasswordPolicy{Iterations: 3}),
				pierredb.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

			// A trigger makes every UPDATE of password_hash fail inside the database.
			w := db.Bun()
			if e.Backend == pierredb.Postgres {
				_, err := w.ExecContext(ctx, `CREATE FUNCTION storetest_refuse_rehash() RETURNS trigger LANGUAGE plpgsql AS
					'BEGIN RAISE EXCEPTION ''password_hash is frozen by the test''; END'`)
				require.NoError(t, err)
				_, err = w.ExecContext(ctx, `CREATE TRIGGER storetest_refuse_rehash BEFORE UPDATE OF password_hash ON users
					FOR EACH ROW EXECUTE FUNCTION storetest_refuse_rehash()`)
				require.NoError(t, err)
			} else {
				_, err := w.ExecContext(ctx, `CREATE TRIGGER storetest_refuse_rehash BEFORE UPDATE OF password_hash ON users
					BEGIN SELECT RAISE(ABORT, 'password_hash is frozen by the test'); END`)
				require.NoError(t, err)
			}
			_, err := w.ExecContext(ctx, "UPDATE users SET password_hash = password_hash WHERE id = ?", u.ID)
			require.Error(t, err, "the trigger is in force")

			got, err := strict.Authenticate(ctx, u.Email, Password)
			require.NoError(t, err, "the login succeeds although the rehash failed")
			assert.Equal(t, u.ID, got.ID)
			assert.Equal(t, stored, rawPasswordHash(t, db, u.ID), "the old hash stays")
			assert.Contains(t, logs.String(), "rehash failed")
			assert.Contains(t, logs.String(), u.ID)
			assert.NotContains(t, logs.String(), Password)

			if e.Backend == pierredb.Postgres {
				_, err = w.ExecContext(ctx, "DROP TRIGGER storetest_refuse_rehash ON users")
			} else {
				_, err = w.ExecContext(ctx, "DROP TRIGGER storetest_refuse_rehash")
			}
			require.NoError(t, err)
			_, err = strict.Authenticate(ctx, u.Email, Password)
			require.NoError(t, err)
			assert.Equal(t, [3]int{19456, 3, 1}, params(u.ID), "the next login rehashes")
		})
	})
})

var _ = register("Users", "Touch", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock(base)
		url := e.NewURL(t)
		opts := []pierredb.Option{pierredb.WithClock(clk.Now), pierredb.WithLastActiveInterval(time.Minute)}
		db := e.OpenURL(t, url, opts...)
		u := activeUser(t, db, "busy")
		lastActive := func() time.Time { t.Helper(); return rawTime(t, db, "users", "last_active", u.ID) }
		require.True(t, lastActive().IsZero(), "never seen")

		require.NoError(t, db.Users().Touch(ctx, u.ID))
		first := micro(clk.Now())
		assert.Equal(t, first, lastActive(), "the first touch writes")

		clk.Advance(10 * time.Second)
		require.NoError(t, db.Users().Touch(ctx, u.ID))
		assert.Equal(t, first, lastActive(), "a touch within the interval writes nothing")

		clk.Set(base.Add(61 * time.Second))
		require.NoError(t, db.Users().Touch(ctx, u.ID))
		second := micro(clk.Now())
		assert.Equal(t, second, lastActive(), "after the interval it writes again")
		got, err := db.Users().Get(ctx, u.ID)
		require.NoError(t, err)
		assert.Equal(t, second, got.LastActive)

		// Another instance has no memory of those writes: the conditional UPDATE
		// keeps it from moving last_active within the interval.
		other := e.OpenURL(t, url, opts...)
		clk.Advance(10 * time.Second) // base+71s
		require.NoError(t, other.Users().Touch(ctx, u.ID))
		assert.Equal(t, second, lastActive(), "another instance within the interval writes nothing")

		// A login through a third instance reports what is stored, not a write
		// that the conditional UPDATE skipped.
		third := e.OpenURL(t, url, opts...)
		logged, err := third.Authenticate(ctx, u.Email, Password)
		require.NoError(t, err)
		assert.Equal(t, second, logged.LastActive)
		assert.Equal(t, second, lastActive())

		clk.Set(base.Add(132 * time.Second)) // 61 s after other's skipped touch
		require.NoError(t, other.Users().Touch(ctx, u.ID))
		latest := micro(clk.Now())
		assert.Equal(t, latest, lastActive(), "past the interval another instance writes")
		require.NoError(t, db.Users().Touch(ctx, u.ID))
		assert.Equal(t, latest, lastActive(), "and the first instance now defers to it")

		clk.Advance(2 * time.Minute)
		logged, err = db.Authenticate(ctx, u.Email, Password)
		require.NoError(t, err)
		assert.Equal(t, micro(clk.Now()), logged.LastActive, "a login touches")
		assert.Equal(t, micro(clk.Now()), lastActive())

		err = db.Users().Touch(ctx, "")
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		onePrefix(t, err)
	})
})

// Users/TouchInRolledBackTx: a touch inside a RunInTx that rolls back leaves
// nothing behind, not even in the process's memory: the next touch outside it
// writes (an API key's last use likewise).
var _ = register("Users", "TouchInRolledBackTx", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock(base)
		db := e.Open(t, pierredb.WithClock(clk.Now), pierredb.WithLastActiveInterval(time.Minute))
		u := activeUser(t, db, "rolled")
		_, scope := newTenant(t, db, u)
		key, err := scope.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: u.ID, Name: "rolled"})
		require.NoError(t, err)
		plaintext := key.Key.Reveal()

		errRollback := errors.New("host says no")
		err = db.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
			require.NoError(t, db.Users().Touch(ctx, u.ID))
			_, err := db.APIKeys().Check(ctx, plaintext)
			require.NoError(t, err)
			return errRollback
		})
		require.ErrorIs(t, err, errRollback)
		assert.True(t, rawTime(t, db, "users", "last_active", u.ID).IsZero(), "rolled back")
		assert.True(t, rawTime(t, db, "api_keys", "last_used_at", key.ID).IsZero(), "rolled back")

		clk.Advance(time.Second) // within the interval
		require.NoError(t, db.Users().Touch(ctx, u.ID))
		_, err = db.APIKeys().Check(ctx, plaintext)
		require.NoError(t, err)
		assert.Equal(t, micro(clk.Now()), rawTime(t, db, "users", "last_active", u.ID), "the rolled-back touch did not count")
		assert.Equal(t, micro(clk.Now()), rawTime(t, db, "api_keys", "last_used_at", key.ID), "the rolled-back use did not count")

		// Committed touches inside RunInTx are throttled by the database.
		require.NoError(t, db.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
			clk.Advance(time.Second)
			return db.Users().Touch(ctx, u.ID)
		}))
		assert.Equal(t, micro(clk.Now().Add(-time.Second)), rawTime(t, db, "users", "last_active", u.ID), "within the interval: no write")
	})
})
