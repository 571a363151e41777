package pierredb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
	"github.com/pierre-mcp/pierre/pierredb/internal/password"
)

// Sentinel errors. Every error pierredb returns names its operation once
// ("pierredb: create user: ...") and wraps one or more of these, keeping the
// driver's own error in the chain; test them with errors.Is, never ==. Errors
// from the keyring (wrong master key, corrupt ciphertext, ...) are the keyring
// package's sentinels, also reachable with errors.Is.
var (
	// ErrNotFound: no such row, or a row of another tenant.
	ErrNotFound = engine.ErrNotFound
	// ErrAlreadyExists: a unique value (email, slug, key prefix, ...) is taken.
	ErrAlreadyExists = engine.ErrAlreadyExists
	// ErrConflict: the change would break an invariant or a reference, or lost a
	// race; the message says which. Re-read and retry, or change something first.
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
	// ErrTLS: the TLS handshake with the PostgreSQL server failed (for example a
	// certificate that does not match the host name under sslmode=verify-full).
	ErrTLS = engine.ErrTLS
	// ErrUnsafeSession: a PostgreSQL session setting would change how values are
	// escaped (standard_conforming_strings off), so pierre refuses to use it.
	ErrUnsafeSession = engine.ErrUnsafeSession
	// ErrReadOnly: a write on a database opened read-only.
	ErrReadOnly = engine.ErrReadOnly
	// ErrSchemaNotCurrent: migrations are pending but Open was told not to run them
	// (or the database is read-only), or the database is newer than this code.
	ErrSchemaNotCurrent = engine.ErrSchemaNotCurrent
	// ErrDriver: the SQL driver did not honour a setting (for example a pragma).
	ErrDriver = engine.ErrDriver
	// ErrClosed: the Database was closed.
	ErrClosed = engine.ErrClosed

	// ErrPermissionDenied: the acting user may not do this (an approver who is not
	// an active admin, a user approving themselves).
	ErrPermissionDenied = errors.New("permission denied")

	// ErrInvalidCredential: an API key, admin token or client secret is
	// malformed, unknown or wrong; which of these is not said, on purpose.
	ErrInvalidCredential = errors.New("invalid credential")
	// ErrExpired: the credential's expiry has passed.
	ErrExpired = errors.New("credential expired")
	// ErrRevoked: the credential was revoked or deactivated.
	ErrRevoked = errors.New("credential revoked")
	// ErrRateLimited: the credential's quota for the current window is used up;
	// the error is a *RateLimitError that says when the window resets.
	ErrRateLimited = errors.New("rate limit exceeded")

	// ErrInvalidCredentials: the email or the password is wrong (which one is not
	// said, on purpose).
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrUserPending: the password is right but an admin has not approved the user.
	ErrUserPending = errors.New("user is awaiting approval")
	// ErrUserSuspended: the password is right but the user is suspended.
	ErrUserSuspended = errors.New("user is suspended")
	// ErrPasswordTooShort: a new password has fewer than 8 characters.
	ErrPasswordTooShort = password.ErrTooShort
	// ErrPasswordTooLong: a password is longer than 4096 bytes.
	ErrPasswordTooLong = password.ErrTooLong
)

// RateLimitError is the error of a request over its quota: errors.Is(err,
// ErrRateLimited) holds, and errors.As gives the limit and when it resets.
type RateLimitError struct {
	// Limit is the number of requests allowed per window.
	Limit int64
	// Reset is when the current window ends and the quota is whole again.
	Reset time.Time
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%s: %d requests per window used up; retry after %s", ErrRateLimited, e.Limit, e.Reset.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrRateLimited) hold.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// opError names the public operation that failed. Each public method wraps its
// error exactly once (see Database.wrap), so every message reads
// "pierredb: <operation>: <what went wrong>".
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return "pierredb: " + e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// wrap is deferred by every public method: it classifies a driver error onto the
// sentinels, says that the database is closed when it is, and names the
// operation. An error that already names an operation is left alone, so a
// public method may call another without doubling the prefix.
func (db *Database) wrap(errp *error, op string) {
	err := *errp
	if err == nil {
		return
	}
	var named *opError
	if errors.As(err, &named) {
		return
	}
	*errp = &opError{op: op, err: db.classify(err)}
}

// classify maps a driver error onto the sentinels. Errors of this package, of
// the keyring and of the context pass through.
func (db *Database) classify(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case db.isClosed():
		if !errors.Is(err, ErrClosed) {
			return fmt.Errorf("%w (%w)", ErrClosed, err)
		}
		return err
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	}
	var classified *engine.Classified
	if errors.As(err, &classified) {
		return err
	}
	return db.eng.Classify(err)
}

// notFound says which kind of row is missing, in words.
func notFound(what string) error {
	return fmt.Errorf("%w: no %s has that id", ErrNotFound, what)
}

// wordedError replaces a driver's message with words a user can act on, and keeps
// the sentinel and the driver error in the chain for errors.Is and errors.As.
type wordedError struct {
	sentinel error
	msg      string
	cause    error
}

func (e *wordedError) Error() string   { return e.msg }
func (e *wordedError) Unwrap() []error { return []error{e.sentinel, e.cause} }

// reword gives err the message msg when it matches sentinel (a unique violation,
// a foreign key), keeping the original in the chain; other errors pass through.
func (db *Database) reword(err, sentinel error, msg string) error {
	if err == nil {
		return nil
	}
	if err = db.classify(err); !errors.Is(err, sentinel) {
		return err
	}
	var w *wordedError
	if errors.As(err, &w) {
		return err
	}
	return &wordedError{sentinel: sentinel, msg: sentinel.Error() + ": " + msg, cause: err}
}

// errNoChange tells a caller of changeUser that the row already was as asked.
var errNoChange = errors.New("no change")

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// notFoundIfNoRows turns sql.ErrNoRows into notFound(what) and returns nil for
// any other error.
func notFoundIfNoRows(err error, what string) error {
	if isNoRows(err) {
		return notFound(what)
	}
	return nil
}

// ctxErr returns err when it is the context's cancellation or deadline.
func ctxErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func errOr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}
