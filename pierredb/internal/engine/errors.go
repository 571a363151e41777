package engine

import "errors"

// Sentinel errors. pierredb re-exports each under the same name, so callers test
// them with errors.Is(err, pierredb.ErrNotFound) whichever package produced them.
var (
	ErrNotFound           = errors.New("pierredb: not found")
	ErrAlreadyExists      = errors.New("pierredb: already exists")
	ErrConflict           = errors.New("pierredb: conflict")
	ErrInvalidArgument    = errors.New("pierredb: invalid argument")
	ErrBusy               = errors.New("pierredb: database busy, try again")
	ErrInvalidURL         = errors.New("pierredb: invalid database URL")
	ErrUnreachable        = errors.New("pierredb: database server is not reachable")
	ErrConnectionRejected = errors.New("pierredb: database server rejected the connection")
	ErrReadOnly           = errors.New("pierredb: database is read-only")
	ErrSchemaNotCurrent   = errors.New("pierredb: database schema is not current")
	ErrDriver             = errors.New("pierredb: driver misbehaves")
	ErrClosed             = errors.New("pierredb: database is closed")
)

// Classified joins a sentinel with the driver error it was derived from: errors.Is
// matches the sentinel and errors.As still reaches the driver's own error type.
type Classified struct {
	Sentinel error
	Cause    error
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
