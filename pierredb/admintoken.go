package pierredb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/pierredb/internal/credential"
)

// Admin tokens authenticate services (an operator's CLI, a provisioning job, the
// admin routes of package httpserver) to pierre's admin API. They are global: an
// admin token belongs to no tenant, so it has no entry in the tenant isolation
// matrix.
//
// A token is a JWT signed with HS256 under one signing secret per database. The
// secret is 32 random bytes, made on first use and stored sealed under the
// keyring's data key (admin_jwt_secret.secret_encrypted); its keyed hash is
// written beside every token issued under it (admin_tokens.jwt_secret_hash), so
// RotateSigningSecret invalidates every older token at once. What is stored per
// token is a keyed hash of the whole token and its random id (the JWT's jti, in
// token_prefix); the token itself is returned once, by Create, CreateFirst or
// RotateSigningSecret, and never stored.

// AdminPermission is one thing an admin token may do.
type AdminPermission string

// The admin permissions. The set is fixed; a super-admin token holds all of them.
const (
	// AdminProvisionKeys: create API keys for users.
	AdminProvisionKeys AdminPermission = "provision_keys"
	// AdminListKeys: list and read API keys.
	AdminListKeys AdminPermission = "list_keys"
	// AdminRevokeKeys: deactivate and revoke API keys.
	AdminRevokeKeys AdminPermission = "revoke_keys"
	// AdminManageUsers: approve, suspend, reactivate and delete users.
	AdminManageUsers AdminPermission = "manage_users"
	// AdminManageAdminTokens: issue, list and revoke admin tokens (within the
	// issuer's own permissions).
	AdminManageAdminTokens AdminPermission = "manage_admin_tokens"
	// AdminManageTenants: create, change and delete tenants and their members.
	AdminManageTenants AdminPermission = "manage_tenants"
	// AdminManageOAuthApps: manage tenants' OAuth app configurations.
	AdminManageOAuthApps AdminPermission = "manage_oauth_apps"
	// AdminRotateKeys: rotate and retire the keyring's keys.
	AdminRotateKeys AdminPermission = "rotate_keys"
	// AdminViewAudit: read admin token usage (the audit trail).
	AdminViewAudit AdminPermission = "view_audit"
)

// adminPermissions is the fixed set, in its documented (and stored) order.
var adminPermissions = []AdminPermission{
	AdminProvisionKeys, AdminListKeys, AdminRevokeKeys, AdminManageUsers, AdminManageAdminTokens,
	AdminManageTenants, AdminManageOAuthApps, AdminRotateKeys, AdminViewAudit,
}

// AdminPermissions returns every admin permission, in documented order.
func AdminPermissions() []AdminPermission { return slices.Clone(adminPermissions) }

// Valid reports whether p is one of the admin permissions.
func (p AdminPermission) Valid() bool { return slices.Contains(adminPermissions, p) }

// AdminPrincipal is who a verified admin token speaks for: what Verify returns,
// and what Create, Revoke and RotateSigningSecret take as their issuer. Those
// re-read the issuing token's row in their own transaction, so a principal
// built by hand grants nothing its token does not hold.
type AdminPrincipal struct {
	TokenID     string
	ServiceName string
	// Permissions are the token's permissions, in documented order; a
	// super-admin holds every one.
	Permissions []AdminPermission
	SuperAdmin  bool
	// ExpiresAt is when the token expires; zero when it does not.
	ExpiresAt time.Time
}

// Has reports whether the principal holds permission p (a super-admin holds all).
func (p AdminPrincipal) Has(perm AdminPermission) bool {
	return p.SuperAdmin || slices.Contains(p.Permissions, perm)
}

// AdminToken is an admin token as stored. It never holds the token itself.
type AdminToken struct {
	ID          string
	ServiceName string
	Description string
	// Permissions, in documented order; a super-admin's lists every permission.
	Permissions []AdminPermission
	SuperAdmin  bool
	// IsActive is false once the token is revoked (for good).
	IsActive bool
	// Superseded reports a token issued under a signing secret that has been
	// rotated since: it will never verify again.
	Superseded bool
	// JTI is the token's random id (its "jti" claim), kept in clear to tell
	// tokens apart in logs and listings; it authenticates nothing.
	JTI       string
	CreatedAt time.Time
	// ExpiresAt is zero when the token does not expire.
	ExpiresAt time.Time
	// LastUsedAt, LastUsedIP and UsageCount follow RecordUsage: one per admin
	// action recorded. LastUsedAt is zero and LastUsedIP empty until then.
	LastUsedAt time.Time
	LastUsedIP string
	UsageCount int64
}

// Usable reports whether the token can still verify at now: active, not
// superseded and not expired.
func (t AdminToken) Usable(now time.Time) bool {
	return t.IsActive && !t.Superseded && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// CreatedAdminToken is a newly issued admin token: its stored form, and the
// token itself, returned this once.
type CreatedAdminToken struct {
	AdminToken
	// Token is the JWT, returned this once: give Token.Reveal() to its
	// service; pierre keeps only its keyed hash. It redacts itself in every
	// fmt verb, slog and JSON, also inside another type's unexported field.
	Token CredentialSecret
}

// LogValue logs the token's id and service, never the token.
func (c CreatedAdminToken) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", c.ID), slog.String("service", c.ServiceName), slog.Any("token", c.Token))
}

// NewAdminToken is what Create and CreateFirst need.
type NewAdminToken struct {
	// ServiceName names the service that will use the token (required, at most
	// 200 bytes, nothing hidden).
	ServiceName string
	// Description is optional, at most 500 bytes.
	Description string
	// Permissions are what the token may do (at least one, each from the fixed
	// set, duplicates ignored). A super-admin token holds every permission and
	// this list is ignored.
	Permissions []AdminPermission
	// SuperAdmin makes a token that holds every permission and may issue
	// super-admin tokens. Only a super-admin may issue one.
	SuperAdmin bool
	// ExpiresIn or ExpiresAt (at most one) sets an expiry, kept to the whole
	// second (a JWT's exp is in seconds); neither means the token does not
	// expire.
	ExpiresIn time.Duration
	ExpiresAt time.Time
}

// Text bounds of admin tokens.
const (
	maxAdminDescription = 500
	maxAdminLifetime    = 100 * 365 * 24 * time.Hour
)

// adminTokenRow is the admin_tokens table.
type adminTokenRow struct {
	bun.BaseModel `bun:"table:admin_tokens"`

	ID                 string         `bun:"id,pk"`
	ServiceName        string         `bun:"service_name"`
	ServiceDescription sql.NullString `bun:"service_description"`
	TokenHash          string         `bun:"token_hash"`
	TokenPrefix        string         `bun:"token_prefix"`
	JWTSecretHash      string         `bun:"jwt_secret_hash"`
	Permissions        string         `bun:"permissions"`
	IsSuperAdmin       bool           `bun:"is_super_admin"`
	IsActive           bool           `bun:"is_active"`
	CreatedAt          dbTime         `bun:"created_at"`
	ExpiresAt          dbTime         `bun:"expires_at"`
	LastUsedAt         dbTime         `bun:"last_used_at"`
	LastUsedIP         sql.NullString `bun:"last_used_ip"`
	UsageCount         int64          `bun:"usage_count"`
}

// adminTokenMap reads every column but the token's hash.
var (
	adminTokenMap     = mapRow[adminTokenRow]("token_hash")
	adminTokenColumns = adminTokenMap.columns("t")
	// adminTokenFrom joins the one secret row, so that each read says whether
	// the token was issued under the current signing secret.
	adminTokenFrom = " FROM admin_tokens t LEFT JOIN admin_jwt_secret s ON s.id = 1"
)

func (r *adminTokenRow) token(currentSecretHash sql.NullString) AdminToken {
	return AdminToken{
		ID: r.ID, ServiceName: r.ServiceName, Description: r.ServiceDescription.String,
		Permissions: parsePermissions(r.Permissions, r.IsSuperAdmin), SuperAdmin: r.IsSuperAdmin, IsActive: r.IsActive,
		Superseded: !currentSecretHash.Valid || currentSecretHash.String != r.JWTSecretHash,
		JTI:        r.TokenPrefix, CreatedAt: r.CreatedAt.Time, ExpiresAt: r.ExpiresAt.Time,
		LastUsedAt: r.LastUsedAt.Time, LastUsedIP: r.LastUsedIP.String, UsageCount: r.UsageCount,
	}
}

// adminTokenScanner reads adminTokenColumns and the current secret's hash into
// one reused row.
type adminTokenScanner struct {
	row     adminTokenRow
	current sql.NullString
	dest    []any
}

func newAdminTokenScanner() *adminTokenScanner {
	s := &adminTokenScanner{}
	s.dest = adminTokenMap.dest(&s.row, &s.current)
	return s
}

func (s *adminTokenScanner) scan(r rowScanner) (AdminToken, error) {
	s.row, s.current = adminTokenRow{}, sql.NullString{}
	if err := r.Scan(s.dest...); err != nil {
		return AdminToken{}, err
	}
	return s.row.token(s.current), nil
}

// formatPermissions is the stored form: a JSON array in documented order, as
// the seed schema keeps it ('["provision_keys"]').
func formatPermissions(perms []AdminPermission) string {
	b, _ := json.Marshal(perms) // strings only: cannot fail
	return string(b)
}

// parsePermissions reads the stored form. Names outside the fixed set (a row
// edited by hand) grant nothing and are dropped; a super-admin holds all.
func parsePermissions(stored string, super bool) []AdminPermission {
	if super {
		return slices.Clone(adminPermissions)
	}
	var names []string
	if err := json.Unmarshal([]byte(stored), &names); err != nil {
		return nil
	}
	out := make([]AdminPermission, 0, len(names))
	for _, p := range adminPermissions {
		if slices.Contains(names, string(p)) {
			out = append(out, p)
		}
	}
	return out
}

// cleanPermissions checks requested permissions and returns them deduplicated
// in documented order.
func cleanPermissions(perms []AdminPermission, super bool) ([]AdminPermission, error) {
	if super {
		return slices.Clone(adminPermissions), nil
	}
	if len(perms) > 4*len(adminPermissions) {
		return nil, fmt.Errorf("%w: too many permissions listed", ErrInvalidArgument)
	}
	for _, p := range perms {
		if !p.Valid() {
			return nil, fmt.Errorf("%w: %q is not an admin permission; use one of %s", ErrInvalidArgument, shorten(string(p)), permissionNames())
		}
	}
	out := make([]AdminPermission, 0, len(perms))
	for _, p := range adminPermissions {
		if slices.Contains(perms, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: an admin token needs at least one permission", ErrInvalidArgument)
	}
	return out, nil
}

func permissionNames() string {
	names := make([]string, len(adminPermissions))
	for i, p := range adminPermissions {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// newAdminTokenRow validates nt and returns the row to insert (without its
// token hash and secret hash, which issuing fills in).
func (db *Database) newAdminTokenRow(nt NewAdminToken, super bool) (adminTokenRow, error) {
	svc, err := cleanServiceName(nt.ServiceName)
	if err != nil {
		return adminTokenRow{}, err
	}
	desc, err := cleanName("description", strings.TrimSpace(nt.Description), maxAdminDescription)
	if err != nil {
		return adminTokenRow{}, err
	}
	for _, f := range [][2]string{{"service name", svc}, {"description", desc}} {
		if looksSecret(f[1]) {
			return adminTokenRow{}, fmt.Errorf("%w: the %s looks like it holds a token or key; never put a secret in it", ErrInvalidArgument, f[0])
		}
	}
	perms, err := cleanPermissions(nt.Permissions, super)
	if err != nil {
		return adminTokenRow{}, err
	}
	now := at(db.now())
	expires, err := adminExpiry(now.Time, nt.ExpiresIn, nt.ExpiresAt)
	if err != nil {
		return adminTokenRow{}, err
	}
	return adminTokenRow{
		ID: newID(), ServiceName: svc, ServiceDescription: sql.NullString{String: desc, Valid: desc != ""},
		TokenPrefix: credential.Random(22), Permissions: formatPermissions(perms), IsSuperAdmin: super,
		IsActive: true, CreatedAt: now, ExpiresAt: expires,
	}, nil
}

// adminExpiry turns ExpiresIn / ExpiresAt into the stored expiry, truncated to
// the second so that the row and the JWT's exp agree.
func adminExpiry(now time.Time, in time.Duration, atTime time.Time) (dbTime, error) {
	switch {
	case in != 0 && !atTime.IsZero():
		return dbTime{}, fmt.Errorf("%w: set ExpiresIn or ExpiresAt, not both", ErrInvalidArgument)
	case in < 0:
		return dbTime{}, fmt.Errorf("%w: ExpiresIn is negative", ErrInvalidArgument)
	case in > maxAdminLifetime:
		return dbTime{}, fmt.Errorf("%w: ExpiresIn is longer than 100 years; leave it zero for a token that does not expire", ErrInvalidArgument)
	case in > 0:
		atTime = now.Add(in)
	case atTime.IsZero():
		return dbTime{}, nil
	}
	atTime = atTime.UTC().Truncate(time.Second)
	if !atTime.After(now) {
		return dbTime{}, fmt.Errorf("%w: the expiry is not in the future (it is kept to the whole second)", ErrInvalidArgument)
	}
	if atTime.Sub(now) > maxAdminLifetime {
		return dbTime{}, fmt.Errorf("%w: the expiry is more than 100 years away; leave it zero for a token that does not expire", ErrInvalidArgument)
	}
	return at(atTime), nil
}

// AdminTokens is the handle on admin tokens, from Database.AdminTokens. Admin
// tokens are global (no tenant). It is a small value; get it whenever needed.
type AdminTokens struct{ db *Database }

// AdminTokens returns the handle on admin tokens.
func (db *Database) AdminTokens() AdminTokens { return AdminTokens{db: db} }

// lockAdminTokens serialises every change to admin tokens and their signing
// secret (issuing, revoking, rotating, the first token) until tx ends: admin
// tokens change rarely, and one lock makes "the first super-admin" and "the last
// super-admin" races impossible without reasoning about lock order.
func lockAdminTokens(ctx context.Context, db *Database, tx bun.Tx) error {
	return db.eng.LockName(ctx, tx, "admin_tokens")
}

// issuerStanding reads the issuing token's row inside tx and checks that it can
// still act: it exists, is active, unexpired and issued under the current
// secret, and holds need. It returns the issuer's row.
func issuerStanding(ctx context.Context, db *Database, tx bun.Tx, issuer AdminPrincipal, sec *adminSecret, need AdminPermission) (*adminTokenRow, error) {
	var r adminTokenRow
	err := tx.NewSelect().Model(&r).Where("id = ?", issuer.TokenID).Scan(ctx)
	if isNoRows(err) {
		return nil, fmt.Errorf("%w: the issuing admin token does not exist", ErrPermissionDenied)
	}
	if err != nil {
		return nil, err
	}
	now := db.now()
	switch {
	case !r.IsActive:
		return nil, fmt.Errorf("%w: the issuing admin token is revoked", ErrPermissionDenied)
	case !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt.Time):
		return nil, fmt.Errorf("%w: the issuing admin token has expired", ErrPermissionDenied)
	case r.JWTSecretHash != sec.hash:
		return nil, fmt.Errorf("%w: the issuing admin token was issued before the signing secret was rotated", ErrPermissionDenied)
	}
	if need != "" && !r.IsSuperAdmin && !slices.Contains(parsePermissions(r.Permissions, false), need) {
		return nil, fmt.Errorf("%w: the issuing admin token does not hold the %s permission", ErrPermissionDenied, need)
	}
	return &r, nil
}

// Create issues an admin token on behalf of issuer, a token that Verify
// accepted. The issuer's row is re-read in the same transaction: it must be
// active, unexpired, issued under the current signing secret and hold
// manage_admin_tokens; only a super-admin may issue a super-admin token, and an
// issuer may grant only permissions it holds (ErrPermissionDenied otherwise).
// The token is in the result, once.
func (a AdminTokens) Create(ctx context.Context, issuer AdminPrincipal, nt NewAdminToken) (_ CreatedAdminToken, err error) {
	db := a.db
	defer db.wrap(&err, "create admin token")
	if err := requireID("issuing admin token", issuer.TokenID); err != nil {
		return CreatedAdminToken{}, err
	}
	row, err := db.newAdminTokenRow(nt, nt.SuperAdmin)
	if err != nil {
		return CreatedAdminToken{}, err
	}
	var created CreatedAdminToken
	var sec *adminSecret
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockAdminTokens(ctx, db, tx); err != nil {
			return err
		}
		if sec, err = db.lockAdminSecret(ctx, tx); err != nil {
			return err
		}
		iss, err := issuerStanding(ctx, db, tx, issuer, sec, AdminManageAdminTokens)
		if err != nil {
			return err
		}
		if row.IsSuperAdmin && !iss.IsSuperAdmin {
			return fmt.Errorf("%w: only a super-admin token may issue a super-admin token", ErrPermissionDenied)
		}
		if p, ok := beyond(iss, row.Permissions); !ok {
			return fmt.Errorf("%w: the issuing admin token does not hold %s, so it cannot grant it", ErrPermissionDenied, p)
		}
		created, err = db.issueAdminToken(ctx, tx, &row, sec)
		return err
	})
	if err != nil {
		return CreatedAdminToken{}, err
	}
	db.adminState().remember(sec)
	return created, nil
}

// beyond reports the first of perms (a token's stored permissions) that iss
// does not hold, and false, when there is one: a token that is not a
// super-admin's issues and revokes only within its own permissions.
func beyond(iss *adminTokenRow, perms string) (AdminPermission, bool) {
	if iss.IsSuperAdmin {
		return "", true
	}
	held := parsePermissions(iss.Permissions, false)
	for _, p := range parsePermissions(perms, false) {
		if !slices.Contains(held, p) {
			return p, false
		}
	}
	return "", true
}

// CreateFirst issues the first super-admin token, without an issuer, for a
// setup route. "First" means that no super-admin token is usable: none is
// active, unexpired and issued under the current signing secret. It is
// race-free (a named lock in one transaction): of concurrent callers exactly one
// succeeds and the others get ErrAlreadyExists. NewAdminToken.SuperAdmin and
// Permissions are ignored (the token holds every permission).
//
// Revoke refuses to revoke the last usable super-admin token and
// RotateSigningSecret issues a replacement, so CreateFirst stays closed once it
// has run, unless every super-admin token expires: then it opens again. Give
// super-admin tokens no expiry, or protect the route that calls CreateFirst.
func (a AdminTokens) CreateFirst(ctx context.Context, nt NewAdminToken) (_ CreatedAdminToken, err error) {
	db := a.db
	defer db.wrap(&err, "create first admin token")
	row, err := db.newAdminTokenRow(nt, true)
	if err != nil {
		return CreatedAdminToken{}, err
	}
	var created CreatedAdminToken
	var sec *adminSecret
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockAdminTokens(ctx, db, tx); err != nil {
			return err
		}
		if sec, err = db.lockAdminSecret(ctx, tx); err != nil {
			return err
		}
		n, err := usableSuperAdmins(ctx, db, tx, sec, "")
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: a super-admin token exists already; use it to issue others", ErrAlreadyExists)
		}
		created, err = db.issueAdminToken(ctx, tx, &row, sec)
		return err
	})
	if err != nil {
		return CreatedAdminToken{}, err
	}
	db.adminState().remember(sec)
	return created, nil
}

// usableSuperAdmins counts the super-admin tokens that can still verify, but
// the one with id except. It reads every super-admin row: admin tokens are
// few, and this runs only in the rare transactions that change them.
func usableSuperAdmins(ctx context.Context, db *Database, tx bun.Tx, sec *adminSecret, except string) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM admin_tokens WHERE is_super_admin = ? AND is_active = ?"+
		" AND jwt_secret_hash = ? AND (expires_at IS NULL OR expires_at > ?) AND id <> ?",
		true, true, sec.hash, at(db.now()), except).Scan(&n)
	return n, err
}

// issueAdminToken signs row's token under sec, stores the row with the
// token's keyed hash and the secret's hash, and returns the token.
func (db *Database) issueAdminToken(ctx context.Context, tx bun.Tx, row *adminTokenRow, sec *adminSecret) (CreatedAdminToken, error) {
	token, err := db.signAdminToken(ctx, row, sec)
	if err != nil {
		return CreatedAdminToken{}, err
	}
	row.TokenHash = db.hashCredential(ctx, adminTokenHashDomain, []byte(token))
	row.JWTSecretHash = sec.hash
	if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
		return CreatedAdminToken{}, db.reword(err, ErrAlreadyExists, "an admin token with that id exists; try again")
	}
	return CreatedAdminToken{AdminToken: row.token(sql.NullString{String: sec.hash, Valid: true}), Token: newCredentialSecret(token)}, nil
}

// Get returns the admin token with id, or ErrNotFound.
func (a AdminTokens) Get(ctx context.Context, id string) (_ AdminToken, err error) {
	defer a.db.wrap(&err, "get admin token")
	if err := requireID("admin token", id); err != nil {
		return AdminToken{}, err
	}
	return readOne(ctx, a.db, "admin token", "SELECT "+adminTokenColumns+", s.secret_hash"+adminTokenFrom+" WHERE t.id = ?",
		[]any{id}, newAdminTokenScanner().scan)
}

// List lists admin tokens, revoked and superseded ones included, oldest first,
// one page at a time.
func (a AdminTokens) List(ctx context.Context, o ListOptions) (_ Page[AdminToken], err error) {
	defer a.db.wrap(&err, "list admin tokens")
	scanner := newAdminTokenScanner()
	return readPage(ctx, a.db,
		listing{selectFrom: "SELECT " + adminTokenColumns + ", s.secret_hash" + adminTokenFrom, keyset: [2]string{"t.created_at", "t.id"}},
		o, scanner.scan, func(t AdminToken) (time.Time, string) { return t.CreatedAt, t.ID })
}

// Revoke revokes the admin token with id, for good: it never verifies again.
// The issuer must be able to act (see Create) and hold manage_admin_tokens;
// only a super-admin may revoke a super-admin token, and the last usable
// super-admin token cannot be revoked (ErrConflict: issue another first), so
// that CreateFirst does not open again. Revoking a revoked token changes
// nothing and returns it.
func (a AdminTokens) Revoke(ctx context.Context, issuer AdminPrincipal, id string) (_ AdminToken, err error) {
	db := a.db
	defer db.wrap(&err, "revoke admin token")
	if err := requireID("issuing admin token", issuer.TokenID); err != nil {
		return AdminToken{}, err
	}
	if err := requireID("admin token", id); err != nil {
		return AdminToken{}, err
	}
	var out AdminToken
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockAdminTokens(ctx, db, tx); err != nil {
			return err
		}
		sec, err := db.lockAdminSecret(ctx, tx)
		if err != nil {
			return err
		}
		iss, err := issuerStanding(ctx, db, tx, issuer, sec, AdminManageAdminTokens)
		if err != nil {
			return err
		}
		var r adminTokenRow
		if err := tx.NewSelect().Model(&r).Where("id = ?", id).Scan(ctx); err != nil {
			return errOr(notFoundIfNoRows(err, "admin token"), err)
		}
		current := sql.NullString{String: sec.hash, Valid: true}
		if !r.IsActive {
			out = r.token(current)
			return nil
		}
		if r.IsSuperAdmin && !iss.IsSuperAdmin {
			return fmt.Errorf("%w: only a super-admin token may revoke a super-admin token", ErrPermissionDenied)
		}
		if p, ok := beyond(iss, r.Permissions); !ok {
			return fmt.Errorf("%w: the revoking admin token does not hold %s, so it cannot revoke a token that does", ErrPermissionDenied, p)
		}
		if tok := r.token(current); tok.SuperAdmin && tok.Usable(db.now()) {
			n, err := usableSuperAdmins(ctx, db, tx, sec, r.ID)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%w: this is the last usable super-admin token; issue another super-admin token first", ErrConflict)
			}
		}
		if _, err := tx.NewUpdate().Table("admin_tokens").Set("is_active = ?", false).Where("id = ?", id).Exec(ctx); err != nil {
			return err
		}
		r.IsActive = false
		out = r.token(current)
		return nil
	})
	if err != nil {
		return AdminToken{}, err
	}
	return out, nil
}

// RotateSigningSecret replaces the signing secret, which invalidates every
// admin token issued before, on every instance at once (each verification
// compares the token's secret hash with the current one). The issuer must be a
// usable super-admin token; it is re-issued under the new secret (same service,
// description, permissions and expiry) and that replacement is returned, so that
// the caller keeps access and CreateFirst stays closed. Every other service
// needs a new token.
func (a AdminTokens) RotateSigningSecret(ctx context.Context, issuer AdminPrincipal) (_ CreatedAdminToken, err error) {
	db := a.db
	defer db.wrap(&err, "rotate admin token signing secret")
	if err := requireID("issuing admin token", issuer.TokenID); err != nil {
		return CreatedAdminToken{}, err
	}
	var created CreatedAdminToken
	var old, fresh *adminSecret
	err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockAdminTokens(ctx, db, tx); err != nil {
			return err
		}
		if old, err = db.lockAdminSecret(ctx, tx); err != nil {
			return err
		}
		iss, err := issuerStanding(ctx, db, tx, issuer, old, "")
		if err != nil {
			return err
		}
		if !iss.IsSuperAdmin {
			return fmt.Errorf("%w: only a super-admin token may rotate the signing secret", ErrPermissionDenied)
		}
		if fresh, err = db.replaceAdminSecret(ctx, tx); err != nil {
			return err
		}
		row := adminTokenRow{
			ID: newID(), ServiceName: iss.ServiceName, ServiceDescription: iss.ServiceDescription,
			TokenPrefix: credential.Random(22), Permissions: iss.Permissions, IsSuperAdmin: true, IsActive: true,
			CreatedAt: at(db.now()), ExpiresAt: iss.ExpiresAt,
		}
		created, err = db.issueAdminToken(ctx, tx, &row, fresh)
		return err
	})
	if err != nil {
		return CreatedAdminToken{}, err
	}
	st := db.adminState()
	st.forget(ctx, db, old)
	st.remember(fresh)
	return created, nil
}
