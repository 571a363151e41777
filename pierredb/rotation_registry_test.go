package pierredb_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// notSealed are the binary columns of the schema that hold no field envelope:
// the keyring's own wrapped keys (under the master key, rotated by
// RotateMasterKey).
var notSealed = []string{"keyring_keys.wrapped_key"}

// Every BLOB (SQLite) or BYTEA (PostgreSQL) column of pierre's schema is in
// the registry of sealed columns that data key rotation reads, so a domain
// that adds an encrypted column and forgets to declare it fails here instead
// of leaving its values under a key that Retire then destroys. Every
// registered column exists on both engines, with its key columns, the first
// of which is the table's primary key (it orders the batches).
func TestSealedColumnsCoverSchema(t *testing.T) {
	registered := map[string]pierredb.SealedColumnInfo{}
	for _, c := range pierredb.SealedColumns() {
		name := c.Table + "." + c.Column
		require.NotContains(t, registered, name, "registered twice")
		registered[name] = c
	}
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		eng := pierredb.EngineOf(e.Open(t))
		binary, columns, pks := schemaColumns(t, t.Context(), eng)
		require.NotEmpty(t, binary)
		for _, col := range binary {
			if slices.Contains(notSealed, col) {
				continue
			}
			assert.Contains(t, registered, col, "binary column %s is missing from the sealed-column registry (registerSealed)", col)
		}
		for name, c := range registered {
			assert.Contains(t, binary, name, "registered column %s is not a binary column of the schema", name)
			for _, k := range c.Keys {
				assert.Contains(t, columns, c.Table+"."+k, "key column of %s", name)
			}
			if assert.NotEmpty(t, c.Keys, name) {
				assert.Equal(t, pks[c.Table], c.Keys[0], "the first key of %s is its table's primary key", name)
			}
		}
	})
}

// schemaColumns returns the binary columns, all columns ("table.column") and
// each table's single-column primary key.
func schemaColumns(t *testing.T, ctx context.Context, e *engine.Engine) (binary, all []string, pks map[string]string) {
	t.Helper()
	type column struct {
		Table string `bun:"tbl"`
		Name  string `bun:"col"`
		Type  string `bun:"typ"`
		PK    int    `bun:"pk"`
	}
	var cols []column
	var err error
	if e.Backend == pierredb.SQLite {
		err = e.Reader.NewRaw(`SELECT m.name AS tbl, p.name AS col, p.type AS typ, p.pk AS pk
			FROM sqlite_master m JOIN pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`).Scan(ctx, &cols)
	} else {
		err = e.Reader.NewRaw(`SELECT c.table_name AS tbl, c.column_name AS col, c.data_type AS typ,
			CASE WHEN EXISTS (SELECT 1 FROM information_schema.table_constraints tc
				JOIN information_schema.key_column_usage k ON k.constraint_name = tc.constraint_name
					AND k.table_schema = tc.table_schema AND k.table_name = tc.table_name
				WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = c.table_schema
					AND tc.table_name = c.table_name AND k.column_name = c.column_name) THEN 1 ELSE 0 END AS pk
			FROM information_schema.columns c
			JOIN information_schema.tables tb ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name
			WHERE c.table_schema = current_schema() AND tb.table_type = 'BASE TABLE'`).Scan(ctx, &cols)
	}
	require.NoError(t, err)
	pks = map[string]string{}
	pkCount := map[string]int{}
	for _, c := range cols {
		name := c.Table + "." + c.Name
		all = append(all, name)
		if typ := strings.ToLower(c.Type); typ == "blob" || typ == "bytea" {
			binary = append(binary, name)
		}
		if c.PK > 0 {
			pks[c.Table] = c.Name
			pkCount[c.Table]++
		}
	}
	for tbl, n := range pkCount {
		if n > 1 {
			pks[tbl] = "" // a composite key: no single primary key column
		}
	}
	return binary, all, pks
}
