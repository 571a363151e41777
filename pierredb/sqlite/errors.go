package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// SQLite extended result codes that pierredb classifies.
// See https://www.sqlite.org/rescode.html.
const (
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

// classify maps a SQLite error onto pierredb's sentinels, keeping it in the chain.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var sentinel error
	switch {
	case errors.Is(err, sql.ErrNoRows):
		sentinel = engine.ErrNotFound
	default:
		code, ok := extendedCode(err)
		if !ok {
			code = codeFromMessage(err.Error())
		}
		switch code {
		case codeConstraintUnique, codeConstraintPK:
			sentinel = engine.ErrAlreadyExists
		case codeConstraintFK, codeConstraintTrigger:
			sentinel = engine.ErrConflict
		case codeConstraintCheck, codeConstraintNotNull:
			sentinel = engine.ErrInvalidArgument
		default:
			switch code & 0xff { // primary result code
			case codeBusy, codeLocked:
				sentinel = engine.ErrBusy
			case codeReadOnly:
				sentinel = engine.ErrReadOnly
			}
		}
	}
	return engine.Classify(sentinel, err)
}

// codeFromMessage reads SQLite's stable messages when the driver's error type
// is not one extendedCode knows.
func codeFromMessage(msg string) int {
	switch {
	case strings.Contains(msg, "UNIQUE constraint failed"):
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
	}
	return 0
}
