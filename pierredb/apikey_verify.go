package pierredb

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/pierre-mcp/pierre/pierredb/internal/credential"
)

// APIKeyPrincipal is who a verified API key speaks for.
type APIKeyPrincipal struct {
	KeyID   string
	KeyName string
	UserID  string
	// Email is the key's user's email.
	Email string
	// Tenant is the scope of the tenant that issued the key: the only tenant
	// the key reaches.
	Tenant    *TenantScope
	Tier      Tier
	RateLimit RateLimit
	// Remaining is how many requests the current window still allows after this
	// one, and Reset is when the window ends. Both are zero when the key is
	// unlimited, and after Check, which does not count.
	Remaining int64
	Reset     time.Time
	// ExpiresAt is when the key stops working; zero for never.
	ExpiresAt time.Time
}

// APIKeyVerifier verifies API keys for every tenant, from Database.APIKeys.
type APIKeyVerifier struct{ db *Database }

// APIKeys returns the handle that verifies API keys (a tenant's keys are
// managed through TenantScope.APIKeys).
func (db *Database) APIKeys() APIKeyVerifier { return APIKeyVerifier{db: db} }

// verifyAPIKeySQL finds a key by its lookup prefix, with what decides whether it
// may be used: its user's status and its tenant's. The membership needs no
// check: a key cannot outlive it (its foreign key cascades).
const verifyAPIKeySQL = `SELECT k.id, k.tenant_id, k.user_id, k.name, k.key_hash, k.tier, k.rate_limit_requests, k.rate_limit_period,
  k.is_active, k.expires_at, k.revoked_at, u.email, u.user_status, u.is_active, t.is_active
FROM api_keys k JOIN users u ON u.id = k.user_id JOIN tenants t ON t.id = k.tenant_id
WHERE k.key_prefix = ?`

// Verify checks an API key and counts one request against its quota, and
// returns who the key speaks for. The errors, each wrapped with the operation:
//
//   - ErrInvalidCredential: the key is malformed (refused without a query), or
//     unknown, or wrong; which of these is not said, and an unknown key costs
//     what a wrong one does (a keyed hash is computed either way).
//   - ErrRevoked: the key was revoked or deactivated (from the very next call
//     on, in every process: nothing is cached).
//   - ErrExpired: the key's expiry has passed.
//   - ErrUserPending, ErrUserSuspended: the key's user may not act now.
//   - ErrTenantInactive: the key's tenant was deactivated.
//   - ErrRateLimited, as a *RateLimitError that says when the window resets:
//     the quota of the current window is used up. The request is not counted.
//
// A key of a user who left its tenant no longer exists (ErrInvalidCredential).
// Counting is one statement that counts and refuses in one step, so it is exact
// under any concurrency, across processes.
func (v APIKeyVerifier) Verify(ctx context.Context, plaintext string) (_ APIKeyPrincipal, err error) {
	defer v.db.wrap(&err, "verify API key")
	return v.verify(ctx, plaintext, true)
}

// Check verifies an API key as Verify does, without counting the request, for a
// host that counts requests elsewhere: it never answers ErrRateLimited, and the
// principal's Remaining and Reset are zero. It records the key's last use.
func (v APIKeyVerifier) Check(ctx context.Context, plaintext string) (_ APIKeyPrincipal, err error) {
	defer v.db.wrap(&err, "check API key")
	return v.verify(ctx, plaintext, false)
}

// verifiedKey is what verifyAPIKeySQL reads.
type verifiedKey struct {
	id, tenantID, userID, name, hash, tier, period, email, userStatus string
	limit                                                             sql.NullInt64
	active, userActive, tenantActive                                  bool
	expires, revoked                                                  dbTime
}

func (v APIKeyVerifier) verify(ctx context.Context, plaintext string, count bool) (APIKeyPrincipal, error) {
	db := v.db
	_, lookup, err := credential.Parse(plaintext, apiKeyKindLive, apiKeyKindTrial)
	if err != nil {
		return APIKeyPrincipal{}, ErrInvalidCredential
	}
	row, err := db.lookupCredential(ctx, count, verifyAPIKeySQL, lookup)
	if err != nil {
		return APIKeyPrincipal{}, err
	}
	var k verifiedKey
	err = row.Scan(&k.id, &k.tenantID, &k.userID, &k.name, &k.hash, &k.tier, &k.limit, &k.period,
		&k.active, &k.expires, &k.revoked, &k.email, &k.userStatus, &k.userActive, &k.tenantActive)
	found := err == nil
	if err != nil && !isNoRows(err) {
		return APIKeyPrincipal{}, err
	}
	if !db.matchSecret(ctx, hashDomainAPIKey, plaintext, k.hash, found, "API key", k.id) {
		return APIKeyPrincipal{}, ErrInvalidCredential
	}
	now := db.now()
	switch {
	case !k.revoked.IsZero():
		return APIKeyPrincipal{}, fmt.Errorf("%w: the key was revoked; create a new key", ErrRevoked)
	case !k.active:
		return APIKeyPrincipal{}, fmt.Errorf("%w: the key is deactivated; reactivate it or create a new key", ErrRevoked)
	case !k.expires.IsZero() && !now.Before(k.expires.Time):
		return APIKeyPrincipal{}, fmt.Errorf("%w: the key expired at %s; create a new key", ErrExpired, k.expires.UTC().Format(time.RFC3339))
	}
	if err := holderError(k.userStatus, k.userActive, k.tenantActive); err != nil {
		return APIKeyPrincipal{}, err
	}
	p := APIKeyPrincipal{
		KeyID: k.id, KeyName: k.name, UserID: k.userID, Email: k.email, Tenant: &TenantScope{db: db, id: k.tenantID},
		Tier: Tier(k.tier), RateLimit: storedRateLimit(k.limit, k.period), ExpiresAt: k.expires.Time,
	}
	if count {
		start, end := p.RateLimit.Period.Window(now)
		limit := int64(unlimited)
		if !p.RateLimit.Unlimited {
			limit = p.RateLimit.Requests
		}
		n, ok, err := apiKeyUsage.count(ctx, db, k.tenantID, k.id, start, limit)
		if err != nil {
			return APIKeyPrincipal{}, err
		}
		if !ok {
			return APIKeyPrincipal{}, &RateLimitError{Limit: limit, Reset: end}
		}
		if !p.RateLimit.Unlimited {
			p.Remaining, p.Reset = limit-n, end
		}
	}
	apiKeyUsage.touch(ctx, db, k.id)
	db.rehashSecret(ctx, hashDomainAPIKey, plaintext, k.hash, "api_keys", "id", "key_hash", k.id)
	return p, nil
}
