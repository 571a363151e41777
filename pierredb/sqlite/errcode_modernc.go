//go:build !cgosqlite && ((darwin && amd64) || (darwin && arm64) || (linux && 386) || (linux && amd64) || (linux && arm) || (linux && arm64) || (windows && amd64))

package sqlite

import (
	"errors"

	"modernc.org/sqlite"
)

// extendedCode returns the extended result code of a modernc.org/sqlite error.
// The build constraint is the one under which sqliteshim picks modernc.
func extendedCode(err error) (int, bool) {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}
