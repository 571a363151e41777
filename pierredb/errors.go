package pierredb

import (
	"database/sql"
	"errors"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
	"github.com/pierre-mcp/pierre/pierredb/internal/password"
)

// Sentinel errors. Every error pierredb returns wraps at most a few of these (and
// keeps the driver's own error in the chain); test them with errors.Is, never ==.
// Errors from the keyring (wrong master key, corrupt ciphertext, ...) are the
// keyring package's sentinels, also reachable with errors.Is.
var (
	// ErrNotFound: no such row, or a row of another tenant.
	ErrNotFound = engine.ErrNotFound
	// ErrAlreadyExists: a unique value (email, slug, key prefix, ...) is taken.
	ErrAlreadyExists = engine.ErrAlreadyExists
	// ErrConflict: the change would break a reference or lost a race; re-read and retry.
	ErrConflict = engine.ErrConflict
	// ErrInvalidArgument: a value is out of its domain (empty id, bad status, ...).
	ErrInvalidArgument = engine.ErrInvalidArgument
	// ErrBusy: SQLite stayed locked for longer than busy_timeout; retry later.
	ErrBusy = engine.ErrBusy
	// ErrInvalidURL: the database URL is malformed or names an unsupported engine.
	ErrInvalidURL = engine.ErrInvalidURL
	// ErrUnreachable: the PostgreSQL server could not be reached; check DATABASE_URL.
	ErrUnreachable = engine.ErrUnreachable
	// ErrConnectionRejected: the server answered but refused (authentication,
	// unknown database, permissions).
	ErrConnectionRejected = engine.ErrConnectionRejected
	// ErrReadOnly: a write on a database opened read-only.
	ErrReadOnly = engine.ErrReadOnly
	// ErrSchemaNotCurrent: migrations are pending but Open was told not to run them
	// (or the database is read-only), or the database is newer than this code.
	ErrSchemaNotCurrent = engine.ErrSchemaNotCurrent
	// ErrDriver: the SQL driver did not honour a setting (for example a pragma).
	ErrDriver = engine.ErrDriver
	// ErrClosed: the Database was closed.
	ErrClosed = engine.ErrClosed

	// ErrInvalidCredentials: the email or the password is wrong (which one is not
	// said, on purpose).
	ErrInvalidCredentials = errors.New("pierredb: invalid email or password")
	// ErrUserPending: the password is right but an admin has not approved the user.
	ErrUserPending = errors.New("pierredb: user is awaiting approval")
	// ErrUserSuspended: the password is right but the user is suspended.
	ErrUserSuspended = errors.New("pierredb: user is suspended")
	// ErrPasswordTooShort: a new password has fewer than 8 characters.
	ErrPasswordTooShort = password.ErrTooShort
	// ErrPasswordTooLong: a password is longer than 4096 bytes.
	ErrPasswordTooLong = password.ErrTooLong
)

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
