package engine

import "errors"

// Sentinel errors. pierredb re-exports each under the same name, so callers test
// them with errors.Is(err, pierredb.ErrNotFound) whichever package produced them.
// They carry no package prefix: pierredb adds "pierredb: <operation>: " once, where
// a public method returns.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrConflict           = errors.New("conflict")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrBusy               = errors.New("database busy, try again")
	ErrInvalidURL         = errors.New("invalid database URL")
	ErrUnreachable        = errors.New("database server is not reachable")
	ErrConnectionRejected = errors.New("database server rejected the connection")
	ErrTLS                = errors.New("TLS handshake with the database server failed")
	ErrReadOnly           = errors.New("database is read-only")
	ErrSchemaNotCurrent   = errors.New("database schema is not current")
	ErrDriver             = errors.New("driver misbehaves")
	ErrUnsafeSession      = errors.New("database session settings are unsafe")
	ErrClosed             = errors.New("database is closed")
)

// Classified joins a sentinel with the driver error it was derived from: errors.Is
// matches the sentinel and errors.As still reaches the driver's own error type.
type Classified struct {
	Sentinel error
	Cause    error
	// Columns names the columns of the unique key that a unique violation hit (no
	// values), when the driver says; domain code turns it into words.
	Columns []string
}

// Error implements error. Driver messages name constraints and columns, never values.
func (e *Classified) Error() string { return e.Sentinel.Error() + ": " + e.Cause.Error() }

// Unwrap returns both the sentinel and the driver error.
func (e *Classified) Unwrap() []error { return []error{e.Sentinel, e.Cause} }

// Classify wraps cause under sentinel; a nil sentinel returns cause unchanged.
func Classify(sentinel, cause error) error {
	if sentinel == nil {
		return cause
	}
	return &Classified{Sentinel: sentinel, Cause: cause}
}

// UniqueColumns returns the columns of the unique key that err violated, or nil
// when err is not a classified unique violation or the driver did not say.
func UniqueColumns(err error) []string {
	var c *Classified
	if errors.As(err, &c) && c.Sentinel == ErrAlreadyExists {
		return c.Columns
	}
	return nil
}
