package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the SQLite migrations, one *.sql file per migration at the root.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}

// Mode is how a database file is opened, as in SQLite's URI "mode" parameter.
type Mode string

// The open modes.
const (
	// ModeReadWriteCreate opens the file read-write and creates it (and its directory)
	// when missing. It is the default.
	ModeReadWriteCreate Mode = "rwc"
	// ModeReadWrite opens an existing file read-write; a missing file is an error.
	ModeReadWrite Mode = "rw"
	// ModeReadOnly opens an existing file read-only: no migrations, no writes.
	ModeReadOnly Mode = "ro"
)

// DefaultBusyTimeout is how long a connection waits for a lock held by another
// connection or process before it reports SQLITE_BUSY.
const DefaultBusyTimeout = 5 * time.Second

// maxBusyTimeout is the largest busy_timeout SQLite holds (an int of milliseconds).
const maxBusyTimeout = math.MaxInt32 * time.Millisecond

// Config says which SQLite database to open and how. Set exactly one of Path and
// Memory; the zero value of every other field is the documented default.
type Config struct {
	// Path is the database file, absolute or relative to the working directory at
	// the time the database is opened. It must be valid UTF-8 without NUL bytes.
	Path string
	// Memory opens a private in-memory database that lives as long as the database
	// handle that opened it; each open starts empty. Path must then be empty.
	Memory bool
	// Mode is the open mode; empty means ModeReadWriteCreate. An in-memory database
	// cannot be ModeReadOnly.
	Mode Mode
	// BusyTimeout is the busy_timeout pragma; zero means DefaultBusyTimeout. It is
	// rounded up to a whole millisecond; a negative value is an error.
	BusyTimeout time.Duration
	// ReadConns is the size of the reader pool of a file database; zero means
	// max(2, GOMAXPROCS). An in-memory database has a single connection.
	ReadConns int
}

// normalize checks cfg and fills in its defaults, without I/O.
func (cfg Config) normalize() (Config, error) {
	if cfg.Mode == "" {
		cfg.Mode = ModeReadWriteCreate
	}
	switch cfg.Mode {
	case ModeReadWriteCreate, ModeReadWrite, ModeReadOnly:
	default:
		return cfg, fmt.Errorf("%w: sqlite mode %q is not one of rwc, rw, ro", engine.ErrInvalidArgument, shorten(string(cfg.Mode)))
	}
	switch {
	case cfg.Memory && cfg.Path != "":
		return cfg, fmt.Errorf("%w: sqlite config sets both Path and Memory; set one", engine.ErrInvalidArgument)
	case cfg.Memory && cfg.Mode == ModeReadOnly:
		return cfg, fmt.Errorf("%w: an in-memory sqlite database cannot be read-only", engine.ErrInvalidArgument)
	case !cfg.Memory && cfg.Path == "":
		return cfg, fmt.Errorf("%w: sqlite config sets neither Path nor Memory", engine.ErrInvalidArgument)
	case !cfg.Memory:
		if problem := pathProblem(cfg.Path); problem != "" {
			return cfg, fmt.Errorf("%w: %s", engine.ErrInvalidArgument, problem)
		}
	}
	switch {
	case cfg.BusyTimeout < 0:
		return cfg, fmt.Errorf("%w: sqlite busy timeout %v is negative", engine.ErrInvalidArgument, cfg.BusyTimeout)
	case cfg.BusyTimeout == 0:
		cfg.BusyTimeout = DefaultBusyTimeout
	case cfg.BusyTimeout > maxBusyTimeout:
		return cfg, fmt.Errorf("%w: sqlite busy timeout %v is longer than SQLite holds (%v)", engine.ErrInvalidArgument, cfg.BusyTimeout, maxBusyTimeout)
	default:
		cfg.BusyTimeout = (cfg.BusyTimeout + time.Millisecond - 1).Truncate(time.Millisecond)
	}
	switch {
	case cfg.ReadConns < 0:
		return cfg, fmt.Errorf("%w: sqlite reader pool size %d is negative", engine.ErrInvalidArgument, cfg.ReadConns)
	case cfg.ReadConns == 0:
		cfg.ReadConns = max(2, runtime.GOMAXPROCS(0))
	}
	return cfg, nil
}

// pathProblem says what makes path unusable as a database file name, or "".
// It never repeats the path.
func pathProblem(path string) string {
	switch {
	case strings.IndexByte(path, 0) >= 0:
		return "sqlite path contains a NUL byte"
	case !utf8.ValidString(path):
		return "sqlite path is not valid UTF-8"
	}
	return ""
}

// Connector opens the SQLite database that its Config describes. Make one with
// NewConnector and pass it to pierredb.OpenConnector; it holds no connection
// itself, so it may be used any number of times, also concurrently.
type Connector struct {
	cfg Config
}

// NewConnector checks cfg and returns a Connector for it. It does no I/O: a missing
// file (ModeReadWrite, ModeReadOnly) or an unwritable directory is reported when the
// database is opened. Errors wrap pierredb.ErrInvalidArgument.
func NewConnector(cfg Config) (*Connector, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	return &Connector{cfg: cfg}, nil
}

// Dialect returns "sqlite", the name under which this package registers how its
// connectors are opened.
func (c *Connector) Dialect() string { return string(engine.SQLite) }

// Config returns the configuration the Connector opens, with its defaults filled
// in (Mode, BusyTimeout, ReadConns). Path is returned as given.
func (c *Connector) Config() Config { return c.cfg }

func init() {
	engine.Register(string(engine.SQLite), connect)
}

// connect opens a *Connector for pierredb through engine.Connect.
func connect(ctx context.Context, c any) (*engine.Engine, error) {
	conn, ok := c.(*Connector)
	if !ok || conn == nil {
		return nil, fmt.Errorf("%w: the sqlite dialect opens a non-nil *sqlite.Connector, not %T", engine.ErrInvalidArgument, c)
	}
	// Normalize again: a Connector{} that did not come from NewConnector is
	// checked here rather than opened with a zero config.
	cfg, err := conn.cfg.normalize()
	if err != nil {
		return nil, err
	}
	return open(ctx, cfg)
}

// open opens the database that the normalized cfg describes, applies and reads back
// the pragmas on both pools, and returns the Engine.
func open(ctx context.Context, cfg Config) (*engine.Engine, error) {
	if !sqliteshim.HasDriver() {
		return nil, fmt.Errorf("%w: no SQLite driver is built for this platform (build with cgo and -tags cgosqlite)", engine.ErrDriver)
	}
	if cfg.Memory {
		return openMemory(ctx, cfg)
	}
	return openFile(ctx, cfg)
}

func openMemory(ctx context.Context, cfg Config) (*engine.Engine, error) {
	// A named shared-cache memory database behind one connection: every query of
	// this Engine sees the same data, and no other Engine can reach it.
	dsn := "file:pierre-" + uuid.NewString() + "?mode=memory&cache=shared&_txlock=immediate"
	pool := newPool(dsn, 1, cfg.BusyTimeout, writerPragmas(cfg.BusyTimeout))
	if err := readBack(ctx, pool, "writer", expected{journal: "memory", busy: cfg.BusyTimeout}); err != nil {
		_ = pool.Close()
		return nil, err
	}
	db := bun.NewDB(pool, sqlitedialect.New())
	return &engine.Engine{
		Backend:    engine.SQLite,
		Writer:     db,
		Reader:     db,
		Migrations: Migrations(),
		Dialect:    dialect(),
		Info:       engine.Info{Driver: driverName(), Location: ":memory:", Settings: settings(ctx, pool)},
		Close:      pool.Close,
	}, nil
}

func openFile(ctx context.Context, cfg Config) (*engine.Engine, error) {
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: sqlite path %q: %v", engine.ErrInvalidArgument, cfg.Path, err)
	}
	if err := prepareFile(path, cfg.Mode); err != nil {
		return nil, err
	}
	mode := cfg.Mode
	if mode == ModeReadWriteCreate {
		mode = ModeReadWrite // prepareFile created the file with our permissions
	}
	// A file: URI, so that '?', '#' and '%' in the path are escaped and both drivers
	// hand the mode parameter to SQLite itself.
	base := (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()

	if cfg.Mode == ModeReadOnly {
		pool := newPool(base+"?mode=ro", cfg.ReadConns, cfg.BusyTimeout, readerPragmas(cfg.BusyTimeout))
		if err := readBack(ctx, pool, "reader", expected{busy: cfg.BusyTimeout, queryOnly: true}); err != nil {
			_ = pool.Close()
			return nil, err
		}
		db := bun.NewDB(pool, sqlitedialect.New())
		return &engine.Engine{
			Backend: engine.SQLite, Writer: db, Reader: db, Migrations: Migrations(),
			Dialect: dialect(), ReadOnly: true,
			Info:  engine.Info{Driver: driverName(), Location: path, Settings: settings(ctx, pool)},
			Close: pool.Close,
		}, nil
	}

	// One writer connection: SQLite allows one writer at a time anyway, and a pool of
	// one with IMMEDIATE transactions never upgrades a read lock into SQLITE_BUSY.
	writer := newPool(base+"?mode="+string(mode)+"&_txlock=immediate", 1, cfg.BusyTimeout, writerPragmas(cfg.BusyTimeout))
	if err := readBack(ctx, writer, "writer", expected{journal: "wal", busy: cfg.BusyTimeout}); err != nil {
		_ = writer.Close()
		return nil, err
	}
	reader := newPool(base+"?mode="+string(mode), cfg.ReadConns, cfg.BusyTimeout, readerPragmas(cfg.BusyTimeout))
	if err := readBack(ctx, reader, "reader", expected{journal: "wal", busy: cfg.BusyTimeout, queryOnly: true}); err != nil {
		_ = writer.Close()
		_ = reader.Close()
		return nil, err
	}
	return &engine.Engine{
		Backend:    engine.SQLite,
		Writer:     bun.NewDB(writer, sqlitedialect.New()),
		Reader:     bun.NewDB(reader, sqlitedialect.New()),
		Migrations: Migrations(),
		Dialect:    dialect(),
		Info:       engine.Info{Driver: driverName(), Location: path, Settings: settings(ctx, writer)},
		Close: func() error {
			// Readers first, so that the writer's close is the last one and SQLite
			// checkpoints and removes the WAL file.
			return errors.Join(reader.Close(), writer.Close())
		},
	}, nil
}

// prepareFile creates the parent directory (0700) and the file (0600) for
// ModeReadWriteCreate, and checks that the file exists for the other modes.
func prepareFile(path string, mode Mode) error {
	if mode != ModeReadWriteCreate {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%w: sqlite database %s does not exist (mode=%s does not create it): %v",
				engine.ErrNotFound, path, mode, errors.Unwrap(err))
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create directory for sqlite database: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		return f.Close()
	case errors.Is(err, fs.ErrExist):
		return nil
	default:
		return fmt.Errorf("create sqlite database file: %w", err)
	}
}

func writerPragmas(busy time.Duration) []string {
	return []string{
		// busy_timeout first: the pragmas after it may wait for a lock.
		"PRAGMA busy_timeout = " + strconv.FormatInt(busy.Milliseconds(), 10),
		"PRAGMA foreign_keys = ON",
		pragmaWAL,
		"PRAGMA synchronous = NORMAL",
	}
}

func readerPragmas(busy time.Duration) []string {
	return []string{
		"PRAGMA busy_timeout = " + strconv.FormatInt(busy.Milliseconds(), 10),
		"PRAGMA foreign_keys = ON",
		"PRAGMA synchronous = NORMAL",
		"PRAGMA query_only = ON",
	}
}

func newPool(dsn string, size int, busy time.Duration, pragmas []string) *sql.DB {
	pool := sql.OpenDB(&pragmaConnector{dsn: dsn, pragmas: pragmas, busy: busy})
	pool.SetMaxOpenConns(size)
	pool.SetMaxIdleConns(size)
	pool.SetConnMaxLifetime(0)
	pool.SetConnMaxIdleTime(0) // an in-memory database lives only as long as its connection
	return pool
}

// pragmaConnector runs the pragmas on every new connection, whichever driver is
// built.
type pragmaConnector struct {
	dsn     string
	pragmas []string
	busy    time.Duration
}

const pragmaWAL = "PRAGMA journal_mode = WAL"

func (c *pragmaConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := sqliteshim.Driver().Open(c.dsn)
	if err != nil {
		return nil, err
	}
	execer, ok := conn.(driver.ExecerContext)
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("%w: sqlite connection cannot execute statements", engine.ErrDriver)
	}
	for _, p := range c.pragmas {
		if p == pragmaWAL {
			err = c.enableWAL(ctx, conn, execer)
		} else {
			_, err = execer.ExecContext(ctx, p, nil)
		}
		if err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("sqlite %s: %w", p, classify(err))
		}
	}
	return conn, nil
}

// enableWAL switches the database to WAL unless it already is. Changing the
// journal mode needs an exclusive lock and SQLite reports SQLITE_BUSY at once
// instead of running the busy handler, so connections opened together (several
// processes starting on a new file) retry here until busy_timeout runs out.
func (c *pragmaConnector) enableWAL(ctx context.Context, conn driver.Conn, execer driver.ExecerContext) error {
	deadline := time.Now().Add(c.busy)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		mode, err := queryString(ctx, conn, "PRAGMA journal_mode")
		if err == nil && strings.EqualFold(mode, "wal") {
			return nil
		}
		if err == nil {
			_, err = execer.ExecContext(ctx, pragmaWAL, nil)
			if err == nil {
				return nil
			}
		}
		if !errors.Is(classify(err), engine.ErrBusy) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// queryString runs a one-value query on a raw driver connection.
func queryString(ctx context.Context, conn driver.Conn, query string) (string, error) {
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return "", fmt.Errorf("%w: sqlite connection cannot run queries", engine.ErrDriver)
	}
	rows, err := q.QueryContext(ctx, query, nil)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(dest); err != nil {
		return "", err
	}
	switch v := dest[0].(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	default:
		return fmt.Sprint(v), nil
	}
}

func (c *pragmaConnector) Driver() driver.Driver { return sqliteshim.Driver() }

type expected struct {
	journal   string // "" accepts any journal mode
	busy      time.Duration
	queryOnly bool
}

// readBack checks that the pragmas really took effect on a connection of pool: a
// driver that ignored them would otherwise run without foreign keys or WAL.
func readBack(ctx context.Context, pool *sql.DB, name string, want expected) error {
	conn, err := pool.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect sqlite %s pool: %w", name, classify(err))
	}
	defer conn.Close()
	checks := []struct {
		pragma, want string
	}{
		{"foreign_keys", "1"},
		{"synchronous", "1"}, // NORMAL
		{"busy_timeout", strconv.FormatInt(want.busy.Milliseconds(), 10)},
		{"journal_mode", want.journal},
		{"query_only", map[bool]string{true: "1", false: "0"}[want.queryOnly]},
	}
	for _, c := range checks {
		var got string
		if err := conn.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil {
			return fmt.Errorf("read back sqlite pragma %s on the %s pool: %w", c.pragma, name, classify(err))
		}
		if c.want != "" && !strings.EqualFold(got, c.want) {
			return fmt.Errorf("%w: sqlite pragma %s is %q on the %s pool, want %q (driver %s)",
				engine.ErrDriver, c.pragma, got, name, c.want, driverName())
		}
	}
	return nil
}

// settings reports the pragmas of one connection of pool for diagnostics.
func settings(ctx context.Context, pool *sql.DB) map[string]string {
	out := make(map[string]string)
	for _, p := range []string{"journal_mode", "synchronous", "foreign_keys", "busy_timeout", "sqlite_version()"} {
		q := "PRAGMA " + p
		if strings.HasSuffix(p, "()") {
			q = "SELECT " + p
		}
		var v string
		if err := pool.QueryRowContext(ctx, q).Scan(&v); err == nil {
			out[strings.TrimSuffix(p, "()")] = v
		}
	}
	return out
}

func driverName() string {
	switch sqliteshim.DriverName() {
	case "sqlite":
		return "modernc.org/sqlite"
	case "sqlite3":
		return "github.com/mattn/go-sqlite3"
	default:
		return sqliteshim.DriverName()
	}
}

// TableExists reports whether the SQLite database file at path has a table
// named table, without changing anything on disk: the file is read as
// immutable (SQLite's immutable=1), so no lock is taken and no -wal or -shm
// file is made, which a read-only connection could not remove when it closes.
// That read misses what a WAL beside the file holds: use it only when there is
// no WAL with frames (after a clean close, or on a file never opened in WAL
// mode). A file that is not a SQLite database is an error.
func TableExists(ctx context.Context, path, table string) (bool, error) {
	if !sqliteshim.HasDriver() {
		return false, fmt.Errorf("%w: no SQLite driver is built for this platform (build with cgo and -tags cgosqlite)", engine.ErrDriver)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return false, fmt.Errorf("%w: sqlite path %q: %v", engine.ErrInvalidArgument, path, err)
	}
	dsn := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String() + "?mode=ro&immutable=1"
	pool := sql.OpenDB(&pragmaConnector{dsn: dsn})
	defer func() { _ = pool.Close() }()
	pool.SetMaxOpenConns(1)
	var n int
	if err := pool.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", table).Scan(&n); err != nil {
		return false, fmt.Errorf("read %s: %w", abs, classify(err))
	}
	return n > 0, nil
}
