package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

func TestDialect(t *testing.T) {
	ctx := context.Background()
	eng := connectTest(t, Config{Path: filepath.Join(t.TempDir(), "u.db")})

	assert.Equal(t, "", eng.RowLock)
	assert.Equal(t, "", eng.ForUpdate())
	assert.Equal(t, "SELECT a FROM t WHERE b = ? AND c = ?", eng.Rebind("SELECT a FROM t WHERE b = ? AND c = ?"))

	_, err := eng.Writer.ExecContext(ctx, `
		CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE);
		CREATE INDEX idx_users_email ON users (email);
		CREATE VIEW user_view AS SELECT id FROM users;
		CREATE TEMP TABLE scratch (id INTEGER)`)
	require.NoError(t, err)

	for _, tc := range []struct {
		table string
		want  bool
	}{
		{"users", true},
		{"missing", false},
		{"idx_users_email", false}, // an index
		{"user_view", false},       // a view
		{"scratch", false},         // temp: not in pierre's schema
		{"USERS", false},           // names are compared exactly
		{"users' OR '1'='1", false},
		{"", false},
	} {
		for _, db := range []bun.IDB{eng.Writer, eng.Reader} {
			got, err := eng.TableExists(ctx, db, tc.table)
			require.NoError(t, err, tc.table)
			assert.Equal(t, tc.want, got, tc.table)
		}
	}
	// Inside a transaction, TableExists sees the transaction's own DDL, and
	// LockName is a no-op that does not fail.
	tx, err := eng.Writer.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, eng.LockName(ctx, tx, "admins"))
	require.NoError(t, eng.LockName(ctx, tx, "admins")) // twice in one transaction
	_, err = tx.ExecContext(ctx, "CREATE TABLE later (id INTEGER)")
	require.NoError(t, err)
	got, err := eng.TableExists(ctx, tx, "later")
	require.NoError(t, err)
	assert.True(t, got)
	require.NoError(t, tx.Rollback())
	got, err = eng.TableExists(ctx, eng.Writer, "later")
	require.NoError(t, err)
	assert.False(t, got)

	// A failing catalog read is classified.
	_, err = eng.TableExists(ctx, eng.Reader, "a\x00b")
	require.ErrorIs(t, err, engine.ErrInvalidArgument)
	require.NoError(t, eng.Close())
	_, err = eng.TableExists(ctx, eng.Reader, "users")
	require.Error(t, err)
}
