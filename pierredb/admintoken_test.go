package pierredb_test

import (
	"context"
	"errors"
	"path/filepath"
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

// queryCounter counts every statement a Database runs: prepared reads and bun's.
type queryCounter struct {
	mu  sync.Mutex
	n   int
	log []string
}

func (c *queryCounter) add(q string) {
	c.mu.Lock()
	c.n++
	c.log = append(c.log, q)
	c.mu.Unlock()
}

func (c *queryCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *queryCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}
func (c *queryCounter) AfterQuery(_ context.Context, e *bun.QueryEvent) { c.add(e.Query) }

// countQueries makes db report every statement to a new counter. Call it
// before db is used from several goroutines.
func countQueries(db *pierredb.Database) *queryCounter {
	c := &queryCounter{}
	pierredb.TraceReads(db, func(q string, _ []any) { c.add(q) })
	pierredb.HookQueries(db, c)
	return c
}

// adminTokenWorld is a SQLite database with a super-admin token, the signing
// secret and the token's parts.
type adminTokenWorld struct {
	db     *pierredb.Database
	token  string
	kid    string
	secret []byte
	claims jwt.MapClaims
}

func newAdminTokenWorld(t testing.TB, opts ...pierredb.Option) *adminTokenWorld {
	t.Helper()
	ctx := context.Background()
	db, err := pierredb.Open("sqlite:"+filepath.Join(t.TempDir(), "admin.db"), testMasterKey(t), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	c, err := db.AdminTokens().CreateFirst(ctx, pierredb.NewAdminToken{ServiceName: "fuzz"})
	require.NoError(t, err)
	w := &adminTokenWorld{db: db, token: c.Token.Reveal(), claims: jwt.MapClaims{}}
	parsed, _, err := jwt.NewParser().ParseUnverified(w.token, w.claims)
	require.NoError(t, err)
	w.kid = parsed.Header["kid"].(string)
	var env []byte
	require.NoError(t, db.Bun().QueryRowContext(ctx, "SELECT secret_encrypted FROM admin_jwt_secret WHERE id = 1").Scan(&env))
	w.secret, err = db.Keyring().Decrypt(env, keyring.Context{Table: "admin_jwt_secret", Column: "secret_encrypted", RowID: "1"})
	require.NoError(t, err)
	// The secret is cached: a verification of the real token warms every path.
	_, err = db.AdminTokens().Verify(ctx, w.token, "")
	require.NoError(t, err)
	return w
}

var masterKeyOnce = sync.OnceValues(keyring.Generate)

func testMasterKey(t testing.TB) keyring.MasterKey {
	k, err := masterKeyOnce()
	require.NoError(t, err)
	return k
}

func sign(t testing.TB, m jwt.SigningMethod, key any, kid any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != nil {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// Malformed, forged and mutated tokens are refused before any query: the
// algorithm, the kid and the signature are checked with what the instance
// holds in memory.
func TestAdminTokenRefusedBeforeAnyQuery(t *testing.T) {
	t.Parallel()
	w := newAdminTokenWorld(t)
	ctx := t.Context()
	other := []byte("another secret of thirty-two b!!")
	parts := strings.Split(w.token, ".")
	resignedKid := jwt.MapClaims{}
	for k, v := range w.claims {
		resignedKid[k] = v
	}
	expired := jwt.MapClaims{}
	for k, v := range w.claims {
		expired[k] = v
	}
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	bad := map[string]string{
		"empty":                         "",
		"garbage":                       "garbage",
		"dots":                          "..",
		"two segments":                  parts[0] + "." + parts[1],
		"four segments":                 w.token + ".x",
		"header is not JSON":            "bm90IGpzb24." + parts[1] + "." + parts[2],
		"padded":                        w.token + "==",
		"alg none":                      sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, w.kid, w.claims),
		"alg none, empty signature":     parts[0][:0] + "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".",
		"HS384 with the right secret":   sign(t, jwt.SigningMethodHS384, w.secret, w.kid, w.claims),
		"HS512 with the right secret":   sign(t, jwt.SigningMethodHS512, w.secret, w.kid, w.claims),
		"HS256 with another secret":     sign(t, jwt.SigningMethodHS256, other, w.kid, w.claims),
		"right secret, no kid":          sign(t, jwt.SigningMethodHS256, w.secret, nil, w.claims),
		"right secret, forged kid":      sign(t, jwt.SigningMethodHS256, w.secret, "AAAAAAAAAAAA.v1$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", w.claims),
		"right secret, kid not string":  sign(t, jwt.SigningMethodHS256, w.secret, 42, w.claims),
		"signature of another payload":  parts[0] + "." + strings.Split(sign(t, jwt.SigningMethodHS256, w.secret, w.kid, resignedKid), ".")[1] + "x." + parts[2],
		"expired, right secret and kid": sign(t, jwt.SigningMethodHS256, w.secret, w.kid, expired),
		"too long":                      w.token + strings.Repeat("A", 3000),
	}
	c := countQueries(w.db)
	for name, token := range bad {
		_, err := w.db.AdminTokens().Verify(ctx, token, "")
		require.Error(t, err, name)
		if !errors.Is(err, pierredb.ErrInvalidCredential) && !errors.Is(err, pierredb.ErrExpired) {
			t.Errorf("%s: %v", name, err)
		}
		assert.Zero(t, c.count(), "%s reached a query: %v", name, c.log)
	}
	_, err := w.db.AdminTokens().Verify(ctx, w.token, "")
	require.NoError(t, err)
	assert.Equal(t, 1, c.count(), "a good token costs one query")
}

// FuzzAdminTokenVerify: random strings and mutations of a valid token never
// panic, never verify, and never reach a query.
func FuzzAdminTokenVerify(f *testing.F) {
	w := newAdminTokenWorld(f)
	parts := strings.Split(w.token, ".")
	f.Add(w.token)
	f.Add(w.token[:len(w.token)-1])
	f.Add(w.token + "A")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add("eyJhbGciOiJub25lIn0." + parts[1] + ".")
	f.Add(sign(f, jwt.SigningMethodHS384, w.secret, w.kid, w.claims))
	f.Add(sign(f, jwt.SigningMethodHS256, []byte("0123456789abcdef0123456789abcdef"), w.kid, w.claims))
	f.Add("")
	f.Add("a.b.c")
	c := countQueries(w.db)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token string) {
		before := c.count()
		p, err := w.db.AdminTokens().Verify(ctx, token, "")
		if token == w.token {
			if err != nil {
				t.Fatalf("the real token failed: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("a token that was never issued verified: %q as %+v", token, p)
		}
		if !errors.Is(err, pierredb.ErrInvalidCredential) && !errors.Is(err, pierredb.ErrExpired) {
			t.Fatalf("unexpected error %v", err)
		}
		if c.count() != before {
			t.Fatalf("%q reached a query", token)
		}
		if len(token) >= 16 && strings.Contains(err.Error(), token) {
			t.Fatalf("the error repeats the token")
		}
	})
}

// The parser check runs alone as the benchmark's first part; keep it honest.
func TestParseAdminTokenExport(t *testing.T) {
	t.Parallel()
	w := newAdminTokenWorld(t)
	id, err := pierredb.ParseAdminToken(t.Context(), w.db, w.token)
	require.NoError(t, err)
	assert.Equal(t, w.claims["sub"], id)
	stored, err := pierredb.LookupAdminToken(t.Context(), w.db, id)
	require.NoError(t, err)
	ok, err := w.db.Keyring().VerifyCredential(pierredb.AdminTokenHashDomain, []byte(w.token), stored)
	require.NoError(t, err)
	assert.True(t, ok)
}

func TestAdminTokenFreeText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, redacted string }{
		{"plain words", "plain words"},
		{"svc_ProvisioningServiceAccount", "svc_ProvisioningServiceAccount"},
		{"users/0190aaaa-0000-7000-8000-000000000000", "users/0190aaaa-0000-7000-8000-000000000000"},
		{"token expired at 12:00", "token expired at 12:00"},
		{"key pk_live_4fGh8JkL2mNp0QrS6tUv9WxY1zAb3C", "key [REDACTED]"},
		{"Authorization: Bearer abc.def", "Authorization: [REDACTED]"},
		{"/cb?code=1&access_token=xyz&state=2", "/cb?code=1&[REDACTED]&state=2"},
		{"sha 0123456789abcdef0123456789abcdef01234567", "sha [REDACTED]"},
		{"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln end", "jwt [REDACTED] end"},
		{"heyJude.mp3", "heyJude.mp3"},
	} {
		assert.Equal(t, tc.redacted, pierredb.RedactSecrets(tc.in), "%q", tc.in)
		assert.Equal(t, tc.redacted != tc.in, pierredb.LooksSecret(tc.in), "%q", tc.in)
	}
	assert.Equal(t, "a\ufffdb\ufffdc\ufffd", pierredb.AuditText("a\x00b\u200bc\xff", 100))
	assert.Equal(t, "caf\u00e9", pierredb.AuditText("cafe\u0301", 100), "NFC")
	assert.Equal(t, "ab", pierredb.AuditText("ab\u00e9", 3), "cut on a rune boundary")
	assert.Len(t, pierredb.AuditText(strings.Repeat("ab ", 10000), 500), 500)
}
