package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// SQLite extended result codes that pierredb classifies.
// See https://www.sqlite.org/rescode.html.
const (
	codeError             = 1
	codeBusy              = 5
	codeLocked            = 6
	codeReadOnly          = 8
	codeConstraintCheck   = 275
	codeConstraintFK      = 787
	codeConstraintNotNull = 1299
	codeConstraintPK      = 1555
	codeConstraintUnique  = 2067
	codeConstraintTrigger = 1811
)

// classify maps a SQLite error onto the sentinels of package engine, keeping it in
// the chain. A unique or primary key violation also names the key's columns. An
// error that is classified already comes back unchanged.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var done *engine.Classified
	if errors.As(err, &done) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err // classified already, or not the database's doing
	}
	if errors.Is(err, sql.ErrNoRows) {
		return engine.Classify(engine.ErrNotFound, err)
	}
	code, msg, ok := driverError(err)
	if !ok {
		msg = err.Error()
		code = codeFromMessage(msg)
	}
	var sentinel error
	switch code {
	case codeConstraintUnique, codeConstraintPK:
		return &engine.Classified{Sentinel: engine.ErrAlreadyExists, Cause: err, Columns: uniqueColumns(msg)}
	case codeConstraintFK, codeConstraintTrigger:
		sentinel = engine.ErrConflict
	case codeConstraintCheck, codeConstraintNotNull:
		sentinel = engine.ErrInvalidArgument
	case codeError:
		if strings.Contains(msg, unformattable) {
			return engine.Classify(engine.ErrInvalidArgument, fmt.Errorf("bun could not write a value into the statement (a string holding a NUL byte?): %w", err))
		}
	default:
		switch code & 0xff { // primary result code
		case codeBusy, codeLocked:
			sentinel = engine.ErrBusy
		case codeReadOnly:
			sentinel = engine.ErrReadOnly
		}
	}
	return engine.Classify(sentinel, err)
}

// unformattable is SQLite's answer to a statement in which bun could not write a
// value. bun formats arguments into the SQL text; for a value it cannot write (a
// string holding a NUL byte above all, also a driver.Valuer or JSON marshaller
// that fails) it writes "?!(<bun's error>)" in its place, and SQLite's tokenizer
// stops at the "!": SQLITE_ERROR, `unrecognized token: "!"` on both drivers
// (modernc prefixes "SQL logic error: " and appends " (1)"). bun's own error
// never reaches the caller, so this is the only trace of it.
//
// Arguments bound as parameters (database/sql with '?', prepared statements) are
// not affected: both drivers store a NUL byte or invalid UTF-8 byte for byte.
const unformattable = `unrecognized token: "!"`

// codeFromMessage reads SQLite's stable messages when the driver's error type
// is not one driverError knows.
func codeFromMessage(msg string) int {
	switch {
	case strings.Contains(msg, uniqueFailed):
		return codeConstraintUnique
	case strings.Contains(msg, "FOREIGN KEY constraint failed"):
		return codeConstraintFK
	case strings.Contains(msg, "CHECK constraint failed"):
		return codeConstraintCheck
	case strings.Contains(msg, "NOT NULL constraint failed"):
		return codeConstraintNotNull
	case strings.Contains(msg, "database is locked"), strings.Contains(msg, "SQLITE_BUSY"):
		return codeBusy
	case strings.Contains(msg, "attempt to write a readonly database"):
		return codeReadOnly
	case strings.Contains(msg, unformattable):
		return codeError
	}
	return 0
}

// uniqueFailed starts SQLite's message for a unique or primary key violation
// (sqlite3UniqueConstraint): "UNIQUE constraint failed: users.email", or for a
// key of several columns "UNIQUE constraint failed: t.a, t.b"; for a unique index
// on expressions it names the index instead: "UNIQUE constraint failed: index 'i'".
const uniqueFailed = "UNIQUE constraint failed: "

// uniqueColumns returns the column names (without their table) that a unique
// violation message names, in the key's order, or nil when the message names no
// columns. modernc.org/sqlite writes "constraint failed: <message> (2067)",
// github.com/mattn/go-sqlite3 the bare message.
func uniqueColumns(msg string) []string {
	_, rest, ok := strings.Cut(msg, uniqueFailed)
	if !ok {
		return nil
	}
	rest = trimCode(rest)
	if rest == "" || strings.HasPrefix(rest, "index '") {
		return nil
	}
	parts := strings.Split(rest, ", ")
	cols := make([]string, 0, len(parts))
	for _, p := range parts {
		_, col, ok := strings.Cut(p, ".")
		if !ok || col == "" {
			return nil
		}
		cols = append(cols, col)
	}
	return cols
}

// trimCode removes the " (<code>)" and " (SQLITE_BUSY)" suffixes that
// modernc.org/sqlite appends to SQLite's message.
func trimCode(s string) string {
	for {
		i := strings.LastIndex(s, " (")
		if i < 0 || !strings.HasSuffix(s, ")") {
			return s
		}
		inner := s[i+2 : len(s)-1]
		if inner != "SQLITE_BUSY" && !isDigits(inner) {
			return s
		}
		s = s[:i]
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
