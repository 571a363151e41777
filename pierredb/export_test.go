package pierredb

import "github.com/pierre-mcp/pierre/pierredb/internal/engine"

// EngineOf exposes the engine behind db to the external tests (schema parity,
// pragma read-back, cross-tenant inserts that bypass the API).
func EngineOf(db *Database) *engine.Engine { return db.eng }
