package pierredb

// Hooks for the API key and A2A client tests and benchmarks (package
// pierredb_test).

// TraceWrites calls fn with every hand-written write db runs from now on (its
// text with '?' placeholders, and its arguments). Set it before using db from
// several goroutines.
func TraceWrites(db *Database, fn func(query string, args []any)) { db.writes.trace = fn }

// VerifyAPIKeySQL is the statement that finds an API key at verification, and
// CountAPIKeyUsageSQL the one that counts a request, both with '?'
// placeholders: the benchmarks' hand-written baseline runs the same text.
const (
	VerifyAPIKeySQL = verifyAPIKeySQL
)

// CountAPIKeyUsageSQL is the counter statement of API keys as db runs it on
// its own (outside a transaction).
func CountAPIKeyUsageSQL(db *Database) string { return db.countSQL[apiKeyUsage.table][0] }

// APIKeyHashDomain is the keyed-hash domain of API keys.
const APIKeyHashDomain = hashDomainAPIKey

// VerifyCountAPIKeySQL is the statement that looks up an API key and counts
// the request in one round trip, as db runs it on its own; "" where the
// engine cannot.
func VerifyCountAPIKeySQL(db *Database) string { return db.verifyCountSQL[0] }

// TallyWindows is how many rate-limit windows db keeps in memory.
func TallyWindows(db *Database) int {
	if db.tally == nil {
		return 0
	}
	db.tally.mu.Lock()
	defer db.tally.mu.Unlock()
	return len(db.tally.windows)
}
