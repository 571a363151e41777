package pierredb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/keyring"
)

// OAuthToken is a user's connection to one provider in one tenant: the tokens
// the provider issued and what pierre knows about them. A user has at most one
// token per provider in each tenant they belong to.
//
// Put, Update and Refresh read UserID, Provider, AccessToken, RefreshToken,
// TokenType, ExpiresAt, Scope and LastSyncAt; the store sets the other fields.
type OAuthToken struct {
	ID       string
	TenantID string
	UserID   string
	Provider Provider
	// AccessToken is required; RefreshToken may be empty (a provider that
	// issues none). Each is stored sealed under the data key, bound to the
	// tenant, the user, the provider and its column, and prints as a
	// placeholder (see OAuthSecret).
	AccessToken  OAuthSecret
	RefreshToken OAuthSecret
	// TokenType defaults to "Bearer".
	TokenType string
	// ExpiresAt is when the access token expires; zero when the provider did
	// not say (such tokens are never listed by ListExpiring).
	ExpiresAt time.Time
	// Scope is the scope the provider granted, as it sent it; "" when none.
	Scope string
	// LastSyncAt is when the host last synchronised data with this token;
	// zero if never.
	LastSyncAt time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

type oauthTokenRow struct {
	bun.BaseModel `bun:"table:user_oauth_tokens"`

	ID           string         `bun:"id,pk"`
	TenantID     string         `bun:"tenant_id"`
	UserID       string         `bun:"user_id"`
	Provider     string         `bun:"provider"`
	AccessToken  []byte         `bun:"access_token_encrypted"`
	RefreshToken []byte         `bun:"refresh_token_encrypted"`
	TokenType    string         `bun:"token_type"`
	ExpiresAt    dbTime         `bun:"expires_at"`
	Scope        sql.NullString `bun:"scope"`
	LastSyncAt   dbTime         `bun:"last_sync_at"`
	CreatedAt    dbTime         `bun:"created_at"`
	UpdatedAt    dbTime         `bun:"updated_at"`
}

var (
	oauthTokenMap     = mapRow[oauthTokenRow]()
	oauthTokenColumns = oauthTokenMap.columns("o")
)

const (
	oauthTokenTable   = "user_oauth_tokens"
	accessTokenColumn = "access_token_encrypted"
	refreshTokenCol   = "refresh_token_encrypted"
)

// oauthTokenContext binds a token to its tenant, user, provider and column,
// which identify the row (one token per user and provider in a tenant): a
// token copied to another user, tenant, provider or column fails to decrypt.
// The row id is left out so that Put, an upsert that keeps the row's id, can
// seal before it knows it.
func oauthTokenContext(tenantID, userID, provider, column string) keyring.Context {
	return keyring.Context{Tenant: tenantID, Table: oauthTokenTable, Column: column, Extra: []string{userID, provider}}
}

// The access and refresh tokens are the sealed columns of user_oauth_tokens.
var (
	_ = registerSealed(sealedColumn{table: oauthTokenTable, column: accessTokenColumn,
		keys: []string{"id", "tenant_id", "user_id", "provider"},
		context: func(k []string) keyring.Context {
			return oauthTokenContext(k[1], k[2], k[3], accessTokenColumn)
		}})
	_ = registerSealed(sealedColumn{table: oauthTokenTable, column: refreshTokenCol,
		keys: []string{"id", "tenant_id", "user_id", "provider"},
		context: func(k []string) keyring.Context {
			return oauthTokenContext(k[1], k[2], k[3], refreshTokenCol)
		}})
)

// open decrypts a token row.
func (db *Database) oauthToken(r *oauthTokenRow) (OAuthToken, error) {
	t := OAuthToken{
		ID: r.ID, TenantID: r.TenantID, UserID: r.UserID, Provider: Provider(r.Provider),
		TokenType: r.TokenType, ExpiresAt: r.ExpiresAt.Time, Scope: r.Scope.String, LastSyncAt: r.LastSyncAt.Time,
		CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time,
	}
	var err error
	if t.AccessToken, err = db.openToken(r, r.AccessToken, accessTokenColumn, "access"); err != nil {
		return OAuthToken{}, err
	}
	if t.RefreshToken, err = db.openToken(r, r.RefreshToken, refreshTokenCol, "refresh"); err != nil {
		return OAuthToken{}, err
	}
	return t, nil
}

func (db *Database) openToken(r *oauthTokenRow, sealed []byte, column, what string) (OAuthSecret, error) {
	if sealed == nil {
		return OAuthSecret{}, nil
	}
	plain, err := db.unseal(context.Background(), sealed, oauthTokenContext(r.TenantID, r.UserID, r.Provider, column))
	if err != nil {
		return OAuthSecret{}, fmt.Errorf("%w: the %s token of user %s at %s (token %s) does not decrypt (it was changed or copied outside"+
			" pierre, or its data key was retired); delete it and have the user connect again", err, what, r.UserID, shorten(r.Provider), r.ID)
	}
	s := NewOAuthSecret(string(plain))
	clear(plain)
	return s, nil
}

// oauthTokenScanner reads oauthTokenColumns into one reused row; scanners are
// pooled, so a read builds its scan destinations (by reflection) only when the
// pool is empty.
type oauthTokenScanner struct {
	row  oauthTokenRow
	dest []any
}

var oauthTokenScanners = sync.Pool{New: func() any {
	s := &oauthTokenScanner{}
	s.dest = oauthTokenMap.dest(&s.row)
	return s
}}

func (db *Database) scanOAuthToken(r rowScanner) (OAuthToken, error) {
	s := oauthTokenScanners.Get().(*oauthTokenScanner)
	defer oauthTokenScanners.Put(s)
	s.row = oauthTokenRow{}
	if err := r.Scan(s.dest...); err != nil {
		return OAuthToken{}, err
	}
	return db.oauthToken(&s.row)
}

// sealedToken is a token checked and sealed for writing.
type sealedToken struct {
	access, refresh any // []byte, or nil for SQL NULL
	tokenType       string
	expiresAt       dbTime
	scope           sql.NullString
	lastSyncAt      dbTime
}

// seal checks t's writable fields and seals its tokens for tenantID, userID and
// provider.
func (db *Database) sealToken(t OAuthToken, tenantID, userID string, provider Provider) (sealedToken, error) {
	out := sealedToken{tokenType: t.TokenType, expiresAt: at(t.ExpiresAt), lastSyncAt: at(t.LastSyncAt)}
	if err := checkSecretLength("access token", t.AccessToken, true); err != nil {
		return sealedToken{}, err
	}
	if err := checkSecretLength("refresh token", t.RefreshToken, false); err != nil {
		return sealedToken{}, err
	}
	var err error
	if out.tokenType, err = cleanName("token type", strings.TrimSpace(t.TokenType), 64); err != nil {
		return sealedToken{}, err
	}
	if out.tokenType == "" {
		out.tokenType = "Bearer"
	}
	if strings.ContainsFunc(out.tokenType, unicode.IsSpace) {
		return sealedToken{}, fmt.Errorf("%w: token type holds a space", ErrInvalidArgument)
	}
	scope, err := cleanName("scope", strings.TrimSpace(t.Scope), 4096)
	if err != nil {
		return sealedToken{}, err
	}
	out.scope = sql.NullString{String: scope, Valid: scope != ""}
	for _, tm := range [...]struct {
		what string
		t    time.Time
	}{{"expiry", t.ExpiresAt}, {"last sync time", t.LastSyncAt}} {
		if y := tm.t.UTC().Year(); !tm.t.IsZero() && (y < 1 || y > 9999) {
			return sealedToken{}, fmt.Errorf("%w: %s is outside the years 1 to 9999", ErrInvalidArgument, tm.what)
		}
	}
	p := string(provider)
	if out.access, err = db.seal(context.Background(), []byte(t.AccessToken.Reveal()), oauthTokenContext(tenantID, userID, p, accessTokenColumn)); err != nil {
		return sealedToken{}, err
	}
	if !t.RefreshToken.IsZero() {
		if out.refresh, err = db.seal(context.Background(), []byte(t.RefreshToken.Reveal()), oauthTokenContext(tenantID, userID, p, refreshTokenCol)); err != nil {
			return sealedToken{}, err
		}
	}
	return out, nil
}

// apply returns t with the sealed token's plain fields (as stored) and the
// secrets of from.
func (s sealedToken) apply(t OAuthToken, from OAuthToken) OAuthToken {
	t.AccessToken, t.RefreshToken = from.AccessToken, from.RefreshToken
	t.TokenType, t.ExpiresAt, t.Scope, t.LastSyncAt = s.tokenType, s.expiresAt.Time, s.scope.String, s.lastSyncAt.Time
	return t
}

// sameToken reports whether next would store exactly what old holds.
func sameToken(old, next OAuthToken) bool {
	tokenType := strings.TrimSpace(next.TokenType)
	if tokenType == "" {
		tokenType = "Bearer"
	}
	return old.AccessToken.Equal(next.AccessToken) && old.RefreshToken.Equal(next.RefreshToken) &&
		old.TokenType == tokenType && old.Scope == strings.TrimSpace(next.Scope) &&
		old.ExpiresAt.Equal(at(next.ExpiresAt).Time) && old.LastSyncAt.Equal(at(next.LastSyncAt).Time)
}

// OAuthTokens is the handle on the OAuth tokens of one tenant's members, from
// TenantScope.OAuthTokens. Every query it runs filters by the scope's tenant.
//
// Removing a member from the tenant (Members.Remove) or deleting the user
// (Users.Delete) removes the member's tokens in the tenant; deleting the tenant
// removes all of them.
type OAuthTokens struct{ s *TenantScope }

// OAuthTokens returns the handle on this tenant's members' OAuth tokens.
func (s *TenantScope) OAuthTokens() OAuthTokens { return OAuthTokens{s: s} }

// putOAuthTokenSQL is Put's upsert: one statement, so concurrent Puts of one
// user and provider leave one row, the last one's.
const putOAuthTokenSQL = "INSERT INTO user_oauth_tokens (id, tenant_id, user_id, provider, access_token_encrypted, refresh_token_encrypted," +
	" token_type, expires_at, scope, last_sync_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" +
	" ON CONFLICT (tenant_id, user_id, provider) DO UPDATE SET access_token_encrypted = excluded.access_token_encrypted," +
	" refresh_token_encrypted = excluded.refresh_token_encrypted, token_type = excluded.token_type," +
	" expires_at = excluded.expires_at, scope = excluded.scope, last_sync_at = excluded.last_sync_at," +
	" updated_at = excluded.updated_at RETURNING id, created_at"

// Put stores t as the token of user t.UserID at t.Provider, replacing the one
// there is (its id and CreatedAt stay): what a host does after the user
// connects a provider. The user must be a member of this tenant (else
// ErrNotFound); an unknown provider or an invalid field is ErrInvalidArgument.
// To replace a token after a refresh, prefer Update or Refresh, which never
// write back a stale pair.
func (o OAuthTokens) Put(ctx context.Context, t OAuthToken) (_ OAuthToken, err error) {
	db := o.s.db
	defer db.wrap(&err, "put oauth token")
	if err := requireID("user", t.UserID); err != nil {
		return OAuthToken{}, err
	}
	if err := checkProvider(t.Provider); err != nil {
		return OAuthToken{}, err
	}
	st, err := db.sealToken(t, o.s.id, t.UserID, t.Provider)
	if err != nil {
		return OAuthToken{}, err
	}
	now := at(db.now())
	row, err := db.writeRow(ctx, putOAuthTokenSQL, newID(), o.s.id, t.UserID, string(t.Provider), st.access, st.refresh,
		st.tokenType, oauthTimeArg(st.expiresAt), st.scope, oauthTimeArg(st.lastSyncAt), oauthTimeArg(now), oauthTimeArg(now))
	if err != nil {
		return OAuthToken{}, err
	}
	out := st.apply(OAuthToken{TenantID: o.s.id, UserID: t.UserID, Provider: t.Provider, UpdatedAt: now.Time}, t)
	var created dbTime
	if err := row.Scan(&out.ID, &created); err != nil {
		if errors.Is(db.classify(err), ErrConflict) { // the foreign key to tenant_users
			return OAuthToken{}, errNotMember
		}
		return OAuthToken{}, err
	}
	out.CreatedAt = created.Time
	return out, nil
}

// oauthTimeArg is t as an argument of a hand-written statement: its stored
// text, or nil for NULL. pgx encodes a plain string into a TIMESTAMPTZ
// parameter directly, while a driver.Valuer such as dbTime first fails its
// binary encode plans (measured: about 30 allocations per timestamp).
func oauthTimeArg(t dbTime) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

// errNotMember is the ErrNotFound of a user who is not a member of the scope's
// tenant (or of a tenant that does not exist).
var errNotMember = fmt.Errorf("%w: the user is not a member of this tenant", ErrNotFound)

// isMember fails with errNotMember unless userID is a member of tenantID.
func isMember(ctx context.Context, db *Database, tenantID, userID string) error {
	n, err := scanCount(ctx, db, "SELECT count(*) FROM tenant_users WHERE tenant_id = ? AND user_id = ?", tenantID, userID)
	if err == nil && n == 0 {
		err = errNotMember
	}
	return err
}

func noToken(provider Provider) error {
	return fmt.Errorf("%w: the user has no %s token in this tenant", ErrNotFound, provider)
}

var getOAuthTokenSQL = "SELECT " + oauthTokenColumns + " FROM user_oauth_tokens o WHERE o.tenant_id = ? AND o.user_id = ? AND o.provider = ?"

// Get returns the token of userID at provider, or ErrNotFound. A token that
// does not decrypt (changed or copied by hand) is keyring.ErrDecrypt.
func (o OAuthTokens) Get(ctx context.Context, userID string, provider Provider) (_ OAuthToken, err error) {
	db := o.s.db
	defer db.wrap(&err, "get oauth token")
	if err := requireID("user", userID); err != nil {
		return OAuthToken{}, err
	}
	if err := checkProvider(provider); err != nil {
		return OAuthToken{}, err
	}
	t, err := readOne(ctx, db, "oauth token", getOAuthTokenSQL, []any{o.s.id, userID, string(provider)}, db.scanOAuthToken)
	if isNotFound(err) {
		err = noToken(provider)
	}
	return t, err
}

// List returns userID's tokens in this tenant (the providers the user has
// connected), in provider order. A user who is not a member of the tenant is
// ErrNotFound.
func (o OAuthTokens) List(ctx context.Context, userID string) (_ []OAuthToken, err error) {
	db := o.s.db
	defer db.wrap(&err, "list oauth tokens")
	if err := requireID("user", userID); err != nil {
		return nil, err
	}
	rows, err := db.queryRows(ctx, "SELECT "+oauthTokenColumns+" FROM user_oauth_tokens o WHERE o.tenant_id = ? AND o.user_id = ? ORDER BY o.provider",
		o.s.id, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []OAuthToken{}
	for rows.Next() {
		t, err := db.scanOAuthToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, isMember(ctx, db, o.s.id, userID)
	}
	return out, nil
}

// ListExpiring lists the tenant's tokens whose access token expires before
// before (already expired ones included), soonest first, one page at a time:
// the work list of a background refresher. Tokens without an expiry are never
// listed. Keep before fixed while paging.
func (o OAuthTokens) ListExpiring(ctx context.Context, before time.Time, opts ListOptions) (_ Page[OAuthToken], err error) {
	db := o.s.db
	defer db.wrap(&err, "list expiring oauth tokens")
	if before.IsZero() {
		return Page[OAuthToken]{}, fmt.Errorf("%w: the time tokens expire before is required", ErrInvalidArgument)
	}
	limit, err := boundTime("the time tokens expire before", before)
	if err != nil {
		return Page[OAuthToken]{}, err
	}
	page, err := readPage(ctx, db,
		listing{selectFrom: "SELECT " + oauthTokenColumns + " FROM user_oauth_tokens o",
			conds: []string{"o.tenant_id = ?", "o.expires_at < ?"}, args: []any{o.s.id, limit},
			keyset: [2]string{"o.expires_at", "o.id"}},
		opts, db.scanOAuthToken, func(t OAuthToken) (time.Time, string) { return t.ExpiresAt, t.ID })
	if err == nil && len(page.Items) == 0 && opts.Cursor == "" {
		err = tenantExists(ctx, db, o.s.id)
	}
	return page, err
}

// Delete removes userID's token at provider (the user disconnected it).
// No such token is ErrNotFound.
func (o OAuthTokens) Delete(ctx context.Context, userID string, provider Provider) (err error) {
	db := o.s.db
	defer db.wrap(&err, "delete oauth token")
	if err := requireID("user", userID); err != nil {
		return err
	}
	if err := checkProvider(provider); err != nil {
		return err
	}
	n, err := rowsAffected(db.exec(ctx, "DELETE FROM user_oauth_tokens WHERE tenant_id = ? AND user_id = ? AND provider = ?",
		o.s.id, userID, string(provider)))
	if err == nil && n == 0 {
		err = noToken(provider)
	}
	return err
}

// DeleteAll removes every token of userID in this tenant, whatever its
// provider, and returns how many it removed. A user who is not a member of the
// tenant is ErrNotFound; a member without tokens is 0 and no error.
func (o OAuthTokens) DeleteAll(ctx context.Context, userID string) (_ int, err error) {
	db := o.s.db
	defer db.wrap(&err, "delete oauth tokens")
	if err := requireID("user", userID); err != nil {
		return 0, err
	}
	n, err := rowsAffected(db.exec(ctx, "DELETE FROM user_oauth_tokens WHERE tenant_id = ? AND user_id = ?", o.s.id, userID))
	if err == nil && n == 0 {
		err = isMember(ctx, db, o.s.id, userID)
	}
	return int(n), err
}

// Update changes userID's token at provider with a read-modify-write under a
// row lock (dex's UpdateRefreshToken): fn receives the stored token and
// returns the one to store (its UserID and Provider may not change; ID and
// times are ignored). Concurrent Updates of one token run one after the other,
// each fn seeing what the previous one stored, so a stale pair is never
// written back. Returning old unchanged writes nothing; an error from fn
// aborts and is returned as is (wrapped once).
//
// fn runs inside the write transaction: keep it quick and never call the
// provider from it. On SQLite a write transaction holds the database's write
// lock, so a slow fn stalls every write of the process. To refresh a token at
// the provider, use Refresh.
//
// No token is ErrNotFound.
func (o OAuthTokens) Update(ctx context.Context, userID string, provider Provider, fn func(old OAuthToken) (OAuthToken, error)) (_ OAuthToken, err error) {
	db := o.s.db
	defer db.wrap(&err, "update oauth token")
	if err := requireID("user", userID); err != nil {
		return OAuthToken{}, err
	}
	if err := checkProvider(provider); err != nil {
		return OAuthToken{}, err
	}
	if fn == nil {
		return OAuthToken{}, fmt.Errorf("%w: Update needs a function", ErrInvalidArgument)
	}
	var out OAuthToken
	var fnErr error
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var row oauthTokenRow
		err := tx.QueryRowContext(ctx, getOAuthTokenSQL+db.eng.ForUpdate(), o.s.id, userID, string(provider)).Scan(oauthTokenMap.dest(&row)...)
		if isNoRows(err) {
			return noToken(provider)
		}
		if err != nil {
			return err
		}
		old, err := db.oauthToken(&row)
		if err != nil {
			return err
		}
		next, err := fn(old)
		if err != nil {
			fnErr = err
			return err
		}
		if next.UserID != userID || next.Provider != provider {
			return fmt.Errorf("%w: Update may not change the token's user or provider", ErrInvalidArgument)
		}
		if sameToken(old, next) {
			out = old
			return nil
		}
		st, err := db.sealToken(next, o.s.id, userID, provider)
		if err != nil {
			return err
		}
		now := at(db.now())
		_, err = tx.ExecContext(ctx, "UPDATE user_oauth_tokens SET access_token_encrypted = ?, refresh_token_encrypted = ?, token_type = ?,"+
			" expires_at = ?, scope = ?, last_sync_at = ?, updated_at = ? WHERE id = ?",
			st.access, st.refresh, st.tokenType, st.expiresAt, st.scope, st.lastSyncAt, now, row.ID)
		old.UpdatedAt = now.Time
		out = st.apply(old, next)
		return err
	})
	if fnErr != nil {
		return OAuthToken{}, &opError{op: "update oauth token", err: fnErr}
	}
	if err != nil {
		return OAuthToken{}, err
	}
	return out, nil
}

// Refresh changes userID's token at provider optimistically, for a refresh
// that calls the provider: it reads the token, calls fn with it outside any
// transaction of its own (fn may take as long as the provider does; inside
// RunInTx it runs in the host's transaction, which on SQLite holds the write
// lock meanwhile, so call the provider before RunInTx), and stores what fn
// returns only if the stored token has not changed meanwhile (a
// compare-and-swap on the stored access token, which every write replaces).
// When two refreshes race, one stores its pair and the other gets ErrConflict
// and stores nothing: read the token again (Get) to use the winner's pair; a
// stale pair is never written back. Returning old unchanged writes nothing; an
// error from fn is returned as is (wrapped once). fn's UserID and Provider may
// not change.
//
// A write meanwhile that leaves the pair as it was (an Update of the last sync
// time, a data key rotation re-encrypting the token) does not make Refresh
// fail: the swap is retried against the row as it now is. No token is
// ErrNotFound.
func (o OAuthTokens) Refresh(ctx context.Context, userID string, provider Provider, fn func(ctx context.Context, old OAuthToken) (OAuthToken, error)) (_ OAuthToken, err error) {
	db := o.s.db
	defer db.wrap(&err, "refresh oauth token")
	if err := requireID("user", userID); err != nil {
		return OAuthToken{}, err
	}
	if err := checkProvider(provider); err != nil {
		return OAuthToken{}, err
	}
	if fn == nil {
		return OAuthToken{}, fmt.Errorf("%w: Refresh needs a function", ErrInvalidArgument)
	}
	var row oauthTokenRow
	old, err := readOne(ctx, db, "oauth token", getOAuthTokenSQL, []any{o.s.id, userID, string(provider)}, func(r rowScanner) (OAuthToken, error) {
		if err := r.Scan(oauthTokenMap.dest(&row)...); err != nil {
			return OAuthToken{}, err
		}
		return db.oauthToken(&row)
	})
	if isNotFound(err) {
		return OAuthToken{}, noToken(provider)
	}
	if err != nil {
		return OAuthToken{}, err
	}
	next, err := fn(ctx, old)
	if err != nil {
		return OAuthToken{}, &opError{op: "refresh oauth token", err: err}
	}
	if next.UserID != userID || next.Provider != provider {
		return OAuthToken{}, fmt.Errorf("%w: Refresh may not change the token's user or provider", ErrInvalidArgument)
	}
	if sameToken(old, next) {
		return old, nil
	}
	st, err := db.sealToken(next, o.s.id, userID, provider)
	if err != nil {
		return OAuthToken{}, err
	}
	now := at(db.now())
	// The swap compares the stored access token's ciphertext, which every
	// write replaces: also a write that left the pair as it was (Update of the
	// last sync time, a data key rotation). Such a write must not cost the
	// pair the provider has just issued (a used refresh token is gone), so on
	// a miss the row is read again and, if its pair is still old's, the swap
	// is retried against its new ciphertext.
	expected := row.AccessToken
	for attempt := 0; ; attempt++ {
		res, err := db.writeRow(ctx, "UPDATE user_oauth_tokens SET access_token_encrypted = ?, refresh_token_encrypted = ?, token_type = ?,"+
			" expires_at = ?, scope = ?, last_sync_at = ?, updated_at = ? WHERE tenant_id = ? AND id = ? AND access_token_encrypted = ? RETURNING id",
			st.access, st.refresh, st.tokenType, oauthTimeArg(st.expiresAt), st.scope, oauthTimeArg(st.lastSyncAt), oauthTimeArg(now),
			o.s.id, row.ID, expected)
		if err != nil {
			return OAuthToken{}, err
		}
		var id string
		err = res.Scan(&id)
		if err == nil {
			break
		}
		if !isNoRows(err) {
			return OAuthToken{}, err
		}
		// Changed or gone since it was read: say which, or retry.
		var cur oauthTokenRow
		stored, err := readOne(ctx, db, "oauth token", getOAuthTokenSQL, []any{o.s.id, userID, string(provider)}, func(r rowScanner) (OAuthToken, error) {
			if err := r.Scan(oauthTokenMap.dest(&cur)...); err != nil {
				return OAuthToken{}, err
			}
			return db.oauthToken(&cur)
		})
		if isNotFound(err) {
			return OAuthToken{}, noToken(provider)
		}
		if err != nil {
			return OAuthToken{}, err
		}
		if cur.ID != row.ID || !stored.AccessToken.Equal(old.AccessToken) || !stored.RefreshToken.Equal(old.RefreshToken) || attempt == 3 {
			return OAuthToken{}, fmt.Errorf("%w: the token changed while it was refreshed (another refresh won); read it again", ErrConflict)
		}
		expected = cur.AccessToken
	}
	old.UpdatedAt = now.Time
	return st.apply(old, next), nil
}
