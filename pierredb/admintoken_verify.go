package pierredb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/keyring"
)

// How an admin token is made and checked.
//
// The JWT's header names its signing secret in "kid": a fingerprint of the
// secret (an unkeyed hash: it reveals nothing about 256 random bits) and a MAC
// of that fingerprint under the keyring's hashing key. Each instance caches the
// decrypted secret. A token whose fingerprint is the cached secret's is checked
// with no query before its row is read. A token that names another secret makes
// the instance re-read the secret row (another instance may have rotated it)
// only if the kid's MAC verifies, which only this database's keyring can make:
// a forged or mutated token never reads the secret row or a token row (one
// whose kid names a hashing key version newer than the loaded ones can make
// the instance re-read its keyring, at most once a second, as any envelope of
// an unknown newer version can), and a genuine kid of a rotated-out secret
// causes one re-read per instance, ever (its fingerprint is remembered). The query that reads a token's row also reads the current
// secret's hash: a token of an older secret, verified by an instance whose cache
// is stale, is refused there and the cache is dropped.

const (
	// Domains of the keyed hashes (keyring.HashCredential) admin tokens use.
	adminTokenHashDomain  = "admin_token"      // admin_tokens.token_hash: the whole token
	adminSecretHashDomain = "admin_jwt_secret" // admin_jwt_secret.secret_hash, copied to jwt_secret_hash
	adminKidDomain        = "admin_jwt_kid"    // the MAC in a token's kid header

	adminIssuer   = "pierre"
	adminAudience = "pierre-admin"

	// maxAdminTokenLength bounds what Verify parses. Pierre's tokens are about
	// 370 bytes, and under 2 KiB with the longest service name (200 bytes that
	// JSON escapes six-fold).
	maxAdminTokenLength = 4096
	adminSecretSize     = 32
	adminFingerprintLen = 12 // base64url of 9 bytes
	maxAdminKidLength   = adminFingerprintLen + 1 + 64
	// maxRetiredSecrets bounds the fingerprints of rotated-out secrets an
	// instance remembers; past it the set starts again (at worst one more re-read
	// per rotated-out secret).
	maxRetiredSecrets = 256
	// retiredFor is how long an instance trusts that a fingerprint is rotated
	// out: a genuine kid of an old secret costs at most one re-read per minute,
	// and an instance follows a database restored from a backup within a minute.
	retiredFor = time.Minute
)

// adminSecretContext binds the sealed secret to its table, column and row.
func adminSecretContext(id string) keyring.Context {
	return keyring.Context{Table: "admin_jwt_secret", Column: "secret_encrypted", RowID: id}
}

// The signing secret is a sealed column (data key rotation re-encrypts it; its
// hash does not change); a token's hash is a credential hash (a hashing key
// version is not retired while a token hashed under it remains).
var (
	_ = registerSealed(sealedColumn{table: "admin_jwt_secret", column: "secret_encrypted", keys: []string{"id"},
		context: func(keys []string) keyring.Context { return adminSecretContext(keys[0]) }})
	_ = registerHashed(hashedColumn{table: "admin_tokens", column: "token_hash"})
)

// adminSecret is a decrypted signing secret.
type adminSecret struct {
	key  []byte
	fp   string // names the secret in a token's kid
	hash string // admin_jwt_secret.secret_hash as stored
}

func newAdminSecret(key []byte, hash string) *adminSecret {
	sum := sha256.Sum256(append([]byte("pierre/admin-jwt/fingerprint/v1\x00"), key...))
	return &adminSecret{key: key, fp: base64.RawURLEncoding.EncodeToString(sum[:9]), hash: hash}
}

// adminState is what a Database keeps in memory for admin tokens.
type adminState struct {
	parser *jwt.Parser
	secret atomic.Pointer[adminSecret] // the secret as last read; nil before

	mu      sync.Mutex           // serialises re-reads of the secret
	retired map[string]time.Time // fingerprints of secrets found rotated out, and when
}

// adminState is built on first use: a Database that never sees an admin token
// pays nothing.
func (db *Database) adminState() *adminState {
	db.adminOnce.Do(func() {
		db.admin = &adminState{
			parser: jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithStrictDecoding(),
				jwt.WithTimeFunc(db.now), jwt.WithIssuer(adminIssuer), jwt.WithAudience(adminAudience)),
			retired: map[string]time.Time{},
		}
	})
	return db.admin
}

// remember makes s the cached secret.
func (st *adminState) remember(s *adminSecret) {
	if s != nil {
		st.secret.Store(s)
	}
}

// forget drops s from the cache and remembers that it is rotated out.
func (st *adminState) forget(ctx context.Context, db *Database, s *adminSecret) {
	if s == nil {
		return
	}
	st.secret.CompareAndSwap(s, nil)
	st.mu.Lock()
	st.retire(ctx, db, s.fp)
	st.mu.Unlock()
}

// retire remembers that fp is rotated out; st.mu is held. Inside a host's
// transaction (RunInTx) nothing is remembered: what the transaction saw may
// be rolled back.
func (st *adminState) retire(ctx context.Context, db *Database, fp string) {
	if _, inTx := db.txFrom(ctx); inTx {
		return
	}
	if len(st.retired) >= maxRetiredSecrets {
		clear(st.retired)
	}
	st.retired[fp] = time.Now()
}

// isRetired reports a fingerprint found rotated out within retiredFor; st.mu
// is held.
func (st *adminState) isRetired(fp string) bool {
	at, ok := st.retired[fp]
	return ok && time.Since(at) < retiredFor
}

// errAdminToken is every refusal of a token that is malformed, forged, unknown
// or wrong: they all read the same.
var errAdminToken = fmt.Errorf("%w: the admin token is not valid; check it, or issue a new one", ErrInvalidCredential)

// storeError carries an error of the store (a failed query) out of the JWT
// parser, so that it is not mistaken for a bad token.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// keyFor returns the secret that t's kid names, re-reading the secret row only
// when the kid is genuine and names another secret than the cached one.
func (st *adminState) keyFor(ctx context.Context, db *Database, t *jwt.Token) (*adminSecret, error) {
	kid, _ := t.Header["kid"].(string)
	fp, mac, ok := strings.Cut(kid, ".")
	if t.Method != jwt.SigningMethodHS256 || !ok || len(fp) != adminFingerprintLen || len(kid) > maxAdminKidLength {
		return nil, errAdminToken
	}
	if s := st.secret.Load(); s != nil && s.fp == fp {
		return s, nil
	}
	if genuine, err := db.verifyCredential(ctx, adminKidDomain, []byte(fp), "hmac-sha256$"+mac); err != nil || !genuine {
		return nil, errAdminToken
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if s := st.secret.Load(); s != nil && s.fp == fp {
		return s, nil // another goroutine re-read it meanwhile
	}
	if st.isRetired(fp) {
		return nil, errAdminToken
	}
	s, err := db.readAdminSecret(ctx, nil)
	if err != nil {
		return nil, &storeError{err}
	}
	if s != nil {
		st.secret.Store(s)
	}
	if s == nil || s.fp != fp {
		// The token was issued (so its secret committed) before this read: a
		// secret that is not current now has been rotated out for good.
		st.retire(ctx, db, fp)
		return nil, errAdminToken
	}
	return s, nil
}

// readAdminSecret reads and decrypts the signing secret, through tx when
// given; nil when there is none. A secret whose hash is the cached one's is not
// decrypted again.
func (db *Database) readAdminSecret(ctx context.Context, tx bun.IDB) (*adminSecret, error) {
	const q = "SELECT secret_encrypted, secret_hash FROM admin_jwt_secret WHERE id = 1"
	var env []byte
	var hash string
	var err error
	if tx != nil {
		err = tx.QueryRowContext(ctx, q).Scan(&env, &hash)
	} else {
		var row *sql.Row
		if row, err = db.queryRow(ctx, q); err == nil {
			err = row.Scan(&env, &hash)
		}
	}
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if s := db.adminState().secret.Load(); s != nil && s.hash == hash {
		return s, nil
	}
	key, err := db.unseal(ctx, env, adminSecretContext("1"))
	if err != nil {
		return nil, fmt.Errorf("decrypt the admin token signing secret: %w", err)
	}
	if len(key) < adminSecretSize {
		return nil, fmt.Errorf("%w: the stored admin token signing secret is shorter than %d bytes", keyring.ErrDecrypt, adminSecretSize)
	}
	return newAdminSecret(key, hash), nil
}

// lockAdminSecret returns the current signing secret inside tx (which holds
// lockAdminTokens), making it when there is none: insert-if-absent, then
// re-read, so that instances starting together agree on one secret.
func (db *Database) lockAdminSecret(ctx context.Context, tx bun.Tx) (*adminSecret, error) {
	s, err := db.readAdminSecret(ctx, tx)
	if err != nil || s != nil {
		return s, err
	}
	env, hash, err := db.sealNewAdminSecret(ctx)
	if err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO admin_jwt_secret (id, secret_encrypted, secret_hash, created_at) VALUES (1, ?, ?, ?)"+
		" ON CONFLICT (id) DO NOTHING", env, hash, at(db.now()))
	if err != nil {
		return nil, err
	}
	if s, err = db.readAdminSecret(ctx, tx); err == nil && s == nil {
		err = fmt.Errorf("%w: the admin token signing secret vanished as it was made; try again", ErrConflict)
	}
	return s, err
}

// sealNewAdminSecret makes a secret and returns it sealed, with its hash.
func (db *Database) sealNewAdminSecret(ctx context.Context) (env []byte, hash string, err error) {
	key := make([]byte, adminSecretSize)
	if _, err := rand.Read(key); err != nil {
		return nil, "", err
	}
	env, err = db.seal(ctx, key, adminSecretContext("1"))
	if err != nil {
		return nil, "", err
	}
	return env, db.hashCredential(ctx, adminSecretHashDomain, key), nil
}

// replaceAdminSecret replaces the signing secret inside tx and returns the new
// one.
func (db *Database) replaceAdminSecret(ctx context.Context, tx bun.Tx) (*adminSecret, error) {
	env, hash, err := db.sealNewAdminSecret(ctx)
	if err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, "UPDATE admin_jwt_secret SET secret_encrypted = ?, secret_hash = ?, rotated_at = ? WHERE id = 1",
		env, hash, at(db.now()))
	if err != nil {
		return nil, err
	}
	return db.readAdminSecret(ctx, tx)
}

// adminClaims are an admin token's claims: the registered ones (iss, aud, sub =
// the token's id, jti = its random id, iat, exp when it expires) and the
// service's name.
type adminClaims struct {
	Service string `json:"svc"`
	jwt.RegisteredClaims
}

// signAdminToken makes row's token under sec.
func (db *Database) signAdminToken(ctx context.Context, row *adminTokenRow, sec *adminSecret) (string, error) {
	claims := adminClaims{Service: row.ServiceName, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: adminIssuer, Audience: jwt.ClaimStrings{adminAudience}, Subject: row.ID, ID: row.TokenPrefix,
		IssuedAt: jwt.NewNumericDate(row.CreatedAt.Time),
	}}
	if !row.ExpiresAt.IsZero() {
		claims.ExpiresAt = jwt.NewNumericDate(row.ExpiresAt.Time)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	mac := db.hashCredential(ctx, adminKidDomain, []byte(sec.fp))
	t.Header["kid"] = sec.fp + "." + strings.TrimPrefix(mac, "hmac-sha256$")
	return t.SignedString(sec.key)
}

// parseAdminToken checks a token's shape, algorithm, signature and claims
// (expiry with the store's clock). Only a token whose kid is genuine and names
// another secret than the cached one can make it read the secret row (see
// keyFor; a kid naming an unknown newer hashing key version can make it
// re-read the keyring, at most once a second).
func (st *adminState) parseAdminToken(ctx context.Context, db *Database, token string) (*adminClaims, *adminSecret, error) {
	if len(token) < 16 || len(token) > maxAdminTokenLength {
		return nil, nil, errAdminToken
	}
	var claims adminClaims
	var used *adminSecret
	_, err := st.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		s, err := st.keyFor(ctx, db, t)
		if err != nil {
			return nil, err
		}
		used = s
		return s.key, nil
	})
	var se *storeError
	switch {
	case err == nil:
	case errors.As(err, &se):
		return nil, nil, se.err
	case errors.Is(err, jwt.ErrTokenExpired) && used != nil:
		return nil, nil, fmt.Errorf("%w: the admin token expired; issue a new one", ErrExpired)
	default:
		return nil, nil, errAdminToken
	}
	if requireID("admin token", claims.Subject) != nil || claims.ID == "" {
		return nil, nil, errAdminToken
	}
	return &claims, used, nil
}

// adminVerifySQL reads what Verify needs of a token's row, and the current
// secret's hash, in one round trip.
const adminVerifySQL = "SELECT t.service_name, t.permissions, t.is_super_admin, t.is_active, t.expires_at," +
	" t.token_hash, t.jwt_secret_hash, s.secret_hash" + " FROM admin_tokens t LEFT JOIN admin_jwt_secret s ON s.id = 1 WHERE t.id = ?"

// adminVerifyRow is one row of adminVerifySQL.
type adminVerifyRow struct {
	service, permissions  string
	super, active         bool
	expires               dbTime
	tokenHash, secretHash string
	current               sql.NullString
}

func (db *Database) lookupAdminToken(ctx context.Context, id string) (adminVerifyRow, error) {
	var r adminVerifyRow
	row, err := db.queryRow(ctx, adminVerifySQL, id)
	if err == nil {
		err = row.Scan(&r.service, &r.permissions, &r.super, &r.active, &r.expires, &r.tokenHash, &r.secretHash, &r.current)
	}
	return r, err
}

// Verify checks an admin token and returns the principal it speaks for, when it
// holds need ("" asks for no permission). The checks run in this order, and the
// first that fails decides the error:
//
//  1. shape, algorithm (HS256 only: "none" and every other algorithm are
//     refused), the signing secret named by the token and the signature:
//     ErrInvalidCredential, before the token's row is read;
//  2. expiry, by the store's clock: ErrExpired;
//  3. the token's row exists and is active: ErrRevoked (a deleted row reads as
//     revoked; only pierre can sign a token, so the row did exist);
//  4. the keyed hash of the whole token, compared in constant time:
//     ErrInvalidCredential;
//  5. the token was issued under the current signing secret: ErrInvalidCredential,
//     as on an instance that has seen the rotation, where such a token fails
//     step 1 (the old secret is gone, so its signature cannot be told from a
//     forgery);
//  6. the permission: ErrPermissionDenied, returned with the principal, so that
//     the caller can record the refused action (RecordUsage).
//
// Unknown, forged and wrong tokens all give the same ErrInvalidCredential.
// Verify writes nothing: RecordUsage keeps the token's usage.
func (a AdminTokens) Verify(ctx context.Context, token string, need AdminPermission) (_ AdminPrincipal, err error) {
	db := a.db
	defer db.wrap(&err, "verify admin token")
	if need != "" && !need.Valid() {
		return AdminPrincipal{}, fmt.Errorf("%w: %q is not an admin permission", ErrInvalidArgument, shorten(string(need)))
	}
	st := db.adminState()
	claims, sec, err := st.parseAdminToken(ctx, db, token)
	if err != nil {
		return AdminPrincipal{}, err
	}
	r, err := db.lookupAdminToken(ctx, claims.Subject)
	if isNoRows(err) {
		return AdminPrincipal{}, fmt.Errorf("%w: the admin token was deleted; issue a new one", ErrRevoked)
	}
	if err != nil {
		return AdminPrincipal{}, err
	}
	if r.current.String != sec.hash {
		// The cached secret is not the current one: another instance rotated
		// it. Drop it; the next token that names the new secret reloads it.
		st.forget(ctx, db, sec)
	}
	switch {
	case !r.expires.IsZero() && !db.now().Before(r.expires.Time):
		return AdminPrincipal{}, fmt.Errorf("%w: the admin token expired; issue a new one", ErrExpired)
	case !r.active:
		return AdminPrincipal{}, fmt.Errorf("%w: the admin token was revoked; issue a new one", ErrRevoked)
	}
	ok, herr := db.verifyCredential(ctx, adminTokenHashDomain, []byte(token), r.tokenHash)
	if herr != nil {
		db.log.Warn("pierredb: stored admin token hash is unusable", "admin_token_id", claims.Subject, "reason", herr.Error())
	}
	if !ok || herr != nil || !r.current.Valid || r.secretHash != r.current.String || r.secretHash != sec.hash {
		return AdminPrincipal{}, errAdminToken
	}
	p := AdminPrincipal{
		TokenID: claims.Subject, ServiceName: r.service, Permissions: parsePermissions(r.permissions, r.super),
		SuperAdmin: r.super, ExpiresAt: r.expires.Time,
	}
	if need != "" && !p.Has(need) {
		return p, fmt.Errorf("%w: the admin token does not hold the %s permission", ErrPermissionDenied, need)
	}
	return p, nil
}
