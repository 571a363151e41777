package main

import (
	"context"
	"os"

	"github.com/pierre-mcp/pierre/keyring"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/manage"
)

// manageMain runs one of the seed's management tasks (pierredb/manage) with
// this host's migrations, so that status and restore know its tables too.
// Like serve, it uses the development key a first run left in ./data/master.key
// when the environment names none (it never makes one).
func manageMain(ctx context.Context, args []string) int {
	if os.Getenv(keyring.EnvMasterKey) == "" && os.Getenv(keyring.EnvMasterKeyPath) == "" {
		if _, err := os.Stat(devKeyPath); err == nil {
			_ = os.Setenv(keyring.EnvMasterKeyPath, devKeyPath)
		}
	}
	return manage.Main(ctx, args, manage.Env{Program: "server", Options: []pierredb.Option{pierredb.WithHostMigrations(hostMigrations())}})
}
