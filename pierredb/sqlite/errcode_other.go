//go:build !cgo && !(!cgosqlite && ((darwin && amd64) || (darwin && arm64) || (linux && 386) || (linux && amd64) || (linux && arm) || (linux && arm64) || (windows && amd64)))

package sqlite

// driverError has no driver to ask on platforms without a SQLite driver.
func driverError(error) (code int, msg string, ok bool) { return 0, "", false }
