package pierredb_test

import (
	"testing"

	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// TestConformance runs the conformance suite (every behaviour of every domain,
// on SQLite and, when PIERREDB_TEST_POSTGRES_URL is set, PostgreSQL): the same
// line a host puts in its own tests.
func TestConformance(t *testing.T) { storetest.Conformance(t) }
