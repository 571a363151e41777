// Command server is pierre's example host. Until the MCP server lands it opens the
// database the environment describes, prints its status and exits:
//
//	go run ./examples/server
//
// With nothing configured it uses SQLite at ./data/users.db and, on first start,
// creates a master key in ./data/master.key (mode 0600) so that it just works; set
// PIERRE_MASTER_ENCRYPTION_KEY or DATABASE_ENCRYPTION_KEY_PATH in production.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// devKeyPath is where a first run keeps its generated master key.
const devKeyPath = "data/master.key"

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(logger); err != nil {
		logger.Error("server failed", "err", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ensureMasterKey(logger); err != nil {
		return err
	}
	db, err := pierredb.OpenFromEnv(ctx, pierredb.WithLogger(logger))
	if err != nil {
		return err
	}
	defer db.Close()

	info := db.Info()
	fmt.Printf("pierre database ready\n")
	fmt.Printf("  backend:      %s (%s)\n", info.Backend, info.Driver)
	fmt.Printf("  location:     %s\n", info.Location)
	fmt.Printf("  keyring:      %s (master key %s)\n", info.KeyringID, info.MasterKeyFingerprint)
	status, err := db.Migrations(ctx)
	if err != nil {
		return err
	}
	for _, m := range status {
		fmt.Printf("  migration:    %s_%s applied=%t\n", m.Name, m.Comment, m.Applied)
	}
	for _, k := range db.Keyring().Keys() {
		fmt.Printf("  key:          %s v%d %s\n", k.Purpose, k.Version, k.State)
	}
	st := db.Stats()
	fmt.Printf("  pools:        write %d/%d open, read %d/%d open\n",
		st.Write.OpenConnections, st.Write.MaxOpenConnections, st.Read.OpenConnections, st.Read.MaxOpenConnections)
	return nil
}

// ensureMasterKey points DATABASE_ENCRYPTION_KEY_PATH at ./data/master.key when no
// master key is configured, creating that file on first start.
func ensureMasterKey(logger *slog.Logger) error {
	if os.Getenv(keyring.EnvMasterKey) != "" || os.Getenv(keyring.EnvMasterKeyPath) != "" {
		return nil
	}
	if _, err := os.Stat(devKeyPath); errors.Is(err, fs.ErrNotExist) {
		key, err := keyring.Generate()
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(devKeyPath), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(devKeyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(key.EncodeBase64() + "\n"); err != nil {
			_ = f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		logger.Warn("no master key configured: created one for development; keep it safe and set "+
			keyring.EnvMasterKey+" or "+keyring.EnvMasterKeyPath+" in production", "path", devKeyPath)
	}
	return os.Setenv(keyring.EnvMasterKeyPath, devKeyPath)
}
