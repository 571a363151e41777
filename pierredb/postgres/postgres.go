package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the PostgreSQL migrations, one *.sql file per migration at the root.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}

// Defaults applied when the URL and Config leave a setting out.
const (
	// DefaultMaxConns bounds the pool of a URL Connector when Config.MaxConns is zero.
	DefaultMaxConns = 10
	// DefaultConnectTimeout bounds each connection attempt when neither the URL's
	// connect_timeout nor Config.ConnectTimeout says.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultApplicationName is the application_name a session reports when the
	// URL names none.
	DefaultApplicationName = "pierre-mcp-server"
)

// dialectName is the name this package registers its connect function under.
const dialectName = "postgres"

const driverName = "github.com/jackc/pgx/v5"

func init() {
	engine.Register(dialectName, func(ctx context.Context, connector any) (*engine.Engine, error) {
		c, ok := connector.(*Connector)
		if !ok || c == nil {
			return nil, fmt.Errorf("%w: the postgres dialect opens a *postgres.Connector, not %T", engine.ErrInvalidArgument, connector)
		}
		return c.open(ctx)
	})
}

// Config says which PostgreSQL database to open and how.
//
// Config redacts the URL's password when printed (%v, %#v), logged with slog or
// encoded as JSON.
type Config struct {
	// URL is a postgres:// or postgresql:// URL. It may carry a password; no error
	// or diagnostic of this package ever repeats it.
	//
	// sslmode: when neither the URL nor PGSSLMODE names one, a loopback host or a
	// Unix socket gets "disable" and any other host gets "verify-full", so that a
	// remote server is never trusted without checking its certificate. An explicit
	// sslmode keeps libpq's meaning: verify-ca and verify-full verify; require
	// encrypts without verifying; prefer and allow may fall back to plain text.
	//
	// application_name defaults to DefaultApplicationName. search_path names
	// pierre's schema (see the package documentation); standard_conforming_strings,
	// TimeZone and client_encoding are always on, UTC and UTF8 whatever the URL says.
	URL string
	// MaxConns bounds the pool; zero means DefaultMaxConns.
	MaxConns int
	// ConnectTimeout bounds each connection attempt when the URL has no
	// connect_timeout; zero means DefaultConnectTimeout.
	ConnectTimeout time.Duration
}

// String describes c with the URL's password replaced by "xxxxx".
func (c Config) String() string {
	return fmt.Sprintf("postgres.Config{URL: %q, MaxConns: %d, ConnectTimeout: %s}", redactURL(c.URL), c.MaxConns, c.ConnectTimeout)
}

// GoString is String, so that %#v does not print the password either.
func (c Config) GoString() string { return c.String() }

// MarshalJSON encodes c with the URL's password replaced by "xxxxx".
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		URL            string
		MaxConns       int
		ConnectTimeout time.Duration
	}{redactURL(c.URL), c.MaxConns, c.ConnectTimeout})
}

// Connector opens pierre's PostgreSQL database. Build one with NewConnector from a
// URL, or with FromDB or FromPool to share a pool that the host already opened,
// and hand it to pierredb.OpenConnector. A Connector holds no connection until it
// is opened, may be opened more than once (each URL Connector open has its own
// pool) and is safe for concurrent use. Its zero value is not usable.
type Connector struct {
	// A URL connector.
	connCfg  *pgx.ConnConfig
	maxConns int
	sslmode  string // the sslmode in force, for TLS error messages
	schema   string // resolved from the URL's search_path

	// A pool lent by the host: exactly one of db, pool.
	db   *sql.DB
	pool *pgxpool.Pool
}

// NewConnector checks cfg and returns a Connector that opens its own pool of at
// most cfg.MaxConns connections. It does no network I/O: an unreachable server is
// reported when the Connector is opened. It reads the local files the URL names
// (sslrootcert, sslcert, sslkey, passfile), like libpq. Errors wrap
// pierredb.ErrInvalidURL and never repeat the URL.
func NewConnector(cfg Config) (*Connector, error) {
	connCfg, schema, sslmode, err := parseConfig(cfg)
	if err != nil {
		return nil, err
	}
	maxConns := cfg.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	return &Connector{connCfg: connCfg, maxConns: maxConns, sslmode: sslmode, schema: schema}, nil
}

// FromDB returns a Connector that shares db, a pool the host opened with pgx's
// stdlib driver (sql.Open("pgx", url), stdlib.OpenDB or stdlib.OpenDBFromPool).
// pierre never closes db and never changes its limits. It cannot pin db's
// sessions: see the package documentation for what it checks at open. db must
// allow at least two connections, one holding the migration lock while another
// migrates. FromDB does no I/O.
func FromDB(db *sql.DB) (*Connector, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: postgres.FromDB: nil *sql.DB", engine.ErrInvalidArgument)
	}
	if _, ok := db.Driver().(*stdlib.Driver); !ok {
		return nil, fmt.Errorf("%w: postgres.FromDB needs a pool opened with pgx's stdlib driver (sql.Open(\"pgx\", url), stdlib.OpenDB or stdlib.OpenDBFromPool), not %T",
			engine.ErrInvalidArgument, db.Driver())
	}
	return &Connector{db: db}, nil
}

// FromPool returns a Connector that shares pool the way stdlib.OpenDBFromPool
// does (a *sql.DB over pool with no idle connections of its own), adding a check
// on every connection it borrows. pierre never closes pool: closing the engine
// closes that *sql.DB, which releases the connections it borrowed and leaves pool
// open. It cannot pin pool's sessions: see the package
// documentation for what it checks at open; in addition, every connection pierre
// borrows must report standard_conforming_strings=on (the server reports it, so
// the check costs no round trip) or the statement fails with ErrUnsafeSession.
// pool must allow at least two connections. FromPool does no I/O.
func FromPool(pool *pgxpool.Pool) (*Connector, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: postgres.FromPool: nil *pgxpool.Pool", engine.ErrInvalidArgument)
	}
	return &Connector{pool: pool}, nil
}

// Dialect returns "postgres", the name pierredb opens the Connector under.
func (c *Connector) Dialect() string { return dialectName }

// String describes c without secrets.
func (c *Connector) String() string {
	switch {
	case c == nil:
		return "postgres.Connector(nil)"
	case c.connCfg != nil:
		return fmt.Sprintf("postgres.Connector(%s, schema %q)", location(c.connCfg), c.schema)
	case c.db != nil:
		return "postgres.Connector(host *sql.DB)"
	case c.pool != nil:
		return "postgres.Connector(host *pgxpool.Pool)"
	}
	return "postgres.Connector(zero)"
}

// GoString is String, so that %#v does not print the connection settings.
func (c *Connector) GoString() string { return c.String() }

func (c *Connector) open(ctx context.Context) (*engine.Engine, error) {
	switch {
	case c.connCfg != nil:
		return c.openURL(ctx)
	case c.pool != nil:
		if n := c.pool.Config().MaxConns; n < 2 {
			return nil, tooSmall(int(n))
		}
		// Closing this *sql.DB releases what it borrowed and leaves pool open:
		// stdlib's pool connector has no Close, and its connections release
		// themselves to pool.
		db := sql.OpenDB(checkedPoolConnector{stdlib.GetPoolConnector(c.pool)})
		db.SetMaxIdleConns(0) // idle connections belong in pool, as OpenDBFromPool does
		e, err := openLent(ctx, db, location(c.pool.Config().ConnConfig))
		if err != nil {
			_ = db.Close()
			return nil, err
		}
		e.Close = db.Close
		return e, nil
	case c.db != nil:
		if n := c.db.Stats().MaxOpenConnections; n == 1 {
			return nil, tooSmall(n)
		}
		e, err := openLent(ctx, c.db, "")
		if err != nil {
			return nil, err
		}
		e.Close = func() error { return nil } // the host's pool is the host's to close
		return e, nil
	}
	return nil, fmt.Errorf("%w: a zero postgres.Connector; use NewConnector, FromDB or FromPool", engine.ErrInvalidArgument)
}

func tooSmall(n int) error {
	return fmt.Errorf("%w: the host's pool allows %d connection; pierre needs at least 2 (one holds the migration lock while another migrates)", engine.ErrInvalidArgument, n)
}

// openURL opens a pool of pinned connections.
func (c *Connector) openURL(ctx context.Context) (*engine.Engine, error) {
	pinned := pinnedSettings(c.schema)
	pool := stdlib.OpenDB(*c.connCfg,
		stdlib.OptionAfterConnect(func(ctx context.Context, conn *pgx.Conn) error {
			s, err := readSession(conn.QueryRow(ctx, sessionQuery).Scan)
			if err == nil {
				err = checkPinned(s, pinned)
			}
			if err != nil {
				// stdlib does not close a connection whose AfterConnect failed.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = conn.Close(ctx)
				return err
			}
			return nil
		}),
		// The server reports standard_conforming_strings whenever it changes, so
		// this check costs no round trip; a connection that lost it is discarded.
		stdlib.OptionResetSession(func(_ context.Context, conn *pgx.Conn) error {
			if conn.PgConn().ParameterStatus("standard_conforming_strings") != "on" {
				return driver.ErrBadConn
			}
			return nil
		}),
	)
	pool.SetMaxOpenConns(c.maxConns)
	pool.SetMaxIdleConns(c.maxConns)
	pool.SetConnMaxIdleTime(5 * time.Minute)

	conn, err := pool.Conn(ctx)
	if err != nil {
		_ = pool.Close()
		return nil, connectError(c.target(), err)
	}
	s, err := readSession(conn.QueryRowContext(ctx, sessionQuery).Scan)
	_ = conn.Close()
	if err != nil {
		_ = pool.Close()
		return nil, connectError(c.target(), err)
	}

	e := newEngine(pool, c.schema, location(c.connCfg), s)
	e.LockMigrations = func(ctx context.Context) (func(), error) {
		return c.advisoryLock(ctx, migrationLockKey(c.schema))
	}
	e.PrepareSchema = func(ctx context.Context) error {
		return createSchema(ctx, pool, c.schema)
	}
	e.Close = pool.Close
	return e, nil
}

// openLent opens an engine on a pool the host lent: it reads the session settings
// back on one connection and takes pierre's schema from it. loc is "" when only a
// connection can tell where the pool points.
func openLent(ctx context.Context, db *sql.DB, loc string) (*engine.Engine, error) {
	t := target{where: "the PostgreSQL server of the host's pool"}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, connectError(t, err)
	}
	defer func() { _ = conn.Close() }()
	s, err := readSession(conn.QueryRowContext(ctx, sessionQuery).Scan)
	if err != nil {
		return nil, connectError(t, err)
	}
	if loc == "" {
		_ = conn.Raw(func(dc any) error {
			if sc, ok := dc.(*stdlib.Conn); ok {
				loc = location(sc.Conn().Config())
			}
			return nil
		})
	}
	if err := checkLent(s); err != nil {
		return nil, err
	}
	e := newEngine(db, s.currentSchema, loc, s)
	e.LockMigrations = func(ctx context.Context) (func(), error) {
		return sqlConnLock(ctx, db, migrationLockKey(s.currentSchema))
	}
	// The schema exists: current_schema() named it.
	return e, nil
}

func newEngine(db *sql.DB, schema, loc string, s session) *engine.Engine {
	bdb := bun.NewDB(db, pgdialect.New())
	return &engine.Engine{
		Backend:    engine.Postgres,
		Writer:     bdb,
		Reader:     bdb,
		Migrations: Migrations(),
		Info: engine.Info{
			Driver:   driverName,
			Location: loc,
			Schema:   schema,
			Settings: s.settings(),
		},
		Dialect: newDialect(schema),
	}
}

// checkedPoolConnector refuses the connections of a lent pgxpool whose session
// does not report standard_conforming_strings=on.
type checkedPoolConnector struct{ driver.Connector }

// Connect implements driver.Connector.
func (p checkedPoolConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := p.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if sc, ok := dc.(*stdlib.Conn); ok {
		if v := sc.Conn().PgConn().ParameterStatus("standard_conforming_strings"); v != "on" {
			_ = dc.Close() // back to the host's pool
			return nil, lentUnsafe(v)
		}
	}
	return dc, nil
}

// createSchema creates schema unless it exists. The existence check comes first
// because CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the database
// even when the schema exists, which a role given a ready-made schema lacks.
func createSchema(ctx context.Context, db *sql.DB, schema string) error {
	var exists bool
	if err := db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return fmt.Errorf("look up schema %s: %w", pgx.Identifier{schema}.Sanitize(), classify(err))
	}
	if exists {
		return nil
	}
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", pgx.Identifier{schema}.Sanitize(), classify(err))
	}
	return nil
}

// advisoryLock takes a session-level pg_advisory_lock on a dedicated connection, so
// that it neither uses a pool slot nor is released early by the pool; it waits as
// long as ctx allows.
func (c *Connector) advisoryLock(ctx context.Context, key int64) (func(), error) {
	conn, err := pgx.ConnectConfig(ctx, c.connCfg)
	if err != nil {
		return nil, connectError(c.target(), err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("take the migration lock: %w", classify(err))
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		// Closing the session releases the lock even if the unlock fails.
		_, _ = conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", key)
		_ = conn.Close(ctx)
	}, nil
}

// sqlConnLock takes a session-level pg_advisory_lock on a connection taken from a
// lent pool. If the unlock fails the connection is closed rather than returned to
// the pool still holding the lock.
func sqlConnLock(ctx context.Context, db *sql.DB, key int64) (func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, connectError(target{where: "the PostgreSQL server of the host's pool"}, err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		discard(conn)
		return nil, fmt.Errorf("take the migration lock: %w", classify(err))
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var released bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", key).Scan(&released); err != nil || !released {
			discard(conn)
			return
		}
		_ = conn.Close()
	}, nil
}

// discard closes conn's session instead of returning it to the pool.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(dc any) error {
		if sc, ok := dc.(*stdlib.Conn); ok {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = sc.Conn().Close(ctx)
		}
		return driver.ErrBadConn // makes database/sql drop the connection
	})
	_ = conn.Close()
}

// target describes the server of a URL connector for error messages.
func (c *Connector) target() target {
	return target{
		where:    "PostgreSQL server at " + hostPort(c.connCfg),
		user:     c.connCfg.User,
		database: c.connCfg.Database,
		sslmode:  c.sslmode,
	}
}

// location is host:port/database, without user or password.
func location(c *pgx.ConnConfig) string {
	if c == nil {
		return ""
	}
	return hostPort(c) + "/" + c.Database
}

func hostPort(c *pgx.ConnConfig) string {
	if strings.HasPrefix(c.Host, "/") {
		return c.Host
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port)))
}
