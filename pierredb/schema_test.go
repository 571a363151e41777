package pierredb_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// tableShape is what schema parity compares: column names with nullability, the
// primary key, unique constraints (by columns) and explicitly created indexes (by
// name). Types differ by design (TEXT vs TIMESTAMPTZ, INTEGER vs BOOLEAN).
type tableShape struct {
	Columns    map[string]string // name -> "null" | "not null"
	PrimaryKey string
	Unique     []string
	Indexes    []string
}

func TestSchemaParity(t *testing.T) {
	shapes := map[pierredb.Backend]map[string]tableShape{}
	for _, e := range storetest.Engines() {
		t.Run(string(e.Backend), func(t *testing.T) {
			e.Require(t)
			db := e.Open(t)
			shape, err := introspect(t.Context(), pierredb.EngineOf(db))
			require.NoError(t, err)
			require.Contains(t, shape, "users")
			shapes[e.Backend] = shape
		})
	}
	lite, pg := shapes[pierredb.SQLite], shapes[pierredb.Postgres]
	if lite == nil || pg == nil {
		t.Skip("schema parity needs both engines")
	}
	assert.Equal(t, sortedKeys(lite), sortedKeys(pg), "tables differ")
	for name, ls := range lite {
		if ps, ok := pg[name]; ok {
			assert.Equal(t, ls, ps, "table %s differs between sqlite (expected) and postgres (actual)", name)
		}
	}
}

// TestSchemaParityDetectsDrift proves the comparison is not vacuous: a column and
// an index added on one engine only must show up as a difference.
func TestSchemaParityDetectsDrift(t *testing.T) {
	e := storetest.Engines()[0]
	a, b := e.Open(t), e.Open(t)
	_, err := pierredb.EngineOf(b).Writer.ExecContext(t.Context(), "ALTER TABLE users ADD COLUMN nickname TEXT")
	require.NoError(t, err)
	_, err = pierredb.EngineOf(b).Writer.ExecContext(t.Context(), "CREATE INDEX idx_users_nickname ON users (nickname)")
	require.NoError(t, err)
	sa, err := introspect(t.Context(), pierredb.EngineOf(a))
	require.NoError(t, err)
	sb, err := introspect(t.Context(), pierredb.EngineOf(b))
	require.NoError(t, err)
	assert.NotEqual(t, sa["users"], sb["users"])
	assert.Contains(t, sb["users"].Columns, "nickname")
	assert.Contains(t, sb["users"].Indexes, "idx_users_nickname")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func introspect(ctx context.Context, e *engine.Engine) (map[string]tableShape, error) {
	if e.Backend == pierredb.SQLite {
		return introspectSQLite(ctx, e)
	}
	return introspectPostgres(ctx, e)
}

func introspectSQLite(ctx context.Context, e *engine.Engine) (map[string]tableShape, error) {
	db := e.Reader
	var tables []string
	if err := db.NewRaw("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").Scan(ctx, &tables); err != nil {
		return nil, err
	}
	out := map[string]tableShape{}
	for _, tbl := range tables {
		shape := tableShape{Columns: map[string]string{}}
		var cols []struct {
			Cid     int     `bun:"cid"`
			Name    string  `bun:"name"`
			Type    string  `bun:"type"`
			NotNull int     `bun:"notnull"`
			Dflt    *string `bun:"dflt_value"`
			PK      int     `bun:"pk"`
		}
		if err := db.NewRaw(fmt.Sprintf("PRAGMA table_info(%q)", tbl)).Scan(ctx, &cols); err != nil {
			return nil, err
		}
		pk := map[int]string{}
		for _, c := range cols {
			// An INTEGER PRIMARY KEY is the rowid and can never be NULL.
			notNull := c.NotNull == 1 || (c.PK > 0 && strings.EqualFold(c.Type, "INTEGER"))
			shape.Columns[c.Name] = nullability(notNull)
			if c.PK > 0 {
				pk[c.PK] = c.Name
			}
		}
		for i := 1; i <= len(pk); i++ {
			shape.PrimaryKey += pk[i] + ","
		}
		shape.PrimaryKey = strings.TrimSuffix(shape.PrimaryKey, ",")
		var idx []struct {
			Seq     int    `bun:"seq"`
			Name    string `bun:"name"`
			Unique  int    `bun:"unique"`
			Origin  string `bun:"origin"`
			Partial int    `bun:"partial"`
		}
		if err := db.NewRaw(fmt.Sprintf("PRAGMA index_list(%q)", tbl)).Scan(ctx, &idx); err != nil {
			return nil, err
		}
		for _, ix := range idx {
			if ix.Origin == "pk" {
				continue
			}
			var cols []string
			if err := db.NewRaw(fmt.Sprintf("SELECT name FROM pragma_index_info(%s) ORDER BY seqno", quote(ix.Name))).Scan(ctx, &cols); err != nil {
				return nil, err
			}
			if ix.Unique == 1 {
				shape.Unique = append(shape.Unique, uniqueKey(cols, ix.Partial == 1))
			}
			if ix.Origin == "c" {
				shape.Indexes = append(shape.Indexes, ix.Name)
			}
		}
		slices.Sort(shape.Unique)
		slices.Sort(shape.Indexes)
		out[tbl] = shape
	}
	return out, nil
}

func introspectPostgres(ctx context.Context, e *engine.Engine) (map[string]tableShape, error) {
	db := e.Reader
	var tables []string
	if err := db.NewRaw(`SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`).Scan(ctx, &tables); err != nil {
		return nil, err
	}
	out := map[string]tableShape{}
	for _, tbl := range tables {
		shape := tableShape{Columns: map[string]string{}}
		var cols []struct {
			Name       string `bun:"column_name"`
			IsNullable string `bun:"is_nullable"`
		}
		if err := db.NewRaw(`SELECT column_name, is_nullable FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = ?`, tbl).Scan(ctx, &cols); err != nil {
			return nil, err
		}
		for _, c := range cols {
			shape.Columns[c.Name] = nullability(c.IsNullable == "NO")
		}
		var idx []struct {
			Name       string `bun:"name"`
			Unique     bool   `bun:"uniq"`
			Primary    bool   `bun:"prim"`
			Partial    bool   `bun:"partial"`
			Constraint bool   `bun:"is_constraint"`
			Cols       string `bun:"cols"`
		}
		err := db.NewRaw(`
			SELECT i.relname AS name, x.indisunique AS uniq, x.indisprimary AS prim,
			       x.indpred IS NOT NULL AS partial,
			       EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) AS is_constraint,
			       (SELECT string_agg(a.attname, ',' ORDER BY k.ord)
			          FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
			          JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum) AS cols
			FROM pg_index x
			JOIN pg_class i ON i.oid = x.indexrelid
			JOIN pg_class t ON t.oid = x.indrelid
			WHERE t.relname = ? AND t.relnamespace = current_schema()::regnamespace`, tbl).Scan(ctx, &idx)
		if err != nil {
			return nil, err
		}
		for _, ix := range idx {
			cols := strings.Split(ix.Cols, ",")
			switch {
			case ix.Primary:
				shape.PrimaryKey = ix.Cols
				continue
			case ix.Unique:
				shape.Unique = append(shape.Unique, uniqueKey(cols, ix.Partial))
			}
			if !ix.Constraint {
				shape.Indexes = append(shape.Indexes, ix.Name)
			}
		}
		slices.Sort(shape.Unique)
		slices.Sort(shape.Indexes)
		out[tbl] = shape
	}
	return out, nil
}

func nullability(notNull bool) string {
	if notNull {
		return "not null"
	}
	return "null"
}

func uniqueKey(cols []string, partial bool) string {
	k := "(" + strings.Join(cols, ",") + ")"
	if partial {
		k += " partial"
	}
	return k
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
