package pierredb

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/schema"
)

// redact keeps a statement's shape, and nothing of its values, by each
// engine's lexical rules.
func TestRedactSQL(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		sqlite, pg  string // pg "": as sqlite; sqlite "": PostgreSQL only; pg "-": SQLite only
	}{
		{name: "prepared", query: "SELECT id FROM users WHERE email = ? AND tenant_id = ?",
			sqlite: "SELECT id FROM users WHERE email = ? AND tenant_id = ?"},
		{name: "bun's identifiers and values", query: `INSERT INTO "tenant_users" ("tenant_id", "role") VALUES ('t-1', 'owner') RETURNING "joined_at"`,
			sqlite: `INSERT INTO "tenant_users" ("tenant_id", "role") VALUES ('…', '…') RETURNING "joined_at"`},
		{name: "numbers", query: "SELECT t1.a2 FROM t1 WHERE n > 42 AND f < 1.5e-3 AND h = 0x1F AND x = .5 LIMIT 51",
			sqlite: "SELECT t1.a2 FROM t1 WHERE n > … AND f < … AND h = … AND x = … LIMIT …"},
		{name: "doubled quote", query: "SELECT 'it''s', 'b'",
			sqlite: "SELECT '…', '…'"},
		{name: "apostrophe in a line comment", query: "-- the member's token\nINSERT INTO t (tok) VALUES ('S3CRET')",
			sqlite: "--…\nINSERT INTO t (tok) VALUES ('…')"},
		{name: "line comment ends at CR on PostgreSQL only", query: "-- a\rSELECT 'S3CRET'\nSELECT 'x'",
			sqlite: "--…\nSELECT '…'", pg: "--…\rSELECT '…'\nSELECT '…'"},
		{name: "apostrophe in a quoted identifier", query: `SELECT "o'brien"."id" FROM t AS "o'brien" WHERE tok = 'S3CRET'`,
			sqlite: `SELECT "o'brien"."id" FROM t AS "o'brien" WHERE tok = '…'`},
		{name: "doubled quote in an identifier", query: `SELECT "a""'b" FROM t WHERE tok = 'S3CRET'`,
			sqlite: `SELECT "a""'b" FROM t WHERE tok = '…'`},
		{name: "block comment", query: "/* it's */ SELECT 'S3CRET'",
			sqlite: "/*…*/ SELECT '…'"},
		{name: "nested block comment", query: "/* a /* it's */ b's */ SELECT 'S3CRET'",
			pg: "/*…*/ SELECT '…'"},
		{name: "escape string", query: `SELECT E'it\'s', 'S3CRET'`,
			pg: `SELECT E'…', '…'`},
		{name: "escape string continued after a newline", query: "SELECT E'x'\n'\\' S3CRET '",
			pg: "SELECT E'…'"},
		{name: "escape string continued after a comment line", query: "SELECT E'x'\n-- c\n  '\\' S3CRET ', 'y'",
			pg: "SELECT E'…', '…'"},
		{name: "backslash in a plain string", query: `SELECT 'a\', 'S3CRET'`,
			sqlite: `SELECT '…', '…'`},
		{name: "dollar quote", query: "SELECT $$it's$$, $tag$ $$ ' $tag$, 'S3CRET', $1",
			pg: "SELECT $$…$$, $tag$…$tag$, '…', $…"},
		{name: "blob", query: "SELECT X'0aFF', x'00', '\\x0102'",
			sqlite: "SELECT X'…', x'…', '…'"},
		{name: "identifier ending in a prefix letter", query: "SELECT tex'S3CRET'",
			sqlite: "SELECT tex'…'"},
		{name: "bracket and backtick identifiers", query: "SELECT [o'brien], `o'b``x` FROM t WHERE tok = 'S3CRET'",
			sqlite: "SELECT [o'brien], `o'b``x` FROM t WHERE tok = '…'", pg: "-"},
		{name: "unterminated string", query: "SELECT 'S3CRET",
			sqlite: "SELECT '…'"},
		{name: "unterminated identifier", query: `SELECT "S3CRET`,
			sqlite: `SELECT "…`},
	} {
		for _, pg := range []bool{false, true} {
			want := tc.sqlite
			if pg && tc.pg != "" {
				want = tc.pg
			}
			if want == "" || want == "-" {
				continue // not a statement this engine reads
			}
			got := redact(tc.query, pg)
			assert.Equal(t, want, got, "%s (pg %v)", tc.name, pg)
			assert.NotContains(t, got, "S3CRET", "%s (pg %v)", tc.name, pg)
		}
	}
}

// redactError hides what the engines quote in their messages.
func TestRedactError(t *testing.T) {
	for in, want := range map[string]string{
		`ERROR: invalid input syntax for type uuid: "S3CRET" (SQLSTATE 22P02)`:                     `ERROR: invalid input syntax for type uuid: "…" (SQLSTATE 22P02)`,
		`unrecognized token: "'S3CRET"`:                                                            `unrecognized token: "…"`,
		`UNIQUE constraint failed: users.email`:                                                    `UNIQUE constraint failed: users.email`,
		`ERROR: invalid input syntax for type integer: "x" S3CRET "y" (SQLSTATE 22P02)`:            `ERROR: invalid input syntax for type integer: "…" (SQLSTATE 22P02)`,
		`near "'a": syntax error; value 'S3CRET`:                                                   `near "…"`,
		`ERROR: duplicate key value violates unique constraint "users_email_key" (SQLSTATE 23505)`: `ERROR: duplicate key value violates unique constraint "…" (SQLSTATE 23505)`,
	} {
		assert.Equal(t, want, redactError(in))
	}
}

// FuzzRedact: whatever text surrounds a value that bun formats into a
// statement, the redacted statement does not depend on the value, so nothing
// of it reaches the log. The text before the value must leave it at the
// start of a token (not inside a literal, comment or quoted identifier, where
// the engines would not read it as a value either).
//
//	go test -run '^$' -fuzz FuzzRedact ./pierredb/
func FuzzRedact(f *testing.F) {
	for _, seed := range []struct{ prefix, suffix string }{
		{"-- store the member's provider token\nINSERT INTO host_tokens (id, tok) VALUES (1,", ")"},
		{`SELECT "id" FROM host_tokens AS "o'brien" WHERE (tok =`, ")"},
		{"/* it's */ UPDATE t SET tok =", " WHERE id = 1"},
		{"/* a /* it's */ b's */ UPDATE t SET tok =", ""},
		{"INSERT INTO t VALUES ($$it's$$ ||", ")"},
		{`INSERT INTO t VALUES (E'it\'s' ||`, ")"},
		{"SELECT [o'brien], `o'b` FROM t WHERE tok =", ""},
		{"-- a\rSELECT", "\n, 'x'"},
		{"SELECT E", "'"},
		{"SELECT X", ""},
		{"SELECT 1 -", ""},
		{"SELECT", "e+5"},
	} {
		f.Add(seed.prefix, seed.suffix, "HOSTSECRET-abc123", "it's \\' $$ -- /*", []byte("\x00'\\"), uint64(42), true)
		f.Add(seed.prefix, seed.suffix, "HOSTSECRET-abc123", "it's \\' $$ -- /*", []byte("\x00'\\"), uint64(42), false)
	}
	gens := map[bool]schema.QueryGen{
		false: schema.NewQueryGen(sqlitedialect.New()),
		true:  schema.NewQueryGen(pgdialect.New()),
	}
	f.Fuzz(func(t *testing.T, prefix, suffix, v1, v2 string, blob []byte, n uint64, pg bool) {
		// bun reads ? and \? in the text as placeholders; keep one only.
		clean := strings.NewReplacer("?", "", "\\", "")
		prefix, suffix = clean.Replace(prefix), clean.Replace(suffix)
		var b strings.Builder
		if scanSQL(&b, prefix+" ", pg) {
			t.Skip("the value would be inside a literal, comment or quoted identifier")
		}
		gen := gens[pg]
		query := prefix + " ?" + suffix
		// A NUL is refused by bun with an error in place of the value.
		v1, v2 = strings.ReplaceAll(v1, "\x00", ""), strings.ReplaceAll(v2, "\x00", "")
		// Each kind of value against others of its kind: strings, blobs
		// (X'…' on SQLite) and numbers are formatted differently.
		for _, kind := range [][]any{
			{v1, v2, "", "HOSTSECRET-abc123"},
			{append([]byte{}, blob...), []byte{}, []byte("HOSTSECRET-abc123")},
			{n, n/3 + 7, uint64(0)},
		} {
			want := redact(gen.FormatQuery(query, kind[0]), pg)
			for _, other := range kind[1:] {
				if got := redact(gen.FormatQuery(query, other), pg); got != want {
					t.Fatalf("the redacted statement depends on the value:\n%q (%q)\n%q (%q)", want, kind[0], got, other)
				}
			}
		}
	})
}
