package pierredb_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/internal/password"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// A database that still holds imported bcrypt hashes makes every login cost
// what verifying the costliest of them costs, so that a failed login does not
// tell an imported account apart (the timing itself is measured in package
// password). The costliest hash is found by the first login, through the
// hash-kind index, whatever the order the rows were written in.
func TestAuthenticateRaisesThePasswordFloor(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		policy := pierredb.PasswordFloorCost(db)
		imported := map[string]int{"imp-a@example.com": 5, "imp-b@example.com": 7, "imp-c@example.com": 6}
		for email, cost := range imported {
			u, err := db.Users().Create(ctx, pierredb.NewUser{Email: email, Password: "imported password"})
			require.NoError(t, err)
			h, err := bcrypt.GenerateFromPassword([]byte("imported password"), cost)
			require.NoError(t, err)
			_, err = db.Bun().ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", string(h), u.ID)
			require.NoError(t, err)
		}
		// A bcrypt-7 hash costs less than argon2id at policy: the floor stays.
		fresh := e.OpenURL(t, url)
		_, err := fresh.Authenticate(ctx, "nobody@example.com", "whatever password")
		require.ErrorIs(t, err, pierredb.ErrInvalidCredentials)
		assert.Equal(t, policy, pierredb.PasswordFloorCost(fresh))

		// A bcrypt-10 import is costlier: the next Database finds it at its first
		// login, and even an unknown email then costs a bcrypt-10 verification.
		u, err := db.Users().Create(ctx, pierredb.NewUser{Email: "imp-d@example.com", Password: "imported password"})
		require.NoError(t, err)
		h, err := bcrypt.GenerateFromPassword([]byte("imported password"), 10)
		require.NoError(t, err)
		_, err = db.Bun().ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", string(h), u.ID)
		require.NoError(t, err)
		want, err := password.Cost("$2a$10$")
		require.NoError(t, err)
		require.Greater(t, want, policy)
		again := e.OpenURL(t, url)
		_, err = again.Authenticate(ctx, "nobody@example.com", "whatever password")
		require.True(t, errors.Is(err, pierredb.ErrInvalidCredentials))
		assert.Equal(t, want, pierredb.PasswordFloorCost(again))
	})
}
