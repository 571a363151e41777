package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

const errorSchema = `
CREATE TABLE users (
    id    TEXT NOT NULL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    age   INTEGER CHECK (age >= 0)
);
CREATE TABLE api_keys (
    id        INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    user_id   TEXT NOT NULL REFERENCES users (id),
    name      TEXT NOT NULL,
    UNIQUE (tenant_id, user_id, name)
);
CREATE TABLE members (
    tenant_id TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
) WITHOUT ROWID;
CREATE TABLE slugs (slug TEXT NOT NULL);
CREATE UNIQUE INDEX idx_slugs_lower ON slugs (lower(slug));
`

func errorDB(t *testing.T) *engine.Engine {
	t.Helper()
	eng := connectTest(t, Config{Path: filepath.Join(t.TempDir(), "u.db")})
	_, err := eng.Writer.ExecContext(context.Background(), errorSchema)
	require.NoError(t, err)
	return eng
}

// TestClassifyConstraints inserts twice into real tables on the driver this build
// uses, and checks the sentinel and the columns named for unique violations.
func TestClassifyConstraints(t *testing.T) {
	ctx := context.Background()
	eng := errorDB(t)
	exec := func(q string, args ...any) error {
		_, err := eng.Writer.ExecContext(ctx, q, args...)
		return eng.Classify(err)
	}
	require.NoError(t, exec("INSERT INTO users (id, email) VALUES ('u1', 'a@x')"))
	require.NoError(t, exec("INSERT INTO api_keys (tenant_id, user_id, name) VALUES ('t1', 'u1', 'k')"))
	require.NoError(t, exec("INSERT INTO members (tenant_id, user_id) VALUES ('t1', 'u1')"))
	require.NoError(t, exec("INSERT INTO slugs (slug) VALUES ('Acme')"))

	for _, tc := range []struct {
		name     string
		query    string
		sentinel error
		columns  []string
	}{
		{"unique column", "INSERT INTO users (id, email) VALUES ('u2', 'a@x')", engine.ErrAlreadyExists, []string{"email"}},
		{"primary key", "INSERT INTO users (id, email) VALUES ('u1', 'b@x')", engine.ErrAlreadyExists, []string{"id"}},
		{"composite unique", "INSERT INTO api_keys (tenant_id, user_id, name) VALUES ('t1', 'u1', 'k')", engine.ErrAlreadyExists, []string{"tenant_id", "user_id", "name"}},
		{"integer primary key", "INSERT INTO api_keys (id, tenant_id, user_id, name) VALUES (1, 't2', 'u1', 'k')", engine.ErrAlreadyExists, []string{"id"}},
		{"composite primary key", "INSERT INTO members (tenant_id, user_id) VALUES ('t1', 'u1')", engine.ErrAlreadyExists, []string{"tenant_id", "user_id"}},
		{"expression index", "INSERT INTO slugs (slug) VALUES ('ACME')", engine.ErrAlreadyExists, nil},
		{"update into a unique key", "UPDATE users SET email = 'a@x' WHERE id = 'u0'", nil, nil}, // no row: no error
		{"foreign key", "INSERT INTO api_keys (tenant_id, user_id, name) VALUES ('t1', 'nobody', 'k')", engine.ErrConflict, nil},
		{"foreign key on delete", "DELETE FROM users WHERE id = 'u1'", engine.ErrConflict, nil},
		{"not null", "INSERT INTO users (id, email) VALUES ('u3', NULL)", engine.ErrInvalidArgument, nil},
		{"check", "INSERT INTO users (id, email, age) VALUES ('u3', 'c@x', -1)", engine.ErrInvalidArgument, nil},
		{"NUL byte through bun", "INSERT INTO users (id, email) VALUES ('u3', ?)", engine.ErrInvalidArgument, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.name == "NUL byte through bun" {
				err = exec(tc.query, "a\x00@x")
			} else {
				err = exec(tc.query)
			}
			if tc.sentinel == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.sentinel)
			assert.Equal(t, tc.columns, engine.UniqueColumns(err))
			assert.Same(t, err, eng.Classify(err), "classifying twice wraps twice")
			wrapped := fmt.Errorf("context: %w", err)
			assert.Same(t, wrapped, eng.Classify(wrapped))
			_, _, ok := driverError(err)
			assert.True(t, ok, "the driver error left the chain: %v", err)
			assert.NotContains(t, err.Error(), "pierredb:")
		})
	}
}

func TestClassifyOthers(t *testing.T) {
	assert.NoError(t, classify(nil))
	assert.ErrorIs(t, classify(sql.ErrNoRows), engine.ErrNotFound)
	assert.ErrorIs(t, classify(fmt.Errorf("scan: %w", sql.ErrNoRows)), sql.ErrNoRows)
	for _, err := range []error{context.Canceled, context.DeadlineExceeded, fmt.Errorf("x: %w", context.Canceled)} {
		assert.Equal(t, err, classify(err), "context errors pass through")
	}
	plain := errors.New("something else")
	assert.Same(t, plain, classify(plain), "unknown errors pass through unwrapped")

	// Errors that reach classify as text only (another driver's type, a wrapped
	// string) are classified from SQLite's stable messages.
	for msg, want := range map[string]error{
		"UNIQUE constraint failed: users.email":                   engine.ErrAlreadyExists,
		"FOREIGN KEY constraint failed":                           engine.ErrConflict,
		"CHECK constraint failed: age >= 0":                       engine.ErrInvalidArgument,
		"NOT NULL constraint failed: users.email":                 engine.ErrInvalidArgument,
		"database is locked":                                      engine.ErrBusy,
		"database is locked (5) (SQLITE_BUSY)":                    engine.ErrBusy,
		"attempt to write a readonly database":                    engine.ErrReadOnly,
		`SQL logic error: unrecognized token: "!" (1)`:            engine.ErrInvalidArgument,
		`near "SELEC": syntax error`:                              nil,
		"constraint failed: UNIQUE constraint failed: t.a (2067)": engine.ErrAlreadyExists,
	} {
		got := classify(errors.New(msg))
		if want == nil {
			var c *engine.Classified
			assert.False(t, errors.As(got, &c), msg)
			continue
		}
		assert.ErrorIs(t, got, want, msg)
	}
	assert.Equal(t, []string{"email"}, engine.UniqueColumns(classify(errors.New("UNIQUE constraint failed: users.email"))))
}

func TestUniqueColumns(t *testing.T) {
	for msg, want := range map[string][]string{
		// github.com/mattn/go-sqlite3
		"UNIQUE constraint failed: users.email":                                         {"email"},
		"UNIQUE constraint failed: api_keys.tenant_id, api_keys.user_id, api_keys.name": {"tenant_id", "user_id", "name"},
		"UNIQUE constraint failed: index 'idx_slugs_lower'":                             nil,
		// modernc.org/sqlite
		"constraint failed: UNIQUE constraint failed: users.email (2067)":               {"email"},
		"constraint failed: UNIQUE constraint failed: users.id (1555)":                  {"id"},
		"constraint failed: UNIQUE constraint failed: a.x, a.y (2067)":                  {"x", "y"},
		"constraint failed: UNIQUE constraint failed: index 'idx_slugs_lower' (2067)":   nil,
		"constraint failed: UNIQUE constraint failed: users.email (2067) (SQLITE_BUSY)": {"email"},
		"UNIQUE constraint failed: weird.col (x)":                                       {"col (x)"},
		"UNIQUE constraint failed: ":                                                    nil,
		"UNIQUE constraint failed: nodot":                                               nil,
		"UNIQUE constraint failed: t.":                                                  nil,
		"UNIQUE constraint failed: t.a, nodot":                                          nil,
		"FOREIGN KEY constraint failed":                                                 nil,
		"":                                                                              nil,
	} {
		assert.Equal(t, want, uniqueColumns(msg), msg)
	}
}

type badRow struct {
	bun.BaseModel `bun:"table:t"`
	ID            int    `bun:"id,pk"`
	S             string `bun:"s"`
}

// TestBadStrings records what each driver does with a string that holds a NUL
// byte or invalid UTF-8, bound as a parameter and written by bun.
//
//   - Bound as a parameter (database/sql '?', prepared statements), both drivers
//     store the bytes unchanged and find them again: no error at all.
//   - Through bun, which writes values into the SQL text, a NUL byte makes the
//     statement fail (bun writes "?!(...)"; SQLite: unrecognized token: "!"),
//     which classify maps to ErrInvalidArgument; invalid UTF-8 is silently
//     replaced by U+FFFD, one per bad byte, so distinct inputs can collide.
func TestBadStrings(t *testing.T) {
	ctx := context.Background()
	eng := connectTest(t, Config{Path: filepath.Join(t.TempDir(), "u.db")})
	_, err := eng.Writer.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT NOT NULL)")
	require.NoError(t, err)
	pool := eng.Writer.DB // database/sql: arguments are bound, not formatted

	for i, in := range []string{"a\x00b", "\x00", "\xff\xfe", "ok\xc3"} {
		t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
			_, err := pool.ExecContext(ctx, "INSERT INTO t (id, s) VALUES (?, ?)", i, in)
			require.NoError(t, err, "bound parameter")
			var got string
			require.NoError(t, pool.QueryRowContext(ctx, "SELECT s FROM t WHERE id = ?", i).Scan(&got))
			assert.Equal(t, in, got, "bound parameters keep the bytes")
			var id int
			require.NoError(t, pool.QueryRowContext(ctx, "SELECT id FROM t WHERE s = ?", in).Scan(&id))
			assert.Equal(t, i, id)

			_, err = eng.Writer.NewInsert().Model(&badRow{ID: 100 + i, S: in}).Exec(ctx)
			if utf8.ValidString(in) { // holds a NUL
				require.ErrorIs(t, eng.Classify(err), engine.ErrInvalidArgument)
				assert.Contains(t, eng.Classify(err).Error(), "NUL byte")
				err = eng.Writer.NewSelect().Table("t").Column("id").Where("s = ?", in).Scan(ctx, &id)
				require.ErrorIs(t, eng.Classify(err), engine.ErrInvalidArgument)
				return
			}
			require.NoError(t, err, "bun replaces invalid UTF-8")
			require.NoError(t, pool.QueryRowContext(ctx, "SELECT s FROM t WHERE id = ?", 100+i).Scan(&got))
			assert.Equal(t, []rune(in), []rune(got), "bun stored other bytes than it was given")
			assert.NotEqual(t, in, got)
		})
	}
}
