package pierredb

import (
	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// EngineOf exposes the engine behind db to the external tests (schema parity,
// pragma read-back, plans).
func EngineOf(db *Database) *engine.Engine { return db.eng }

// TraceReads calls fn with every hand-written read db runs from now on (its
// text with '?' placeholders, and its arguments). Set it before using db from
// several goroutines.
func TraceReads(db *Database, fn func(query string, args []any)) { db.reads.trace = fn }

// Rebind turns a traced statement's placeholders into the engine's.
func Rebind(db *Database, query string) string { return db.eng.Rebind(query) }

// ThrottleSize is how many user ids the last_active throttle holds.
func ThrottleSize(db *Database) int { return db.lastActive.size() }

// PasswordFloorCost is the cost every login of db is padded to (see
// password.Cost).
func PasswordFloorCost(db *Database) uint64 { return db.hasher.FloorCost() }

// HookQueries attaches h to every statement db runs through bun. Call it before
// db is used from several goroutines.
func HookQueries(db *Database, h bun.QueryHook) {
	same := db.eng.Reader == db.eng.Writer
	db.eng.Writer = db.eng.Writer.WithQueryHook(h)
	if same {
		db.eng.Reader = db.eng.Writer
	} else {
		db.eng.Reader = db.eng.Reader.WithQueryHook(h)
	}
}
