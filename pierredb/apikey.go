package pierredb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb/internal/credential"
)

// API key formats: a key is "pk_live_" or "pk_trial_" (a key of TierTrial), 22
// random base62 characters (131 bits) and a 6-character checksum, so a typo or a
// truncated paste is refused before any query. Its first 12 random characters
// (71 bits) are its lookup prefix, kept in clear (APIKey.Prefix) to find it and
// to tell keys apart; beside it only a keyed hash of the whole key is stored
// (HMAC-SHA256 under the keyring's hashing key), which a stolen database alone
// cannot test guesses against.
const (
	APIKeyLivePrefix  = "pk_live_"
	APIKeyTrialPrefix = "pk_trial_"
)

const (
	apiKeyKindLive  = "pk_live"
	apiKeyKindTrial = "pk_trial"
)

// TrialKeyLifetime is how long a TierTrial key lives when NewAPIKey.ExpiresAt
// is not set.
const TrialKeyLifetime = 14 * 24 * time.Hour

// RateLimit is a credential's quota: Requests per Period, or no limit at all.
type RateLimit struct {
	// Requests is how many requests each window allows, 1 to 2^31-1; it is 0
	// when Unlimited.
	Requests int64
	// Period is the window's length; "" means PeriodMonth.
	Period RateLimitPeriod
	// Unlimited: requests are counted (see APIKeys.Usage) but never refused.
	Unlimited bool
}

// DefaultRateLimit is the quota a key of tier t gets unless NewAPIKey.RateLimit
// overrides it: per month, trial 1 000, starter 10 000, professional 100 000,
// enterprise unlimited.
func (t Tier) DefaultRateLimit() RateLimit {
	switch t {
	case TierTrial:
		return RateLimit{Requests: 1_000, Period: PeriodMonth}
	case TierProfessional:
		return RateLimit{Requests: 100_000, Period: PeriodMonth}
	case TierEnterprise:
		return RateLimit{Period: PeriodMonth, Unlimited: true}
	default:
		return RateLimit{Requests: 10_000, Period: PeriodMonth}
	}
}

// keyTiers are the tiers an API key may have.
var keyTiers = []Tier{TierTrial, TierStarter, TierProfessional, TierEnterprise}

// APIKey is an API key as stored: never its plaintext, which only
// CreatedAPIKey holds, once.
type APIKey struct {
	ID       string
	TenantID string
	// UserID is the member of the tenant the key acts for.
	UserID      string
	Name        string
	Description string
	// Prefix is the key's lookup prefix ("pk_live_" and 12 characters): enough
	// to recognise a key in a list, not to use it.
	Prefix    string
	Tier      Tier
	RateLimit RateLimit
	// IsActive is false once the key is deactivated or revoked.
	IsActive bool
	// ExpiresAt is when the key stops working; zero for never.
	ExpiresAt time.Time
	// RevokedAt is when the key was revoked for good; zero if it was not.
	RevokedAt time.Time
	// LastUsedAt is when the key was last verified, to within the
	// last-use interval (WithLastActiveInterval, default one minute); zero if
	// never.
	LastUsedAt time.Time
	// UsageCount is the number of requests counted over the key's life, as of
	// LastUsedAt: it is brought up to date with each write of LastUsedAt, so it
	// lags by at most the requests of one interval. Usage has the exact count of
	// each window.
	UsageCount int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// NewAPIKey is what APIKeys.Create needs.
type NewAPIKey struct {
	// UserID is the member of the tenant the key acts for.
	UserID string
	// Name is required, at most 200 bytes, unique among the user's keys in the
	// tenant.
	Name string
	// Description is optional, at most 1000 bytes.
	Description string
	// Tier defaults to TierStarter. A TierTrial key starts with "pk_trial_"
	// and expires after TrialKeyLifetime unless ExpiresAt says otherwise.
	Tier Tier
	// RateLimit overrides the tier's quota (Tier.DefaultRateLimit); nil keeps it.
	RateLimit *RateLimit
	// ExpiresAt is when the key stops working; it must be in the future. Zero
	// means never (TrialKeyLifetime from now for a trial key).
	ExpiresAt time.Time
}

// APIKeyUpdate changes a key; nil fields are left alone. A key's tier and
// owner never change.
type APIKeyUpdate struct {
	Name        *string
	Description *string
	// RateLimit replaces the key's quota. A new period starts counting in its
	// own windows; the old period's counts stay in Usage.
	RateLimit *RateLimit
	// ExpiresAt replaces the expiry: a future time, or zero for never.
	ExpiresAt *time.Time
}

// APIKeyFilter selects keys for APIKeys.List; zero fields do not filter.
type APIKeyFilter struct {
	// UserID keeps the keys of that user.
	UserID string
	// Active keeps active keys (true) or deactivated and revoked ones (false).
	// An expired key stays active until it is deactivated or revoked.
	Active *bool
	// Limit is the page size: default 50, at most 1000.
	Limit int
	// Cursor continues a listing where the previous page ended (Page.Next).
	Cursor string
}

// CreatedAPIKey is a new key and its plaintext. The plaintext is not stored and
// cannot be shown again: hand it to the key's holder now.
type CreatedAPIKey struct {
	APIKey
	// Key is the plaintext ("pk_live_…"); Key.Reveal() returns it.
	Key CredentialSecret
}

// apiKeyRow is the api_keys table.
type apiKeyRow struct {
	bun.BaseModel `bun:"table:api_keys"`

	ID                string         `bun:"id,pk"`
	TenantID          string         `bun:"tenant_id"`
	UserID            string         `bun:"user_id"`
	Name              string         `bun:"name"`
	Description       sql.NullString `bun:"description"`
	KeyPrefix         string         `bun:"key_prefix"`
	KeyHash           string         `bun:"key_hash"`
	Tier              string         `bun:"tier"`
	RateLimitRequests sql.NullInt64  `bun:"rate_limit_requests"`
	RateLimitPeriod   string         `bun:"rate_limit_period"`
	IsActive          bool           `bun:"is_active"`
	ExpiresAt         dbTime         `bun:"expires_at"`
	RevokedAt         dbTime         `bun:"revoked_at"`
	LastUsedAt        dbTime         `bun:"last_used_at"`
	UsageCount        int64          `bun:"usage_count"`
	CreatedAt         dbTime         `bun:"created_at"`
	UpdatedAt         dbTime         `bun:"updated_at"`
}

// apiKeyMap reads every column but the hash.
var (
	apiKeyMap      = mapRow[apiKeyRow]("key_hash")
	apiKeyColumns  = apiKeyMap.columns("k")
	apiKeyReturned = apiKeyMap.columns("")
)

func (r *apiKeyRow) apiKey() APIKey {
	return APIKey{
		ID: r.ID, TenantID: r.TenantID, UserID: r.UserID, Name: r.Name, Description: r.Description.String,
		Prefix: r.KeyPrefix, Tier: Tier(r.Tier), RateLimit: storedRateLimit(r.RateLimitRequests, r.RateLimitPeriod),
		IsActive: r.IsActive, ExpiresAt: r.ExpiresAt.Time, RevokedAt: r.RevokedAt.Time, LastUsedAt: r.LastUsedAt.Time,
		UsageCount: r.UsageCount, CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time,
	}
}

// storedRateLimit reads rate_limit_requests (NULL: unlimited) and
// rate_limit_period.
func storedRateLimit(n sql.NullInt64, period string) RateLimit {
	if !n.Valid {
		return RateLimit{Period: RateLimitPeriod(period), Unlimited: true}
	}
	return RateLimit{Requests: n.Int64, Period: RateLimitPeriod(period)}
}

// apiKeyScanner reads apiKeyColumns into one reused row.
type apiKeyScanner struct {
	row  apiKeyRow
	dest []any
}

func newAPIKeyScanner() *apiKeyScanner {
	s := &apiKeyScanner{}
	s.dest = apiKeyMap.dest(&s.row)
	return s
}

func (s *apiKeyScanner) scan(r rowScanner) (APIKey, error) {
	s.row = apiKeyRow{}
	if err := r.Scan(s.dest...); err != nil {
		return APIKey{}, err
	}
	return s.row.apiKey(), nil
}

func scanAPIKey(r rowScanner) (APIKey, error) { return newAPIKeyScanner().scan(r) }

// cleanRateLimit checks a quota and returns how it is stored.
func cleanRateLimit(rl RateLimit) (sql.NullInt64, RateLimitPeriod, error) {
	period := rl.Period
	if period == "" {
		period = PeriodMonth
	}
	if !period.valid() {
		return sql.NullInt64{}, "", fmt.Errorf("%w: rate limit period %q is not hour, day, week or month", ErrInvalidArgument, shorten(string(period)))
	}
	switch {
	case rl.Unlimited && rl.Requests != 0:
		return sql.NullInt64{}, "", fmt.Errorf("%w: a rate limit is either unlimited or a number of requests; set Requests to 0", ErrInvalidArgument)
	case rl.Unlimited:
		return sql.NullInt64{}, period, nil
	case rl.Requests < 1 || rl.Requests > maxRateLimit:
		return sql.NullInt64{}, "", fmt.Errorf("%w: rate limit of %d requests is not between 1 and %d; use Unlimited for no limit, or deactivate the key to stop it",
			ErrInvalidArgument, rl.Requests, int64(maxRateLimit))
	}
	return sql.NullInt64{Int64: rl.Requests, Valid: true}, period, nil
}

// cleanExpiry checks an expiry: zero (never) or after now.
func cleanExpiry(t, now time.Time) (dbTime, error) {
	if t.IsZero() {
		return dbTime{}, nil
	}
	if !at(t).After(at(now).Time) { // as stored: to the microsecond
		return dbTime{}, fmt.Errorf("%w: the expiry %s is not in the future", ErrInvalidArgument, t.UTC().Format(time.RFC3339))
	}
	if t.UTC().Year() > 9999 {
		return dbTime{}, fmt.Errorf("%w: the expiry is after year 9999; use zero for never", ErrInvalidArgument)
	}
	return at(t), nil
}

func cleanKeyName(name string) (string, error) {
	n, err := cleanName("key name", strings.TrimSpace(name), 200)
	if err == nil && n == "" {
		err = fmt.Errorf("%w: key name is required", ErrInvalidArgument)
	}
	return n, err
}

// APIKeys is the handle on one tenant's API keys, from TenantScope.APIKeys.
// Every query it runs filters by the scope's tenant. Keys are verified through
// Database.APIKeys.
type APIKeys struct{ s *TenantScope }

// APIKeys returns the handle on this tenant's API keys.
func (s *TenantScope) APIKeys() APIKeys { return APIKeys{s: s} }

const insertAPIKeySQL = `INSERT INTO api_keys (id, tenant_id, user_id, name, description, key_prefix, key_hash, tier,
  rate_limit_requests, rate_limit_period, is_active, expires_at, usage_count, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`

// Create issues a key for a member of this tenant and returns it with its
// plaintext, which is shown this once. A user who is not a member (or a tenant
// that does not exist) is ErrNotFound; a name the user already gave another key
// in this tenant is ErrAlreadyExists.
func (k APIKeys) Create(ctx context.Context, nk NewAPIKey) (_ CreatedAPIKey, err error) {
	db := k.s.db
	defer db.wrap(&err, "create API key")
	if err := requireID("user", nk.UserID); err != nil {
		return CreatedAPIKey{}, err
	}
	name, err := cleanKeyName(nk.Name)
	if err != nil {
		return CreatedAPIKey{}, err
	}
	desc, err := cleanDescription(nk.Description)
	if err != nil {
		return CreatedAPIKey{}, err
	}
	tier, err := checkTier("tier", nk.Tier, TierStarter, keyTiers...)
	if err != nil {
		return CreatedAPIKey{}, err
	}
	rl := tier.DefaultRateLimit()
	if nk.RateLimit != nil {
		rl = *nk.RateLimit
	}
	limit, period, err := cleanRateLimit(rl)
	if err != nil {
		return CreatedAPIKey{}, err
	}
	now := at(db.now())
	expires, err := cleanExpiry(nk.ExpiresAt, now.Time)
	if err != nil {
		return CreatedAPIKey{}, err
	}
	kind := apiKeyKindLive
	if tier == TierTrial {
		kind = apiKeyKindTrial
		if expires.IsZero() {
			expires = at(now.Add(TrialKeyLifetime))
		}
	}
	token, lookup := credential.New(kind)
	row := apiKeyRow{
		ID: newID(), TenantID: k.s.id, UserID: nk.UserID, Name: name, Description: desc,
		KeyPrefix: lookup, KeyHash: db.hashCredential(ctx, hashDomainAPIKey, []byte(token)), Tier: string(tier),
		RateLimitRequests: limit, RateLimitPeriod: string(period), IsActive: true, ExpiresAt: expires,
		CreatedAt: now, UpdatedAt: now,
	}
	_, err = db.exec(ctx, insertAPIKeySQL, row.ID, row.TenantID, row.UserID, row.Name, row.Description, row.KeyPrefix,
		row.KeyHash, row.Tier, row.RateLimitRequests, row.RateLimitPeriod, row.IsActive, row.ExpiresAt, row.CreatedAt, row.UpdatedAt)
	if err != nil {
		return CreatedAPIKey{}, db.memberRowError(ctx, err, k.s.id,
			fmt.Sprintf("the user has a key named %q in this tenant already; choose another name", shorten(name)))
	}
	return CreatedAPIKey{APIKey: row.apiKey(), Key: newCredentialSecret(token)}, nil
}

// Get returns the key with id, or ErrNotFound (also for a key of another
// tenant).
func (k APIKeys) Get(ctx context.Context, id string) (_ APIKey, err error) {
	defer k.s.db.wrap(&err, "get API key")
	if err := requireID("API key", id); err != nil {
		return APIKey{}, err
	}
	return k.get(ctx, id)
}

func (k APIKeys) get(ctx context.Context, id string) (APIKey, error) {
	return readOne(ctx, k.s.db, "API key", "SELECT "+apiKeyColumns+" FROM api_keys k WHERE k.tenant_id = ? AND k.id = ?",
		[]any{k.s.id, id}, scanAPIKey)
}

// List lists this tenant's keys, oldest first, one page at a time.
func (k APIKeys) List(ctx context.Context, f APIKeyFilter) (_ Page[APIKey], err error) {
	db := k.s.db
	defer db.wrap(&err, "list API keys")
	conds, args := []string{"k.tenant_id = ?"}, []any{k.s.id}
	if f.UserID != "" {
		if err := requireID("user", f.UserID); err != nil {
			return Page[APIKey]{}, err
		}
		conds, args = append(conds, "k.user_id = ?"), append(args, f.UserID)
	}
	if f.Active != nil {
		conds, args = append(conds, "k.is_active = ?"), append(args, *f.Active)
	}
	scanner := newAPIKeyScanner()
	page, err := readPage(ctx, db,
		listing{selectFrom: "SELECT " + apiKeyColumns + " FROM api_keys k", conds: conds, args: args, keyset: [2]string{"k.created_at", "k.id"}},
		ListOptions{Limit: f.Limit, Cursor: f.Cursor}, scanner.scan,
		func(key APIKey) (time.Time, string) { return key.CreatedAt, key.ID })
	if err == nil && len(page.Items) == 0 && f.Cursor == "" {
		err = tenantExists(ctx, db, k.s.id)
	}
	return page, err
}

// Update renames a key or changes its description, quota or expiry.
func (k APIKeys) Update(ctx context.Context, id string, change APIKeyUpdate) (_ APIKey, err error) {
	db := k.s.db
	defer db.wrap(&err, "update API key")
	if err := requireID("API key", id); err != nil {
		return APIKey{}, err
	}
	var sets []string
	var args []any
	name := ""
	if change.Name != nil {
		if name, err = cleanKeyName(*change.Name); err != nil {
			return APIKey{}, err
		}
		sets, args = append(sets, "name = ?"), append(args, name)
	}
	if change.Description != nil {
		d, err := cleanDescription(*change.Description)
		if err != nil {
			return APIKey{}, err
		}
		sets, args = append(sets, "description = ?"), append(args, d)
	}
	if change.RateLimit != nil {
		limit, period, err := cleanRateLimit(*change.RateLimit)
		if err != nil {
			return APIKey{}, err
		}
		sets, args = append(sets, "rate_limit_requests = ?", "rate_limit_period = ?"), append(args, limit, string(period))
	}
	if change.ExpiresAt != nil {
		exp, err := cleanExpiry(*change.ExpiresAt, db.now())
		if err != nil {
			return APIKey{}, err
		}
		sets, args = append(sets, "expires_at = ?"), append(args, exp)
	}
	if len(sets) == 0 {
		return k.get(ctx, id)
	}
	key, err := k.change(ctx, id, sets, args, "", nil, nil)
	if err != nil {
		return APIKey{}, db.reword(err, ErrAlreadyExists, fmt.Sprintf("the user has a key named %q in this tenant already; choose another name", shorten(name)))
	}
	return key, nil
}

// change runs one UPDATE … RETURNING on key id of this tenant: it sets sets
// (and updated_at) where cond holds. When no row changes, it returns the
// current row through explain (or ErrNotFound when there is none).
func (k APIKeys) change(ctx context.Context, id string, sets []string, args []any, cond string, condArgs []any,
	explain func(cur APIKey) (APIKey, error)) (APIKey, error) {
	db := k.s.db
	q := "UPDATE api_keys SET " + strings.Join(sets, ", ") + ", updated_at = ? WHERE tenant_id = ? AND id = ?"
	if cond != "" {
		q += " AND " + cond
	}
	row, err := db.writeRow(ctx, q+" RETURNING "+apiKeyReturned, append(append(args, at(db.now()), k.s.id, id), condArgs...)...)
	if err != nil {
		return APIKey{}, err
	}
	key, err := scanAPIKey(row)
	if !isNoRows(err) {
		return key, err
	}
	// Read through the writer, which sees every committed write.
	var cur apiKeyRow
	err = db.writer(ctx).NewSelect().Model(&cur).ExcludeColumn("key_hash").Where("tenant_id = ? AND id = ?", k.s.id, id).Scan(ctx)
	if isNoRows(err) {
		return APIKey{}, notFound("API key")
	}
	if err != nil {
		return APIKey{}, err
	}
	if explain == nil {
		return APIKey{}, fmt.Errorf("%w: the key changed meanwhile; try again", ErrConflict)
	}
	return explain(cur.apiKey())
}

// Deactivate stops a key until Reactivate: Verify answers ErrRevoked from the
// very next call, in every process. Deactivating an inactive key is
// ErrConflict.
func (k APIKeys) Deactivate(ctx context.Context, id string) (_ APIKey, err error) {
	defer k.s.db.wrap(&err, "deactivate API key")
	if err := requireID("API key", id); err != nil {
		return APIKey{}, err
	}
	return k.change(ctx, id, []string{"is_active = ?"}, []any{false}, "is_active = ? AND revoked_at IS NULL", []any{true},
		func(cur APIKey) (APIKey, error) {
			if !cur.RevokedAt.IsZero() {
				return APIKey{}, fmt.Errorf("%w: the key is revoked", ErrConflict)
			}
			return APIKey{}, fmt.Errorf("%w: the key is deactivated already", ErrConflict)
		})
}

// Reactivate lets a deactivated key work again. A revoked key stays revoked
// (ErrConflict: create a new key), and so does an active one.
func (k APIKeys) Reactivate(ctx context.Context, id string) (_ APIKey, err error) {
	defer k.s.db.wrap(&err, "reactivate API key")
	if err := requireID("API key", id); err != nil {
		return APIKey{}, err
	}
	return k.change(ctx, id, []string{"is_active = ?"}, []any{true}, "is_active = ? AND revoked_at IS NULL", []any{false},
		func(cur APIKey) (APIKey, error) {
			if !cur.RevokedAt.IsZero() {
				return APIKey{}, fmt.Errorf("%w: the key is revoked for good; create a new key", ErrConflict)
			}
			return APIKey{}, fmt.Errorf("%w: the key is active already", ErrConflict)
		})
}

// Revoke stops a key for good: Verify answers ErrRevoked from the very next
// call, in every process, and it cannot be reactivated. Revoking a revoked key
// returns it unchanged, so that a revocation can be retried safely.
func (k APIKeys) Revoke(ctx context.Context, id string) (_ APIKey, err error) {
	db := k.s.db
	defer db.wrap(&err, "revoke API key")
	if err := requireID("API key", id); err != nil {
		return APIKey{}, err
	}
	return k.change(ctx, id, []string{"is_active = ?", "revoked_at = ?"}, []any{false, at(db.now())}, "revoked_at IS NULL", nil,
		func(cur APIKey) (APIKey, error) { return cur, nil })
}

// Delete deletes a key and its usage counts. Revoke keeps a record instead.
func (k APIKeys) Delete(ctx context.Context, id string) (err error) {
	db := k.s.db
	defer db.wrap(&err, "delete API key")
	if err := requireID("API key", id); err != nil {
		return err
	}
	n, err := rowsAffected(db.exec(ctx, "DELETE FROM api_keys WHERE tenant_id = ? AND id = ?", k.s.id, id))
	if err == nil && n == 0 {
		err = notFound("API key")
	}
	if err == nil {
		apiKeyUsage.forget(db, id)
	}
	return err
}

// Usage lists the requests counted for key id in each of its rate-limit
// windows, oldest first. The count of the current window is exact (it is the
// counter that Verify checks).
func (k APIKeys) Usage(ctx context.Context, id string, o UsageOptions) (_ Page[UsageWindow], err error) {
	defer k.s.db.wrap(&err, "read API key usage")
	if err := requireID("API key", id); err != nil {
		return Page[UsageWindow]{}, err
	}
	return apiKeyUsage.list(ctx, k.s.db, k.s.id, id, o)
}
