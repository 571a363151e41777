package pierredb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
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

// CheckURL reports whether Open would accept url, without opening anything or
// touching the network or the disk: a host checks its settings with it before
// it writes anything (a key file, say). Its errors wrap ErrInvalidURL and never
// repeat the URL, which may hold a password.
func CheckURL(url string) error {
	_, err := connectorFor(url, newConfig(nil))
	return err
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
		if !plausibleScheme(scheme) {
			// Not a scheme at all (a keyword DSN such as "host=… password=…"):
			// repeating it could repeat a password.
			return nil, fmt.Errorf("%w: it does not start with a scheme; %s", ErrInvalidURL, acceptedForms)
		}
		return nil, fmt.Errorf("%w: unsupported scheme %q; %s", ErrInvalidURL, scheme, acceptedForms)
	}
}

// plausibleScheme reports whether s has the form of a URL scheme (RFC 3986: a
// letter, then letters, digits, '+', '-' or '.'), short enough to be one.
func plausibleScheme(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

func open(ctx context.Context, c Connector, key keyring.MasterKey, cfg config) (*Database, error) {
	if key.IsZero() {
		return nil, keyring.ErrMasterKeyMissing
	}
	if sc, ok := c.(*sqlite.Connector); ok {
		if err := probeSQLite(ctx, sc, key, cfg); err != nil {
			return nil, err
		}
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
	store := &keyringStore{eng: db.eng, now: db.now, db: db}
	kopts := keyringOptions(cfg)

	// 0. WithExistingDatabase: a database without pierre's schema is not one.
	if cfg.existing {
		if err := requireSchema(ctx, db.eng); err != nil {
			return err
		}
	}

	// 1. A stored keyring is unlocked before anything is written, so that a wrong
	// master key leaves the database untouched. A database that has held data
	// never gets a new keyring: that would make every stored secret unreadable.
	keys, err := unlockStored(ctx, store, key, kopts)
	if err != nil {
		return err
	}
	db.keys = keys

	// 2. Migrations: pierre's, then the host's. A restart with nothing pending
	// (the common case) takes no lock and sends no DDL; anything pending is
	// re-checked under the lock.
	sets := []migrationSet{pierreMigrations(db.eng)}
	for _, h := range cfg.host {
		set, err := h.set(db.eng.Backend, sets...)
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

// keyringOptions are the keyring options every unlock of this configuration uses.
func keyringOptions(cfg config) []keyring.Option {
	var kopts []keyring.Option
	if !cfg.previousKey.IsZero() {
		kopts = append(kopts, keyring.WithPreviousMasterKey(cfg.previousKey))
	}
	return append(kopts, keyring.WithClock(cfg.now))
}

// unlockStored unlocks the keyring the database holds, or returns nil when it
// holds none yet. It writes nothing. A database that has held data but whose
// keyring tables were emptied is keyring.ErrKeyringMissing.
func unlockStored(ctx context.Context, store *keyringStore, key keyring.MasterKey, kopts []keyring.Option) (*keyring.Keyring, error) {
	exists, err := store.eng.TableExists(ctx, store.eng.Reader, "keyring_meta")
	if err != nil {
		return nil, store.eng.Classify(err)
	}
	if !exists {
		return nil, nil
	}
	keys, err := keyring.Unlock(ctx, store, key, kopts...)
	switch {
	case err == nil:
		return keys, nil
	case errors.Is(err, keyring.ErrKeyringEmpty):
		return nil, store.checkNeverInitialised(ctx)
	default:
		return nil, err
	}
}

// requireSchema is WithExistingDatabase's check: pierre's migrations table
// exists. It reads only.
func requireSchema(ctx context.Context, eng *engine.Engine) error {
	ok, err := eng.TableExists(ctx, eng.Reader, migrationsTable)
	if err != nil {
		return eng.Classify(err)
	}
	if !ok {
		return noDatabase(eng.Info.Location)
	}
	return nil
}

func noDatabase(where string) error {
	return fmt.Errorf("%w: no pierre database at %s (nothing was created); check DATABASE_URL, or create the database first (the server's first start, or setup)",
		ErrNotFound, where)
}

// probeSQLite looks at a SQLite file through a read-only connection before it
// is opened for writing, when opening it for writing could change it even though
// Open then fails. SQLite's last connection to close checkpoints the WAL into the
// database file and deletes the WAL, so a wrong master key on a database left with
// a WAL (after a crash, or while another process has it open) would rewrite the
// file: the probe refuses the key first, and a read-only connection never
// checkpoints. With WithExistingDatabase it also refuses a missing or empty
// file, creating nothing.
func probeSQLite(ctx context.Context, c *sqlite.Connector, key keyring.MasterKey, cfg config) error {
	sc := c.Config()
	if sc.Memory {
		if cfg.existing {
			return noDatabase(":memory:")
		}
		return nil
	}
	if sc.Mode == sqlite.ModeReadOnly {
		return nil // read-only connections write nothing; Open checks the rest
	}
	path, err := filepath.Abs(sc.Path)
	if err != nil {
		return nil // NewConnector's Open reports it
	}
	path = realPath(path)
	st, err := os.Stat(path)
	if err != nil {
		if cfg.existing && errors.Is(err, fs.ErrNotExist) {
			return noDatabase(path)
		}
		return nil
	}
	if !walHasFrames(path) {
		// Without a WAL to checkpoint, the read-write connections' close leaves
		// the file as it was and removes the -wal and -shm they made (a
		// read-only connection could not: it would leave them behind). start
		// checks the key before any write; the schema is checked here, on the
		// file read as immutable, because a read-write connection would switch a
		// file that is not pierre's (or an empty one) to WAL.
		if cfg.existing {
			if st.Size() == 0 {
				return noDatabase(path)
			}
			ok, err := sqlite.TableExists(ctx, path, migrationsTable)
			if err != nil {
				return err
			}
			if !ok {
				return noDatabase(path)
			}
		}
		return nil
	}
	ro := sc
	ro.Mode = sqlite.ModeReadOnly
	rc, err := sqlite.NewConnector(ro)
	if err != nil {
		return nil
	}
	eng, err := engine.Connect(ctx, rc.Dialect(), rc)
	if err != nil {
		return nil // the read-write open that follows reports what is wrong
	}
	defer func() { _ = eng.Close() }()
	if cfg.existing {
		if err := requireSchema(ctx, eng); err != nil {
			return err
		}
	}
	if _, err := unlockStored(ctx, &keyringStore{eng: eng, now: cfg.now}, key, keyringOptions(cfg)); err != nil && keyError(err) {
		return err
	}
	return nil
}

// realPath is path with its symbolic links resolved, as SQLite resolves them
// (its -wal lives beside the real file), or path when that fails.
func realPath(path string) string {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		return real
	}
	return path
}

// walHasFrames reports whether the SQLite database at path has a non-empty WAL
// file beside it.
func walHasFrames(path string) bool {
	st, err := os.Stat(path + "-wal")
	return err == nil && st.Size() > 0
}

// keyError reports whether err is about the master key or the keyring, as
// opposed to the probe's own trouble reading the file.
func keyError(err error) bool {
	return errors.Is(err, keyring.ErrWrongMasterKey) || errors.Is(err, keyring.ErrKeyringMissing) ||
		errors.Is(err, keyring.ErrMasterKeyMissing) || errors.Is(err, keyring.ErrKeyringCorrupt)
}

// Exists reports whether url names a database that pierre has initialised (its
// migrations table is there), creating and changing nothing: a SQLite file is
// looked at read-only (a missing file is false, not an error; only a -shm
// index that a crash removed may be made again), a PostgreSQL schema is only
// read. It needs no master key. A host uses it to tell a first
// start, where it may generate a key, from a database whose key is missing.
// Errors are Open's: ErrInvalidURL, ErrUnreachable and the like.
func Exists(ctx context.Context, url string, opts ...Option) (_ bool, err error) {
	defer func() {
		if err != nil {
			err = &opError{op: "check for a database", err: err}
		}
	}()
	c, err := connectorFor(url, newConfig(opts))
	if err != nil {
		return false, err
	}
	if sc, ok := c.(*sqlite.Connector); ok {
		conf := sc.Config()
		if conf.Memory {
			return false, nil
		}
		path := realPath(conf.Path)
		st, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		case err != nil:
			return false, err
		case st.Size() == 0:
			return false, nil
		case !walHasFrames(path):
			// Read as immutable: no -wal or -shm left behind.
			return sqlite.TableExists(ctx, path, migrationsTable)
		}
		// A WAL with frames is there already: read through it, read-only.
		// (When a crash left it without its -shm, SQLite makes that index
		// again, as any open would; the database and the WAL stay as they
		// are.)
		conf.Mode = sqlite.ModeReadOnly
		if c, err = sqlite.NewConnector(conf); err != nil {
			return false, err
		}
	}
	eng, err := engine.Connect(ctx, c.Dialect(), c)
	if err != nil {
		return false, err
	}
	defer func() { _ = eng.Close() }()
	ok, err := eng.TableExists(ctx, eng.Reader, migrationsTable)
	if err != nil {
		return false, eng.Classify(err)
	}
	return ok, nil
}
