package pierredb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
	"github.com/pierre-mcp/pierre/pierredb/internal/password"
	"github.com/pierre-mcp/pierre/pierredb/postgres"
	"github.com/pierre-mcp/pierre/pierredb/sqlite"
)

// Environment variables that OpenFromEnv reads (the master key variables are the
// keyring package's: keyring.EnvMasterKey and keyring.EnvMasterKeyPath).
const (
	EnvDatabaseURL    = "DATABASE_URL"
	EnvMaxConnections = "DATABASE_MAX_CONNECTIONS"
	// EnvUsageFlushInterval sets WithUsageFlushInterval: a Go duration ("1s",
	// "250ms") up to an hour, or "0" to count every request in the database.
	EnvUsageFlushInterval = "PIERREDB_USAGE_FLUSH_INTERVAL"
)

// DefaultURL is the database OpenFromEnv opens when DATABASE_URL is unset: a
// SQLite file under ./data, created on first start.
const DefaultURL = "sqlite:./data/users.db"

// acceptedForms is what every URL error tells the user to write instead.
const acceptedForms = "use sqlite:./data/users.db, sqlite:///abs/path.db, sqlite::memory: or postgres://user:password@host:5432/database"

// A Connector opens the engine side of a Database: a *sqlite.Connector (a file
// and its settings) or a *postgres.Connector (a URL, or a pool the host already
// has). OpenConnector takes one; Open builds one from a URL. Other
// implementations are refused.
type Connector interface {
	// Dialect names the engine: "sqlite" or "postgres".
	Dialect() string
}

// Open opens the database at url with the master key that protects its secrets.
// It is OpenContext with context.Background().
func Open(url string, key keyring.MasterKey, opts ...Option) (*Database, error) {
	return OpenContext(context.Background(), url, key, opts...)
}

// OpenContext opens the database at url:
//
//	sqlite:./data/users.db      a file, created (with its directory) on first start
//	sqlite:///abs/path.db       an absolute path
//	sqlite::memory:             a private in-memory database
//	postgres://user:pass@host:5432/db?sslmode=verify-full&search_path=pierre
//
// It then, in this order, checks the master key against the stored keyring (a wrong
// key fails here, before any write), applies pending migrations, creates the keyring
// on first start, and returns the Database. ctx bounds the whole sequence.
func OpenContext(ctx context.Context, url string, key keyring.MasterKey, opts ...Option) (_ *Database, err error) {
	defer wrapOpen(&err)
	cfg := newConfig(opts)
	c, err := connectorFor(url, cfg)
	if err != nil {
		return nil, err
	}
	return open(ctx, c, key, cfg)
}

// OpenConnector opens the database that c describes, as OpenContext does for a
// URL: it is to Open what database/sql's OpenDB is to sql.Open. Use it to share a
// pool the host already has:
//
//	c, err := postgres.FromDB(hostPool) // a *sql.DB opened with pgx's stdlib driver
//	db, err := pierredb.OpenConnector(ctx, c, key)
//
// Options that shape a connection (WithMaxConnections, WithConnectTimeout,
// WithBusyTimeout) are the connector's business and are ignored here.
func OpenConnector(ctx context.Context, c Connector, key keyring.MasterKey, opts ...Option) (_ *Database, err error) {
	defer wrapOpen(&err)
	if c == nil {
		return nil, fmt.Errorf("%w: connector is nil; use sqlite.NewConnector or postgres.NewConnector", ErrInvalidArgument)
	}
	return open(ctx, c, key, newConfig(opts))
}

func wrapOpen(errp *error) {
	if *errp != nil {
		*errp = &opError{op: "open", err: *errp}
	}
}

// connectorFor picks the engine from a database URL. Errors wrap ErrInvalidURL and
// never repeat the URL, which may hold a password.
func connectorFor(url string, cfg config) (Connector, error) {
	scheme, _, ok := strings.Cut(url, ":")
	if !ok {
		return nil, fmt.Errorf("%w: no scheme; %s", ErrInvalidURL, acceptedForms)
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		sc, err := sqlite.ParseURL(url)
		if err != nil {
			return nil, err
		}
		if sc.BusyTimeout == 0 {
			sc.BusyTimeout = cfg.busyTimeout
		}
		c, err := sqlite.NewConnector(sc)
		if err != nil {
			return nil, err // never a non-nil interface around a nil *Connector
		}
		return c, nil
	case "postgres", "postgresql":
		c, err := postgres.NewConnector(postgres.Config{URL: url, MaxConns: cfg.maxConns, ConnectTimeout: cfg.connectTimeout})
		if err != nil {
			return nil, err
		}
		return c, nil
	default:
		return nil, fmt.Errorf("%w: unsupported scheme %q; %s", ErrInvalidURL, shorten(scheme), acceptedForms)
	}
}

func open(ctx context.Context, c Connector, key keyring.MasterKey, cfg config) (*Database, error) {
	if key.IsZero() {
		return nil, keyring.ErrMasterKeyMissing
	}
	eng, err := engine.Connect(ctx, c.Dialect(), c)
	if err != nil {
		return nil, err
	}
	var qlog *queryLogger
	if cfg.queryLog != nil {
		qlog = &queryLogger{log: cfg.queryLog, backend: eng.Backend}
		same := eng.Reader == eng.Writer
		eng.Writer = eng.Writer.WithQueryHook(*qlog)
		if same {
			eng.Reader = eng.Writer
		} else {
			eng.Reader = eng.Reader.WithQueryHook(*qlog)
		}
	}
	db := &Database{
		eng:         eng,
		now:         cfg.now,
		log:         cfg.logger,
		closed:      make(chan struct{}),
		reads:       newStmtCache(eng.Reader.DB, eng.Rebind),
		writes:      newStmtCache(eng.Writer.DB, eng.Rebind),
		hasher:      password.NewHasher(cfg.passwordPolicy),
		autoApprove: cfg.autoApprove,
		lastActive:  throttle{interval: cfg.lastActive},

		insertUserSQL: strings.Replace(insertUserSQLTemplate, "{time}", eng.TimeParam, 1),
		countSQL:      countStatements(eng.RelaxedCommitOne),

		verifyCountSQL: verifyCountStatements(eng.Dialect),
	}
	flush := eng.UsageFlushInterval
	if cfg.usageFlush != nil {
		flush = *cfg.usageFlush
	}
	if flush > 0 && !eng.ReadOnly {
		db.tally = newTally(db, flush)
	}
	db.reads.log, db.writes.log = qlog, qlog
	if err := db.start(ctx, key, cfg); err != nil {
		_ = db.Close()
		return nil, err
	}
	db.log.Info("pierredb: opened", "backend", eng.Backend, "location", eng.Info.Location,
		"driver", eng.Info.Driver, "migrations_applied", len(db.applied), "keyring", db.keys.DatabaseID())
	return db, nil
}

func (db *Database) start(ctx context.Context, key keyring.MasterKey, cfg config) error {
	store := &keyringStore{eng: db.eng, now: db.now}
	var kopts []keyring.Option
	if !cfg.previousKey.IsZero() {
		kopts = append(kopts, keyring.WithPreviousMasterKey(cfg.previousKey))
	}
	kopts = append(kopts, keyring.WithClock(db.now))

	// 1. A stored keyring is unlocked before anything is written, so that a wrong
	// master key leaves the database untouched. A database that has held data
	// never gets a new keyring: that would make every stored secret unreadable.
	exists, err := db.eng.TableExists(ctx, db.eng.Reader, "keyring_meta")
	if err != nil {
		return db.classify(err)
	}
	if exists {
		keys, err := keyring.Unlock(ctx, store, key, kopts...)
		switch {
		case err == nil:
			db.keys = keys
		case errors.Is(err, keyring.ErrKeyringEmpty):
			if err := store.checkNeverInitialised(ctx); err != nil {
				return err
			}
		default:
			return err
		}
	}

	// 2. Migrations: pierre's, then the host's. A restart with nothing pending
	// (the common case) takes no lock and sends no DDL; anything pending is
	// re-checked under the lock.
	sets := []migrationSet{pierreMigrations(db.eng)}
	for _, h := range cfg.host {
		set, err := h.set(db.eng.Backend)
		if err != nil {
			return err
		}
		sets = append(sets, set)
	}
	db.sets = sets
	for _, set := range sets {
		status, unknown, err := schemaState(ctx, db.eng, set)
		if err != nil {
			return err
		}
		if !cfg.noMigrations && !db.eng.ReadOnly && !allApplied(status) {
			applied, err := runMigrations(ctx, db.eng, set)
			if err != nil {
				return err
			}
			db.applied = append(db.applied, applied...)
			if len(applied) > 0 {
				db.log.Info("pierredb: migrations applied", "set", set.name, "names", strings.Join(applied, ","))
			}
			if status, unknown, err = schemaState(ctx, db.eng, set); err != nil {
				return err
			}
		}
		if err := schemaCurrent(set.name, status, unknown); err != nil {
			return err
		}
		if set.name == "pierre" {
			for _, m := range status {
				if m.Applied {
					db.schemaVersion = m.Name
				}
			}
		}
	}

	// 3. The keyring: created on first start (insert-if-absent, then re-read, so
	// that instances starting together agree on one data key).
	if db.keys == nil {
		var keys *keyring.Keyring
		if db.eng.ReadOnly {
			keys, err = keyring.Unlock(ctx, store, key, kopts...)
		} else {
			keys, err = keyring.Open(ctx, store, key, kopts...)
		}
		if err != nil {
			return err
		}
		db.keys = keys
	}
	return nil
}

// OpenFromEnv opens the database that the environment describes:
//
//	DATABASE_URL                     database URL (default sqlite:./data/users.db)
//	DATABASE_MAX_CONNECTIONS         PostgreSQL pool size (default 10)
//	PIERRE_MASTER_ENCRYPTION_KEY     master key, base64 or hex of 32 bytes, or
//	DATABASE_ENCRYPTION_KEY_PATH     a file holding it (mode 0600 or stricter)
//	PIERRE_PREVIOUS_MASTER_ENCRYPTION_KEY  optional, during a master key rollover
//	AUTO_APPROVE_USERS               true/false: overrides the stored auto-approval setting
//	PIERREDB_LOG_QUERIES             1: log every statement to stderr (WithQueryLog)
//	PIERREDB_USAGE_FLUSH_INTERVAL    a duration such as 1s, or 0 (WithUsageFlushInterval)
//
// opts are applied after the environment, so an explicit option wins.
func OpenFromEnv(ctx context.Context, opts ...Option) (_ *Database, err error) {
	defer wrapOpen(&err)
	url := os.Getenv(EnvDatabaseURL)
	if url == "" {
		url = DefaultURL
	}
	envOpts, err := OptionsFromEnv(os.Getenv, os.Stderr)
	if err != nil {
		return nil, err
	}
	key, err := keyring.LoadMasterKey(keyring.LoadOptions{})
	if err != nil {
		return nil, err
	}
	prev, err := keyring.LoadPreviousMasterKey(keyring.LoadOptions{})
	if err != nil {
		return nil, err
	}
	if !prev.IsZero() {
		envOpts = append(envOpts, WithPreviousMasterKey(prev))
	}
	cfg := newConfig(append(envOpts, opts...))
	c, err := connectorFor(url, cfg)
	if err != nil {
		return nil, err
	}
	return open(ctx, c, key, cfg)
}

// maxUsageFlushInterval bounds EnvUsageFlushInterval: counts older than that
// are too much to lose in a crash.
const maxUsageFlushInterval = time.Hour

// OptionsFromEnv returns the options that the environment's
// DATABASE_MAX_CONNECTIONS, PIERREDB_LOG_QUERIES (logged to logTo),
// AUTO_APPROVE_USERS and PIERREDB_USAGE_FLUSH_INTERVAL ask for, read through
// getenv (os.Getenv, or a host's own lookup), or ErrInvalidArgument naming the
// variable that does not parse. OpenFromEnv uses it; so can a host that opens
// with its own connector.
func OptionsFromEnv(getenv func(string) string, logTo io.Writer) ([]Option, error) {
	var opts []Option
	if v := getenv(EnvMaxConnections); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return nil, fmt.Errorf("%w: %s=%q is not a pool size between 1 and 10000",
				ErrInvalidArgument, EnvMaxConnections, shorten(v))
		}
		opts = append(opts, WithMaxConnections(n))
	}
	if v := getenv(EnvLogQueries); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s=%q is not a boolean (1 or 0)", ErrInvalidArgument, EnvLogQueries, shorten(v))
		}
		if on {
			opts = append(opts, WithQueryLog(slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		}
	}
	if v := getenv(EnvAutoApproveUsers); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s=%q is not a boolean (true or false)", ErrInvalidArgument, EnvAutoApproveUsers, shorten(v))
		}
		opts = append(opts, WithAutoApproveUsers(on))
	}
	if v := getenv(EnvUsageFlushInterval); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxUsageFlushInterval {
			return nil, fmt.Errorf("%w: %s=%q is not a duration between 0 and 1h (for example 1s, or 0 to count every request in the database)",
				ErrInvalidArgument, EnvUsageFlushInterval, shorten(v))
		}
		opts = append(opts, WithUsageFlushInterval(d))
	}
	return opts, nil
}
