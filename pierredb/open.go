package pierredb

import (
	"context"
	"errors"
	"fmt"
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
)

// DefaultURL is the database OpenFromEnv opens when DATABASE_URL is unset: a
// SQLite file under ./data, created on first start.
const DefaultURL = "sqlite:./data/users.db"

// Option adjusts how Open connects. The zero configuration is the documented
// default of each option.
type Option func(*config)

type config struct {
	maxConns       int
	connectTimeout time.Duration
	busyTimeout    time.Duration
	noMigrations   bool
	logger         *slog.Logger
	now            func() time.Time
	previousKey    keyring.MasterKey
	passwordPolicy PasswordPolicy
	autoApprove    *bool
	lastActive     time.Duration
}

// PasswordPolicy is the argon2id cost of new password hashes. Zero fields mean the
// defaults (m=19456 KiB, t=2, p=1), which are also the floor: a policy can only
// raise the cost.
type PasswordPolicy = password.Policy

// WithPasswordPolicy raises the cost of new password hashes; users whose stored
// hash is below it are rehashed at their next login.
func WithPasswordPolicy(p PasswordPolicy) Option { return func(c *config) { c.passwordPolicy = p } }

// WithAutoApproveUsers overrides the stored auto-approval setting: new users are
// created active (true) or pending (false) whatever SetAutoApproveUsers stored.
func WithAutoApproveUsers(on bool) Option { return func(c *config) { c.autoApprove = &on } }

// WithLastActiveInterval sets how often TouchUser writes a user's last_active
// (default one minute); more frequent calls for the same user do nothing.
func WithLastActiveInterval(d time.Duration) Option { return func(c *config) { c.lastActive = d } }

// WithMaxConnections bounds the PostgreSQL pool (default 10, or
// DATABASE_MAX_CONNECTIONS with OpenFromEnv). SQLite ignores it: it keeps one
// writer connection and a reader pool sized to GOMAXPROCS.
func WithMaxConnections(n int) Option { return func(c *config) { c.maxConns = n } }

// WithConnectTimeout bounds each PostgreSQL connection attempt when the URL has no
// connect_timeout (default 5 s).
func WithConnectTimeout(d time.Duration) Option { return func(c *config) { c.connectTimeout = d } }

// WithBusyTimeout sets how long SQLite waits for another writer's lock (default 5 s,
// or busy_timeout in the URL).
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// WithoutMigrations makes Open leave the schema alone. Open then fails with
// ErrSchemaNotCurrent if migrations are pending: use it when a deploy step migrates.
func WithoutMigrations() Option { return func(c *config) { c.noMigrations = true } }

// WithLogger sends pierredb's few operational log lines (open, migrations applied,
// keyring created) to l. By default pierredb logs nothing.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock replaces time.Now for every timestamp the store writes (tests).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithPreviousMasterKey lets Open unlock keys still wrapped by the previous master
// key during a rollover (see keyring.WithPreviousMasterKey).
func WithPreviousMasterKey(k keyring.MasterKey) Option {
	return func(c *config) { c.previousKey = k }
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
func OpenContext(ctx context.Context, url string, key keyring.MasterKey, opts ...Option) (*Database, error) {
	cfg := config{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if key.IsZero() {
		return nil, fmt.Errorf("pierredb: open: %w", keyring.ErrMasterKeyMissing)
	}
	tgt, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	var eng *engine.Engine
	switch tgt.backend {
	case SQLite:
		sc := tgt.sqlite
		if sc.BusyTimeout == 0 {
			sc.BusyTimeout = cfg.busyTimeout
		}
		eng, err = sqlite.Open(ctx, sc)
	case Postgres:
		eng, err = postgres.Open(ctx, postgres.Config{URL: tgt.postgres, MaxConns: cfg.maxConns, ConnectTimeout: cfg.connectTimeout})
	}
	if err != nil {
		return nil, err
	}
	if cfg.lastActive <= 0 {
		cfg.lastActive = time.Minute
	}
	db := &Database{
		eng:         eng,
		now:         cfg.now,
		log:         cfg.logger,
		closed:      make(chan struct{}),
		reads:       &stmtCache{pool: eng.Reader.DB, backend: eng.Backend},
		hasher:      password.NewHasher(cfg.passwordPolicy),
		autoApprove: cfg.autoApprove,
		lastActive:  throttle{interval: cfg.lastActive},
	}
	if err := db.start(ctx, key, cfg); err != nil {
		_ = eng.Close()
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
	// master key leaves the database untouched.
	exists, err := tableExists(ctx, db.eng, "keyring_meta")
	if err != nil {
		return err
	}
	if exists {
		keys, err := keyring.Unlock(ctx, store, key, kopts...)
		switch {
		case err == nil:
			db.keys = keys
		case errors.Is(err, keyring.ErrKeyringEmpty):
		default:
			return fmt.Errorf("pierredb: open: %w", err)
		}
	}

	// 2. Migrations. A restart with nothing pending (the common case) takes no
	// lock and sends no DDL; anything pending is re-checked under the lock.
	status, unknown, err := schemaState(ctx, db.eng)
	if err != nil {
		return err
	}
	if !cfg.noMigrations && !db.eng.ReadOnly && !allApplied(status) {
		applied, err := runMigrations(ctx, db.eng)
		if err != nil {
			return err
		}
		db.applied = applied
		if len(applied) > 0 {
			db.log.Info("pierredb: migrations applied", "names", strings.Join(applied, ","))
		}
		if status, unknown, err = schemaState(ctx, db.eng); err != nil {
			return err
		}
	}
	if err := schemaCurrent(status, unknown); err != nil {
		return err
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
			return fmt.Errorf("pierredb: open: %w", err)
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
//
// opts are applied after the environment, so an explicit option wins.
func OpenFromEnv(ctx context.Context, opts ...Option) (*Database, error) {
	url := os.Getenv(EnvDatabaseURL)
	if url == "" {
		url = DefaultURL
	}
	var envOpts []Option
	if v := os.Getenv(EnvMaxConnections); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return nil, fmt.Errorf("%w: %s=%q is not a pool size between 1 and 10000",
				ErrInvalidArgument, EnvMaxConnections, shorten(v))
		}
		envOpts = append(envOpts, WithMaxConnections(n))
	}
	if v := os.Getenv(EnvAutoApproveUsers); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s=%q is not a boolean (true or false)", ErrInvalidArgument, EnvAutoApproveUsers, shorten(v))
		}
		envOpts = append(envOpts, WithAutoApproveUsers(on))
	}
	key, err := keyring.LoadMasterKey(keyring.LoadOptions{})
	if err != nil {
		return nil, fmt.Errorf("pierredb: %w", err)
	}
	prev, err := keyring.LoadPreviousMasterKey(keyring.LoadOptions{})
	if err != nil {
		return nil, fmt.Errorf("pierredb: %w", err)
	}
	if !prev.IsZero() {
		envOpts = append(envOpts, WithPreviousMasterKey(prev))
	}
	return OpenContext(ctx, url, key, append(envOpts, opts...)...)
}
