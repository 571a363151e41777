package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

// BenchmarkCommit measures what a request counter's statement costs on this
// server, alone: a round trip, a prepared read, and a prepared upsert whose
// commit waits for the WAL flush or, with the dialect's RelaxedCommitOne, does
// not (figures in BENCHMARKS.md, "How requests are counted").
//
//	PIERREDB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//	  go test -run '^$' -bench BenchmarkCommit -benchtime 3000x -count 5 ./pierredb/postgres/
func BenchmarkCommit(b *testing.B) {
	u := serverURL(b)
	schema := uniqueName("bench_commit_")
	dropSchemaLater(b, schema)
	e := openURL(b, withParam(b, u, "search_path", schema))
	ctx := b.Context()
	for _, s := range []string{
		"CREATE SCHEMA " + pgx.Identifier{schema}.Sanitize(),
		"CREATE TABLE counted (k text PRIMARY KEY, n bigint NOT NULL)",
		"INSERT INTO counted VALUES ('a', 0)",
	} {
		if _, err := e.Writer.ExecContext(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	upsert := func(one string) string {
		return "INSERT INTO counted VALUES ($1, " + one + ") ON CONFLICT (k) DO UPDATE SET n = counted.n + 1 RETURNING n"
	}
	for _, bc := range []struct{ name, query string }{
		{"select-1", "SELECT 1 WHERE $1 <> ''"},
		{"read", "SELECT n FROM counted WHERE k = $1"},
		{"upsert-flush", upsert("1")},
		{"upsert-relaxed", upsert(e.RelaxedCommitOne)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st, err := e.Writer.DB.PrepareContext(ctx, bc.query)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			for b.Loop() {
				var n int64
				if err := st.QueryRowContext(ctx, "a").Scan(&n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
