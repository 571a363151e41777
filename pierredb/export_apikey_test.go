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

// CountAPIKeyUsageSQL is the counter statement of API keys.
func CountAPIKeyUsageSQL() string { return apiKeyUsage.countSQL }

// APIKeyHashDomain is the keyed-hash domain of API keys.
const APIKeyHashDomain = hashDomainAPIKey
