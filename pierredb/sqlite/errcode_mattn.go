//go:build cgo && !(!cgosqlite && ((darwin && amd64) || (darwin && arm64) || (linux && 386) || (linux && amd64) || (linux && arm) || (linux && arm64) || (windows && amd64)))

package sqlite

import (
	"errors"

	"github.com/mattn/go-sqlite3"
)

// extendedCode returns the extended result code of a github.com/mattn/go-sqlite3
// error. The build constraint is the one under which sqliteshim picks mattn.
func extendedCode(err error) (int, bool) {
	var e sqlite3.Error
	if errors.As(err, &e) {
		return int(e.ExtendedCode), true
	}
	return 0, false
}
