package pierredb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// maxPreparedStatements bounds each statement cache. pierre's statements come
// from a fixed set of shapes (each listing with a few filter combinations, times
// the page sizes of fetchSizes), far below it; the bound is a guard, past which a
// statement runs unprepared rather than growing the cache.
const maxPreparedStatements = 512

// stmtCache prepares hand-written statements once per pool, keyed by their text.
// bun formats every argument into the SQL text, so its statements are never
// reused; the hot paths are written as plain SQL with '?' placeholders and run as
// prepared statements instead (see the package doc, # Queries).
type stmtCache struct {
	pool   *sql.DB
	rebind func(string) string

	stmts sync.Map // query text -> *sql.Stmt; read without a lock on the hot path

	mu sync.Mutex // serialises preparing, so each text is prepared once
	n  int        // statements in stmts

	trace func(query string, args []any) // tests: sees every statement run
}

func newStmtCache(pool *sql.DB, rebind func(string) string) *stmtCache {
	return &stmtCache{pool: pool, rebind: rebind}
}

// stmt returns the prepared statement for query, or nil when the cache is full.
func (c *stmtCache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := c.stmts.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.stmts.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	if c.n >= maxPreparedStatements {
		return nil, nil
	}
	s, err := c.pool.PrepareContext(ctx, c.rebind(query))
	if err != nil {
		return nil, err
	}
	c.stmts.Store(query, s)
	c.n++
	return s, nil
}

// len is how many statements the cache holds.
func (c *stmtCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stmts.Range(func(k, v any) bool {
		_ = v.(*sql.Stmt).Close()
		c.stmts.Delete(k)
		return true
	})
	c.n = 0
}

func (c *stmtCache) queryRow(ctx context.Context, query string, args ...any) (*sql.Row, error) {
	if c.trace != nil {
		c.trace(query, args)
	}
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.pool.QueryRowContext(ctx, c.rebind(query), args...), nil
	}
	return s.QueryRowContext(ctx, args...), nil
}

func (c *stmtCache) queryRows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if c.trace != nil {
		c.trace(query, args)
	}
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.pool.QueryContext(ctx, c.rebind(query), args...)
	}
	return s.QueryContext(ctx, args...)
}

func (c *stmtCache) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if c.trace != nil {
		c.trace(query, args)
	}
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.pool.ExecContext(ctx, c.rebind(query), args...)
	}
	return s.ExecContext(ctx, args...)
}

// queryRow runs a read on the reader pool as a prepared statement.
func (db *Database) queryRow(ctx context.Context, query string, args ...any) (*sql.Row, error) {
	if err := db.checkOpen(); err != nil {
		return nil, err
	}
	return db.reads.queryRow(ctx, query, args...)
}

// queryRows runs a read on the reader pool as a prepared statement.
func (db *Database) queryRows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := db.checkOpen(); err != nil {
		return nil, err
	}
	return db.reads.queryRows(ctx, query, args...)
}

// writeRow runs a single-statement write that returns a row (UPDATE …
// RETURNING) on the writer pool as a prepared statement, outside any explicit
// transaction: one statement is atomic on both engines.
func (db *Database) writeRow(ctx context.Context, query string, args ...any) (*sql.Row, error) {
	if err := db.checkWritable(); err != nil {
		return nil, err
	}
	return db.writes.queryRow(ctx, query, args...)
}

// exec runs a single-statement write on the writer pool as a prepared statement.
func (db *Database) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := db.checkWritable(); err != nil {
		return nil, err
	}
	return db.writes.exec(ctx, query, args...)
}

// inTx runs fn in a write transaction: IMMEDIATE on SQLite, so the transaction
// holds the write lock from its first statement and never fails to upgrade.
func (db *Database) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	if err := db.checkWritable(); err != nil {
		return err
	}
	return db.eng.Writer.RunInTx(ctx, nil, fn)
}

// forUpdate adds the engine's row lock to q (nothing on SQLite, whose IMMEDIATE
// transaction already holds the database's write lock).
func (db *Database) forUpdate(q *bun.SelectQuery) *bun.SelectQuery {
	if db.eng.RowLock != "" {
		return q.For(db.eng.RowLock)
	}
	return q
}

func (db *Database) checkWritable() error {
	if err := db.checkOpen(); err != nil {
		return err
	}
	if db.eng.ReadOnly {
		return ErrReadOnly
	}
	return nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// rowsAffected returns how many rows a write changed.
func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// newID returns a UUIDv7: time-ordered, so new rows append to the primary key
// index, and made in Go, so inserts need no RETURNING.
func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only if the system random source does.
		panic(fmt.Sprintf("pierredb: generate id: %v", err))
	}
	return id.String()
}
