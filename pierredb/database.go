package pierredb

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"

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
type Database struct {
	eng     *engine.Engine
	keys    *keyring.Keyring
	now     func() time.Time
	log     *slog.Logger
	applied []string

	reads       *stmtCache
	hasher      *password.Hasher
	autoApprove *bool // override of the stored setting, nil when none
	lastActive  throttle

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
	// ReadOnly reports a SQLite database opened with mode=ro.
	ReadOnly bool
	// Settings are the connection settings read back after they were applied:
	// SQLite pragmas, or PostgreSQL's search_path, application_name, TimeZone, ssl.
	Settings map[string]string
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
}

// Backend reports which engine this Database uses.
func (db *Database) Backend() Backend { return db.eng.Backend }

// Info describes the open database.
func (db *Database) Info() Info {
	settings := make(map[string]string, len(db.eng.Info.Settings))
	for k, v := range db.eng.Info.Settings {
		settings[k] = v
	}
	return Info{
		Backend:              db.eng.Backend,
		Driver:               db.eng.Info.Driver,
		Location:             db.eng.Info.Location,
		ReadOnly:             db.eng.ReadOnly,
		Settings:             settings,
		KeyringID:            db.keys.DatabaseID(),
		MasterKeyFingerprint: db.keys.MasterKeyFingerprint(),
	}
}

// Stats returns the connection pool figures.
func (db *Database) Stats() Stats {
	w, r := db.eng.Stats()
	return Stats{Backend: db.eng.Backend, Write: w, Read: r}
}

// Keyring returns the keyring that encrypts this database's secrets, for key
// rotation and diagnostics.
func (db *Database) Keyring() *keyring.Keyring { return db.keys }

// AppliedMigrations lists the migrations that Open applied (empty when the schema
// was already current).
func (db *Database) AppliedMigrations() []string {
	return append([]string(nil), db.applied...)
}

// MigrationStatus lists every migration this code knows and whether the database
// has applied it.
func (db *Database) MigrationStatus(ctx context.Context) ([]Migration, error) {
	if err := db.checkOpen(); err != nil {
		return nil, err
	}
	status, _, err := schemaState(ctx, db.eng)
	return status, err
}

// Ping checks that the database answers on every pool.
func (db *Database) Ping(ctx context.Context) error {
	if err := db.checkOpen(); err != nil {
		return err
	}
	if err := db.eng.Writer.PingContext(ctx); err != nil {
		return fmt.Errorf("pierredb: ping: %w", db.eng.Classify(err))
	}
	if db.eng.Reader != db.eng.Writer {
		if err := db.eng.Reader.PingContext(ctx); err != nil {
			return fmt.Errorf("pierredb: ping: %w", db.eng.Classify(err))
		}
	}
	return nil
}

// Close closes every connection. It is safe to call more than once; later calls
// return the first call's result.
func (db *Database) Close() error {
	db.closeOnce.Do(func() {
		close(db.closed)
		db.reads.close()
		db.closeErr = db.eng.Close()
	})
	return db.closeErr
}

func (db *Database) checkOpen() error {
	select {
	case <-db.closed:
		return ErrClosed
	default:
		return nil
	}
}
