package pierredb_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/sqlite"
)

// A host builds the connector itself when it wants settings a URL does not
// carry, or (with pierredb/postgres.FromDB) a pool it already has.
func ExampleOpenConnector() {
	dir, err := os.MkdirTemp("", "pierre-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	key, err := keyring.Generate()
	if err != nil {
		panic(err)
	}
	c, err := sqlite.NewConnector(sqlite.Config{Path: filepath.Join(dir, "users.db"), ReadConns: 4})
	if err != nil {
		panic(err)
	}
	db, err := pierredb.OpenConnector(context.Background(), c, key)
	if err != nil {
		panic(err)
	}
	defer db.Close()
	fmt.Println(db.Backend(), db.Stats().Read.MaxOpenConnections)
	// Output:
	// sqlite 4
}
