package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// TestFirstRunKeepsADatabaseMadeMeanwhile: another process (setup with its own
// key in its environment, say) creates the database between this first run's
// decision to generate a key and its open. The open then fails with a wrong
// key, and the cleanup removes only the key made here: the other process's
// database and its data stay.
func TestFirstRunKeepsADatabaseMadeMeanwhile(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv(keyring.EnvMasterKey, "")
	t.Setenv(keyring.EnvMasterKeyPath, "")
	require.NoError(t, os.Unsetenv(keyring.EnvMasterKey))
	require.NoError(t, os.Unsetenv(keyring.EnvMasterKeyPath))
	const url = "sqlite:./data/users.db"
	t.Setenv(pierredb.EnvDatabaseURL, url)
	other, err := keyring.Generate()
	require.NoError(t, err)
	ctx := context.Background()

	var stderr strings.Builder
	err = withMasterKey(ctx, url, &stderr, func() error {
		odb, err := pierredb.Open(url, other) // the other process
		require.NoError(t, err)
		_, err = odb.Users().Create(ctx, pierredb.NewUser{Email: "other@example.com", Password: "correct horse battery"})
		require.NoError(t, err)
		require.NoError(t, odb.Close())
		db, err := pierredb.OpenFromEnv(ctx) // this run's open, with the key it made
		if err == nil {
			_ = db.Close()
		}
		return err
	})
	require.ErrorIs(t, err, keyring.ErrWrongMasterKey)
	assert.NoFileExists(t, devKeyPath, "the key made here wraps nothing")
	assert.FileExists(t, filepath.Join("data", "users.db"), "the other process's database stays")

	odb, err := pierredb.Open(url, other, pierredb.WithExistingDatabase())
	require.NoError(t, err)
	defer odb.Close()
	_, err = odb.Users().GetByEmail(ctx, "other@example.com")
	require.NoError(t, err, "with its data")
}
