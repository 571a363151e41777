package storetest

// The AdminTokens domain: issuing (the first token, and by an issuer within its
// own rights), verification and every way it refuses, expiry, revocation,
// rotation of the signing secret across instances, usage records, and what is
// stored at rest.
//
// Admin tokens are global (they belong to no tenant), so they have no entry in
// the tenant isolation matrix (isolation.go).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// firstAdminToken issues the first super-admin token of db and verifies it.
func firstAdminToken(t testing.TB, db *pierredb.Database) (pierredb.CreatedAdminToken, pierredb.AdminPrincipal) {
	t.Helper()
	ctx := context.Background()
	c, err := db.AdminTokens().CreateFirst(ctx, pierredb.NewAdminToken{ServiceName: "setup", Description: "first token"})
	require.NoError(t, err)
	p, err := db.AdminTokens().Verify(ctx, c.Token.Reveal(), "")
	require.NoError(t, err)
	return c, p
}

// issueAdminToken issues a token with perms on behalf of issuer and verifies it.
func issueAdminToken(t testing.TB, db *pierredb.Database, issuer pierredb.AdminPrincipal, svc string, perms ...pierredb.AdminPermission) (pierredb.CreatedAdminToken, pierredb.AdminPrincipal) {
	t.Helper()
	ctx := context.Background()
	c, err := db.AdminTokens().Create(ctx, issuer, pierredb.NewAdminToken{ServiceName: svc, Permissions: perms})
	require.NoError(t, err)
	p, err := db.AdminTokens().Verify(ctx, c.Token.Reveal(), "")
	require.NoError(t, err)
	return c, p
}

// rawAdminSecret reads and decrypts the signing secret the way the store seals
// it (the test knows where it lives; an attacker with the database alone does
// not have the data key).
func rawAdminSecret(t testing.TB, db *pierredb.Database) []byte {
	t.Helper()
	var env []byte
	require.NoError(t, db.Bun().QueryRowContext(context.Background(), "SELECT secret_encrypted FROM admin_jwt_secret WHERE id = 1").Scan(&env))
	key, err := db.Keyring().Decrypt(env, keyring.Context{Table: "admin_jwt_secret", Column: "secret_encrypted", RowID: "1"})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(key), 32)
	return key
}

// jwtParts decodes a token's header and claims without checking anything.
func jwtParts(t testing.TB, token string) (header map[string]any, claims jwt.MapClaims) {
	t.Helper()
	claims = jwt.MapClaims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(token, claims)
	require.NoError(t, err)
	return parsed.Header, claims
}

// forgeJWT signs claims with method and key, with header fields added.
func forgeJWT(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// assertRefused checks a refused verification: the sentinel, one prefix, and
// that the token is nowhere in the error.
func assertRefused(t testing.TB, err error, want error, token string) {
	t.Helper()
	require.ErrorIs(t, err, want)
	onePrefix(t, err)
	noLeak(t, err, token)
	if len(token) > 40 {
		noLeak(t, err, token[len(token)-40:]) // the signature
	}
}

var _ = register("AdminTokens", "CreateFirstAndVerify", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock(base)
		db := e.Open(t, pierredb.WithClock(clk.Now))
		admin := db.AdminTokens()

		// Invalid input is refused before the bootstrap is used up.
		for _, nt := range []pierredb.NewAdminToken{
			{ServiceName: ""},
			{ServiceName: " \t "},
			{ServiceName: "svc\u200b"},
			{ServiceName: "svc\x00"},
			{ServiceName: "svc\xff"},
			{ServiceName: strings.Repeat("s", 201)},
			{ServiceName: "ok", Description: strings.Repeat("d", 501)},
			{ServiceName: "ok", Description: "line\nbreak"},
			{ServiceName: "ok", Description: "key is pk_live_AbCdEfGhIjKlMnOpQrStUvWxYz0123"},
			{ServiceName: "ok", Description: "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"},
			{ServiceName: "ok", ExpiresIn: -time.Second},
			{ServiceName: "ok", ExpiresIn: time.Hour, ExpiresAt: base.Add(2 * time.Hour)},
			{ServiceName: "ok", ExpiresAt: base.Add(-time.Hour)},
			{ServiceName: "ok", ExpiresIn: 200 * 365 * 24 * time.Hour},
		} {
			_, err := admin.CreateFirst(ctx, nt)
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument, "%+q", nt.ServiceName)
			onePrefix(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "pierredb: create first admin token: "), "%q", err)
		}
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM admin_tokens"))

		c, err := admin.CreateFirst(ctx, pierredb.NewAdminToken{ServiceName: " Cafe\u0301 setup ", Description: "bootstrap", SuperAdmin: false,
			Permissions: []pierredb.AdminPermission{pierredb.AdminListKeys}})
		require.NoError(t, err)
		assert.Equal(t, "Caf\u00e9 setup", c.ServiceName, "trimmed and NFC")
		assert.True(t, c.SuperAdmin, "the first token is a super-admin whatever was asked")
		assert.Equal(t, pierredb.AdminPermissions(), c.Permissions)
		assert.True(t, c.IsActive)
		assert.False(t, c.Superseded)
		assert.Equal(t, micro(base), c.CreatedAt)
		assert.True(t, c.ExpiresAt.IsZero())
		assert.Len(t, c.JTI, 22)
		assert.True(t, c.Usable(clk.Now()))
		token := c.Token.Reveal()
		require.NotEmpty(t, token)

		// The token is a JWT: HS256, the kid names the secret, sub is the row,
		// jti is the stored random prefix.
		header, claims := jwtParts(t, token)
		assert.Equal(t, "HS256", header["alg"])
		assert.NotEmpty(t, header["kid"])
		assert.Equal(t, c.ID, claims["sub"])
		assert.Equal(t, c.JTI, claims["jti"])
		assert.Equal(t, "Caf\u00e9 setup", claims["svc"])
		assert.Equal(t, "pierre", claims["iss"])
		assert.NotContains(t, claims, "exp", "no expiry asked, none set")
		var prefix string
		require.NoError(t, db.Bun().QueryRowContext(ctx, "SELECT token_prefix FROM admin_tokens WHERE id = ?", c.ID).Scan(&prefix))
		assert.Equal(t, c.JTI, prefix)
		assert.False(t, strings.HasPrefix(token, prefix), "the stored prefix is random, not the token's constant header")

		p, err := admin.Verify(ctx, token, "")
		require.NoError(t, err)
		assert.Equal(t, pierredb.AdminPrincipal{TokenID: c.ID, ServiceName: "Caf\u00e9 setup", Permissions: pierredb.AdminPermissions(), SuperAdmin: true}, p)
		for _, perm := range pierredb.AdminPermissions() {
			_, err := admin.Verify(ctx, token, perm)
			require.NoError(t, err, "a super-admin holds %s", perm)
			assert.True(t, p.Has(perm))
		}
		_, err = admin.Verify(ctx, token, "launch_missiles")
		require.ErrorIs(t, err, pierredb.ErrInvalidArgument)

		got, err := admin.Get(ctx, c.ID)
		require.NoError(t, err)
		assert.Equal(t, c.AdminToken.ID, got.ID)
		assert.Equal(t, c.Permissions, got.Permissions)
		assert.Equal(t, "bootstrap", got.Description)
		assert.True(t, got.CreatedAt.Equal(c.CreatedAt))
		_, err = admin.Get(ctx, "no-such-token")
		require.ErrorIs(t, err, pierredb.ErrNotFound)

		// Exactly once.
		_, err = admin.CreateFirst(ctx, pierredb.NewAdminToken{ServiceName: "second"})
		require.ErrorIs(t, err, pierredb.ErrAlreadyExists)
		onePrefix(t, err)
		assert.Equal(t, 1, rawCount(t, db, "SELECT count(*) FROM admin_tokens"))
	})
})

// CreateFirstRace: eight callers on two instances of one empty database; one
// wins, the others get ErrAlreadyExists, and both instances agree on the one
// signing secret that was made.
var _ = register("AdminTokens", "CreateFirstRace", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		dbs := []*pierredb.Database{e.OpenURL(t, url), e.OpenURL(t, url)}
		const n = 8
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, n)
		tokens := make([]string, n)
		for i := range n {
			wg.Go(func() {
				<-start
				c, err := dbs[i%2].AdminTokens().CreateFirst(ctx, pierredb.NewAdminToken{ServiceName: fmt.Sprintf("racer %d", i)})
				errs[i], tokens[i] = err, c.Token.Reveal()
			})
		}
		close(start)
		wg.Wait()
		won := ""
		for i, err := range errs {
			if err == nil {
				assert.Empty(t, won, "a second racer won")
				won = tokens[i]
				continue
			}
			assert.ErrorIs(t, err, pierredb.ErrAlreadyExists, "racer %d", i)
		}
		require.NotEmpty(t, won, "one racer wins")
		assert.Equal(t, 1, rawCount(t, dbs[0], "SELECT count(*) FROM admin_tokens"))
		assert.Equal(t, 1, rawCount(t, dbs[0], "SELECT count(*) FROM admin_jwt_secret"))
		for _, db := range dbs {
			_, err := db.AdminTokens().Verify(ctx, won, pierredb.AdminManageUsers)
			require.NoError(t, err, "every instance verifies the winner's token")
		}
	})
})

var _ = register("AdminTokens", "IssueRules", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		admin := db.AdminTokens()
		_, root := firstAdminToken(t, db)

		// A delegate that may manage admin tokens and list keys.
		delegateTok, delegate := issueAdminToken(t, db, root, "delegate", pierredb.AdminListKeys, pierredb.AdminManageAdminTokens, pierredb.AdminListKeys)
		assert.Equal(t, []pierredb.AdminPermission{pierredb.AdminListKeys, pierredb.AdminManageAdminTokens}, delegate.Permissions,
			"deduplicated, in documented order")
		assert.False(t, delegate.SuperAdmin)
		_, reader := issueAdminToken(t, db, root, "reader", pierredb.AdminListKeys)

		for _, tc := range []struct {
			name   string
			issuer pierredb.AdminPrincipal
			nt     pierredb.NewAdminToken
			want   error
		}{
			{"delegate grants what it holds", delegate, pierredb.NewAdminToken{ServiceName: "sub", Permissions: []pierredb.AdminPermission{pierredb.AdminListKeys}}, nil},
			{"delegate grants what it lacks", delegate, pierredb.NewAdminToken{ServiceName: "sub", Permissions: []pierredb.AdminPermission{pierredb.AdminProvisionKeys}}, pierredb.ErrPermissionDenied},
			{"delegate issues a super-admin", delegate, pierredb.NewAdminToken{ServiceName: "sub", SuperAdmin: true}, pierredb.ErrPermissionDenied},
			{"reader cannot issue at all", reader, pierredb.NewAdminToken{ServiceName: "sub", Permissions: []pierredb.AdminPermission{pierredb.AdminListKeys}}, pierredb.ErrPermissionDenied},
			{"a forged principal grants nothing", pierredb.AdminPrincipal{TokenID: delegate.TokenID, SuperAdmin: true, Permissions: pierredb.AdminPermissions()},
				pierredb.NewAdminToken{ServiceName: "sub", SuperAdmin: true}, pierredb.ErrPermissionDenied},
			{"unknown issuer", pierredb.AdminPrincipal{TokenID: "0190aaaa-0000-7000-8000-000000000000", SuperAdmin: true},
				pierredb.NewAdminToken{ServiceName: "sub", SuperAdmin: true}, pierredb.ErrPermissionDenied},
			{"no issuer", pierredb.AdminPrincipal{}, pierredb.NewAdminToken{ServiceName: "sub", SuperAdmin: true}, pierredb.ErrInvalidArgument},
			{"super-admin issues a super-admin", root, pierredb.NewAdminToken{ServiceName: "root2", SuperAdmin: true}, nil},
			{"the longest service name, escaped by JSON", root, pierredb.NewAdminToken{ServiceName: strings.Repeat("<&>", 66) + "ab",
				Permissions: []pierredb.AdminPermission{pierredb.AdminListKeys}}, nil},
			{"unknown permission", root, pierredb.NewAdminToken{ServiceName: "sub", Permissions: []pierredb.AdminPermission{"root"}}, pierredb.ErrInvalidArgument},
			{"no permission", root, pierredb.NewAdminToken{ServiceName: "sub"}, pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, err := admin.Create(ctx, tc.issuer, tc.nt)
				if tc.want == nil {
					require.NoError(t, err)
					assert.Equal(t, tc.nt.SuperAdmin, c.SuperAdmin)
					_, err = admin.Verify(ctx, c.Token.Reveal(), "")
					require.NoError(t, err)
					return
				}
				require.ErrorIs(t, err, tc.want)
				onePrefix(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), "pierredb: create admin token: "), "%q", err)
			})
		}

		// A revoked issuer can no longer issue, even with a principal it got earlier.
		_, err := admin.Revoke(ctx, root, delegate.TokenID)
		require.NoError(t, err)
		_, err = admin.Create(ctx, delegate, pierredb.NewAdminToken{ServiceName: "late", Permissions: []pierredb.AdminPermission{pierredb.AdminListKeys}})
		require.ErrorIs(t, err, pierredb.ErrPermissionDenied)
		noLeak(t, err, delegateTok.Token.Reveal())
	})
})

// VerifyRefuses: every way a token is refused, each with the documented error,
// one prefix and no trace of the token.
var _ = register("AdminTokens", "VerifyRefuses", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		admin := db.AdminTokens()
		rootTok, root := firstAdminToken(t, db)
		good, _ := issueAdminToken(t, db, root, "svc", pierredb.AdminListKeys)
		token := good.Token.Reveal()
		header, claims := jwtParts(t, token)
		secret := rawAdminSecret(t, db)
		kid := header["kid"]

		// A token signed with the right secret and kid but with other claims:
		// only the stored keyed hash of the whole token tells it apart.
		resigned := jwt.MapClaims{}
		for k, v := range claims {
			resigned[k] = v
		}
		resigned["jti"] = "AAAAAAAAAAAAAAAAAAAAAA"
		other := make([]byte, 32)
		copy(other, "another secret, 32 bytes long!!!")
		lastFlip := func(s string) string { // changes only the unused low bits of the last character
			b := []byte(s)
			switch b[len(b)-1] {
			case 'A':
				b[len(b)-1] = 'B'
			default:
				b[len(b)-1] = 'A'
			}
			return string(b)
		}
		parts := strings.Split(token, ".")
		for _, tc := range []struct {
			name, token string
			want        error
		}{
			{"empty", "", pierredb.ErrInvalidCredential},
			{"garbage", "not a token at all", pierredb.ErrInvalidCredential},
			{"two segments", parts[0] + "." + parts[1], pierredb.ErrInvalidCredential},
			{"too long", token + strings.Repeat("A", 4096), pierredb.ErrInvalidCredential},
			{"bearer prefix", "Bearer " + token, pierredb.ErrInvalidCredential},
			{"trailing space", token + " ", pierredb.ErrInvalidCredential},
			{"padded signature", token + "=", pierredb.ErrInvalidCredential},
			{"mutated signature", lastFlip(token), pierredb.ErrInvalidCredential},
			{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(rootTok.Token.Reveal(), ".")[2], pierredb.ErrInvalidCredential},
			{"alg none", forgeJWT(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": kid}, claims), pierredb.ErrInvalidCredential},
			{"alg HS384 with the right secret", forgeJWT(t, jwt.SigningMethodHS384, secret, map[string]any{"kid": kid}, claims), pierredb.ErrInvalidCredential},
			{"alg HS512 with the right secret", forgeJWT(t, jwt.SigningMethodHS512, secret, map[string]any{"kid": kid}, claims), pierredb.ErrInvalidCredential},
			{"HS256 with another secret", forgeJWT(t, jwt.SigningMethodHS256, other, map[string]any{"kid": kid}, claims), pierredb.ErrInvalidCredential},
			{"HS256 with another secret and no kid", forgeJWT(t, jwt.SigningMethodHS256, other, nil, claims), pierredb.ErrInvalidCredential},
			{"right secret, forged kid", forgeJWT(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": "AAAAAAAAAAAA.v1$forged"}, claims), pierredb.ErrInvalidCredential},
			{"right secret, no kid", forgeJWT(t, jwt.SigningMethodHS256, secret, nil, claims), pierredb.ErrInvalidCredential},
			{"right secret and kid, other claims", forgeJWT(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": kid}, resigned), pierredb.ErrInvalidCredential},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := admin.Verify(ctx, tc.token, "")
				assertRefused(t, err, tc.want, tc.token)
				assert.Equal(t, "pierredb: verify admin token: invalid credential: the admin token is not valid; check it, or issue a new one", err.Error(),
					"unknown, forged and wrong tokens read the same")
			})
		}

		// Revoked, then a deleted row.
		_, err := admin.Revoke(ctx, root, good.ID)
		require.NoError(t, err)
		_, err = admin.Verify(ctx, token, "")
		assertRefused(t, err, pierredb.ErrRevoked, token)
		gone, _ := issueAdminToken(t, db, root, "gone", pierredb.AdminListKeys)
		_, err = db.Bun().ExecContext(ctx, "DELETE FROM admin_tokens WHERE id = ?", gone.ID)
		require.NoError(t, err)
		_, err = admin.Verify(ctx, gone.Token.Reveal(), "")
		assertRefused(t, err, pierredb.ErrRevoked, gone.Token.Reveal())

		// The root token still verifies after all that.
		_, err = admin.Verify(ctx, rootTok.Token.Reveal(), pierredb.AdminManageAdminTokens)
		require.NoError(t, err)
	})
})

// RowEditedByHand: changes made behind the store's back are caught by the
// checks that read the row.
var _ = register("AdminTokens", "RowEditedByHand", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		admin := db.AdminTokens()
		_, root := firstAdminToken(t, db)
		a, _ := issueAdminToken(t, db, root, "a", pierredb.AdminListKeys)
		b, _ := issueAdminToken(t, db, root, "b", pierredb.AdminListKeys)
		exec := func(q string, args ...any) {
			t.Helper()
			_, err := db.Bun().ExecContext(ctx, q, args...)
			require.NoError(t, err)
		}

		// b's row gets a's token hash: b's token no longer matches its row.
		exec("UPDATE admin_tokens SET token_hash = (SELECT token_hash FROM admin_tokens WHERE id = ?) WHERE id = ?", a.ID, b.ID)
		_, err := admin.Verify(ctx, b.Token.Reveal(), "")
		assertRefused(t, err, pierredb.ErrInvalidCredential, b.Token.Reveal())

		// a's row claims another signing secret.
		exec("UPDATE admin_tokens SET jwt_secret_hash = ? WHERE id = ?", "hmac-sha256$v1$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", a.ID)
		_, err = admin.Verify(ctx, a.Token.Reveal(), "")
		assertRefused(t, err, pierredb.ErrInvalidCredential, a.Token.Reveal())
		got, err := admin.Get(ctx, a.ID)
		require.NoError(t, err)
		assert.True(t, got.Superseded)

		// Unknown permission names grant nothing.
		c, p := issueAdminToken(t, db, root, "c", pierredb.AdminListKeys)
		exec("UPDATE admin_tokens SET permissions = ? WHERE id = ?", `["list_keys","root","*"]`, c.ID)
		p2, err := admin.Verify(ctx, c.Token.Reveal(), pierredb.AdminListKeys)
		require.NoError(t, err)
		assert.Equal(t, p.Permissions, p2.Permissions)
		exec("UPDATE admin_tokens SET permissions = ? WHERE id = ?", `not json`, c.ID)
		_, err = admin.Verify(ctx, c.Token.Reveal(), pierredb.AdminListKeys)
		require.ErrorIs(t, err, pierredb.ErrPermissionDenied)

		// An expiry shortened by hand is honoured, though the JWT says nothing.
		exec("UPDATE admin_tokens SET expires_at = ? WHERE id = ?", "2001-01-01T00:00:00.000000Z", c.ID)
		_, err = admin.Verify(ctx, c.Token.Reveal(), "")
		assertRefused(t, err, pierredb.ErrExpired, c.Token.Reveal())

		// The sealed secret cannot be read under another row's context.
		var env []byte
		require.NoError(t, db.Bun().QueryRowContext(ctx, "SELECT secret_encrypted FROM admin_jwt_secret WHERE id = 1").Scan(&env))
		_, err = db.Keyring().Decrypt(env, keyring.Context{Table: "admin_jwt_secret", Column: "secret_encrypted", RowID: "2"})
		require.ErrorIs(t, err, keyring.ErrDecrypt)
	})
})

var _ = register("AdminTokens", "Expiry", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock(base)
		db := e.Open(t, pierredb.WithClock(clk.Now))
		admin := db.AdminTokens()
		_, root := firstAdminToken(t, db)

		c, err := admin.Create(ctx, root, pierredb.NewAdminToken{ServiceName: "short", Permissions: []pierredb.AdminPermission{pierredb.AdminListKeys}, ExpiresIn: time.Hour})
		require.NoError(t, err)
		want := base.Add(time.Hour).Truncate(time.Second)
		assert.True(t, c.ExpiresAt.Equal(want), "kept to the second: %v", c.ExpiresAt)
		_, claims := jwtParts(t, c.Token.Reveal())
		assert.EqualValues(t, want.Unix(), claims["exp"])
		at, err := admin.Create(ctx, root, pierredb.NewAdminToken{ServiceName: "at", Permissions: []pierredb.AdminPermission{pierredb.AdminListKeys}, ExpiresAt: base.Add(2 * time.Hour)})
		require.NoError(t, err)

		p, err := admin.Verify(ctx, c.Token.Reveal(), "")
		require.NoError(t, err)
		assert.True(t, p.ExpiresAt.Equal(want))
		clk.Set(want.Add(-time.Microsecond))
		_, err = admin.Verify(ctx, c.Token.Reveal(), "")
		require.NoError(t, err, "valid until its last microsecond")
		clk.Set(want)
		_, err = admin.Verify(ctx, c.Token.Reveal(), "")
		assertRefused(t, err, pierredb.ErrExpired, c.Token.Reveal())
		got, err := admin.Get(ctx, c.ID)
		require.NoError(t, err)
		assert.False(t, got.Usable(clk.Now()))
		_, err = admin.Verify(ctx, at.Token.Reveal(), "")
		require.NoError(t, err)

		// Expiry comes before revocation, and the signature before expiry.
		_, err = admin.Revoke(ctx, root, c.ID)
		require.NoError(t, err)
		_, err = admin.Verify(ctx, c.Token.Reveal(), "")
		assertRefused(t, err, pierredb.ErrExpired, c.Token.Reveal())
		_, err = admin.Verify(ctx, c.Token.Reveal()[:len(c.Token.Reveal())-2]+"AA", "")
		require.ErrorIs(t, err, pierredb.ErrInvalidCredential)

		// An expired issuer can no longer act.
		short, err := admin.Create(ctx, root, pierredb.NewAdminToken{ServiceName: "issuer", ExpiresIn: time.Minute,
			Permissions: []pierredb.AdminPermission{pierredb.AdminManageAdminTokens, pierredb.AdminListKeys}})
		require.NoError(t, err)
		sp, err := admin.Verify(ctx, short.Token.Reveal(), pierredb.AdminManageAdminTokens)
		require.NoError(t, err)
		clk.Advance(time.Minute)
		_, err = admin.Create(ctx, sp, pierredb.NewAdminToken{ServiceName: "child", Permissions: []pierredb.AdminPermission{pierredb.AdminListKeys}})
		require.ErrorIs(t, err, pierredb.ErrPermissionDenied)

		// An expiring super-admin does not keep CreateFirst closed once expired.
		clk2 := newClock(base)
		db2 := e.Open(t, pierredb.WithClock(clk2.Now))
		_, err = db2.AdminTokens().CreateFirst(ctx, pierredb.NewAdminToken{ServiceName: "temp", ExpiresIn: time.Hour})
		require.NoError(t, err)
		_, err = db2.AdminTokens().CreateFirst(ctx, pierredb.NewAdminToken{ServiceName: "again"})
		require.ErrorIs(t, err, pierredb.ErrAlreadyExists)
		clk2.Advance(time.Hour)
		_, err = db2.AdminTokens().CreateFirst(ctx, pierredb.NewAdminToken{ServiceName: "again"})
		require.NoError(t, err, "no usable super-admin is left: the setup is open again (documented)")
	})
})

var _ = register("AdminTokens", "Permissions", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		admin := db.AdminTokens()
		_, root := firstAdminToken(t, db)
		c, p := issueAdminToken(t, db, root, "keys", pierredb.AdminListKeys, pierredb.AdminRevokeKeys)
		assert.Equal(t, []pierredb.AdminPermission{pierredb.AdminListKeys, pierredb.AdminRevokeKeys}, p.Permissions)
		for _, perm := range pierredb.AdminPermissions() {
			held := perm == pierredb.AdminListKeys || perm == pierredb.AdminRevokeKeys
			assert.Equal(t, held, p.Has(perm), "%s", perm)
			got, err := admin.Verify(ctx, c.Token.Reveal(), perm)
			if held {
				require.NoError(t, err, "%s", perm)
				continue
			}
			assertRefused(t, err, pierredb.ErrPermissionDenied, c.Token.Reveal())
			assert.Contains(t, err.Error(), string(perm))
			assert.Equal(t, p, got, "the principal comes with the refusal, for the audit trail")
		}
		assert.Equal(t, 9, len(pierredb.AdminPermissions()))
		for _, perm := range pierredb.AdminPermissions() {
			assert.True(t, perm.Valid())
		}
		assert.False(t, pierredb.AdminPermission("root").Valid())
	})
})

var _ = register("AdminTokens", "Revoke", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		admin := db.AdminTokens()
		rootTok, root := firstAdminToken(t, db)
		_, delegate := issueAdminToken(t, db, root, "delegate", pierredb.AdminManageAdminTokens, pierredb.AdminListKeys)
		_, reader := issueAdminToken(t, db, root, "reader", pierredb.AdminListKeys)
		victim, _ := issueAdminToken(t, db, root, "victim", pierredb.AdminListKeys)

		_, err := admin.Revoke(ctx, reader, victim.ID)
		require.ErrorIs(t, err, pierredb.ErrPermissionDenied, "revoking needs manage_admin_tokens")
		_, err = admin.Revoke(ctx, delegate, root.TokenID)
		require.ErrorIs(t, err, pierredb.ErrPermissionDenied, "only a super-admin revokes a super-admin")
		// A token that is not a super-admin's revokes only within its own
		// permissions, as it issues only within them.
		keyRotator, _ := issueAdminToken(t, db, root, "rotator", pierredb.AdminRotateKeys)
		_, err = admin.Revoke(ctx, delegate, keyRotator.ID)
		require.ErrorIs(t, err, pierredb.ErrPermissionDenied, "revoking a token that holds more")
		rotator, err := admin.Get(ctx, keyRotator.ID)
		require.NoError(t, err)
		assert.True(t, rotator.IsActive, "the refused revoke changed nothing")
		_, err = admin.Revoke(ctx, delegate, "0190aaaa-0000-7000-8000-000000000000")
		require.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = admin.Revoke(ctx, delegate, "bad id")
		require.ErrorIs(t, err, pierredb.ErrInvalidArgument)

		got, err := admin.Revoke(ctx, delegate, victim.ID)
		require.NoError(t, err)
		assert.False(t, got.IsActive)
		_, err = admin.Verify(ctx, victim.Token.Reveal(), "")
		require.ErrorIs(t, err, pierredb.ErrRevoked, "the very next Verify")
		again, err := admin.Revoke(ctx, root, victim.ID)
		require.NoError(t, err, "revoking twice changes nothing")
		assert.False(t, again.IsActive)

		// The last usable super-admin stays, so that the setup does not reopen.
		_, err = admin.Revoke(ctx, root, root.TokenID)
		require.ErrorIs(t, err, pierredb.ErrConflict)
		onePrefix(t, err)
		_, err = admin.Verify(ctx, rootTok.Token.Reveal(), "")
		require.NoError(t, err)
		r2, err := admin.Create(ctx, root, pierredb.NewAdminToken{ServiceName: "root2", SuperAdmin: true})
		require.NoError(t, err)
		root2, err := admin.Verify(ctx, r2.Token.Reveal(), "")
		require.NoError(t, err)
		c2, err := admin.Create(ctx, root, pierredb.NewAdminToken{ServiceName: "root3", SuperAdmin: true})
		require.NoError(t, err)
		_, err = admin.Revoke(ctx, root2, root.TokenID)
		require.NoError(t, err, "another super-admin remains")
		_, err = admin.CreateFirst(ctx, pierredb.NewAdminToken{ServiceName: "late"})
		require.ErrorIs(t, err, pierredb.ErrAlreadyExists)
		_, err = admin.Revoke(ctx, root2, root2.TokenID)
		require.NoError(t, err, "a token may revoke itself while another super-admin remains")
		_, err = admin.Revoke(ctx, root2, c2.ID)
		require.ErrorIs(t, err, pierredb.ErrPermissionDenied, "a revoked issuer cannot act")
	})
})

// RevokeRace: two super-admins on two instances revoke each other at the same
// moment; one wins, and one usable super-admin always remains.
var _ = register("AdminTokens", "RevokeRace", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		dbs := []*pierredb.Database{e.OpenURL(t, url), e.OpenURL(t, url)}
		_, a := firstAdminToken(t, dbs[0])
		bt, err := dbs[0].AdminTokens().Create(ctx, a, pierredb.NewAdminToken{ServiceName: "b", SuperAdmin: true})
		require.NoError(t, err)
		b, err := dbs[1].AdminTokens().Verify(ctx, bt.Token.Reveal(), "")
		require.NoError(t, err)
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, 2)
		pairs := [][2]pierredb.AdminPrincipal{{a, b}, {b, a}}
		for i := range 2 {
			wg.Go(func() {
				<-start
				_, errs[i] = dbs[i].AdminTokens().Revoke(ctx, pairs[i][0], pairs[i][1].TokenID)
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
				continue
			}
			if !errors.Is(err, pierredb.ErrPermissionDenied) && !errors.Is(err, pierredb.ErrConflict) {
				t.Errorf("unexpected error %v", err)
			}
		}
		assert.Equal(t, 1, won)
		assert.Equal(t, 1, rawCount(t, dbs[0], "SELECT count(*) FROM admin_tokens WHERE is_active = ?", true), "one super-admin remains")
	})
})

// RotateSigningSecret: every older token stops verifying on every instance,
// including one whose cached secret is stale; the issuer gets a replacement
// that every instance accepts at once.
var _ = register("AdminTokens", "RotateSigningSecret", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		other := e.OpenURL(t, url) // another instance
		admin := db.AdminTokens()
		rootTok, root := firstAdminToken(t, db)
		limitedTok, limited := issueAdminToken(t, db, root, "limited", pierredb.AdminRotateKeys, pierredb.AdminManageAdminTokens)
		_, err := other.AdminTokens().Verify(ctx, rootTok.Token.Reveal(), "")
		require.NoError(t, err, "the other instance caches the secret")
		oldSecret := rawAdminSecret(t, db)

		_, err = admin.RotateSigningSecret(ctx, limited)
		require.ErrorIs(t, err, pierredb.ErrPermissionDenied, "super-admin only")
		replacement, err := admin.RotateSigningSecret(ctx, root)
		require.NoError(t, err)
		assert.True(t, replacement.SuperAdmin)
		assert.Equal(t, "setup", replacement.ServiceName)
		assert.NotEqual(t, root.TokenID, replacement.ID)
		assert.NotEqual(t, oldSecret, rawAdminSecret(t, db))
		assert.False(t, rawTime(t, db, "admin_jwt_secret", "rotated_at", "1").IsZero())

		for name, inst := range map[string]*pierredb.Database{"rotating instance": db, "stale instance": other, "new instance": e.OpenURL(t, url)} {
			t.Run(name, func(t *testing.T) {
				for _, old := range []string{rootTok.Token.Reveal(), limitedTok.Token.Reveal()} {
					_, err := inst.AdminTokens().Verify(ctx, old, "")
					assertRefused(t, err, pierredb.ErrInvalidCredential, old)
				}
				p, err := inst.AdminTokens().Verify(ctx, replacement.Token.Reveal(), pierredb.AdminRotateKeys)
				require.NoError(t, err)
				assert.Equal(t, replacement.ID, p.TokenID)
				for _, old := range []string{rootTok.Token.Reveal(), limitedTok.Token.Reveal()} {
					_, err := inst.AdminTokens().Verify(ctx, old, "")
					assertRefused(t, err, pierredb.ErrInvalidCredential, old)
				}
			})
		}
		got, err := admin.Get(ctx, limited.TokenID)
		require.NoError(t, err)
		assert.True(t, got.Superseded)
		assert.True(t, got.IsActive, "not revoked: superseded")
		assert.False(t, got.Usable(time.Now()))
		_, err = admin.CreateFirst(ctx, pierredb.NewAdminToken{ServiceName: "late"})
		require.ErrorIs(t, err, pierredb.ErrAlreadyExists, "the replacement keeps the setup closed")

		// The old super-admin principal cannot act any more; the replacement can,
		// and a token it issues on the stale instance verifies everywhere.
		_, err = admin.Create(ctx, root, pierredb.NewAdminToken{ServiceName: "x", SuperAdmin: true})
		require.ErrorIs(t, err, pierredb.ErrPermissionDenied)
		rp, err := other.AdminTokens().Verify(ctx, replacement.Token.Reveal(), "")
		require.NoError(t, err)
		fresh, err := other.AdminTokens().Create(ctx, rp, pierredb.NewAdminToken{ServiceName: "fresh", Permissions: []pierredb.AdminPermission{pierredb.AdminListKeys}})
		require.NoError(t, err)
		_, err = admin.Verify(ctx, fresh.Token.Reveal(), pierredb.AdminListKeys)
		require.NoError(t, err)

		// Rotating again from the other instance: the first one follows.
		second, err := other.AdminTokens().RotateSigningSecret(ctx, rp)
		require.NoError(t, err)
		_, err = admin.Verify(ctx, fresh.Token.Reveal(), "")
		require.ErrorIs(t, err, pierredb.ErrInvalidCredential)
		_, err = admin.Verify(ctx, second.Token.Reveal(), "")
		require.NoError(t, err)
	})
})

// InHostTransaction: admin token operations join a host's transaction
// (Database.RunInTx); a rotation that is rolled back changes nothing, and the
// instance that ran it still accepts the tokens it had.
var _ = register("AdminTokens", "InHostTransaction", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		rootTok, root := firstAdminToken(t, db)
		errRollback := errors.New("host says no")
		var issued string
		err := db.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
			r, err := db.AdminTokens().RotateSigningSecret(ctx, root)
			require.NoError(t, err)
			issued = r.Token.Reveal()
			_, err = db.AdminTokens().Verify(ctx, issued, "")
			require.NoError(t, err, "the transaction sees its own rotation")
			_, err = db.AdminTokens().Verify(ctx, rootTok.Token.Reveal(), "")
			require.ErrorIs(t, err, pierredb.ErrInvalidCredential)
			return errRollback
		})
		require.ErrorIs(t, err, errRollback)
		_, err = db.AdminTokens().Verify(ctx, rootTok.Token.Reveal(), pierredb.AdminManageUsers)
		require.NoError(t, err, "the rotation was rolled back")
		_, err = db.AdminTokens().Verify(ctx, issued, "")
		require.Error(t, err, "the replacement was rolled back with it")
		assert.Equal(t, 1, rawCount(t, db, "SELECT count(*) FROM admin_tokens"))

		err = db.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
			c, err := db.AdminTokens().Create(ctx, root, pierredb.NewAdminToken{ServiceName: "in tx", Permissions: []pierredb.AdminPermission{pierredb.AdminListKeys}})
			require.NoError(t, err)
			issued = c.Token.Reveal()
			return db.AdminTokens().RecordUsage(ctx, c.ID, pierredb.AdminAction{Action: "create"})
		})
		require.NoError(t, err)
		_, err = db.AdminTokens().Verify(ctx, issued, pierredb.AdminListKeys)
		require.NoError(t, err)
		assert.Equal(t, 1, rawCount(t, db, "SELECT count(*) FROM admin_token_usage"))
	})
})

// DataKeyRotation: the sealed signing secret moves to a new data key with
// every other secret, and tokens keep verifying.
var _ = register("AdminTokens", "DataKeyRotation", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		c, _ := firstAdminToken(t, db)
		n, err := db.Rotation().CountInUse(ctx, keyring.PurposeEncryption, 1)
		require.NoError(t, err)
		assert.EqualValues(t, 1, n, "the signing secret")
		_, err = db.Keyring().Rotate(ctx, keyring.PurposeEncryption)
		require.NoError(t, err)
		res, err := db.Rotation().ReencryptBatch(ctx, 10)
		require.NoError(t, err)
		assert.Equal(t, pierredb.ReencryptResult{Rewritten: 1}, res)
		require.NoError(t, db.Rotation().Retire(ctx, keyring.PurposeEncryption, 1))
		for _, inst := range []*pierredb.Database{db, e.OpenURL(t, url)} {
			_, err := inst.AdminTokens().Verify(ctx, c.Token.Reveal(), "")
			require.NoError(t, err)
		}
		// The token hash is a credential hash: its hashing key is not retired
		// while the token exists.
		_, err = db.Keyring().Rotate(ctx, keyring.PurposeHashing)
		require.NoError(t, err)
		err = db.Rotation().Retire(ctx, keyring.PurposeHashing, 1)
		require.ErrorIs(t, err, keyring.ErrKeyInUse)
		_, err = db.AdminTokens().Verify(ctx, c.Token.Reveal(), "")
		require.NoError(t, err)
	})
})

var _ = register("AdminTokens", "List", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock(base)
		db := e.Open(t, pierredb.WithClock(clk.Now))
		admin := db.AdminTokens()
		_, root := firstAdminToken(t, db)
		want := []string{root.TokenID}
		for i := range 4 {
			clk.Advance(time.Second)
			c, _ := issueAdminToken(t, db, root, fmt.Sprintf("svc-%d", i), pierredb.AdminListKeys)
			want = append(want, c.ID)
		}
		_, err := admin.Revoke(ctx, root, want[2])
		require.NoError(t, err)
		var got []string
		cursor := ""
		for {
			page, err := admin.List(ctx, pierredb.ListOptions{Limit: 2, Cursor: cursor})
			require.NoError(t, err)
			assert.LessOrEqual(t, len(page.Items), 2)
			for _, tok := range page.Items {
				got = append(got, tok.ID)
				assert.Equal(t, tok.ID != want[2], tok.IsActive)
			}
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		assert.Equal(t, want, got, "oldest first, revoked ones included")
		_, err = admin.List(ctx, pierredb.ListOptions{Cursor: "forged"})
		require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		_, err = admin.List(ctx, pierredb.ListOptions{Limit: 1001})
		require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
})

var _ = register("AdminTokens", "Usage", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock(base)
		db := e.Open(t, pierredb.WithClock(clk.Now))
		admin := db.AdminTokens()
		rootTok, root := firstAdminToken(t, db)
		jwtInText := rootTok.Token.Reveal()

		got, err := admin.Get(ctx, root.TokenID)
		require.NoError(t, err)
		assert.Zero(t, got.UsageCount)
		assert.True(t, got.LastUsedAt.IsZero())
		page, err := admin.ListUsage(ctx, root.TokenID, pierredb.AdminUsageFilter{})
		require.NoError(t, err)
		assert.Empty(t, page.Items)

		actions := []pierredb.AdminAction{
			{Action: "provision_key", TargetResource: "users/42", IPAddress: "192.0.2.1:5555", UserAgent: "curl/8.0",
				RequestSizeBytes: 120, Success: true, ResponseTime: 12 * time.Millisecond},
			{Action: "revoke_key", TargetResource: "keys/7?token=" + jwtInText, IPAddress: "[2001:db8::1]:443",
				UserAgent: "evil\x1b[31m\u202e\xffagent", Success: false, ErrorMessage: "bad header: Bearer " + jwtInText,
				ResponseTime: -0},
			{Action: "list_keys", UserAgent: strings.Repeat("u ", 400), RequestSizeBytes: 1 << 40, ResponseTime: 1000 * time.Hour, Success: true},
		}
		for _, a := range actions {
			clk.Advance(time.Second)
			require.NoError(t, admin.RecordUsage(ctx, root.TokenID, a))
		}
		got, err = admin.Get(ctx, root.TokenID)
		require.NoError(t, err)
		assert.EqualValues(t, 3, got.UsageCount)
		assert.True(t, got.LastUsedAt.Equal(micro(clk.Now())))
		assert.Equal(t, "2001:db8::1", got.LastUsedIP, "an action without an address keeps the last one")

		var all []pierredb.AdminTokenUsage
		cursor := ""
		for {
			page, err := admin.ListUsage(ctx, root.TokenID, pierredb.AdminUsageFilter{Limit: 2, Cursor: cursor})
			require.NoError(t, err)
			all = append(all, page.Items...)
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		require.Len(t, all, 3)
		assert.Equal(t, "provision_key", all[0].Action)
		assert.Equal(t, "users/42", all[0].TargetResource)
		assert.Equal(t, "192.0.2.1", all[0].IPAddress)
		assert.Equal(t, "curl/8.0", all[0].UserAgent)
		assert.EqualValues(t, 120, all[0].RequestSizeBytes)
		assert.Equal(t, 12*time.Millisecond, all[0].ResponseTime)
		assert.True(t, all[0].Success)
		assert.Equal(t, root.TokenID, all[0].TokenID)
		assert.True(t, all[0].At.Equal(micro(base.Add(time.Second))))
		assert.Equal(t, "keys/7?[REDACTED]", all[1].TargetResource)
		assert.Equal(t, "bad header: [REDACTED]", all[1].ErrorMessage)
		assert.Equal(t, "evil\ufffd[31m\ufffd\ufffdagent", all[1].UserAgent, "hidden characters are shown, not kept")
		assert.False(t, all[1].Success)
		assert.Len(t, all[2].UserAgent, 500)
		assert.EqualValues(t, 1<<31-1, all[2].RequestSizeBytes)
		assert.Equal(t, time.Duration(1<<31-1)*time.Millisecond, all[2].ResponseTime)
		for _, u := range all {
			for _, s := range []string{u.TargetResource, u.UserAgent, u.ErrorMessage} {
				assert.NotContains(t, s, jwtInText[len(jwtInText)-40:])
			}
		}
		recent, err := admin.ListUsage(ctx, root.TokenID, pierredb.AdminUsageFilter{Since: base.Add(2 * time.Second)})
		require.NoError(t, err)
		assert.Len(t, recent.Items, 2)

		for _, tc := range []struct {
			name string
			id   string
			a    pierredb.AdminAction
			want error
		}{
			{"no action", root.TokenID, pierredb.AdminAction{}, pierredb.ErrInvalidArgument},
			{"action with a space", root.TokenID, pierredb.AdminAction{Action: "drop table"}, pierredb.ErrInvalidArgument},
			{"action too long", root.TokenID, pierredb.AdminAction{Action: strings.Repeat("a", 101)}, pierredb.ErrInvalidArgument},
			{"not an address", root.TokenID, pierredb.AdminAction{Action: "x", IPAddress: "192.0.2.1, 10.0.0.1"}, pierredb.ErrInvalidArgument},
			{"negative size", root.TokenID, pierredb.AdminAction{Action: "x", RequestSizeBytes: -1}, pierredb.ErrInvalidArgument},
			{"negative time", root.TokenID, pierredb.AdminAction{Action: "x", ResponseTime: -time.Second}, pierredb.ErrInvalidArgument},
			{"unknown token", "0190aaaa-0000-7000-8000-000000000000", pierredb.AdminAction{Action: "x"}, pierredb.ErrNotFound},
			{"bad token id", "bad\x00id", pierredb.AdminAction{Action: "x"}, pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := admin.RecordUsage(ctx, tc.id, tc.a)
				require.ErrorIs(t, err, tc.want)
				onePrefix(t, err)
			})
		}
		assert.Equal(t, 3, rawCount(t, db, "SELECT count(*) FROM admin_token_usage"), "refused actions wrote nothing")
		_, err = admin.ListUsage(ctx, "0190aaaa-0000-7000-8000-000000000000", pierredb.AdminUsageFilter{})
		require.ErrorIs(t, err, pierredb.ErrNotFound)

		// A revoked token's actions are still recorded (a refused request).
		c, _ := issueAdminToken(t, db, root, "soon revoked", pierredb.AdminListKeys)
		_, err = admin.Revoke(ctx, root, c.ID)
		require.NoError(t, err)
		require.NoError(t, admin.RecordUsage(ctx, c.ID, pierredb.AdminAction{Action: "list_keys", ErrorMessage: "revoked"}))
	})
})

// Redaction: the issued token never shows in fmt, slog or JSON output.
var _ = register("AdminTokens", "Redaction", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		db := e.Open(t)
		c, _ := firstAdminToken(t, db)
		token := c.Token.Reveal()
		sig := token[strings.LastIndexByte(token, '.')+1:]
		var outs []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
			outs = append(outs, fmt.Sprintf(verb, c), fmt.Sprintf(verb, c.Token), fmt.Sprintf(verb, &c),
				// Kept in another type's unexported field, where fmt cannot
				// call the token's own redacting methods.
				fmt.Sprintf(verb, struct{ kept pierredb.CreatedAdminToken }{c}))
		}
		j, err := json.Marshal(c)
		require.NoError(t, err)
		outs = append(outs, string(j))
		var logs logBuffer
		for _, h := range []slog.Handler{slog.NewJSONHandler(&logs, nil), slog.NewTextHandler(&logs, nil)} {
			slog.New(h).Info("issued", "created", c, "token", c.Token, "ptr", &c)
		}
		outs = append(outs, logs.String())
		for _, o := range outs {
			assert.NotContains(t, o, sig)
			assert.NotContains(t, o, token)
		}
		assert.Contains(t, fmt.Sprint(c.Token), "REDACTED")
		assert.Contains(t, string(j), c.ID)
	})
})

// NoPlaintextAtRest: no issued token, and no signing secret (current or
// rotated out), appears in the database's bytes: the SQLite file and its WAL,
// or a pg_dump of the test schema.
var _ = register("AdminTokens", "NoPlaintextAtRest", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		c, root := firstAdminToken(t, db)
		tokens := []string{c.Token.Reveal()}
		for i := range 3 {
			d, _ := issueAdminToken(t, db, root, fmt.Sprintf("svc-%d", i), pierredb.AdminListKeys)
			tokens = append(tokens, d.Token.Reveal())
			require.NoError(t, db.AdminTokens().RecordUsage(ctx, d.ID, pierredb.AdminAction{Action: "x", ErrorMessage: "echo " + d.Token.Reveal()}))
		}
		secrets := [][]byte{rawAdminSecret(t, db)}
		r, err := db.AdminTokens().RotateSigningSecret(ctx, root)
		require.NoError(t, err)
		tokens = append(tokens, r.Token.Reveal())
		secrets = append(secrets, rawAdminSecret(t, db))

		var needles [][]byte
		for _, tok := range tokens {
			parts := strings.Split(tok, ".")
			needles = append(needles, []byte(tok), []byte(parts[1]+"."+parts[2]), []byte(parts[2]))
		}
		for _, s := range secrets {
			needles = append(needles, s, []byte(hex.EncodeToString(s)), []byte(base64.StdEncoding.EncodeToString(s)),
				[]byte(base64.RawURLEncoding.EncodeToString(s)))
		}
		var haystacks [][]byte
		switch e.Backend {
		case pierredb.SQLite:
			path := strings.TrimPrefix(url, "sqlite:")
			for _, p := range []string{path, path + "-wal"} {
				b, err := os.ReadFile(p)
				if os.IsNotExist(err) {
					continue
				}
				require.NoError(t, err)
				haystacks = append(haystacks, b)
			}
			require.NotEmpty(t, haystacks)
		default:
			haystacks = append(haystacks, pgDump(t, db.Info().Schema))
		}
		found := false
		for _, h := range haystacks {
			found = found || bytes.Contains(h, []byte(c.ID))
		}
		require.True(t, found, "the search reads the data (it finds a token id)")
		for _, h := range haystacks {
			for _, n := range needles {
				assert.False(t, bytes.Contains(h, n), "a token or secret is stored in clear")
			}
		}
	})
})

// pgDump returns a pg_dump of schema in the test database, or skips the test
// when pg_dump is not installed.
func pgDump(t *testing.T, schema string) []byte {
	t.Helper()
	bin, err := exec.LookPath("pg_dump")
	if err != nil {
		t.Skip("pg_dump is not installed")
	}
	u, err := url.Parse(os.Getenv(EnvPostgresURL))
	require.NoError(t, err)
	q := u.Query()
	q.Del("search_path") // libpq refuses parameters it does not know
	u.RawQuery = q.Encode()
	cmd := exec.CommandContext(t.Context(), bin, "--schema="+schema, "--no-owner", "-d", u.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "pg_dump: %s", stderr.String())
	return out
}
