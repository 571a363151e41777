package pierredb

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pierre-mcp/pierre/pierredb/internal/credential"
	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
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

// verifyCountAPIKeySQL is verifyAPIKeySQL and the counter in one statement,
// for engines with WritingCTE and a Database that counts in the database: one
// round trip where two would be. It counts only when the key may be used (the
// keyed hash the caller computed under the primary hashing key matches, and
// every check Verify makes passes) and the window has room; it returns the
// key's row with the window's new count, or NULL when it did not count (Verify
// then decides in Go, and counts with the plain statement where it should).
// The hash is compared by the database, not in constant time: a timing that
// told the stored keyed hash would not help forge a key, which must hash to it.
// {one} and {time} are filled in per engine (verifyCountStatements).
const verifyCountAPIKeySQL = `WITH k AS (
  SELECT k.id, k.tenant_id, k.user_id, k.name, k.key_hash, k.tier, k.rate_limit_requests, k.rate_limit_period,
    k.is_active, k.expires_at, k.revoked_at, u.email, u.user_status, u.is_active AS user_active, t.is_active AS tenant_active
  FROM api_keys k JOIN users u ON u.id = k.user_id JOIN tenants t ON t.id = k.tenant_id
  WHERE k.key_prefix = ?
), c AS (
  INSERT INTO api_key_usage (tenant_id, api_key_id, window_start, request_count, updated_at)
  SELECT k.tenant_id, k.id,
    CASE k.rate_limit_period WHEN 'hour' THEN {time} WHEN 'day' THEN {time} WHEN 'week' THEN {time} ELSE {time} END,
    1, {time}
  FROM k
  WHERE k.key_hash = ? AND k.is_active AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > {time})
    AND k.user_status = 'active' AND k.user_active AND k.tenant_active AND COALESCE(k.rate_limit_requests, 1) > 0
  ON CONFLICT (api_key_id, window_start) DO UPDATE SET request_count = api_key_usage.request_count + 1, updated_at = excluded.updated_at
  WHERE api_key_usage.request_count < (SELECT COALESCE(k.rate_limit_requests, 9223372036854775807) FROM k)
  RETURNING request_count
)
SELECT k.id, k.tenant_id, k.user_id, k.name, k.key_hash, k.tier, k.rate_limit_requests, k.rate_limit_period,
  k.is_active, k.expires_at, k.revoked_at, k.email, k.user_status, k.user_active, k.tenant_active,
  (SELECT request_count FROM c), {one}
FROM k`

// verifyCountStatements returns verifyCountAPIKeySQL for an engine: [on its
// own, in a transaction]; empty where the engine has no WritingCTE.
func verifyCountStatements(d engine.Dialect) [2]string {
	if !d.WritingCTE {
		return [2]string{}
	}
	q := strings.ReplaceAll(verifyCountAPIKeySQL, "{time}", d.TimeParam)
	return [2]string{strings.Replace(q, "{one}", d.RelaxedCommitOne, 1), strings.Replace(q, "{one}", "1", 1)}
}

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
// Quotas are exact under any concurrency. How requests are counted is
// WithUsageFlushInterval's: in memory on SQLite by default (exact within the
// process, written every second), in the database on PostgreSQL (exact across
// processes; a counted request is one statement that looks up and counts).
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
	now := db.now()
	// One round trip where the engine can look up and count in one statement.
	oneTrip := count && db.tally == nil && db.verifyCountSQL[0] != ""
	var (
		row      *sql.Row
		expected string        // the key's keyed hash under the primary hashing key (oneTrip)
		counted  sql.NullInt64 // the window's count after this request, if the statement counted it
		one      int
	)
	if oneTrip {
		expected = db.hashCredential(ctx, hashDomainAPIKey, []byte(plaintext))
		query := db.verifyCountSQL[0]
		if _, inTx := db.txFrom(ctx); inTx {
			query = db.verifyCountSQL[1]
		}
		hour, _ := PeriodHour.Window(now)
		day, _ := PeriodDay.Window(now)
		week, _ := PeriodWeek.Window(now)
		month, _ := PeriodMonth.Window(now)
		row, err = db.writeRow(ctx, query, lookup, at(hour), at(day), at(week), at(month), at(now), expected, at(now))
	} else {
		row, err = db.lookupCredential(ctx, count, verifyAPIKeySQL, lookup)
	}
	if err != nil {
		return APIKeyPrincipal{}, err
	}
	var k verifiedKey
	dest := []any{&k.id, &k.tenantID, &k.userID, &k.name, &k.hash, &k.tier, &k.limit, &k.period,
		&k.active, &k.expires, &k.revoked, &k.email, &k.userStatus, &k.userActive, &k.tenantActive}
	if oneTrip {
		dest = append(dest, &counted, &one)
	}
	err = row.Scan(dest...)
	found := err == nil
	switch {
	case err == nil || isNoRows(err):
	case oneTrip && errors.Is(db.classify(err), ErrConflict):
		// The key was deleted while the statement ran: its counter row had
		// nothing to point at.
		return APIKeyPrincipal{}, ErrInvalidCredential
	default:
		return APIKeyPrincipal{}, err
	}
	var match bool
	switch {
	case oneTrip && !found:
		// The keyed hash was computed: an unknown key cost what a wrong one does.
	case oneTrip && subtle.ConstantTimeCompare([]byte(k.hash), []byte(expected)) == 1:
		match = true
	default: // a wrong key, or a hash under an older hashing key
		match = db.matchSecret(ctx, hashDomainAPIKey, plaintext, k.hash, found, "API key", k.id)
	}
	if !match {
		return APIKeyPrincipal{}, ErrInvalidCredential
	}
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
	start, end := p.RateLimit.Period.Window(now)
	if count {
		limit := int64(unlimited)
		if !p.RateLimit.Unlimited {
			limit = p.RateLimit.Requests
		}
		n, ok := counted.Int64, counted.Valid
		if !ok {
			// Not counted yet: the quota may be used up (or the key's hash is
			// under an older hashing key, or one statement was not possible).
			if n, ok, err = apiKeyUsage.count(ctx, db, k.tenantID, k.id, start, end, limit); err != nil {
				return APIKeyPrincipal{}, err
			}
		}
		if !ok {
			return APIKeyPrincipal{}, &RateLimitError{Limit: limit, Reset: end}
		}
		if !p.RateLimit.Unlimited {
			p.Remaining, p.Reset = limit-n, end
		}
	}
	apiKeyUsage.touch(ctx, db, k.id, start)
	db.rehashSecret(ctx, hashDomainAPIKey, plaintext, k.hash, "api_keys", "id", "key_hash", k.id)
	return p, nil
}
