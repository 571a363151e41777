package storetest

// The OAuth apps domain (a tenant's OAuth application per provider) and the
// helpers the OAuth test files share. Tokens are in oauth_tokens.go; secrecy,
// moved ciphertexts and data at rest in oauth_secrecy.go.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
)

// oauthSecret makes a distinctive secret: finding it in an error, a log line or
// a file is a leak, never a coincidence.
func oauthSecret(kind, tag string) string {
	return fmt.Sprintf("%s-%s-Zq7v%d-never-shown", kind, tag, seq.Add(1))
}

// appConfig is a valid app configuration whose client secret is tagged tag.
func appConfig(tag string) pierredb.OAuthAppConfig {
	return pierredb.OAuthAppConfig{
		ClientID:     "client-" + tag,
		ClientSecret: pierredb.NewOAuthSecret(oauthSecret("client-secret", tag)),
		RedirectURI:  "https://mcp.example.com/oauth/callback/" + tag,
		Scopes:       []string{"read", "activity:read_all"},
	}
}

// newToken is a valid token of userID at p whose tokens are tagged tag.
func newToken(userID string, p pierredb.Provider, tag string) pierredb.OAuthToken {
	return pierredb.OAuthToken{
		UserID:       userID,
		Provider:     p,
		AccessToken:  pierredb.NewOAuthSecret(oauthSecret("access", tag)),
		RefreshToken: pierredb.NewOAuthSecret(oauthSecret("refresh", tag)),
		ExpiresAt:    base.Add(6 * time.Hour),
		Scope:        "read,activity:read_all",
	}
}

// putToken stores a new token of userID at p in scope and returns it.
func putToken(t testing.TB, scope *pierredb.TenantScope, userID string, p pierredb.Provider, tag string) pierredb.OAuthToken {
	t.Helper()
	tok, err := scope.OAuthTokens().Put(context.Background(), newToken(userID, p, tag))
	require.NoError(t, err)
	return tok
}

// sameSecret checks that two secrets hold the same value without printing it.
func sameSecret(t testing.TB, want, got pierredb.OAuthSecret, what string) {
	t.Helper()
	assert.True(t, want.Equal(got), "%s differs", what)
}

// sameToken compares two tokens field by field, times by instant.
func sameToken(t testing.TB, want, got pierredb.OAuthToken) {
	t.Helper()
	sameSecret(t, want.AccessToken, got.AccessToken, "access token")
	sameSecret(t, want.RefreshToken, got.RefreshToken, "refresh token")
	for name, pair := range map[string][2]time.Time{
		"ExpiresAt": {want.ExpiresAt, got.ExpiresAt}, "LastSyncAt": {want.LastSyncAt, got.LastSyncAt},
		"CreatedAt": {want.CreatedAt, got.CreatedAt}, "UpdatedAt": {want.UpdatedAt, got.UpdatedAt},
	} {
		assert.True(t, pair[0].Equal(pair[1]), "%s: want %v, got %v", name, pair[0], pair[1])
	}
	assert.Equal(t, [6]string{want.ID, want.TenantID, want.UserID, string(want.Provider), want.TokenType, want.Scope},
		[6]string{got.ID, got.TenantID, got.UserID, string(got.Provider), got.TokenType, got.Scope})
}

// sameApp compares two apps field by field, times by instant.
func sameApp(t testing.TB, want, got pierredb.OAuthApp) {
	t.Helper()
	sameSecret(t, want.ClientSecret, got.ClientSecret, "client secret")
	assert.True(t, want.CreatedAt.Equal(got.CreatedAt), "CreatedAt: want %v, got %v", want.CreatedAt, got.CreatedAt)
	assert.True(t, want.UpdatedAt.Equal(got.UpdatedAt), "UpdatedAt: want %v, got %v", want.UpdatedAt, got.UpdatedAt)
	want.ClientSecret, got.ClientSecret = pierredb.OAuthSecret{}, pierredb.OAuthSecret{}
	want.CreatedAt, want.UpdatedAt, got.CreatedAt, got.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	assert.Equal(t, want, got)
}

// rawSealed reads the stored envelope of a sealed column.
func rawSealed(t testing.TB, db *pierredb.Database, table, column, id string) []byte {
	t.Helper()
	var b []byte
	require.NoError(t, db.Bun().QueryRowContext(context.Background(), "SELECT "+column+" FROM "+table+" WHERE id = ?", id).Scan(&b))
	return b
}

var _ = register("OAuthApps", "Lifecycle", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock(base)
		db := e.Open(t, pierredb.WithClock(clk.Now))
		owner := activeUser(t, db, "owner")
		tn, scope := newTenant(t, db, owner)
		apps := scope.OAuthApps()

		list, err := apps.List(ctx)
		require.NoError(t, err)
		assert.Empty(t, list, "a new tenant has no apps")
		_, err = apps.Get(ctx, pierredb.ProviderStrava)
		require.ErrorIs(t, err, pierredb.ErrNotFound)
		onePrefix(t, err)

		cfg := appConfig("strava")
		cfg.Scopes = []string{"read", "activity:read_all", "read"}
		app, err := apps.Set(ctx, pierredb.ProviderStrava, cfg)
		require.NoError(t, err)
		assert.NotEmpty(t, app.ID)
		assert.Equal(t, tn.ID, app.TenantID)
		assert.Equal(t, pierredb.ProviderStrava, app.Provider)
		assert.Equal(t, "client-strava", app.ClientID)
		sameSecret(t, cfg.ClientSecret, app.ClientSecret, "client secret")
		assert.Equal(t, cfg.RedirectURI, app.RedirectURI)
		assert.Equal(t, []string{"read", "activity:read_all"}, app.Scopes, "duplicates dropped, order kept")
		assert.Equal(t, 15000, app.RateLimitPerDay, "the default daily limit")
		assert.True(t, app.IsActive, "stored active by default")
		assert.Equal(t, micro(base), app.CreatedAt)
		assert.Equal(t, app.CreatedAt, app.UpdatedAt)

		got, err := apps.Get(ctx, pierredb.ProviderStrava)
		require.NoError(t, err)
		sameApp(t, app, got)
		assert.NotContains(t, string(rawSealed(t, db, "tenant_oauth_configs", "client_secret_encrypted", app.ID)), cfg.ClientSecret.Reveal())

		// Set again replaces every field and keeps the id and creation time.
		clk.Advance(time.Minute)
		cfg2 := appConfig("strava-2")
		cfg2.Scopes, cfg2.RateLimitPerDay, cfg2.Disabled = nil, 20, true
		cfg2.RedirectURI = "http://localhost:8080/callback"
		app2, err := apps.Set(ctx, pierredb.ProviderStrava, cfg2)
		require.NoError(t, err)
		assert.Equal(t, app.ID, app2.ID)
		assert.Equal(t, app.CreatedAt, app2.CreatedAt)
		assert.Equal(t, micro(base.Add(time.Minute)), app2.UpdatedAt)
		assert.Equal(t, []string{}, app2.Scopes)
		assert.Equal(t, 20, app2.RateLimitPerDay)
		assert.False(t, app2.IsActive)
		got, err = apps.Get(ctx, pierredb.ProviderStrava)
		require.NoError(t, err)
		sameApp(t, app2, got)
		assert.Equal(t, 1, rawCount(t, db, "SELECT count(*) FROM tenant_oauth_configs"))

		fitbit, err := apps.Set(ctx, pierredb.ProviderFitbit, appConfig("fitbit"))
		require.NoError(t, err)
		list, err = apps.List(ctx)
		require.NoError(t, err)
		require.Len(t, list, 2)
		sameApp(t, fitbit, list[0]) // provider order
		sameApp(t, app2, list[1])

		require.NoError(t, apps.Delete(ctx, pierredb.ProviderStrava))
		_, err = apps.Get(ctx, pierredb.ProviderStrava)
		require.ErrorIs(t, err, pierredb.ErrNotFound)
		err = apps.Delete(ctx, pierredb.ProviderStrava)
		require.ErrorIs(t, err, pierredb.ErrNotFound)
		assert.Contains(t, err.Error(), "no strava app")
		onePrefix(t, err)
		list, err = apps.List(ctx)
		require.NoError(t, err)
		assert.Len(t, list, 1)

		// Deleting the tenant deletes its apps.
		require.NoError(t, db.Tenants().Delete(ctx, tn.ID))
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM tenant_oauth_configs"))
	})
})

// Concurrent Sets of one provider leave one row, one of the Sets' values.
var _ = register("OAuthApps", "ConcurrentSet", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		_, scope := newTenant(t, db, activeUser(t, db, "owner"))
		const n = 6
		cfgs := make([]pierredb.OAuthAppConfig, n)
		var wg sync.WaitGroup
		for i := range n {
			cfgs[i] = appConfig(fmt.Sprint("racer-", i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := scope.OAuthApps().Set(ctx, pierredb.ProviderOura, cfgs[i])
				assert.NoError(t, err)
			}()
		}
		wg.Wait()
		assert.Equal(t, 1, rawCount(t, db, "SELECT count(*) FROM tenant_oauth_configs"))
		got, err := scope.OAuthApps().Get(ctx, pierredb.ProviderOura)
		require.NoError(t, err)
		found := false
		for _, c := range cfgs {
			found = found || (c.ClientID == got.ClientID && c.ClientSecret.Equal(got.ClientSecret))
		}
		assert.True(t, found, "the stored app is one Set's, whole")
	})
})

var _ = register("OAuthApps", "Rejects", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		_, scope := newTenant(t, db, activeUser(t, db, "owner"))
		apps := scope.OAuthApps()
		for _, tc := range []struct {
			name     string
			provider pierredb.Provider
			change   func(*pierredb.OAuthAppConfig)
			want     string
		}{
			{"unknown provider", "stravaa", nil, "known providers are coros, fitbit, garmin"},
			{"capitalised provider", "Strava", nil, "unknown provider"},
			{"empty provider", "", nil, "provider is required"},
			{"provider with a zero-width space", "strava\u200b", nil, `"strava\u200b"`},
			{"provider with NUL", "strava\x00", nil, "unknown provider"},
			{"provider with invalid UTF-8", "strava\xff", nil, "unknown provider"},
			{"no client id", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.ClientID = " " }, "client id is required"},
			{"client id with a space", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.ClientID = "a b" }, "space"},
			{"client id with a BOM", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.ClientID = "ab\ufeff" }, "invisible"},
			{"client id too long", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.ClientID = strings.Repeat("x", 513) }, "longer"},
			{"no client secret", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.ClientSecret = pierredb.OAuthSecret{} }, "client secret is required"},
			{"client secret too long", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) {
				c.ClientSecret = pierredb.NewOAuthSecret(strings.Repeat("s", 64<<10+1))
			}, "longer"},
			{"no redirect", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.RedirectURI = "" }, "redirect URI is required"},
			{"relative redirect", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.RedirectURI = "/callback" }, "absolute"},
			{"http redirect", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.RedirectURI = "http://mcp.example.com/cb" }, "https"},
			{"javascript redirect", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.RedirectURI = "javascript:alert(1)" }, "redirect URI"},
			{"redirect with a fragment", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.RedirectURI = "https://x.example/cb#frag" }, "fragment"},
			{"redirect with user info", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.RedirectURI = "https://u:p@x.example/cb" }, "user info"},
			{"redirect with a bidi override", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.RedirectURI = "https://x.example/\u202ecb" }, "invisible"},
			{"scope with a space", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.Scopes = []string{"read write"} }, "own element"},
			{"empty scope", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.Scopes = []string{""} }, "empty"},
			{"negative rate limit", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.RateLimitPerDay = -1 }, "rate limit"},
			{"huge rate limit", pierredb.ProviderStrava, func(c *pierredb.OAuthAppConfig) { c.RateLimitPerDay = 1 << 40 }, "rate limit"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cfg := appConfig("rejected")
				if tc.change != nil {
					tc.change(&cfg)
				}
				_, err := apps.Set(ctx, tc.provider, cfg)
				require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
				assert.Contains(t, err.Error(), tc.want)
				onePrefix(t, err)
				noLeak(t, err, cfg.ClientSecret.Reveal())
			})
		}
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM tenant_oauth_configs"), "nothing was stored")
		for _, p := range []pierredb.Provider{"", "nope", "Fitbit"} {
			_, err := apps.Get(ctx, p)
			assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
			assert.ErrorIs(t, apps.Delete(ctx, p), pierredb.ErrInvalidArgument)
		}
	})
})

// A scope whose tenant does not exist answers ErrNotFound for every
// operation, and stores nothing.
var _ = register("OAuthApps", "UnknownTenant", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		scope, err := db.Tenant(ctx, missingID)
		require.NoError(t, err)
		apps := scope.OAuthApps()
		_, err = apps.Set(ctx, pierredb.ProviderStrava, appConfig("ghost"))
		require.ErrorIs(t, err, pierredb.ErrNotFound)
		onePrefix(t, err)
		_, err = apps.Get(ctx, pierredb.ProviderStrava)
		require.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = apps.List(ctx)
		require.ErrorIs(t, err, pierredb.ErrNotFound)
		require.ErrorIs(t, apps.Delete(ctx, pierredb.ProviderStrava), pierredb.ErrNotFound)
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM tenant_oauth_configs"))
	})
})

// The known providers are documented and extensible: a host registers its own
// names at start-up, under strict spelling rules, from any goroutine.
var _ = register("OAuthApps", "Providers", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		for _, p := range []pierredb.Provider{pierredb.ProviderStrava, pierredb.ProviderFitbit, pierredb.ProviderGarmin,
			pierredb.ProviderWhoop, pierredb.ProviderTerra, pierredb.ProviderPolar, pierredb.ProviderOura,
			pierredb.ProviderCoros, pierredb.ProviderSuunto} {
			assert.Contains(t, pierredb.Providers(), p)
		}
		for _, bad := range []string{"", "Acme", "acme health", "acme\u200b", "acme\x00", "acme\xff", "-acme", "acme-", "1acme",
			"acme.io", "acmé", strings.Repeat("a", 33)} {
			err := pierredb.RegisterProvider(bad)
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument, "%q", bad)
			onePrefix(t, err)
		}
		// A name unique to this run, so that parallel subtests do not meet.
		name := fmt.Sprintf("storetest-%s-%d", e.Backend, seq.Add(1))
		db := e.Open(t)
		_, scope := newTenant(t, db, activeUser(t, db, "owner"))
		_, err := scope.OAuthApps().Set(ctx, pierredb.Provider(name), appConfig("custom"))
		require.ErrorIs(t, err, pierredb.ErrInvalidArgument, "not known before it is registered")
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				assert.NoError(t, pierredb.RegisterProvider(name), "registering twice is a no-op")
				_ = pierredb.Providers()
			}()
		}
		wg.Wait()
		assert.Contains(t, pierredb.Providers(), pierredb.Provider(name))
		app, err := scope.OAuthApps().Set(ctx, pierredb.Provider(name), appConfig("custom"))
		require.NoError(t, err)
		assert.Equal(t, pierredb.Provider(name), app.Provider)
	})
})

// The OAuth app domain's operations in the isolation matrix: tenant B reaches
// none of tenant A's apps, whatever the provider.
var _ = isolate(scopedOp{
	name: "oauth app",
	seed: func(ctx context.Context, t *testing.T, w *isolationWorld) string {
		app, err := w.a.OAuthApps().Set(ctx, pierredb.ProviderPolar, appConfig("isolated"))
		require.NoError(t, err)
		return app.ID
	},
	get: func(ctx context.Context, s *pierredb.TenantScope, _ string) error {
		_, err := s.OAuthApps().Get(ctx, pierredb.ProviderPolar)
		return err
	},
	delete: func(ctx context.Context, s *pierredb.TenantScope, _ string) error {
		return s.OAuthApps().Delete(ctx, pierredb.ProviderPolar)
	},
	list: func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
		apps, err := s.OAuthApps().List(ctx)
		return ids(apps, func(a pierredb.OAuthApp) string { return a.ID }), err
	},
	check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
		app, err := w.a.OAuthApps().Get(ctx, pierredb.ProviderPolar)
		require.NoError(t, err)
		assert.Equal(t, key, app.ID)
		assert.Equal(t, "client-isolated", app.ClientID)
		assert.False(t, app.ClientSecret.IsZero())
	},
})
