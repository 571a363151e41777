package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// newDialect returns what differs on PostgreSQL for pierre's tables in schema.
func newDialect(schema string) engine.Dialect {
	return engine.Dialect{
		RowLock: "UPDATE",
		LockName: func(ctx context.Context, tx bun.IDB, name string) error {
			if _, ok := tx.(*bun.DB); ok {
				// A transaction-scoped lock taken outside a transaction is released
				// as soon as the statement ends: it would lock nothing.
				return fmt.Errorf("%w: lock %q: LockName needs a transaction, not the pool", engine.ErrInvalidArgument, name)
			}
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", lockKey(schema, name)); err != nil {
				return fmt.Errorf("lock %q: %w", name, classify(err))
			}
			return nil
		},
		TableExists: func(ctx context.Context, db bun.IDB, table string) (bool, error) {
			var exists bool
			err := db.QueryRowContext(ctx,
				"SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?)",
				schema, table).Scan(&exists)
			if err != nil {
				return false, fmt.Errorf("look up table %q: %w", table, classify(err))
			}
			return exists, nil
		},
		Rebind:    rebind,
		TimeParam: "CAST(? AS TIMESTAMPTZ)",
		Classify:  classify,
		// The counter's commit then costs a round trip, not a WAL flush (about
		// 0.7 ms on this project's test machines). A server crash may lose the
		// last fraction of a second of counts (at most three times
		// wal_writer_delay), never a row another write depends on; the setting
		// ends with the statement's own transaction.
		RelaxedCommitOne: "CASE WHEN set_config('synchronous_commit', 'off', true) = 'off' THEN 1 END",
		WritingCTE:       true,
	}
}

// lockKey is the advisory lock key of the lock named name in schema: two
// deployments in different schemas of one database never share a key.
func lockKey(schema, name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("pierredb:" + schema + ":" + name))
	return int64(h.Sum64())
}

// migrationLockKey is the session advisory lock held while migrations run. Its
// string is the one earlier releases used, so that an old and a new instance
// starting together still wait for each other.
func migrationLockKey(schema string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("pierredb_migrations:" + schema))
	return int64(h.Sum64())
}

// rebind turns '?' placeholders into PostgreSQL's $1, $2, ... The queries it sees
// are pierre's own and hold no '?' inside literals. It works on bytes, so it never
// alters a byte that is not a '?'.
func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if c := query[i]; c != '?' {
			b.WriteByte(c)
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}
