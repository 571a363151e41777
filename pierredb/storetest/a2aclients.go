package storetest

// The A2AClients domain: registering a tenant's agent-to-agent clients,
// verifying their credentials, rotating secrets, quotas and usage.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
)

// newClient registers a client for the world's member.
func (w *keyWorld) newClient(t *testing.T, nc pierredb.NewA2AClient) pierredb.RegisteredA2AClient {
	t.Helper()
	if nc.UserID == "" {
		nc.UserID = w.member.ID
	}
	if nc.Name == "" {
		nc.Name = fmt.Sprintf("agent %d", seq.Add(1))
	}
	c, err := w.scope.A2AClients().Register(t.Context(), nc)
	require.NoError(t, err)
	return c
}

// forgeSecret returns a well-formed client secret that no client has.
func forgeSecret() string {
	return forgeKey(pierredb.A2AClientSecretPrefix+fmt.Sprintf("%06d", seq.Add(1)%1000000), len(pierredb.A2AClientSecretPrefix)+22)
}

var _ = register("A2AClients", "Register", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newKeyWorld(t, e)
		c := w.newClient(t, pierredb.NewA2AClient{
			Name:         "  Coach Agent ",
			Description:  "plans training",
			Capabilities: []pierredb.A2ACapability{pierredb.A2ATrainingAnalytics, pierredb.A2AGoalManagement, pierredb.A2ATrainingAnalytics},
			RedirectURIs: []string{"https://agent.example.com/callback", "http://127.0.0.1:8765/cb", "http://localhost/cb",
				"http://[::1]:9000/cb", "https://agent.example.com/callback"},
			ContactEmail:     " Dev@Example.COM ",
			AgentVersion:     "1.4.2",
			DocumentationURL: "https://agent.example.com/docs",
		})
		secret := c.Secret.Reveal()
		assert.True(t, strings.HasPrefix(c.ClientID, pierredb.A2AClientIDPrefix))
		assert.Len(t, c.ClientID, len(pierredb.A2AClientIDPrefix)+22)
		assert.True(t, strings.HasPrefix(secret, pierredb.A2AClientSecretPrefix))
		assert.Len(t, secret, len(pierredb.A2AClientSecretPrefix)+22+6)
		assert.Equal(t, w.scope.ID(), c.TenantID)
		assert.Equal(t, w.member.ID, c.UserID)
		assert.Equal(t, "Coach Agent", c.Name)
		assert.Equal(t, "plans training", c.Description)
		assert.Equal(t, []pierredb.A2ACapability{pierredb.A2ATrainingAnalytics, pierredb.A2AGoalManagement}, c.Capabilities, "duplicates dropped, order kept")
		assert.Equal(t, []string{"https://agent.example.com/callback", "http://127.0.0.1:8765/cb", "http://localhost/cb", "http://[::1]:9000/cb"}, c.RedirectURIs)
		assert.Equal(t, "dev@example.com", c.ContactEmail)
		assert.Equal(t, "1.4.2", c.AgentVersion)
		assert.Equal(t, "https://agent.example.com/docs", c.DocumentationURL)
		assert.Equal(t, pierredb.DefaultA2ARateLimit, c.RateLimit)
		assert.True(t, c.IsActive)
		assert.True(t, c.LastUsedAt.IsZero())
		sameTime(t, micro(base), c.CreatedAt)

		got, err := w.scope.A2AClients().Get(ctx, c.ClientID)
		require.NoError(t, err)
		sameTime(t, c.CreatedAt, got.CreatedAt)
		sameTime(t, c.UpdatedAt, got.UpdatedAt)
		got.CreatedAt, got.UpdatedAt = c.CreatedAt, c.UpdatedAt
		assert.Equal(t, c.A2AClient, got)

		var hash string
		require.NoError(t, w.db.Bun().QueryRowContext(ctx, "SELECT client_secret_hash FROM a2a_clients WHERE client_id = ?", c.ClientID).Scan(&hash))
		assert.True(t, strings.HasPrefix(hash, "hmac-sha256$v1$"))
		redacts(t, c, secret)
		redacts(t, &c, secret)

		largest := w.newClient(t, pierredb.NewA2AClient{RateLimit: &pierredb.A2ARateLimit{Requests: 1<<31 - 1, Window: 366 * 24 * time.Hour}})
		assert.Equal(t, pierredb.A2ARateLimit{Requests: 1<<31 - 1, Window: 366 * 24 * time.Hour}, largest.RateLimit)
		minimal := w.newClient(t, pierredb.NewA2AClient{RateLimit: &pierredb.A2ARateLimit{Requests: 5, Window: 24 * time.Hour}})
		assert.Empty(t, minimal.Capabilities)
		assert.Empty(t, minimal.RedirectURIs)
		assert.Empty(t, minimal.ContactEmail)
		assert.Empty(t, minimal.DocumentationURL)
		assert.Equal(t, pierredb.A2ARateLimit{Requests: 5, Window: 24 * time.Hour}, minimal.RateLimit)
		assert.NotEqual(t, c.ClientID, minimal.ClientID)
		assert.Len(t, pierredb.A2ACapabilities(), 6)
	})
})

var _ = register("A2AClients", "RegisterRefused", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newKeyWorld(t, e)
		outsider := activeUser(t, w.db, "outsider")
		gone, err := w.db.Tenant(ctx, uuid.NewString())
		require.NoError(t, err)
		ok := func(f func(*pierredb.NewA2AClient)) pierredb.NewA2AClient {
			nc := pierredb.NewA2AClient{UserID: w.member.ID, Name: "agent"}
			f(&nc)
			return nc
		}
		uri := func(u string) pierredb.NewA2AClient {
			return ok(func(nc *pierredb.NewA2AClient) { nc.RedirectURIs = []string{"https://fine.example.com/cb", u} })
		}
		for _, tc := range []struct {
			name  string
			scope *pierredb.TenantScope
			nc    pierredb.NewA2AClient
			want  error
		}{
			{"no user", nil, ok(func(nc *pierredb.NewA2AClient) { nc.UserID = "" }), pierredb.ErrInvalidArgument},
			{"user not a member", nil, ok(func(nc *pierredb.NewA2AClient) { nc.UserID = outsider.ID }), pierredb.ErrNotFound},
			{"tenant that does not exist", gone, ok(func(*pierredb.NewA2AClient) {}), pierredb.ErrNotFound},
			{"no name", nil, ok(func(nc *pierredb.NewA2AClient) { nc.Name = " " }), pierredb.ErrInvalidArgument},
			{"hidden name", nil, ok(func(nc *pierredb.NewA2AClient) { nc.Name = "a\u200db" }), pierredb.ErrInvalidArgument},
			{"name not UTF-8", nil, ok(func(nc *pierredb.NewA2AClient) { nc.Name = "\xc0" }), pierredb.ErrInvalidArgument},
			{"long description", nil, ok(func(nc *pierredb.NewA2AClient) { nc.Description = strings.Repeat("d", 1001) }), pierredb.ErrInvalidArgument},
			{"unknown capability", nil, ok(func(nc *pierredb.NewA2AClient) { nc.Capabilities = []pierredb.A2ACapability{"admin"} }), pierredb.ErrInvalidArgument},
			{"capability in another case", nil, ok(func(nc *pierredb.NewA2AClient) { nc.Capabilities = []pierredb.A2ACapability{"Goal-Management"} }), pierredb.ErrInvalidArgument},
			{"http redirect", nil, uri("http://agent.example.com/cb"), pierredb.ErrInvalidArgument},
			{"http on a look-alike of localhost", nil, uri("http://localhost.evil.com/cb"), pierredb.ErrInvalidArgument},
			{"http on a private address", nil, uri("http://10.0.0.1/cb"), pierredb.ErrInvalidArgument},
			{"relative redirect", nil, uri("/cb"), pierredb.ErrInvalidArgument},
			{"no host", nil, uri("https:///cb"), pierredb.ErrInvalidArgument},
			{"javascript", nil, uri("javascript:alert(1)"), pierredb.ErrInvalidArgument},
			{"custom scheme", nil, uri("myapp://cb"), pierredb.ErrInvalidArgument},
			{"fragment", nil, uri("https://agent.example.com/cb#x"), pierredb.ErrInvalidArgument},
			{"user info", nil, uri("https://user:pw@agent.example.com/cb"), pierredb.ErrInvalidArgument},
			{"space", nil, uri("https://agent.example.com/c b"), pierredb.ErrInvalidArgument},
			{"NUL", nil, uri("https://agent.example.com/\x00"), pierredb.ErrInvalidArgument},
			{"empty redirect", nil, uri(""), pierredb.ErrInvalidArgument},
			{"too many redirects", nil, ok(func(nc *pierredb.NewA2AClient) {
				for i := range 21 {
					nc.RedirectURIs = append(nc.RedirectURIs, fmt.Sprintf("https://a.example.com/%d", i))
				}
			}), pierredb.ErrInvalidArgument},
			{"bad contact email", nil, ok(func(nc *pierredb.NewA2AClient) { nc.ContactEmail = "not an email" }), pierredb.ErrInvalidArgument},
			{"long agent version", nil, ok(func(nc *pierredb.NewA2AClient) { nc.AgentVersion = strings.Repeat("1", 65) }), pierredb.ErrInvalidArgument},
			{"http documentation", nil, ok(func(nc *pierredb.NewA2AClient) { nc.DocumentationURL = "http://docs.example.com" }), pierredb.ErrInvalidArgument},
			{"zero requests", nil, ok(func(nc *pierredb.NewA2AClient) { nc.RateLimit = &pierredb.A2ARateLimit{Window: time.Hour} }), pierredb.ErrInvalidArgument},
			{"requests past 32 bits", nil, ok(func(nc *pierredb.NewA2AClient) {
				nc.RateLimit = &pierredb.A2ARateLimit{Requests: 1 << 31, Window: time.Hour}
			}), pierredb.ErrInvalidArgument},
			{"zero window", nil, ok(func(nc *pierredb.NewA2AClient) { nc.RateLimit = &pierredb.A2ARateLimit{Requests: 1} }), pierredb.ErrInvalidArgument},
			{"fractional window", nil, ok(func(nc *pierredb.NewA2AClient) {
				nc.RateLimit = &pierredb.A2ARateLimit{Requests: 1, Window: 1500 * time.Millisecond}
			}), pierredb.ErrInvalidArgument},
			{"window over a year", nil, ok(func(nc *pierredb.NewA2AClient) {
				nc.RateLimit = &pierredb.A2ARateLimit{Requests: 1, Window: 367 * 24 * time.Hour}
			}), pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := tc.scope
				if s == nil {
					s = w.scope
				}
				c, err := s.A2AClients().Register(ctx, tc.nc)
				require.ErrorIs(t, err, tc.want)
				assert.Zero(t, c)
				onePrefix(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), "pierredb: register A2A client: "), err.Error())
			})
		}
		assert.Zero(t, rawCount(t, w.db, "SELECT count(*) FROM a2a_clients"), "nothing was written")
	})
})

var _ = register("A2AClients", "Verify", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newKeyWorld(t, e)
		c := w.newClient(t, pierredb.NewA2AClient{Name: "verify me", Capabilities: []pierredb.A2ACapability{pierredb.A2AFitnessDataAnalysis},
			RateLimit: &pierredb.A2ARateLimit{Requests: 3, Window: 90 * time.Second}})
		secret := c.Secret.Reveal()
		// 90-second windows aligned to the Unix epoch: base (12:00:00.123) is in
		// the window that starts at 12:00:00, and the one before started at 11:58:30.
		winStart := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		require.Zero(t, winStart.Unix()%90)

		p, err := w.db.A2AClients().Verify(ctx, c.ClientID, secret)
		require.NoError(t, err)
		assert.Equal(t, c.ClientID, p.ClientID)
		assert.Equal(t, "verify me", p.ClientName)
		assert.Equal(t, w.member.ID, p.UserID)
		assert.Equal(t, w.member.Email, p.Email)
		assert.Equal(t, w.scope.ID(), p.Tenant.ID())
		assert.Equal(t, []pierredb.A2ACapability{pierredb.A2AFitnessDataAnalysis}, p.Capabilities)
		assert.Equal(t, pierredb.A2ARateLimit{Requests: 3, Window: 90 * time.Second}, p.RateLimit)
		assert.EqualValues(t, 2, p.Remaining)
		sameTime(t, winStart.Add(90*time.Second), p.Reset)

		cp, err := w.db.A2AClients().Check(ctx, c.ClientID, secret)
		require.NoError(t, err)
		assert.Zero(t, cp.Remaining, "Check does not count")
		for range 2 {
			_, err := w.db.A2AClients().Verify(ctx, c.ClientID, secret)
			require.NoError(t, err)
		}
		_, err = w.db.A2AClients().Verify(ctx, c.ClientID, secret)
		var rl *pierredb.RateLimitError
		require.ErrorAs(t, err, &rl)
		assert.EqualValues(t, 3, rl.Limit)
		sameTime(t, winStart.Add(90*time.Second), rl.Reset)
		onePrefix(t, err)
		noLeak(t, err, secret)

		w.clk.Set(winStart.Add(90 * time.Second))
		p, err = w.db.A2AClients().Verify(ctx, c.ClientID, secret)
		require.NoError(t, err, "the next window")
		assert.EqualValues(t, 2, p.Remaining)

		usage, err := w.scope.A2AClients().Usage(ctx, c.ClientID, pierredb.UsageOptions{})
		require.NoError(t, err)
		require.Len(t, usage.Items, 2)
		sameTime(t, winStart, usage.Items[0].Start)
		assert.EqualValues(t, 3, usage.Items[0].Requests, "the refused request is not counted")
		assert.EqualValues(t, 1, usage.Items[1].Requests)
		got, err := w.scope.A2AClients().Get(ctx, c.ClientID)
		require.NoError(t, err)
		sameTime(t, winStart.Add(90*time.Second), got.LastUsedAt, "written again once the interval passed")
		_, err = w.scope.A2AClients().Usage(ctx, uuid.NewString(), pierredb.UsageOptions{})
		require.ErrorIs(t, err, pierredb.ErrNotFound)
	})
})

var _ = register("A2AClients", "VerifyRefused", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newKeyWorld(t, e, pierredb.WithAutoApproveUsers(false))
		good := w.newClient(t, pierredb.NewA2AClient{})
		other := w.newClient(t, pierredb.NewA2AClient{})
		off := w.newClient(t, pierredb.NewA2AClient{})
		_, err := w.scope.A2AClients().Deactivate(ctx, off.ClientID)
		require.NoError(t, err)
		pending, err := w.scope.Members().CreateUser(ctx, pierredb.NewUser{Email: uniqueEmail("pending"), Password: Password})
		require.NoError(t, err)
		pendingClient := w.newClient(t, pierredb.NewA2AClient{UserID: pending.ID})
		suspended := member(t, w.db, w.scope, "suspended", pierredb.RoleMember)
		suspendedClient := w.newClient(t, pierredb.NewA2AClient{UserID: suspended.ID})
		_, err = w.db.Users().Suspend(ctx, suspended.ID)
		require.NoError(t, err)
		leaver := member(t, w.db, w.scope, "leaver", pierredb.RoleMember)
		leaverClient := w.newClient(t, pierredb.NewA2AClient{UserID: leaver.ID})
		require.NoError(t, w.scope.Members().Remove(ctx, leaver.ID))
		_, err = w.db.Tenants().Update(ctx, w.scope.ID(), pierredb.TenantUpdate{IsActive: ptr(false)})
		require.NoError(t, err)
		inactiveTenant := good // checked last, once the tenant is inactive
		secret := good.Secret.Reveal()
		all := []string{secret, other.Secret.Reveal(), off.Secret.Reveal(), pendingClient.Secret.Reveal(), suspendedClient.Secret.Reveal(), leaverClient.Secret.Reveal()}

		for _, tc := range []struct {
			name, id, secret string
			want             error
		}{
			{"empty", "", "", pierredb.ErrInvalidCredential},
			{"malformed id", "a2a_short", secret, pierredb.ErrInvalidCredential},
			{"id with a NUL", good.ClientID[:10] + "\x00" + good.ClientID[11:], secret, pierredb.ErrInvalidCredential},
			{"id in another case", strings.ToUpper(good.ClientID), secret, pierredb.ErrInvalidCredential},
			{"malformed secret", good.ClientID, secret[:len(secret)-1], pierredb.ErrInvalidCredential},
			{"secret with a typo", good.ClientID, secret[:15] + string(rune(secret[15]^1)) + secret[16:], pierredb.ErrInvalidCredential},
			{"an API key as secret", good.ClientID, forgeKey("pk_live_", 30), pierredb.ErrInvalidCredential},
			{"unknown id", pierredb.A2AClientIDPrefix + strings.Repeat("Z", 22), secret, pierredb.ErrInvalidCredential},
			{"wrong secret", good.ClientID, forgeSecret(), pierredb.ErrInvalidCredential},
			{"another client's secret", good.ClientID, other.Secret.Reveal(), pierredb.ErrInvalidCredential},
			{"deactivated", off.ClientID, off.Secret.Reveal(), pierredb.ErrRevoked},
			{"user pending", pendingClient.ClientID, pendingClient.Secret.Reveal(), pierredb.ErrUserPending},
			{"user suspended", suspendedClient.ClientID, suspendedClient.Secret.Reveal(), pierredb.ErrUserSuspended},
			{"user left the tenant", leaverClient.ClientID, leaverClient.Secret.Reveal(), pierredb.ErrInvalidCredential},
			{"tenant deactivated", inactiveTenant.ClientID, secret, pierredb.ErrTenantInactive},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, verify := range []func(context.Context, string, string) (pierredb.A2APrincipal, error){w.db.A2AClients().Verify, w.db.A2AClients().Check} {
					p, err := verify(ctx, tc.id, tc.secret)
					require.ErrorIs(t, err, tc.want)
					assert.Zero(t, p)
					onePrefix(t, err)
					noLeak(t, err, append(all, tc.secret)...)
					if tc.want == pierredb.ErrInvalidCredential {
						assert.Contains(t, []string{"pierredb: verify A2A client: invalid credential", "pierredb: check A2A client: invalid credential"}, err.Error())
					}
				}
			})
		}
	})
})

var _ = register("A2AClients", "Lifecycle", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		clk := newClock(base)
		db := e.OpenURL(t, url, pierredb.WithClock(clk.Now))
		other := e.OpenURL(t, url, pierredb.WithClock(clk.Now)) // another process
		w := newKeyWorldOn(t, db, clk)
		clients := w.scope.A2AClients()
		c := w.newClient(t, pierredb.NewA2AClient{})
		verifyBoth := func(secret string, want error) {
			t.Helper()
			for _, d := range []*pierredb.Database{db, other} {
				_, err := d.A2AClients().Verify(ctx, c.ClientID, secret)
				if want == nil {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, want)
				}
			}
		}
		first := c.Secret.Reveal()
		verifyBoth(first, nil)

		clk.Advance(time.Second)
		got, err := clients.Deactivate(ctx, c.ClientID)
		require.NoError(t, err)
		assert.False(t, got.IsActive)
		sameTime(t, micro(clk.Now()), got.UpdatedAt)
		verifyBoth(first, pierredb.ErrRevoked)
		_, err = clients.Deactivate(ctx, c.ClientID)
		require.ErrorIs(t, err, pierredb.ErrConflict)
		onePrefix(t, err)
		_, err = clients.Reactivate(ctx, c.ClientID)
		require.NoError(t, err)
		verifyBoth(first, nil)
		_, err = clients.Reactivate(ctx, c.ClientID)
		require.ErrorIs(t, err, pierredb.ErrConflict)

		rotated, err := clients.RotateSecret(ctx, c.ClientID)
		require.NoError(t, err)
		second := rotated.Secret.Reveal()
		assert.NotEqual(t, first, second)
		assert.Equal(t, c.ClientID, rotated.ClientID)
		verifyBoth(first, pierredb.ErrInvalidCredential)
		verifyBoth(second, nil)
		redacts(t, rotated, second)

		// A deactivated client keeps its state through a rotation.
		_, err = clients.Deactivate(ctx, c.ClientID)
		require.NoError(t, err)
		rotated, err = clients.RotateSecret(ctx, c.ClientID)
		require.NoError(t, err)
		assert.False(t, rotated.IsActive)
		verifyBoth(rotated.Secret.Reveal(), pierredb.ErrRevoked)

		// Listing, with filters and pages.
		var mine, owners []string
		for range 3 {
			clk.Advance(time.Second)
			mine = append(mine, w.newClient(t, pierredb.NewA2AClient{}).ClientID)
			clk.Advance(time.Second)
			owners = append(owners, w.newClient(t, pierredb.NewA2AClient{UserID: w.owner.ID}).ClientID)
		}
		clientIDs := func(f pierredb.A2AClientFilter) []string {
			t.Helper()
			var out []string
			f.Limit = 2
			for {
				page, err := clients.List(ctx, f)
				require.NoError(t, err)
				out = append(out, ids(page.Items, func(c pierredb.A2AClient) string { return c.ClientID })...)
				if page.Next == "" {
					return out
				}
				f.Cursor = page.Next
			}
		}
		assert.Equal(t, []string{c.ClientID, mine[0], owners[0], mine[1], owners[1], mine[2], owners[2]}, clientIDs(pierredb.A2AClientFilter{}))
		assert.Equal(t, append([]string{c.ClientID}, mine...), clientIDs(pierredb.A2AClientFilter{UserID: w.member.ID}))
		assert.Equal(t, owners, clientIDs(pierredb.A2AClientFilter{UserID: w.owner.ID, Active: ptr(true)}))
		assert.Equal(t, []string{c.ClientID}, clientIDs(pierredb.A2AClientFilter{Active: ptr(false)}))
		for _, bad := range []pierredb.A2AClientFilter{{Limit: -1}, {Cursor: "?"}, {UserID: "\x00"}} {
			_, err := clients.List(ctx, bad)
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
			onePrefix(t, err)
		}
		gone, err := db.Tenant(ctx, uuid.NewString())
		require.NoError(t, err)
		_, err = gone.A2AClients().List(ctx, pierredb.A2AClientFilter{})
		require.ErrorIs(t, err, pierredb.ErrNotFound)

		// Delete: the client and its usage go.
		require.NoError(t, clients.Delete(ctx, c.ClientID))
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM a2a_client_usage WHERE client_id = ?", c.ClientID))
		verifyBoth(second, pierredb.ErrInvalidCredential)
		for _, op := range []func() error{
			func() error { return clients.Delete(ctx, c.ClientID) },
			func() error { _, err := clients.Get(ctx, c.ClientID); return err },
			func() error { _, err := clients.Deactivate(ctx, c.ClientID); return err },
			func() error { _, err := clients.Reactivate(ctx, c.ClientID); return err },
			func() error { _, err := clients.RotateSecret(ctx, c.ClientID); return err },
		} {
			err := op()
			require.ErrorIs(t, err, pierredb.ErrNotFound)
			onePrefix(t, err)
		}
		_, err = clients.Get(ctx, "")
		require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
})

var _ = register("A2AClients", "ExactQuota", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		w := newKeyWorldOn(t, db, nil)
		// One process, counting as its engine does by default (in memory on
		// SQLite, in the database on PostgreSQL).
		c := w.newClient(t, pierredb.NewA2AClient{RateLimit: &pierredb.A2ARateLimit{Requests: 55, Window: 24 * time.Hour}})
		for range 5 {
			_, err := db.A2AClients().Verify(ctx, c.ClientID, c.Secret.Reveal())
			require.NoError(t, err)
		}
		exactQuota(t, func(int) error {
			_, err := db.A2AClients().Verify(context.Background(), c.ClientID, c.Secret.Reveal())
			return err
		})
		page, err := w.scope.A2AClients().Usage(ctx, c.ClientID, pierredb.UsageOptions{})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		assert.EqualValues(t, 55, page.Items[0].Requests)

		// Two processes that count in the database.
		c2 := w.newClient(t, pierredb.NewA2AClient{RateLimit: &pierredb.A2ARateLimit{Requests: 55, Window: 24 * time.Hour}})
		dbs := []*pierredb.Database{e.OpenURL(t, url, pierredb.WithUsageFlushInterval(0)), e.OpenURL(t, url, pierredb.WithUsageFlushInterval(0))}
		for range 5 {
			_, err := dbs[0].A2AClients().Verify(ctx, c2.ClientID, c2.Secret.Reveal())
			require.NoError(t, err)
		}
		exactQuota(t, func(i int) error {
			_, err := dbs[i%2].A2AClients().Verify(context.Background(), c2.ClientID, c2.Secret.Reveal())
			return err
		})
	})
})

// isoA2ASecrets keeps the secrets of the clients the isolation matrix seeds, so
// that its checks can verify them.
var isoA2ASecrets sync.Map

// The A2A client domain's operations in the isolation matrix.
var (
	seedA2A = func(ctx context.Context, t *testing.T, w *isolationWorld) string {
		c, err := w.a.A2AClients().Register(ctx, pierredb.NewA2AClient{UserID: w.memberA.ID, Name: "iso agent"})
		require.NoError(t, err)
		isoA2ASecrets.Store(c.ClientID, c.Secret.Reveal())
		return c.ClientID
	}
	checkA2A = func(active bool) func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
		return func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			c, err := w.a.A2AClients().Get(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, active, c.IsActive)
			secret, _ := isoA2ASecrets.Load(key)
			p, err := w.db.A2AClients().Check(ctx, key, secret.(string))
			if active {
				require.NoError(t, err, "the secret was not replaced")
				assert.Equal(t, w.a.ID(), p.Tenant.ID(), "a client of A authenticates into A")
			} else {
				require.ErrorIs(t, err, pierredb.ErrRevoked)
			}
		}
	}
	listA2A = func(active *bool) func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
		return func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
			page, err := s.A2AClients().List(ctx, pierredb.A2AClientFilter{Active: active, Limit: 1000})
			return ids(page.Items, func(c pierredb.A2AClient) string { return c.ClientID }), err
		}
	}

	_ = isolate(scopedOp{
		name: "a2a client",
		seed: seedA2A,
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.A2AClients().Get(ctx, key)
			return err
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.A2AClients().RotateSecret(ctx, key)
			return err
		},
		delete: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			return s.A2AClients().Delete(ctx, key)
		},
		list:  listA2A(nil),
		check: checkA2A(true),
	})
	_ = isolate(scopedOp{
		name: "a2a client state",
		seed: seedA2A,
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.A2AClients().Usage(ctx, key, pierredb.UsageOptions{})
			return err
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.A2AClients().Deactivate(ctx, key)
			return err
		},
		list:  listA2A(ptr(true)),
		check: checkA2A(true),
	})
	_ = isolate(scopedOp{
		name: "deactivated a2a client",
		seed: func(ctx context.Context, t *testing.T, w *isolationWorld) string {
			id := seedA2A(ctx, t, w)
			_, err := w.a.A2AClients().Deactivate(ctx, id)
			require.NoError(t, err)
			return id
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.A2AClients().Reactivate(ctx, key)
			return err
		},
		list:  listA2A(ptr(false)),
		check: checkA2A(false),
	})
	_ = isolate(scopedOp{
		// Tenant B cannot register a client for a member of A only.
		name: "a2a client for A's member",
		seed: func(ctx context.Context, t *testing.T, w *isolationWorld) string {
			seedA2A(ctx, t, w)
			return w.memberA.ID
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.A2AClients().Register(ctx, pierredb.NewA2AClient{UserID: key, Name: "planted"})
			return err
		},
		list: func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
			page, err := s.A2AClients().List(ctx, pierredb.A2AClientFilter{Limit: 1000})
			return ids(page.Items, func(c pierredb.A2AClient) string { return c.UserID }), err
		},
		check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			page, err := w.b.A2AClients().List(ctx, pierredb.A2AClientFilter{UserID: key})
			require.NoError(t, err)
			assert.Empty(t, page.Items)
		},
	})
)
