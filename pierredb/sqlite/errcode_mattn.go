//go:build cgo && !(!cgosqlite && ((darwin && amd64) || (darwin && arm64) || (linux && 386) || (linux && amd64) || (linux && arm) || (linux && arm64) || (windows && amd64)))

package sqlite

import (
	"errors"

	"github.com/mattn/go-sqlite3"
)

// driverError returns the extended result code and the message of a
// github.com/mattn/go-sqlite3 error in err's chain. The build constraint is the one
// under which sqliteshim picks mattn.
func driverError(err error) (code int, msg string, ok bool) {
	var e sqlite3.Error
	if errors.As(err, &e) {
		return int(e.ExtendedCode), e.Error(), true
	}
	return 0, "", false
}
