package postgres

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// classify maps a PostgreSQL error onto pierredb's sentinels, keeping it in the
// chain. PgError.Error() carries the message and SQLSTATE, not the Detail that
// would repeat the offending values.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return engine.Classify(engine.ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	var sentinel error
	switch pgErr.Code {
	case "23505": // unique_violation
		sentinel = engine.ErrAlreadyExists
	case "23503", "40001", "40P01": // foreign_key_violation, serialization_failure, deadlock_detected
		sentinel = engine.ErrConflict
	case "23514", "23502", "22001", "22P02": // check, not null, string too long, invalid text representation
		sentinel = engine.ErrInvalidArgument
	case "55P03": // lock_not_available
		sentinel = engine.ErrBusy
	case "25006": // read_only_sql_transaction
		sentinel = engine.ErrReadOnly
	}
	return engine.Classify(sentinel, err)
}
