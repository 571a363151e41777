package sqlite_test

import (
	"fmt"
	"time"

	"github.com/pierre-mcp/pierre/pierredb/sqlite"
)

func ExampleParseURL() {
	cfg, err := sqlite.ParseURL("sqlite:./data/users.db?mode=rw&busy_timeout=250")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Path, cfg.Mode, cfg.BusyTimeout)

	_, err = sqlite.ParseURL("sqlite:./data/users.db?_fk=0")
	fmt.Println(err)
	// Output:
	// ./data/users.db rw 250ms
	// invalid database URL: sqlite _fk="0": foreign keys are always on in pierre and cannot be disabled
}

func ExampleNewConnector() {
	c, err := sqlite.NewConnector(sqlite.Config{Path: "/var/lib/pierre/users.db", BusyTimeout: 2 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Pass c to pierredb.OpenConnector(ctx, c, key).
	cfg := c.Config()
	fmt.Println(c.Dialect(), cfg.Path, cfg.Mode, cfg.BusyTimeout)

	_, err = sqlite.NewConnector(sqlite.Config{Memory: true, Mode: sqlite.ModeReadOnly})
	fmt.Println(err)
	// Output:
	// sqlite /var/lib/pierre/users.db rwc 2s
	// invalid argument: an in-memory sqlite database cannot be read-only
}
