package pierredb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/keyring"
)

// OAuthApp is a tenant's OAuth application at one provider: what pierre needs
// to send the tenant's users through the provider's consent screen and to
// exchange and refresh their tokens. A tenant has at most one app per provider.
type OAuthApp struct {
	ID       string
	TenantID string
	Provider Provider
	ClientID string
	// ClientSecret is stored sealed under the data key, bound to the tenant
	// and the provider; it prints as a placeholder (see OAuthSecret).
	ClientSecret OAuthSecret
	RedirectURI  string
	Scopes       []string
	// RateLimitPerDay is how many provider API calls the tenant's users may
	// make per day through this app.
	RateLimitPerDay int
	// IsActive is false when the app is disabled: its configuration is kept,
	// but the host should not start new connections with it.
	IsActive  bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// OAuthAppConfig is what OAuthApps.Set stores. Every field is replaced on each
// Set; zero values are the documented defaults.
type OAuthAppConfig struct {
	// ClientID is the app's client id at the provider: required, at most 512
	// bytes, no spaces or invisible characters.
	ClientID string
	// ClientSecret is required, at most 64 KiB.
	ClientSecret OAuthSecret
	// RedirectURI is the absolute URL the provider sends users back to: https,
	// or http on a loopback host (localhost, 127.0.0.1, ::1) for development;
	// no fragment, no user info, at most 2048 bytes.
	RedirectURI string
	// Scopes are the scopes to request, each an OAuth scope token (printable
	// ASCII without spaces, '"' or '\'); duplicates are dropped, the order is
	// kept. Nil means none.
	Scopes []string
	// RateLimitPerDay defaults to 15000 when zero; it may not be negative.
	RateLimitPerDay int
	// Disabled stores the app inactive (see OAuthApp.IsActive); the zero value
	// stores it active.
	Disabled bool
}

// defaultOAuthRateLimit is the schema's default rate_limit_per_day.
const defaultOAuthRateLimit = 15000

// maxOAuthSecretLength bounds a client secret or a token.
const maxOAuthSecretLength = 64 << 10

type oauthAppRow struct {
	bun.BaseModel `bun:"table:tenant_oauth_configs"`

	ID              string `bun:"id,pk"`
	TenantID        string `bun:"tenant_id"`
	Provider        string `bun:"provider"`
	ClientID        string `bun:"client_id"`
	ClientSecret    []byte `bun:"client_secret_encrypted"`
	RedirectURI     string `bun:"redirect_uri"`
	Scopes          string `bun:"scopes"`
	RateLimitPerDay int64  `bun:"rate_limit_per_day"`
	IsActive        bool   `bun:"is_active"`
	CreatedAt       dbTime `bun:"created_at"`
	UpdatedAt       dbTime `bun:"updated_at"`
}

var (
	oauthAppMap     = mapRow[oauthAppRow]()
	oauthAppColumns = oauthAppMap.columns("c")
)

const (
	oauthAppTable        = "tenant_oauth_configs"
	oauthAppSecretColumn = "client_secret_encrypted"
)

// oauthAppSecretContext binds a client secret to its tenant and provider, which
// identify the row (one app per tenant and provider): a secret copied to
// another tenant, provider or column fails to decrypt. The row id is left out
// so that Set, an upsert that keeps the row's id, can seal before it knows it.
func oauthAppSecretContext(tenantID, provider string) keyring.Context {
	return keyring.Context{Tenant: tenantID, Table: oauthAppTable, Column: oauthAppSecretColumn, Extra: []string{provider}}
}

// The client secret is the one sealed column of tenant_oauth_configs.
var _ = registerSealed(sealedColumn{table: oauthAppTable, column: oauthAppSecretColumn,
	keys: []string{"id", "tenant_id", "provider"},
	context: func(k []string) keyring.Context {
		return oauthAppSecretContext(k[1], k[2])
	}})

// app opens a row's client secret and converts it.
func (db *Database) oauthApp(r *oauthAppRow) (OAuthApp, error) {
	secret, err := db.unseal(context.Background(), r.ClientSecret, oauthAppSecretContext(r.TenantID, r.Provider))
	if err != nil {
		return OAuthApp{}, fmt.Errorf("%w: the client secret of the %s app does not decrypt (it was changed or copied outside pierre,"+
			" or its data key was retired); Set the app again", err, shorten(r.Provider))
	}
	app := OAuthApp{
		ID: r.ID, TenantID: r.TenantID, Provider: Provider(r.Provider), ClientID: r.ClientID,
		ClientSecret: NewOAuthSecret(string(secret)), RedirectURI: r.RedirectURI,
		RateLimitPerDay: int(r.RateLimitPerDay), IsActive: r.IsActive,
		CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time,
	}
	clear(secret)
	if err := json.Unmarshal([]byte(r.Scopes), &app.Scopes); err != nil {
		return OAuthApp{}, fmt.Errorf("%w: the scopes of the %s app are not a JSON list of strings; Set the app again", ErrInvalidArgument, shorten(r.Provider))
	}
	return app, nil
}

func (db *Database) scanOAuthApp(r rowScanner) (OAuthApp, error) {
	var row oauthAppRow
	if err := r.Scan(oauthAppMap.dest(&row)...); err != nil {
		return OAuthApp{}, err
	}
	return db.oauthApp(&row)
}

// OAuthApps is the handle on one tenant's OAuth applications, from
// TenantScope.OAuthApps. Every query it runs filters by the scope's tenant.
type OAuthApps struct{ s *TenantScope }

// OAuthApps returns the handle on this tenant's OAuth applications.
func (s *TenantScope) OAuthApps() OAuthApps { return OAuthApps{s: s} }

// setOAuthAppSQL is Set's upsert: one statement, so concurrent Sets of one
// provider leave one row, the last one's.
const setOAuthAppSQL = "INSERT INTO tenant_oauth_configs (id, tenant_id, provider, client_id, client_secret_encrypted, redirect_uri," +
	" scopes, rate_limit_per_day, is_active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" +
	" ON CONFLICT (tenant_id, provider) DO UPDATE SET client_id = excluded.client_id," +
	" client_secret_encrypted = excluded.client_secret_encrypted, redirect_uri = excluded.redirect_uri," +
	" scopes = excluded.scopes, rate_limit_per_day = excluded.rate_limit_per_day, is_active = excluded.is_active," +
	" updated_at = excluded.updated_at RETURNING id, created_at"

// Set stores the tenant's app at provider, replacing the one there is (its id
// and CreatedAt stay). An unknown provider or an invalid field is
// ErrInvalidArgument; a tenant that does not exist is ErrNotFound.
func (a OAuthApps) Set(ctx context.Context, provider Provider, cfg OAuthAppConfig) (_ OAuthApp, err error) {
	db := a.s.db
	defer db.wrap(&err, "set oauth app")
	if err := checkProvider(provider); err != nil {
		return OAuthApp{}, err
	}
	app, err := cleanOAuthAppConfig(cfg)
	if err != nil {
		return OAuthApp{}, err
	}
	scopes, err := json.Marshal(app.Scopes)
	if err != nil {
		return OAuthApp{}, err
	}
	sealed, err := db.seal(context.Background(), []byte(cfg.ClientSecret.Reveal()), oauthAppSecretContext(a.s.id, string(provider)))
	if err != nil {
		return OAuthApp{}, err
	}
	now := at(db.now())
	row, err := db.writeRow(ctx, setOAuthAppSQL, newID(), a.s.id, string(provider), app.ClientID, sealed, app.RedirectURI,
		string(scopes), int64(app.RateLimitPerDay), app.IsActive, oauthTimeArg(now), oauthTimeArg(now))
	if err != nil {
		return OAuthApp{}, err
	}
	var created dbTime
	if err := row.Scan(&app.ID, &created); err != nil {
		if errors.Is(db.classify(err), ErrConflict) { // the foreign key to tenants
			return OAuthApp{}, notFound("tenant")
		}
		return OAuthApp{}, err
	}
	app.TenantID, app.Provider, app.ClientSecret = a.s.id, provider, cfg.ClientSecret
	app.CreatedAt, app.UpdatedAt = created.Time, now.Time
	return app, nil
}

// Get returns the tenant's app at provider, or ErrNotFound. A client secret
// that does not decrypt (changed or copied by hand) is keyring.ErrDecrypt.
func (a OAuthApps) Get(ctx context.Context, provider Provider) (_ OAuthApp, err error) {
	db := a.s.db
	defer db.wrap(&err, "get oauth app")
	if err := checkProvider(provider); err != nil {
		return OAuthApp{}, err
	}
	app, err := readOne(ctx, db, "oauth app", "SELECT "+oauthAppColumns+" FROM tenant_oauth_configs c WHERE c.tenant_id = ? AND c.provider = ?",
		[]any{a.s.id, string(provider)}, db.scanOAuthApp)
	if isNotFound(err) {
		err = fmt.Errorf("%w: this tenant has no %s app", ErrNotFound, provider)
	}
	return app, err
}

// List returns the tenant's apps, one per provider, in provider order.
func (a OAuthApps) List(ctx context.Context) (_ []OAuthApp, err error) {
	db := a.s.db
	defer db.wrap(&err, "list oauth apps")
	rows, err := db.queryRows(ctx, "SELECT "+oauthAppColumns+" FROM tenant_oauth_configs c WHERE c.tenant_id = ? ORDER BY c.provider", a.s.id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []OAuthApp{}
	for rows.Next() {
		app, err := db.scanOAuthApp(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, app)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, tenantExists(ctx, db, a.s.id)
	}
	return out, nil
}

// Delete removes the tenant's app at provider; the tenant's users' tokens at
// that provider stay. No app there is ErrNotFound.
func (a OAuthApps) Delete(ctx context.Context, provider Provider) (err error) {
	db := a.s.db
	defer db.wrap(&err, "delete oauth app")
	if err := checkProvider(provider); err != nil {
		return err
	}
	n, err := rowsAffected(db.exec(ctx, "DELETE FROM tenant_oauth_configs WHERE tenant_id = ? AND provider = ?", a.s.id, string(provider)))
	if err == nil && n == 0 {
		err = fmt.Errorf("%w: this tenant has no %s app", ErrNotFound, provider)
	}
	return err
}

// cleanOAuthAppConfig checks cfg and returns the app it stores (without ids,
// secret or times).
func cleanOAuthAppConfig(cfg OAuthAppConfig) (OAuthApp, error) {
	var app OAuthApp
	var err error
	if app.ClientID, err = cleanName("client id", strings.TrimSpace(cfg.ClientID), 512); err != nil {
		return OAuthApp{}, err
	}
	switch {
	case app.ClientID == "":
		return OAuthApp{}, fmt.Errorf("%w: client id is required", ErrInvalidArgument)
	case strings.ContainsFunc(app.ClientID, unicode.IsSpace):
		return OAuthApp{}, fmt.Errorf("%w: client id holds a space", ErrInvalidArgument)
	}
	if err := checkSecretLength("client secret", cfg.ClientSecret, true); err != nil {
		return OAuthApp{}, err
	}
	if app.RedirectURI, err = cleanRedirectURI(cfg.RedirectURI); err != nil {
		return OAuthApp{}, err
	}
	if app.Scopes, err = cleanScopes(cfg.Scopes); err != nil {
		return OAuthApp{}, err
	}
	switch {
	case cfg.RateLimitPerDay == 0:
		app.RateLimitPerDay = defaultOAuthRateLimit
	case cfg.RateLimitPerDay < 0 || cfg.RateLimitPerDay > math.MaxInt32:
		return OAuthApp{}, fmt.Errorf("%w: rate limit per day %d is not between 1 and %d (0 means %d)",
			ErrInvalidArgument, cfg.RateLimitPerDay, math.MaxInt32, defaultOAuthRateLimit)
	default:
		app.RateLimitPerDay = cfg.RateLimitPerDay
	}
	app.IsActive = !cfg.Disabled
	return app, nil
}

// checkSecretLength refuses an empty secret (when required) and one longer
// than maxOAuthSecretLength. The secret itself never reaches a message.
func checkSecretLength(what string, s OAuthSecret, required bool) error {
	n := len(s.Reveal())
	switch {
	case n == 0 && required:
		return fmt.Errorf("%w: %s is required", ErrInvalidArgument, what)
	case n > maxOAuthSecretLength:
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalidArgument, what, maxOAuthSecretLength)
	}
	return nil
}

// cleanRedirectURI checks a redirect URI: absolute, https (or http on a
// loopback host), without fragment or user info.
func cleanRedirectURI(raw string) (string, error) {
	s, err := cleanName("redirect URI", strings.TrimSpace(raw), 2048)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", fmt.Errorf("%w: redirect URI is required", ErrInvalidArgument)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" || strings.ContainsFunc(s, unicode.IsSpace) {
		return "", fmt.Errorf("%w: redirect URI %q is not an absolute URL", ErrInvalidArgument, shorten(s))
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	case u.Scheme == "http":
		return "", fmt.Errorf("%w: redirect URI %q uses http on a host that is not loopback; use https", ErrInvalidArgument, shorten(s))
	default:
		return "", fmt.Errorf("%w: redirect URI %q is not an https URL", ErrInvalidArgument, shorten(s))
	}
	if u.User != nil {
		return "", fmt.Errorf("%w: redirect URI holds user info; remove it", ErrInvalidArgument)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return "", fmt.Errorf("%w: redirect URI %q holds a fragment (#...); OAuth forbids it", ErrInvalidArgument, shorten(s))
	}
	return s, nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// maxScopes bounds an app's scope list.
const maxScopes = 100

// cleanScopes checks scope tokens (RFC 6749 3.3: %x21 / %x23-5B / %x5D-7E),
// dropping duplicates and keeping the order.
func cleanScopes(in []string) ([]string, error) {
	if len(in) > maxScopes {
		return nil, fmt.Errorf("%w: %d scopes; at most %d", ErrInvalidArgument, len(in), maxScopes)
	}
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, s := range in {
		if s == "" || len(s) > 256 {
			return nil, fmt.Errorf("%w: a scope is empty or longer than 256 bytes", ErrInvalidArgument)
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
				return nil, fmt.Errorf("%w: scope %q holds a character OAuth does not allow in a scope (a space, a quote, a backslash"+
					" or a non-ASCII byte); pass each scope as its own element", ErrInvalidArgument, shorten(s))
			}
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}
