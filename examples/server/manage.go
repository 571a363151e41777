package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/pierre-mcp/pierre/keyring"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/manage"
)

// errTaskFailed stands for a management task's failure, which manage.Main
// has already reported on stderr.
var errTaskFailed = errors.New("the task failed")

// manageMain runs one of the seed's management tasks (pierredb/manage) with
// this host's migrations, so that status and restore know its tables too.
// Like serve, it uses the development key a first run left in ./data/master.key
// when the environment names none. setup follows serve's whole key rule: on a
// brand-new checkout it is a first run, which generates that key (and removes
// it again if setup fails); the other tasks never make one.
func manageMain(ctx context.Context, args []string, stderr io.Writer) int {
	env := manage.Env{Program: "server", Options: []pierredb.Option{pierredb.WithHostMigrations(hostMigrations())}}
	if args[0] != "setup" || slices.ContainsFunc(args, isHelp) {
		if os.Getenv(keyring.EnvMasterKey) == "" && os.Getenv(keyring.EnvMasterKeyPath) == "" {
			if _, err := os.Stat(devKeyPath); err == nil {
				_ = os.Setenv(keyring.EnvMasterKeyPath, devKeyPath)
			}
		}
		return manage.Main(ctx, args, env)
	}
	url, err := checkDatabaseEnv()
	if err != nil {
		fmt.Fprintf(stderr, "server: %v\n", err)
		return manage.ExitError
	}
	code := manage.ExitOK
	err = withMasterKey(ctx, url, stderr, func() error {
		if code = manage.Main(ctx, args, env); code != manage.ExitOK {
			return errTaskFailed
		}
		return nil
	})
	if err != nil && !errors.Is(err, errTaskFailed) {
		fmt.Fprintf(stderr, "server: %v\n", err)
		return manage.ExitError
	}
	return code
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }
