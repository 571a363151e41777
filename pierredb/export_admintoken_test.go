package pierredb

import (
	"context"
)

// AdminVerifySQL is the statement Verify reads a token's row with, for the
// hand-written baseline of the admin token benchmark.
const AdminVerifySQL = adminVerifySQL

// AdminTokenHashDomain is the keyring domain of admin_tokens.token_hash.
const AdminTokenHashDomain = adminTokenHashDomain

// ParseAdminToken runs the first step of Verify alone: shape, algorithm, kid,
// signature and claims. It returns the token's id.
func ParseAdminToken(ctx context.Context, db *Database, token string) (string, error) {
	c, _, err := db.adminState().parseAdminToken(ctx, db, token)
	if err != nil {
		return "", err
	}
	return c.Subject, nil
}

// LookupAdminToken runs Verify's query alone and returns the stored token hash.
func LookupAdminToken(ctx context.Context, db *Database, id string) (string, error) {
	r, err := db.lookupAdminToken(ctx, id)
	return r.tokenHash, err
}

// LooksSecret, RedactSecrets and AuditText are the free-text checks of admin
// tokens and their usage records.
var (
	LooksSecret   = looksSecret
	RedactSecrets = redactSecrets
	AuditText     = auditText
)
