package pierredb

import "github.com/pierre-mcp/pierre/keyring"

// SealedColumnInfo describes one entry of the registry of sealed columns.
type SealedColumnInfo struct {
	Table, Column string
	Keys          []string
}

// SealedColumns lists the registry of sealed columns that rotation reads.
func SealedColumns() []SealedColumnInfo {
	out := make([]SealedColumnInfo, len(sealedColumns))
	for i, c := range sealedColumns {
		out[i] = SealedColumnInfo{Table: c.table, Column: c.column, Keys: append([]string(nil), c.keys...)}
	}
	return out
}

// OAuthTokenContext is the envelope context of a user's token column, for
// benchmarks that seed sealed rows with raw inserts.
func OAuthTokenContext(tenantID, userID, provider, column string) keyring.Context {
	return oauthTokenContext(tenantID, userID, provider, column)
}

// TraceOAuthWrites calls fn with every hand-written write db runs from now on
// (its text with '?' placeholders, and its arguments). Set it before using db
// from several goroutines.
func TraceOAuthWrites(db *Database, fn func(query string, args []any)) { db.writes.trace = fn }
