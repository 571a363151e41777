package pierredb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

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
	log   *queryLogger                   // WithQueryLog
}

// logged reports a statement to the query log, if one is set.
func (c *stmtCache) logged(ctx context.Context, query string, start time.Time, err error) {
	if c.log != nil {
		c.log.statement(ctx, query, time.Since(start), err)
	}
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
	start := time.Now()
	s, err := c.stmt(ctx, query)
	if err != nil {
		c.logged(ctx, query, start, err)
		return nil, err
	}
	return c.row(ctx, query, start, s, args), nil
}

// row runs a statement that returns one row: s, or query unprepared on the
// pool when s is nil. With the query log on, it reads the row before
// returning, so that the log entry carries the statement's own error and
// duration (an INSERT … RETURNING that breaks a constraint fails only when
// its row is read), and returns a *sql.Row that replays what it read.
func (c *stmtCache) row(ctx context.Context, query string, start time.Time, s *sql.Stmt, args []any) *sql.Row {
	if !c.log.enabled(ctx) {
		if s == nil {
			return c.pool.QueryRowContext(ctx, c.rebind(query), args...)
		}
		return s.QueryRowContext(ctx, args...)
	}
	var rows *sql.Rows
	var err error
	if s == nil {
		rows, err = c.pool.QueryContext(ctx, c.rebind(query), args...)
	} else {
		rows, err = s.QueryContext(ctx, args...)
	}
	f := fetchRow(rows, err)
	c.logged(ctx, query, start, f.statementErr())
	return f.replay()
}

func (c *stmtCache) queryRows(ctx context.Context, query string, args ...any) (_ *sql.Rows, err error) {
	if c.trace != nil {
		c.trace(query, args)
	}
	defer func(start time.Time) { c.logged(ctx, query, start, err) }(time.Now())
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.pool.QueryContext(ctx, c.rebind(query), args...)
	}
	return s.QueryContext(ctx, args...)
}

func (c *stmtCache) exec(ctx context.Context, query string, args ...any) (_ sql.Result, err error) {
	if c.trace != nil {
		c.trace(query, args)
	}
	defer func(start time.Time) { c.logged(ctx, query, start, err) }(time.Now())
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.pool.ExecContext(ctx, c.rebind(query), args...)
	}
	return s.ExecContext(ctx, args...)
}

// txKey marks a context that carries a transaction of RunInTx.
type txKey struct{ db *Database }

// txFrom returns the transaction of this Database that ctx carries, if any.
func (db *Database) txFrom(ctx context.Context) (bun.Tx, bool) {
	tx, ok := ctx.Value(txKey{db}).(bun.Tx)
	return tx, ok
}

// writer is where a read that must see every committed write (and, inside
// RunInTx, the transaction's own writes) runs: the caller's transaction, or
// the writer pool.
func (db *Database) writer(ctx context.Context) bun.IDB {
	if tx, ok := db.txFrom(ctx); ok {
		return tx
	}
	return db.eng.Writer
}

// inTxStmt returns, inside a RunInTx transaction, the writer's prepared
// statement for query bound to that transaction; nil outside one. Its caller
// logs the statement once it has run.
func (db *Database) inTxStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	tx, ok := db.txFrom(ctx)
	if !ok {
		return nil, nil
	}
	if db.writes.trace != nil {
		db.writes.trace(query, nil)
	}
	// Preparing through the pool would need a second connection, and SQLite's
	// writer pool has one, held by tx: use a statement prepared earlier, or
	// prepare on the transaction itself (released when it ends).
	if s, ok := db.writes.stmts.Load(query); ok {
		return tx.StmtContext(ctx, s.(*sql.Stmt)), nil
	}
	return tx.PrepareContext(ctx, db.eng.Rebind(query))
}

// queryRow runs a read on the reader pool as a prepared statement (inside
// RunInTx, in its transaction, so that it sees the transaction's writes).
func (db *Database) queryRow(ctx context.Context, query string, args ...any) (*sql.Row, error) {
	args = plainArgs(args)
	if err := db.checkOpen(); err != nil {
		return nil, err
	}
	if r, ok, err := db.inTxRow(ctx, query, args); ok {
		return r, err
	}
	return db.reads.queryRow(ctx, query, args...)
}

// queryRows runs a read on the reader pool as a prepared statement (inside
// RunInTx, in its transaction).
func (db *Database) queryRows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	args = plainArgs(args)
	if err := db.checkOpen(); err != nil {
		return nil, err
	}
	start := time.Now()
	if s, err := db.inTxStmt(ctx, query); s != nil || err != nil {
		var rows *sql.Rows
		if err == nil {
			rows, err = s.QueryContext(ctx, args...)
		}
		db.logged(ctx, query, start, err)
		return rows, err
	}
	return db.reads.queryRows(ctx, query, args...)
}

// writeRow runs a single-statement write that returns a row (UPDATE …
// RETURNING) on the writer pool as a prepared statement, outside any explicit
// transaction (one statement is atomic on both engines), or inside RunInTx's.
func (db *Database) writeRow(ctx context.Context, query string, args ...any) (*sql.Row, error) {
	args = plainArgs(args)
	if err := db.checkWritable(); err != nil {
		return nil, err
	}
	if r, ok, err := db.inTxRow(ctx, query, args); ok {
		return r, err
	}
	return db.writes.queryRow(ctx, query, args...)
}

// exec runs a single-statement write on the writer pool as a prepared statement
// (inside RunInTx, in its transaction).
func (db *Database) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	args = plainArgs(args)
	if err := db.checkWritable(); err != nil {
		return nil, err
	}
	start := time.Now()
	if s, err := db.inTxStmt(ctx, query); s != nil || err != nil {
		var res sql.Result
		if err == nil {
			res, err = s.ExecContext(ctx, args...)
		}
		db.logged(ctx, query, start, err)
		return res, err
	}
	return db.writes.exec(ctx, query, args...)
}

// inTxRow runs a one-row statement inside a RunInTx transaction (ok false
// outside one), logged once it has run.
func (db *Database) inTxRow(ctx context.Context, query string, args []any) (_ *sql.Row, ok bool, _ error) {
	start := time.Now()
	s, err := db.inTxStmt(ctx, query)
	if err != nil {
		db.logged(ctx, query, start, err)
		return nil, true, err
	}
	if s == nil {
		return nil, false, nil
	}
	return db.writes.row(ctx, query, start, s, args), true, nil
}

// logged reports to the query log a statement that pierre ran itself, outside
// the statement caches and bun's query hook.
func (db *Database) logged(ctx context.Context, query string, start time.Time, err error) {
	db.writes.logged(ctx, query, start, err)
}

// inTx runs fn in a write transaction: IMMEDIATE on SQLite, so the transaction
// holds the write lock from its first statement and never fails to upgrade.
// Inside RunInTx, fn joins the caller's transaction.
func (db *Database) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	if err := db.checkWritable(); err != nil {
		return err
	}
	if tx, ok := db.txFrom(ctx); ok {
		return fn(ctx, tx)
	}
	return db.eng.Writer.RunInTx(ctx, nil, fn)
}

// RunInTx runs fn in one write transaction that the host's own statements and
// pierre's share: every pierre operation called with the ctx that fn receives
// joins the transaction (reads included, so they see its writes), and tx runs
// the host's statements against its own tables. If fn returns an error or
// panics, everything is rolled back; otherwise it is committed.
//
// When a pierre operation fails inside fn, return its error: on PostgreSQL a
// failed statement aborts the whole transaction, so nothing more can run in
// it. On SQLite the transaction holds the database's write lock from its start
// (BEGIN IMMEDIATE): keep it short (hash passwords before, not inside), and do
// not call pierre with another context inside it, which would wait for the
// lock fn holds.
func (db *Database) RunInTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) (err error) {
	defer db.wrap(&err, "run in transaction")
	if _, ok := db.txFrom(ctx); ok {
		return fmt.Errorf("%w: RunInTx inside RunInTx; call pierre with the outer transaction's context instead", ErrInvalidArgument)
	}
	if err := db.checkWritable(); err != nil {
		return err
	}
	return db.eng.Writer.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return fn(context.WithValue(ctx, txKey{db}, tx), tx)
	})
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
