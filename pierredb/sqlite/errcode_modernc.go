//go:build !cgosqlite && ((darwin && amd64) || (darwin && arm64) || (linux && 386) || (linux && amd64) || (linux && arm) || (linux && arm64) || (windows && amd64))

package sqlite

import (
	"errors"

	"modernc.org/sqlite"
)

// driverError returns the extended result code and the message of a
// modernc.org/sqlite error in err's chain. The build constraint is the one under
// which sqliteshim picks modernc.
func driverError(err error) (code int, msg string, ok bool) {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code(), e.Error(), true
	}
	return 0, "", false
}
