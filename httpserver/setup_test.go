package httpserver_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/httpserver"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// TestSetupRace sends 8 setup requests at once, twice over (distinct emails,
// then one email for all): exactly one is 201, the others 409, and the
// database holds one admin user and one admin token.
func TestSetupRace(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		for _, sameEmail := range []bool{false, true} {
			t.Run(fmt.Sprintf("same email %v", sameEmail), func(t *testing.T) {
				h := newHarness(t, e, httpserver.Options{})
				const n = 8
				codes := make([]int, n)
				tokens := make([]string, n)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range n {
					email := fmt.Sprintf("admin%d@example.com", i)
					if sameEmail {
						email = "admin@example.com"
					}
					pw := fmt.Sprintf("password number %d", i)
					h.secret("setup password", pw)
					wg.Go(func() {
						<-start
						res := h.do(request{method: http.MethodPost, path: "/admin/setup",
							body: map[string]any{"email": email, "password": pw, "display_name": "Admin"}})
						codes[i] = res.Code
						if res.Code == http.StatusCreated {
							tokens[i] = h.takeSecret(res, "setup token", str(t, res.data()["admin_token"]))
						} else {
							m := res.expectError(http.StatusConflict, httpserver.CodeConflict)
							assert.Equal(t, "Admin user already exists. Use admin token management instead.", m["message"])
						}
					})
				}
				close(start)
				wg.Wait()
				created := 0
				var token string
				for i, c := range codes {
					if c == http.StatusCreated {
						created++
						token = tokens[i]
					}
				}
				require.Equal(t, 1, created, "statuses: %v", codes)

				ctx := context.Background()
				yes := true
				admins, err := h.db.Users().Count(ctx, pierredb.UserFilter{IsAdmin: &yes})
				require.NoError(t, err)
				assert.Equal(t, 1, admins)
				all, err := h.db.Users().Count(ctx, pierredb.UserFilter{})
				require.NoError(t, err)
				assert.Equal(t, 1, all, "the losers left no user behind")
				page, err := h.db.AdminTokens().List(ctx, pierredb.ListOptions{})
				require.NoError(t, err)
				require.Len(t, page.Items, 1)
				assert.True(t, page.Items[0].SuperAdmin)
				assert.Equal(t, "initial_admin_setup", page.Items[0].ServiceName)
				// The winner's token works.
				h.do(request{method: http.MethodGet, path: "/admin/users", token: token}).expect(http.StatusOK)
			})
		}
	})
}

// TestSetupStatusAgrees: setup/status says a setup is needed exactly when
// POST /admin/setup would create the first admin, also when the only admin is
// suspended (setup stays closed then).
func TestSetupStatusAgrees(t *testing.T) {
	t.Parallel()
	storetest.RunOn(t, pierredb.SQLite, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		h := newHarness(t, e, httpserver.Options{})
		adminID, _ := h.setup()
		_, err := h.db.Users().Suspend(context.Background(), adminID)
		require.NoError(t, err)
		m := h.do(request{method: http.MethodGet, path: "/admin/setup/status"}).expect(http.StatusOK).json()
		h.do(request{method: http.MethodPost, path: "/admin/setup",
			body: map[string]any{"email": "new@example.com", "password": "a long enough password"}}).expectError(http.StatusConflict, httpserver.CodeConflict)
		assert.Equal(t, false, m["needs_setup"], "setup is closed")
		assert.Equal(t, true, m["admin_user_exists"])
	})
}
