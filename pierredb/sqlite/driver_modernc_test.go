//go:build !cgosqlite && ((darwin && amd64) || (darwin && arm64) || (linux && 386) || (linux && amd64) || (linux && arm) || (linux && arm64) || (windows && amd64))

package sqlite

// wantDriver is the driver that sqliteshim picks for this build.
const wantDriver = "modernc.org/sqlite"
