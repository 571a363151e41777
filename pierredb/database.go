package pierredb

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
	"github.com/pierre-mcp/pierre/pierredb/internal/password"
)

// Backend names the database engine behind a Database.
type Backend = engine.Backend

// The supported backends.
const (
	SQLite   Backend = engine.SQLite
	Postgres Backend = engine.Postgres
)

// Database is an open pierre database: SQLite or PostgreSQL behind one API. It is
// safe for concurrent use by many goroutines; open one per process and share it.
//
// Database holds what is about the database itself; each domain has a handle:
// Users, Tenants and Settings here, and the tenant-owned domains on the
// TenantScope that Tenant returns.
type Database struct {
	eng     *engine.Engine
	keys    *keyring.Keyring
	now     func() time.Time
	log     *slog.Logger
	applied []string

	schemaVersion string         // the newest migration applied, read at Open
	sets          []migrationSet // pierre's migrations, then the host's

	reads     *stmtCache // prepared statements on the reader pool
	writes    *stmtCache // prepared statements on the writer pool
	hasher    *password.Hasher
	floorOnce sync.Once // raisePasswordFloor

	insertUserSQL string       // insertUserSQLTemplate for this engine
	keyringRead   keyringClock // when the keyring was last re-read (seal.go)

	adminOnce   sync.Once
	admin       *adminState // admin tokens' signing secret and parser (adminState)
	autoApprove *bool       // override of the stored setting, nil when none
	lastActive  throttle
	countSQL    map[string][2]string // countStatements for this engine
	// verifyCountSQL is verifyCountStatements for this engine.
	verifyCountSQL [2]string
	tally          *tally // request counts kept in memory; nil when counted per request

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

// Info describes an open database for diagnostics and health endpoints. It holds
// no secret: Location never includes a password.
type Info struct {
	Backend Backend
	// Driver is the Go SQL driver in use.
	Driver string
	// Location is the SQLite file (or ":memory:") or PostgreSQL host:port/database.
	Location string
	// Schema is the PostgreSQL schema that holds pierre's tables ("" on SQLite).
	Schema string
	// ReadOnly reports a SQLite database opened with mode=ro.
	ReadOnly bool
	// Settings are the connection settings read back after they were applied:
	// SQLite pragmas, or PostgreSQL's search_path, application_name, TimeZone, ssl.
	Settings map[string]string
	// MigrationsApplied lists the migrations that opening this Database applied
	// (empty when the schema was already current).
	MigrationsApplied []string
	// SchemaVersion is the newest migration the database had once opened, for
	// example "0003".
	SchemaVersion string
	// KeyringID identifies the keyring (and so the database) that encrypts secrets.
	KeyringID string
	// MasterKeyFingerprint identifies the master key in use without revealing it.
	MasterKeyFingerprint string
}

// Stats are connection pool figures.
type Stats struct {
	Backend Backend
	// Write is the pool that runs writes and transactions (one connection on SQLite).
	Write sql.DBStats
	// Read is the pool that runs plain reads; on PostgreSQL and in-memory SQLite it
	// is the same pool as Write.
	Read sql.DBStats
	// PreparedStatements is how many statements pierre keeps prepared, on both
	// pools together; it is bounded whatever the callers ask for.
	PreparedStatements int
}

// Backend reports which engine this Database uses.
func (db *Database) Backend() Backend { return db.eng.Backend }

// Info describes the open database.
func (db *Database) Info() Info {
	return Info{
		Backend:              db.eng.Backend,
		Driver:               db.eng.Info.Driver,
		Location:             db.eng.Info.Location,
		Schema:               db.eng.Info.Schema,
		ReadOnly:             db.eng.ReadOnly,
		Settings:             maps.Clone(db.eng.Info.Settings),
		MigrationsApplied:    slices.Clone(db.applied),
		SchemaVersion:        db.schemaVersion,
		KeyringID:            db.keys.DatabaseID(),
		MasterKeyFingerprint: db.keys.MasterKeyFingerprint(),
	}
}

// Stats returns the connection pool figures.
func (db *Database) Stats() Stats {
	w, r := db.eng.Stats()
	return Stats{Backend: db.eng.Backend, Write: w, Read: r, PreparedStatements: db.reads.len() + db.writes.len()}
}

// Keyring returns the keyring that encrypts this database's secrets, for
// diagnostics and for rotating the master key; data keys are rotated through
// Rotation, which also re-encrypts what they protect.
func (db *Database) Keyring() *keyring.Keyring { return db.keys }

// Migrations lists every migration this code knows, pierre's then the host's
// (WithHostMigrations), and whether the database has applied it.
func (db *Database) Migrations(ctx context.Context) (_ []Migration, err error) {
	defer db.wrap(&err, "read migration status")
	if err := db.checkOpen(); err != nil {
		return nil, err
	}
	var all []Migration
	for _, set := range db.sets {
		status, _, err := schemaState(ctx, db.eng, set)
		if err != nil {
			return nil, err
		}
		all = append(all, status...)
	}
	return all, nil
}

// Ping checks that the database answers, with one round trip on the pool that
// serves reads (on SQLite the writer is a single connection that a long write
// may hold; health checks should not queue behind it).
func (db *Database) Ping(ctx context.Context) (err error) {
	defer db.wrap(&err, "ping")
	if err := db.checkOpen(); err != nil {
		return err
	}
	return db.eng.Reader.PingContext(ctx)
}

// Close closes every connection pierre opened (a pool lent by the host stays
// open). It is safe to call more than once; later calls return the first call's
// result.
func (db *Database) Close() error {
	db.closeOnce.Do(func() {
		var flushErr error
		if db.tally != nil {
			flushErr = db.tally.close()
		}
		close(db.closed)
		db.reads.close()
		db.writes.close()
		db.closeErr = errors.Join(flushErr, db.eng.Close())
	})
	return db.closeErr
}

func (db *Database) isClosed() bool {
	select {
	case <-db.closed:
		return true
	default:
		return false
	}
}

func (db *Database) checkOpen() error {
	if db.isClosed() {
		return ErrClosed
	}
	return nil
}

// Bun returns the bun handle on the pool that runs writes, for the host's own
// queries beside pierre's tables (on SQLite it is the single writer connection,
// whose transactions begin IMMEDIATE). Changing pierre's own tables through it
// bypasses every check pierre makes: read them, and write them only as the
// README's recipes do.
func (db *Database) Bun() *bun.DB { return db.eng.Writer }
