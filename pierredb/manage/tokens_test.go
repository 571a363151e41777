package manage_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/manage"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

func TestAdminTokens(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, e)
		db := h.open()

		// No super-admin token yet: only a super-admin token can be made,
		// and it is the first one.
		h.fails(manage.ExitError, []string{"no usable super-admin token", "setup"}, "admin-tokens", "create", "--service", "ci", "--permission", "list_keys")
		first := secretLine(t, h.must("admin-tokens", "create", "--service", "ops", "--super-admin"))
		root, err := db.AdminTokens().Verify(ctx, first, "")
		if err != nil || !root.SuperAdmin || root.ServiceName != "ops" {
			t.Fatalf("first token: %+v %v", root, err)
		}

		// Issued through the super-admin token, with its audit trail.
		r := h.must("admin-tokens", "create", "--service", "ci", "--permission", "provision_keys,list_keys", "--permission", "manage_users",
			"--expires-in", "30d", "--description", "the build")
		tok := secretLine(t, r)
		p, err := db.AdminTokens().Verify(ctx, tok, pierredb.AdminManageUsers)
		if err != nil || p.SuperAdmin || len(p.Permissions) != 3 || p.ExpiresAt.IsZero() {
			t.Fatalf("issued token: %+v %v", p, err)
		}
		if _, err := db.AdminTokens().Verify(ctx, tok, pierredb.AdminRotateKeys); !errors.Is(err, pierredb.ErrPermissionDenied) {
			t.Fatalf("the token holds more than asked: %v", err)
		}
		if !strings.Contains(r.stderr, "through super-admin token "+root.TokenID) {
			t.Fatalf("the issuer is not named: %v", r)
		}
		usage, err := db.AdminTokens().ListUsage(ctx, root.TokenID, pierredb.AdminUsageFilter{})
		if err != nil || len(usage.Items) != 1 || usage.Items[0].Action != "cli_create_admin_token" || usage.Items[0].TargetResource != p.TokenID {
			t.Fatalf("audit trail: %+v %v", usage, err)
		}

		// A super-admin token through another.
		second := secretLine(t, h.must("admin-tokens", "create", "--service", "ops2", "--super-admin", "--issuer", root.TokenID))
		root2, err := db.AdminTokens().Verify(ctx, second, "")
		if err != nil || !root2.SuperAdmin {
			t.Fatal(err)
		}

		// Listing shows no token, and states.
		r = h.must("admin-tokens", "list", "--json")
		for _, secret := range []string{first, tok, second} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Fatal("a listing shows a token")
			}
		}
		var listed []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 3 {
			t.Fatalf("admin-tokens list --json: %v %v", err, r)
		}

		// Revoke: the token stops verifying; the last super-admin stays.
		h.must("admin-tokens", "revoke", p.TokenID)
		if _, err := db.AdminTokens().Verify(ctx, tok, ""); !errors.Is(err, pierredb.ErrRevoked) {
			t.Fatalf("revoked token still verifies: %v", err)
		}
		r = h.must("admin-tokens", "revoke", p.TokenID)
		if !strings.Contains(r.stderr, "revoked already") {
			t.Fatal(r)
		}
		h.must("admin-tokens", "revoke", root.TokenID) // through root2
		h.fails(manage.ExitError, []string{"last usable super-admin", "issue another super-admin token first"}, "admin-tokens", "revoke", root2.TokenID)
		if _, err := db.AdminTokens().Verify(ctx, second, ""); err != nil {
			t.Fatalf("the last super-admin token was revoked: %v", err)
		}
		h.fails(manage.ExitError, []string{"not found", "admin-tokens list"}, "admin-tokens", "revoke", "01900000-0000-7000-8000-000000000000")
		h.fails(manage.ExitError, []string{"--issuer", "admin-tokens list"}, "admin-tokens", "create", "--service", "x", "--super-admin",
			"--issuer", "01900000-0000-7000-8000-000000000000")
		h.fails(manage.ExitError, []string{"looks like it holds a token"}, "admin-tokens", "create", "--service", "x", "--super-admin", "--description", "token "+second[:120])
	})
}

func TestAPIKeyCreate(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, e)
		db := h.open()
		u := newUser(t, db, "carol@example.com")
		if _, err := db.Users().Approve(ctx, u.ID, pierredb.ByService("test")); err != nil {
			t.Fatal(err)
		}

		// No home tenant: one is made, owned by the user, and the key lands there.
		r := h.must("api-key", "create", "carol@example.com", "--name", "laptop", "--tier", "professional")
		key := secretLine(t, r)
		p, err := db.APIKeys().Verify(ctx, key)
		if err != nil {
			t.Fatalf("the key does not verify: %v\n%v", err, r)
		}
		after, _ := db.Users().Get(ctx, u.ID)
		if after.TenantID == "" || p.Tenant.ID() != after.TenantID || p.UserID != u.ID {
			t.Fatalf("key principal %+v, user %+v", p, after)
		}
		tn, err := db.Tenants().Get(ctx, after.TenantID)
		if err != nil || tn.OwnerUserID != u.ID || !strings.HasPrefix(tn.Slug, "user-") {
			t.Fatalf("tenant: %+v %v", tn, err)
		}
		if !strings.Contains(r.stderr, "had no tenant") {
			t.Fatal(r)
		}

		// A second key goes to the same tenant, made no new one.
		r = h.must("api-key", "create", "carol@example.com")
		p2, err := db.APIKeys().Verify(ctx, secretLine(t, r))
		if err != nil || p2.Tenant.ID() != after.TenantID || strings.Contains(r.stderr, "had no tenant") {
			t.Fatalf("second key: %+v %v %v", p2, err, r)
		}
		n, err := db.Tenants().List(ctx, pierredb.TenantFilter{OwnerUserID: u.ID})
		if err != nil || len(n.Items) != 1 {
			t.Fatalf("tenants: %+v %v", n, err)
		}

		// Errors: unknown email (nothing made), a taken name, a pending user (warned).
		h.fails(manage.ExitError, []string{"no user has the email"}, "api-key", "create", "nobody@example.com")
		h.fails(manage.ExitError, []string{"laptop"}, "api-key", "create", "carol@example.com", "--name", "laptop")
		newUser(t, db, "dave@example.com")
		r = h.must("api-key", "create", "dave@example.com")
		if !strings.Contains(r.stderr, "dave@example.com is pending") {
			t.Fatalf("no warning for a pending user: %v", r)
		}
		h.fails(manage.ExitError, []string{"tier"}, "api-key", "create", "carol@example.com", "--tier", "platinum")
	})
}
