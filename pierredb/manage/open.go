package manage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/sqlite"
)

// databaseURL is DATABASE_URL, or pierredb.DefaultURL when unset.
func (e Env) databaseURL() string {
	if u := e.getenv(pierredb.EnvDatabaseURL); u != "" {
		return u
	}
	return pierredb.DefaultURL
}

// loadOptions reads master keys through e's environment.
func (e Env) loadOptions() keyring.LoadOptions {
	return keyring.LoadOptions{Getenv: e.Getenv}
}

// masterKey loads the master key the environment names.
func (e Env) masterKey() (keyring.MasterKey, error) {
	k, err := keyring.LoadMasterKey(e.loadOptions())
	return k, explain(err)
}

// open opens the database the environment names, exactly as
// pierredb.OpenFromEnv does (through e.Getenv when set), with e.Options last.
// Its error says what the operator should do.
func (e Env) open(ctx context.Context, extra ...pierredb.Option) (*pierredb.Database, error) {
	opts := append(append([]pierredb.Option(nil), e.Options...), extra...)
	if e.Getenv == nil {
		db, err := pierredb.OpenFromEnv(ctx, opts...)
		return db, explain(err)
	}
	db, err := e.openWithGetenv(ctx, opts)
	return db, explain(err)
}

// openWithGetenv is pierredb.OpenFromEnv reading e.Getenv instead of the
// process environment: the same variables, defaults and checks.
func (e Env) openWithGetenv(ctx context.Context, opts []pierredb.Option) (*pierredb.Database, error) {
	envOpts, err := pierredb.OptionsFromEnv(e.getenv, e.stderr())
	if err != nil {
		return nil, err
	}
	key, err := keyring.LoadMasterKey(e.loadOptions())
	if err != nil {
		return nil, err
	}
	prev, err := keyring.LoadPreviousMasterKey(e.loadOptions())
	if err != nil {
		return nil, err
	}
	if !prev.IsZero() {
		envOpts = append(envOpts, pierredb.WithPreviousMasterKey(prev))
	}
	return pierredb.OpenContext(ctx, e.databaseURL(), key, append(envOpts, opts...)...)
}

// openExisting is open for the commands that work on data that must already
// be there (every command but setup): a mistyped DATABASE_URL must fail, not
// create an empty database (with a keyring) that the command then reports on.
func (e Env) openExisting(ctx context.Context) (*pierredb.Database, error) {
	db, err := e.open(ctx, pierredb.WithExistingDatabase())
	var a *advice
	if err == nil || !errors.Is(err, pierredb.ErrNotFound) || errors.As(err, &a) {
		return db, err
	}
	what := "check the path in " + pierredb.EnvDatabaseURL
	if t, terr := e.resolveTarget(); terr == nil && t.backend == pierredb.Postgres {
		what = "check the database and the search_path (schema " + t.pg.schema + ") in " + pierredb.EnvDatabaseURL
	}
	return nil, &advice{err: err, what: what + "; of the commands, only `setup` creates a new database"}
}

// withDB opens the existing database (see openExisting), runs fn and closes
// it.
func (e Env) withDB(ctx context.Context, fn func(db *pierredb.Database) error) error {
	db, err := e.openExisting(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	return explain(fn(db))
}

// withNewDB is withDB for setup, the one command that may create the
// database.
func (e Env) withNewDB(ctx context.Context, fn func(db *pierredb.Database) error) error {
	db, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	return explain(fn(db))
}

// target is the database the environment names, as the file commands
// (backup, restore, fresh-start) need it: a SQLite file, or a PostgreSQL
// database and schema.
type target struct {
	backend pierredb.Backend
	// path is the SQLite file, absolute.
	path string
	// pg is the PostgreSQL connection, for PostgreSQL.
	pg *pgTarget
}

// resolveTarget reads DATABASE_URL without opening anything.
func (e Env) resolveTarget() (target, error) {
	raw := e.databaseURL()
	scheme, _, _ := strings.Cut(raw, ":")
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		cfg, err := sqlite.ParseURL(raw)
		if err != nil {
			return target{}, explain(err)
		}
		if cfg.Memory {
			return target{}, fmt.Errorf("%s names an in-memory database, which lives only inside its process: there is no file to work on", pierredb.EnvDatabaseURL)
		}
		path, err := filepath.Abs(cfg.Path)
		if err != nil {
			return target{}, fmt.Errorf("sqlite path: %w", err)
		}
		// SQLite follows a symbolic link and keeps its -wal beside the real
		// file: so do the file commands.
		if real, err := filepath.EvalSymlinks(path); err == nil {
			path = real
		}
		return target{backend: pierredb.SQLite, path: path}, nil
	case "postgres", "postgresql":
		pg, err := parsePGTarget(raw)
		if err != nil {
			return target{}, explain(err)
		}
		return target{backend: pierredb.Postgres, pg: pg}, nil
	default:
		return target{}, explain(fmt.Errorf("%w: %s has an unsupported scheme; use sqlite:./data/users.db or postgres://user:password@host:5432/database",
			pierredb.ErrInvalidURL, pierredb.EnvDatabaseURL))
	}
}

// advice is an error with what the operator should do about it; errors.Is and
// errors.As see the original.
type advice struct {
	err  error
	what string
}

func (a *advice) Error() string { return a.err.Error() + "\n  -> " + a.what }
func (a *advice) Unwrap() error { return a.err }

// explain adds to err what the operator should do, for the errors an operator
// meets (a missing or wrong key, a locked database, an unreachable server).
// It is idempotent.
func explain(err error) error {
	if err == nil {
		return nil
	}
	var a *advice
	if errors.As(err, &a) {
		return err
	}
	keyVars := keyring.EnvMasterKey + " or " + keyring.EnvMasterKeyPath
	var what string
	switch {
	case errors.Is(err, keyring.ErrMasterKeyMissing):
		what = "set " + keyVars + " to the master key this database was created with (nothing was opened or written); " +
			"for a new database, `keygen` makes a key"
	case errors.Is(err, keyring.ErrMasterKeyConflict):
		what = "unset one of " + keyring.EnvMasterKey + " and " + keyring.EnvMasterKeyPath + " (nothing was opened or written)"
	case errors.Is(err, keyring.ErrMasterKeyInvalid):
		what = "a master key is 32 bytes, base64 or hex encoded (`keygen` makes one); nothing was opened or written"
	case errors.Is(err, keyring.ErrMasterKeyFileInsecure):
		what = "chmod 600 the key file (and keep it out of shared directories); nothing was opened or written"
	case errors.Is(err, keyring.ErrWrongMasterKey):
		what = "this is not the master key the database was created with (or last rotated to): set " + keyVars +
			" to that key; nothing was written"
	case errors.Is(err, keyring.ErrKeyringCorrupt):
		what = "the master key is right but the stored keyring is damaged: restore the database from a backup"
	case errors.Is(err, keyring.ErrKeyringMissing):
		what = "restore the database (with its keyring tables) from a backup"
	case errors.Is(err, pierredb.ErrBusy):
		what = "another process holds the database's write lock: wait for it, or find it with `fuser` or `lsof` on the database file and stop it"
	case errors.Is(err, pierredb.ErrUnreachable):
		what = "check the host and port of " + pierredb.EnvDatabaseURL + " and that PostgreSQL is running and reachable from here"
	case errors.Is(err, pierredb.ErrConnectionRejected):
		what = "check the user, password and database name of " + pierredb.EnvDatabaseURL + ", and the server's pg_hba.conf"
	case errors.Is(err, pierredb.ErrTLS):
		what = "check sslmode and the server's certificate (sslrootcert) in " + pierredb.EnvDatabaseURL
	case errors.Is(err, pierredb.ErrInvalidURL):
		what = "fix " + pierredb.EnvDatabaseURL
	case errors.Is(err, os.ErrPermission):
		what = "check the permissions of the file or directory named above"
	default:
		return err
	}
	return &advice{err: err, what: what}
}
