package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

func TestClassify(t *testing.T) {
	pg := func(code, msg, detail string) error {
		return fmt.Errorf("exec: %w", &pgconn.PgError{Severity: "ERROR", Code: code, Message: msg, Detail: detail})
	}
	for _, tc := range []struct {
		name     string
		err      error
		sentinel error // nil: no sentinel
		columns  []string
		hidden   string // must not be in the message
		shown    string // must be in the message
	}{
		{name: "unique", err: pg("23505", `duplicate key value violates unique constraint "users_email_key"`, "Key (email)=(alice@example.com) already exists."),
			sentinel: engine.ErrAlreadyExists, columns: []string{"email"}, hidden: "alice@example.com", shown: "users_email_key"},
		{name: "unique two columns", err: pg("23505", "duplicate key", "Key (tenant_id, slug)=(t1, secret-slug) already exists."),
			sentinel: engine.ErrAlreadyExists, columns: []string{"tenant_id", "slug"}, hidden: "secret-slug"},
		{name: "unique expression", err: pg("23505", "duplicate key", "Key (lower(email))=(x) already exists."),
			sentinel: engine.ErrAlreadyExists, columns: nil},
		{name: "unique translated", err: pg("23505", "doppelter Schlüsselwert", "Schlüssel »(email)=(x)« existiert bereits."),
			sentinel: engine.ErrAlreadyExists, columns: nil},
		{name: "foreign key", err: pg("23503", `insert or update on table "a" violates foreign key constraint "a_b_fkey"`, "Key (b)=(42) is not present."),
			sentinel: engine.ErrConflict, hidden: "42"},
		{name: "serialization", err: pg("40001", "could not serialize access", ""), sentinel: engine.ErrConflict},
		{name: "deadlock", err: pg("40P01", "deadlock detected", ""), sentinel: engine.ErrConflict},
		{name: "check", err: pg("23514", `new row for relation "users" violates check constraint "users_tier_check"`, "Failing row contains (x, secret)."),
			sentinel: engine.ErrInvalidArgument, hidden: "secret"},
		{name: "not null", err: pg("23502", `null value in column "email" of relation "users" violates not-null constraint`, ""), sentinel: engine.ErrInvalidArgument},
		{name: "too long", err: pg("22001", "value too long for type character varying(3)", ""), sentinel: engine.ErrInvalidArgument, shown: "value too long"},
		{name: "bad text", err: pg("22P02", `invalid input syntax for type uuid: "my-secret"`, ""), sentinel: engine.ErrInvalidArgument, hidden: "my-secret", shown: "type uuid"},
		{name: "NUL byte", err: pg("22021", `invalid byte sequence for encoding "UTF8": 0x00`, ""), sentinel: engine.ErrInvalidArgument, hidden: "0x00", shown: "UTF8"},
		{name: "date out of range", err: pg("22008", `date/time field value out of range: "2024-13-45"`, ""), sentinel: engine.ErrInvalidArgument, hidden: "2024-13-45"},
		{name: "zone out of range", err: pg("22009", `time zone displacement out of range: "+99"`, ""), sentinel: engine.ErrInvalidArgument, hidden: "+99"},
		{name: "other data exception", err: pg("22012", `division by zero`, ""), sentinel: nil, shown: "division by zero"},
		{name: "busy", err: pg("55P03", "could not obtain lock", ""), sentinel: engine.ErrBusy},
		{name: "read only", err: pg("25006", "cannot execute INSERT in a read-only transaction", ""), sentinel: engine.ErrReadOnly},
		{name: "no rows", err: sql.ErrNoRows, sentinel: engine.ErrNotFound},
		{name: "syntax", err: pg("42601", "syntax error", ""), sentinel: nil},
		{name: "plain", err: errors.New("boom"), sentinel: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			require.Error(t, got)
			if tc.sentinel != nil {
				assert.ErrorIs(t, got, tc.sentinel)
			}
			for _, s := range []error{engine.ErrAlreadyExists, engine.ErrConflict, engine.ErrInvalidArgument, engine.ErrBusy, engine.ErrReadOnly, engine.ErrNotFound} {
				if s != tc.sentinel {
					assert.NotErrorIs(t, got, s)
				}
			}
			assert.Equal(t, tc.columns, engine.UniqueColumns(got))
			var pgErr *pgconn.PgError
			if errors.As(tc.err, &pgErr) {
				assert.ErrorAs(t, got, &pgErr, "the driver error stays in the chain")
				assert.Contains(t, got.Error(), pgErr.Code)
			}
			if tc.hidden != "" {
				assert.NotContains(t, got.Error(), tc.hidden)
			}
			if tc.shown != "" {
				assert.Contains(t, got.Error(), tc.shown)
			}
		})
	}
	assert.NoError(t, classify(nil))
	assert.Equal(t, context.Canceled, classify(context.Canceled))
}

func TestUniqueColumns(t *testing.T) {
	for _, tc := range []struct {
		detail string
		want   []string
	}{
		{"Key (email)=(a@b.c) already exists.", []string{"email"}},
		{"Key (tenant_id, user_id)=(a, b) already exists.", []string{"tenant_id", "user_id"}},
		{`Key ("Weird Col", b)=(x, y) already exists.`, []string{"Weird Col", "b"}},
		{`Key ("a""b")=(x) already exists.`, []string{`a"b`}},
		{`Key (email)=(a)=(b), c) already exists.`, []string{"email"}}, // a value that looks like syntax
		{"Key (lower(email))=(x) already exists.", nil},
		{"Key (email::text)=(x) already exists.", nil},
		{`Key ("unterminated=(x)`, nil},
		{"Key ()=() already exists.", nil},
		{"", nil},
		{"something else", nil},
	} {
		assert.Equal(t, tc.want, uniqueColumns(tc.detail), tc.detail)
	}
}

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2"},
		{"?", "$1"},
		{"??", "$1$2"},
		{"é = ? \xff", "é = $1 \xff"}, // bytes other than '?' are kept, even invalid UTF-8
		{"a IN (?,?,?,?,?,?,?,?,?,?,?)", "a IN ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"},
	} {
		assert.Equal(t, tc.want, rebind(tc.in), tc.in)
	}
}

func TestLockKey(t *testing.T) {
	assert.NotEqual(t, lockKey("a", "admins"), lockKey("b", "admins"), "schemas never share a lock")
	assert.NotEqual(t, lockKey("a", "admins"), lockKey("a", "owners"))
	assert.Equal(t, lockKey("a", "admins"), lockKey("a", "admins"))
	assert.NotEqual(t, lockKey("a", "migrations"), migrationLockKey("a"))
}
