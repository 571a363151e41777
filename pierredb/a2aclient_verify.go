package pierredb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pierre-mcp/pierre/pierredb/internal/credential"
)

// A2APrincipal is who a verified A2A client speaks for.
type A2APrincipal struct {
	ClientID   string
	ClientName string
	UserID     string
	// Email is the client's user's email.
	Email string
	// Tenant is the scope of the tenant that registered the client: the only
	// tenant the client reaches.
	Tenant       *TenantScope
	Capabilities []A2ACapability
	RateLimit    A2ARateLimit
	// Remaining is how many requests the current window still allows after this
	// one, and Reset is when the window ends; both are zero after Check.
	Remaining int64
	Reset     time.Time
}

// A2AClientVerifier verifies A2A client credentials for every tenant, from
// Database.A2AClients.
type A2AClientVerifier struct{ db *Database }

// A2AClients returns the handle that verifies A2A client credentials (a
// tenant's clients are managed through TenantScope.A2AClients).
func (db *Database) A2AClients() A2AClientVerifier { return A2AClientVerifier{db: db} }

const verifyA2AClientSQL = `SELECT c.client_id, c.tenant_id, c.user_id, c.name, c.client_secret_hash, c.capabilities,
  c.rate_limit_requests, c.rate_limit_window_seconds, c.is_active, u.email, u.user_status, u.is_active, t.is_active
FROM a2a_clients c JOIN users u ON u.id = c.user_id JOIN tenants t ON t.id = c.tenant_id
WHERE c.client_id = ?`

// Verify checks a client's id and secret, counts one request against its quota,
// and returns who the client speaks for. The errors, wrapped with the
// operation: ErrInvalidCredential (a malformed id or secret, refused without a
// query; an unknown id or a wrong secret, which look the same and cost the
// same), ErrRevoked (the client is deactivated), ErrUserPending,
// ErrUserSuspended, ErrTenantInactive, and a *RateLimitError (ErrRateLimited)
// when the window's quota is used up (the request is then not counted).
// Requests are counted as API keys' are (WithUsageFlushInterval).
func (v A2AClientVerifier) Verify(ctx context.Context, clientID, secret string) (_ A2APrincipal, err error) {
	defer v.db.wrap(&err, "verify A2A client")
	return v.verify(ctx, clientID, secret, true)
}

// Check verifies a client as Verify does without counting the request: it never
// answers ErrRateLimited, and the principal's Remaining and Reset are zero.
func (v A2AClientVerifier) Check(ctx context.Context, clientID, secret string) (_ A2APrincipal, err error) {
	defer v.db.wrap(&err, "check A2A client")
	return v.verify(ctx, clientID, secret, false)
}

// errA2ADeactivated is Verify's answer for a deactivated client.
var errA2ADeactivated = fmt.Errorf("%w: the client is deactivated; reactivate it or register a new one", ErrRevoked)

// validA2AClientID reports whether id has the shape of a client id.
func validA2AClientID(id string) bool {
	rest, ok := strings.CutPrefix(id, A2AClientIDPrefix)
	if !ok || len(rest) != a2aClientIDChars {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

func (v A2AClientVerifier) verify(ctx context.Context, clientID, secret string, count bool) (A2APrincipal, error) {
	db := v.db
	if _, _, err := credential.Parse(secret, a2aSecretKind); err != nil || !validA2AClientID(clientID) {
		return A2APrincipal{}, ErrInvalidCredential
	}
	row, err := db.lookupCredential(ctx, count, verifyA2AClientSQL, clientID)
	if err != nil {
		return A2APrincipal{}, err
	}
	var (
		id, tenantID, userID, name, hash, caps, email, userStatus string
		limit, windowSecs                                         int64
		active, userActive, tenantActive                          bool
	)
	err = row.Scan(&id, &tenantID, &userID, &name, &hash, &caps, &limit, &windowSecs, &active, &email, &userStatus, &userActive, &tenantActive)
	found := err == nil
	if err != nil && !isNoRows(err) {
		return A2APrincipal{}, err
	}
	if !db.matchSecret(ctx, hashDomainA2ASecret, secret, hash, found, "A2A client", id) {
		return A2APrincipal{}, ErrInvalidCredential
	}
	if !active {
		return A2APrincipal{}, errA2ADeactivated
	}
	if err := holderError(userStatus, userActive, tenantActive); err != nil {
		return A2APrincipal{}, err
	}
	capabilities, err := decodeCapabilities(caps)
	if err != nil {
		return A2APrincipal{}, err
	}
	p := A2APrincipal{
		ClientID: id, ClientName: name, UserID: userID, Email: email, Tenant: &TenantScope{db: db, id: tenantID},
		Capabilities: capabilities, RateLimit: A2ARateLimit{Requests: limit, Window: time.Duration(windowSecs) * time.Second},
	}
	start, end := fixedWindow(p.RateLimit.Window, db.now())
	if count {
		n, ok, err := a2aUsage.count(ctx, db, tenantID, id, start, end, limit)
		if err != nil {
			return A2APrincipal{}, err
		}
		if !ok {
			return A2APrincipal{}, &RateLimitError{Limit: limit, Reset: end}
		}
		p.Remaining, p.Reset = limit-n, end
	}
	a2aUsage.touch(ctx, db, id, start)
	db.rehashSecret(ctx, hashDomainA2ASecret, secret, hash, "a2a_clients", "client_id", "client_secret_hash", id)
	return p, nil
}
