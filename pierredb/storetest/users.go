package storetest

// The Users domain: accounts, the approval workflow, listings and counts, and
// what every user-facing operation refuses. Authentication, passwords and
// last_active are in users_auth.go.

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
)

var _ = register("Users", "Create", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock(base)
		db := e.Open(t, pierredb.WithClock(clk.Now))

		u, err := db.Users().Create(ctx, pierredb.NewUser{
			Email: " \tAlice.Smith@Example.COM \n", Password: Password, DisplayName: "Alice Smith",
		})
		require.NoError(t, err)
		assert.Equal(t, "alice.smith@example.com", u.Email, "email is trimmed and lower-cased")
		assert.NotEmpty(t, u.ID)
		assert.Equal(t, "Alice Smith", u.DisplayName)
		assert.Equal(t, pierredb.TierStarter, u.Tier, "tier defaults to starter")
		assert.Equal(t, pierredb.StatusPending, u.Status, "new users are pending by default")
		assert.True(t, u.IsActive)
		assert.False(t, u.IsAdmin)
		assert.Empty(t, u.TenantID)
		assert.Empty(t, u.ApprovedBy)
		assert.Empty(t, u.ApprovedByService)
		assert.True(t, u.ApprovedAt.IsZero())
		assert.True(t, u.LastActive.IsZero())
		assert.Equal(t, micro(base), u.CreatedAt, "the store's clock, at microsecond precision")
		assert.Equal(t, u.CreatedAt, u.UpdatedAt)

		got, err := db.Users().Get(ctx, u.ID)
		require.NoError(t, err)
		sameUser(t, u, got)

		// The stored hash is argon2id in PHC form at the default policy.
		stored := rawPasswordHash(t, db, u.ID)
		assert.Equal(t, [3]int{19456, 2, 1}, argonParams(t, stored))
		assert.NotContains(t, stored, Password)

		// A second user with the same email, however it is spelt, is refused.
		for _, email := range []string{"alice.smith@example.com", "ALICE.SMITH@EXAMPLE.COM", "  Alice.Smith@example.com\t"} {
			_, err := db.Users().Create(ctx, pierredb.NewUser{Email: email, Password: "another-password"})
			require.ErrorIs(t, err, pierredb.ErrAlreadyExists, "email %q", email)
			onePrefix(t, err)
			noLeak(t, err, "another-password")
		}

		// Tiers and the password length boundaries.
		pro, err := db.Users().Create(ctx, pierredb.NewUser{Email: uniqueEmail("pro"), Password: "12345678", Tier: pierredb.TierProfessional})
		require.NoError(t, err, "eight characters is enough")
		assert.Equal(t, pierredb.TierProfessional, pro.Tier)
		_, err = db.Users().Create(ctx, pierredb.NewUser{Email: uniqueEmail("long"), Password: strings.Repeat("p", 4096)})
		require.NoError(t, err, "4096 bytes is the most a password may have")
		_, err = db.Users().Create(ctx, pierredb.NewUser{Email: uniqueEmail("unicode"), Password: "ünïcödé!"})
		require.NoError(t, err, "eight characters in twelve bytes")

		n, err := db.Users().Count(ctx, pierredb.UserFilter{})
		require.NoError(t, err)
		assert.Equal(t, 4, n)
	})
})

var _ = register("Users", "CreateRejects", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		long := strings.Repeat("L0ng", 1025) // 4100 bytes
		for _, tc := range []struct {
			name string
			nu   pierredb.NewUser
			want error
		}{
			{"empty email", pierredb.NewUser{Email: "", Password: Password}, pierredb.ErrInvalidArgument},
			{"blank email", pierredb.NewUser{Email: " \t ", Password: Password}, pierredb.ErrInvalidArgument},
			{"no at sign", pierredb.NewUser{Email: "plainaddress", Password: Password}, pierredb.ErrInvalidArgument},
			{"no local part", pierredb.NewUser{Email: "@example.com", Password: Password}, pierredb.ErrInvalidArgument},
			{"no domain", pierredb.NewUser{Email: "user@", Password: Password}, pierredb.ErrInvalidArgument},
			{"two at signs", pierredb.NewUser{Email: "a@b@example.com", Password: Password}, pierredb.ErrInvalidArgument},
			{"display name form", pierredb.NewUser{Email: "Alice <alice@example.com>", Password: Password}, pierredb.ErrInvalidArgument},
			{"angle brackets", pierredb.NewUser{Email: "<alice@example.com>", Password: Password}, pierredb.ErrInvalidArgument},
			{"address list", pierredb.NewUser{Email: "alice@example.com, bob@example.com", Password: Password}, pierredb.ErrInvalidArgument},
			{"inner space", pierredb.NewUser{Email: "alice smith@example.com", Password: Password}, pierredb.ErrInvalidArgument},
			{"header injection", pierredb.NewUser{Email: "alice@example.com\r\nBcc: eve@example.com", Password: Password}, pierredb.ErrInvalidArgument},
			{"longer than 254 bytes", pierredb.NewUser{Email: strings.Repeat("a", 250) + "@example.com", Password: Password}, pierredb.ErrInvalidArgument},
			{"empty password", pierredb.NewUser{Email: uniqueEmail("p0"), Password: ""}, pierredb.ErrPasswordTooShort},
			{"seven characters", pierredb.NewUser{Email: uniqueEmail("p7"), Password: "Sev3n!!"}, pierredb.ErrPasswordTooShort},
			{"seven characters in many bytes", pierredb.NewUser{Email: uniqueEmail("p7u"), Password: "ünïcödé"}, pierredb.ErrPasswordTooShort},
			{"4097 bytes", pierredb.NewUser{Email: uniqueEmail("p4097"), Password: strings.Repeat("x", 4097)}, pierredb.ErrPasswordTooLong},
			{"4100 bytes", pierredb.NewUser{Email: uniqueEmail("p4100"), Password: long}, pierredb.ErrPasswordTooLong},
			{"unknown tier", pierredb.NewUser{Email: uniqueEmail("tier"), Password: Password, Tier: "gold"}, pierredb.ErrInvalidArgument},
			{"trial is for API keys", pierredb.NewUser{Email: uniqueEmail("trial"), Password: Password, Tier: pierredb.TierTrial}, pierredb.ErrInvalidArgument},
			{"control character in display name", pierredb.NewUser{Email: uniqueEmail("ctl"), Password: Password, DisplayName: "bad\x00name"}, pierredb.ErrInvalidArgument},
			{"display name too long", pierredb.NewUser{Email: uniqueEmail("dn"), Password: Password, DisplayName: strings.Repeat("d", 201)}, pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := db.Users().Create(ctx, tc.nu)
				require.ErrorIs(t, err, tc.want)
				onePrefix(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), "pierredb: create user: "), "%q", err)
				if len(tc.nu.Password) >= 8 {
					noLeak(t, err, tc.nu.Password)
				}
			})
		}
		n, err := db.Users().Count(ctx, pierredb.UserFilter{})
		require.NoError(t, err)
		assert.Zero(t, n, "no refused user was created")
	})
})

// HiddenCharacters: an email that differs from another only by an invisible
// character would be a second account that looks like the first; it is refused,
// never created and never stripped.
var _ = register("Users", "HiddenCharacters", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		ada, err := db.Users().Create(ctx, pierredb.NewUser{Email: "ada@example.com", Password: Password, DisplayName: "Ada"})
		require.NoError(t, err)

		for _, tc := range []struct{ name, email string }{
			{"U+200B zero width space inside", "ada\u200b@example.com"},
			{"U+200B zero width space first", "\u200bada@example.com"},
			{"U+FEFF byte order mark first", "\ufeffada@example.com"},
			{"U+FEFF byte order mark last", "ada@example.com\ufeff"},
			{"U+202E right-to-left override", "ada@\u202eexample.com"},
			{"U+00AD soft hyphen", "a\u00adda@example.com"},
			{"U+200D zero width joiner", "ada@exam\u200dple.com"},
			{"U+2060 word joiner", "ada\u2060@example.com"},
			{"U+2028 line separator", "ada\u2028@example.com"}, // at either end it is white space, trimmed
			{"U+FFFD replacement character", "ada\ufffd@example.com"},
			// Letters and marks that are default-ignorable: they render as nothing.
			{"U+034F combining grapheme joiner", "ada\u034f@example.com"},
			{"U+3164 Hangul filler", "ada\u3164@example.com"},
			{"U+115F Hangul choseong filler", "\u115fada@example.com"},
			{"U+FFA0 halfwidth Hangul filler", "ada@exa\uffa0mple.com"},
			{"U+FE0F variation selector", "ada\ufe0f@example.com"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := db.Users().Create(ctx, pierredb.NewUser{Email: tc.email, Password: Password})
				require.ErrorIs(t, err, pierredb.ErrInvalidArgument, "not a separate account, nor ada's")
				onePrefix(t, err)
				_, err = db.Users().GetByEmail(ctx, tc.email)
				require.ErrorIs(t, err, pierredb.ErrInvalidArgument, "not stripped into ada's address either")
				_, err = db.Users().Update(ctx, ada.ID, pierredb.UserUpdate{DisplayName: ptr("Ada" + strings.TrimPrefix(tc.email, "ada"))})
				require.ErrorIs(t, err, pierredb.ErrInvalidArgument, "display names refuse the same characters")
			})
		}
		_, err = db.Authenticate(ctx, "ada\u200b@example.com", Password)
		require.ErrorIs(t, err, pierredb.ErrInvalidCredentials, "no login either (and the same error as a wrong password)")
		assert.Equal(t, "pierredb: authenticate: "+pierredb.ErrInvalidCredentials.Error(), err.Error())

		pending := pendingUser(t, db, "svc")
		for _, tc := range []struct{ name, service string }{
			{"terminal escape", "svc\x1b[31m"},
			{"zero width space", "svc\u200b"},
			{"right-to-left override", "\u202esvc"},
			{"newline", "svc\nforged log line"},
		} {
			t.Run("service "+tc.name, func(t *testing.T) {
				_, err := db.Users().Approve(ctx, pending.ID, pierredb.ByService(tc.service))
				require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
				onePrefix(t, err)
				got, err := db.Users().Get(ctx, pending.ID)
				require.NoError(t, err)
				assert.Equal(t, pierredb.StatusPending, got.Status)
			})
		}

		page, err := db.Users().List(ctx, pierredb.UserFilter{})
		require.NoError(t, err)
		var emails []string
		for _, u := range page.Items {
			if !strings.HasPrefix(u.Email, "svc-") {
				emails = append(emails, u.Email)
			}
		}
		assert.Equal(t, []string{"ada@example.com"}, emails, "one account")
	})
})

// InvalidUTF8: invalid UTF-8 is refused wherever a name or an identifier is
// stored, never rewritten to U+FFFD (which would make different inputs collide).
var _ = register("Users", "InvalidUTF8", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		tn, _ := newTenant(t, db, owner)
		pending := pendingUser(t, db, "pending")

		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"email", func() error {
				_, err := db.Users().Create(ctx, pierredb.NewUser{Email: "ada\xff@example.com", Password: Password})
				return err
			}},
			{"email, truncated rune", func() error {
				_, err := db.Users().Create(ctx, pierredb.NewUser{Email: "ad\xc3@example.com", Password: Password})
				return err
			}},
			{"email lookup", func() error { _, err := db.Users().GetByEmail(ctx, "ada\xff@example.com"); return err }},
			{"display name on create", func() error {
				_, err := db.Users().Create(ctx, pierredb.NewUser{Email: uniqueEmail("dn"), Password: Password, DisplayName: "Ada\xfe"})
				return err
			}},
			{"display name on update", func() error {
				_, err := db.Users().Update(ctx, owner.ID, pierredb.UserUpdate{DisplayName: ptr("Ada\xfe")})
				return err
			}},
			{"tenant name on create", func() error {
				_, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Acme\xff", Slug: fmt.Sprintf("acme-%d", seq.Add(1)), OwnerUserID: owner.ID})
				return err
			}},
			{"tenant name on update", func() error {
				_, err := db.Tenants().Update(ctx, tn.ID, pierredb.TenantUpdate{Name: ptr("Acme\xff")})
				return err
			}},
			{"slug", func() error {
				_, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Acme", Slug: "acme\xff", OwnerUserID: owner.ID})
				return err
			}},
			{"slug lookup", func() error { _, err := db.Tenants().GetBySlug(ctx, "acme\xff"); return err }},
			{"service name", func() error {
				_, err := db.Users().Approve(ctx, pending.ID, pierredb.ByService("svc\xff"))
				return err
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.call()
				require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
				onePrefix(t, err)
			})
		}
		_, err := db.Authenticate(ctx, "ada\xff@example.com", Password)
		require.ErrorIs(t, err, pierredb.ErrInvalidCredentials)

		// Nothing was stored, rewritten or not.
		const fffd = "%\uFFFD%"
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM users WHERE email LIKE ? OR display_name LIKE ? OR approved_by_service LIKE ?", fffd, fffd, fffd))
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM tenants WHERE name LIKE ? OR slug LIKE ?", fffd, fffd))
		assert.Equal(t, 2, rawCount(t, db, "SELECT count(*) FROM users"))
		assert.Equal(t, 1, rawCount(t, db, "SELECT count(*) FROM tenants"))
		got, err := db.Users().Get(ctx, pending.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusPending, got.Status)
	})
})

// NFC: the same text typed composed or decomposed is one value.
var _ = register("Users", "NFC", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		const composed, decomposed = "jos\u00e9@example.com", "jose\u0301@example.com"

		u, err := db.Users().Create(ctx, pierredb.NewUser{Email: decomposed, Password: Password, DisplayName: "Jose\u0301"})
		require.NoError(t, err)
		approved, err := db.Users().Approve(ctx, u.ID, pierredb.ByService("  cafe\u0301-bot "))
		require.NoError(t, err)
		assert.Equal(t, "caf\u00e9-bot", approved.ApprovedByService, "service names are trimmed and kept in NFC")
		assert.Equal(t, composed, u.Email, "emails are kept in NFC")
		assert.Equal(t, "Jos\u00e9", u.DisplayName, "display names are kept in NFC")
		var rawEmail, rawName string
		require.NoError(t, db.Bun().QueryRowContext(ctx, "SELECT email, display_name FROM users WHERE id = ?", u.ID).Scan(&rawEmail, &rawName))
		assert.Equal(t, composed, rawEmail)
		assert.Equal(t, "Jos\u00e9", rawName)

		for _, email := range []string{composed, decomposed, "JOS\u00c9@EXAMPLE.COM", "JOSE\u0301@example.com"} {
			_, err := db.Users().Create(ctx, pierredb.NewUser{Email: email, Password: Password})
			require.ErrorIs(t, err, pierredb.ErrAlreadyExists, "%+q is the same account", email)
			got, err := db.Users().GetByEmail(ctx, email)
			require.NoError(t, err, "%+q", email)
			assert.Equal(t, u.ID, got.ID)
		}
		for _, email := range []string{decomposed, "JOS\u00c9@EXAMPLE.COM"} {
			logged, err := db.Authenticate(ctx, email, Password)
			require.NoError(t, err, "%+q", email)
			assert.Equal(t, u.ID, logged.ID)
		}
		n, err := db.Users().Count(ctx, pierredb.UserFilter{})
		require.NoError(t, err)
		assert.Equal(t, 1, n)

		got, err := db.Users().Update(ctx, u.ID, pierredb.UserUpdate{DisplayName: ptr("Zoe\u0308")})
		require.NoError(t, err)
		assert.Equal(t, "Zo\u00eb", got.DisplayName)
		got, err = db.Users().Get(ctx, u.ID)
		require.NoError(t, err)
		assert.Equal(t, "Zo\u00eb", got.DisplayName)

		tn, err := db.Tenants().Create(ctx, pierredb.NewTenant{Name: "Cafe\u0301", Slug: "cafe", OwnerUserID: u.ID})
		require.NoError(t, err)
		assert.Equal(t, "Caf\u00e9", tn.Name, "tenant names are kept in NFC")

	})
})

var _ = register("Users", "AutoApproval", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)

		on, err := db.Settings().AutoApproveUsers(ctx)
		require.NoError(t, err)
		assert.False(t, on, "auto-approval is off by default")
		assert.Equal(t, pierredb.StatusPending, pendingUser(t, db, "default").Status)

		require.NoError(t, db.Settings().SetAutoApproveUsers(ctx, true))
		on, err = db.Settings().AutoApproveUsers(ctx)
		require.NoError(t, err)
		assert.True(t, on)
		u := pendingUser(t, db, "auto")
		assert.Equal(t, pierredb.StatusActive, u.Status)
		assert.Equal(t, "auto-approval", u.ApprovedByService)
		assert.Empty(t, u.ApprovedBy)
		assert.False(t, u.ApprovedAt.IsZero())
		assert.True(t, u.ApprovedAt.Equal(u.CreatedAt))
		got, err := db.Users().Get(ctx, u.ID)
		require.NoError(t, err)
		sameUser(t, u, got)

		// WithAutoApproveUsers(false) overrides a stored "on"...
		off := e.OpenURL(t, url, pierredb.WithAutoApproveUsers(false))
		on, err = off.Settings().AutoApproveUsers(ctx)
		require.NoError(t, err)
		assert.False(t, on)
		assert.Equal(t, pierredb.StatusPending, pendingUser(t, off, "override-off").Status)

		// ...and WithAutoApproveUsers(true) a stored "off", which it still stores.
		require.NoError(t, db.Settings().SetAutoApproveUsers(ctx, false))
		forced := e.OpenURL(t, url, pierredb.WithAutoApproveUsers(true))
		require.NoError(t, forced.Settings().SetAutoApproveUsers(ctx, false))
		on, err = forced.Settings().AutoApproveUsers(ctx)
		require.NoError(t, err)
		assert.True(t, on, "the override wins over the stored setting")
		v := pendingUser(t, forced, "override-on")
		assert.Equal(t, pierredb.StatusActive, v.Status)
		assert.Equal(t, "auto-approval", v.ApprovedByService)

		on, err = db.Settings().AutoApproveUsers(ctx)
		require.NoError(t, err)
		assert.False(t, on, "the stored setting is unchanged for instances without an override")
	})
})

var _ = register("Users", "Get", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		u, err := db.Users().Create(ctx, pierredb.NewUser{Email: "Bob.Jones@Example.com", Password: Password})
		require.NoError(t, err)

		got, err := db.Users().Get(ctx, u.ID)
		require.NoError(t, err)
		sameUser(t, u, got)
		for _, email := range []string{"bob.jones@example.com", "BOB.JONES@EXAMPLE.COM", "  Bob.Jones@example.COM \t"} {
			got, err := db.Users().GetByEmail(ctx, email)
			require.NoError(t, err, email)
			sameUser(t, u, got)
		}

		for _, tc := range []struct {
			name string
			call func() error
			want error
		}{
			{"empty id", func() error { _, err := db.Users().Get(ctx, ""); return err }, pierredb.ErrInvalidArgument},
			{"overlong id", func() error { _, err := db.Users().Get(ctx, strings.Repeat("x", 129)); return err }, pierredb.ErrInvalidArgument},
			{"unknown id", func() error { _, err := db.Users().Get(ctx, uuid.NewString()); return err }, pierredb.ErrNotFound},
			{"unknown id of 128 bytes", func() error { _, err := db.Users().Get(ctx, strings.Repeat("x", 128)); return err }, pierredb.ErrNotFound},
			{"unknown email", func() error { _, err := db.Users().GetByEmail(ctx, "nobody@example.com"); return err }, pierredb.ErrNotFound},
			{"empty email", func() error { _, err := db.Users().GetByEmail(ctx, ""); return err }, pierredb.ErrInvalidArgument},
			{"malformed email", func() error { _, err := db.Users().GetByEmail(ctx, "bob.jones"); return err }, pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.call()
				assert.ErrorIs(t, err, tc.want)
				onePrefix(t, err)
			})
		}
	})
})

// badIDs are ids that must be refused before any query, on every engine.
var badIDs = []struct{ name, id string }{
	{"empty", ""},
	{"NUL byte", "0190c8a4-\x00-7d3e"},
	{"invalid UTF-8", "0190c8a4-\xff-7d3e"},
	{"space", "0190c8a4 7d3e"},
	{"tab", "0190c8a4\t7d3e"},
	{"zero width space", "0190c8a4\u200b7d3e"},
	{"129 bytes", strings.Repeat("a", 129)},
}

// BadIDs: a malformed id is ErrInvalidArgument before any query: a closed
// database answers the same, which it could not if a query had run first.
var _ = register("Users", "BadIDs", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		admin := activeUser(t, db, "admin")
		_, err := db.Users().SetAdmin(ctx, admin.ID, true)
		require.NoError(t, err)
		target := pendingUser(t, db, "target")
		_, scope := newTenant(t, db, admin)
		closed := e.Open(t)
		_, closedScope := newTenant(t, closed, activeUser(t, closed, "closed"))
		require.NoError(t, closed.Close())

		ops := []struct {
			name string
			call func(db *pierredb.Database, scope *pierredb.TenantScope, id string) error
		}{
			{"Get", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				_, err := db.Users().Get(ctx, id)
				return err
			}},
			{"Update", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				_, err := db.Users().Update(ctx, id, pierredb.UserUpdate{DisplayName: ptr("x")})
				return err
			}},
			{"Update without changes", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				_, err := db.Users().Update(ctx, id, pierredb.UserUpdate{})
				return err
			}},
			{"Approve", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				_, err := db.Users().Approve(ctx, id, pierredb.ByService("svc"))
				return err
			}},
			{"Approve by", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				_, err := db.Users().Approve(ctx, target.ID, pierredb.ByUser(id))
				return err
			}},
			{"Suspend", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				_, err := db.Users().Suspend(ctx, id)
				return err
			}},
			{"Reactivate", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				_, err := db.Users().Reactivate(ctx, id)
				return err
			}},
			{"SetAdmin", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				_, err := db.Users().SetAdmin(ctx, id, true)
				return err
			}},
			{"SetPassword", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				return db.Users().SetPassword(ctx, id, "New-Passw0rd-never-set")
			}},
			{"ChangePassword", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				return db.Users().ChangePassword(ctx, id, Password, "New-Passw0rd-never-set")
			}},
			{"Delete", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				return db.Users().Delete(ctx, id)
			}},
			{"Touch", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				return db.Users().Touch(ctx, id)
			}},
			{"Tenants", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				_, err := db.Users().Tenants(ctx, id)
				return err
			}},
			{"List by tenant", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				_, err := db.Users().List(ctx, pierredb.UserFilter{TenantID: id})
				return err
			}},
			{"Count by tenant", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				_, err := db.Users().Count(ctx, pierredb.UserFilter{TenantID: id})
				return err
			}},
			{"Tenant scope", func(db *pierredb.Database, _ *pierredb.TenantScope, id string) error {
				_, err := db.Tenant(ctx, id)
				return err
			}},
			{"scoped GetUser", func(_ *pierredb.Database, scope *pierredb.TenantScope, id string) error {
				_, err := scope.Members().GetUser(ctx, id)
				return err
			}},
		}
		for _, op := range ops {
			t.Run(op.name, func(t *testing.T) {
				for _, bad := range badIDs {
					if bad.id == "" && strings.HasSuffix(op.name, " by tenant") {
						// A filter's empty TenantID is "no filter", not an id.
						continue
					}
					err := op.call(db, scope, bad.id)
					require.ErrorIs(t, err, pierredb.ErrInvalidArgument, "%s", bad.name)
					onePrefix(t, err)
					noLeak(t, err, Password, "New-Passw0rd-never-set")
					err = op.call(closed, closedScope, bad.id)
					require.ErrorIs(t, err, pierredb.ErrInvalidArgument, "%s: refused before any query (the database is closed)", bad.name)
				}
			})
		}

		// The message is the same on every engine.
		_, err = db.Users().Get(ctx, "0190c8a4 7d3e")
		assert.EqualError(t, err, "pierredb: get user: invalid argument: user id holds a space, control or invisible character")
		_, err = db.Users().Get(ctx, strings.Repeat("a", 129))
		assert.EqualError(t, err, "pierredb: get user: invalid argument: user id is longer than 128 bytes")
		_, err = db.Users().Get(ctx, "\xff")
		assert.EqualError(t, err, "pierredb: get user: invalid argument: user id is not valid UTF-8")

		got, err := db.Users().Get(ctx, target.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusPending, got.Status, "nothing changed")
	})
})

// ListPagination pages through users whose created_at collide, in an order that
// is not their creation order, so that both the (created_at, id) order and the
// id tie-break inside the cursor are exercised.
var _ = register("Users", "ListPagination", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock(base)
		db := e.Open(t, pierredb.WithClock(clk.Now))

		// Creation order vs clock: the fourth and fifth seconds hold four users at
		// one instant, and the sixth user is the oldest.
		offsets := []time.Duration{2 * time.Second, time.Second, time.Second, time.Second, time.Second, 0, 2 * time.Second}
		users := make([]pierredb.User, len(offsets))
		for i, off := range offsets {
			clk.Set(base.Add(off))
			users[i] = pendingUser(t, db, fmt.Sprintf("page%d", i))
		}
		want := slices.Clone(users)
		slices.SortFunc(want, func(a, b pierredb.User) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
		})
		require.Equal(t, users[5].ID, want[0].ID)

		all, err := db.Users().List(ctx, pierredb.UserFilter{Limit: 1000})
		require.NoError(t, err)
		assert.Equal(t, userIDs(want), userIDs(all.Items), "one page holds every user in (created_at, id) order")
		assert.Empty(t, all.Next)
		for i, u := range all.Items {
			sameUser(t, want[i], u)
		}
		def, err := db.Users().List(ctx, pierredb.UserFilter{})
		require.NoError(t, err)
		assert.Len(t, def.Items, len(users), "the default page size is larger than seven")

		for _, limit := range []int{1, 2, 3, 6, 7} {
			t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
				got, pages := listAllUsers(t, db, pierredb.UserFilter{Limit: limit})
				assert.Equal(t, userIDs(want), userIDs(got))
				assert.Equal(t, (len(users)+limit-1)/limit, pages, "no empty trailing page")
			})
		}

		// A filter applies on every page. Approve the users at odd positions of the
		// order: the active ones straddle the tie.
		var active []string
		for i, u := range want {
			if i%2 == 1 {
				_, err := db.Users().Approve(ctx, u.ID, pierredb.ByService("test"))
				require.NoError(t, err)
				active = append(active, u.ID)
			}
		}
		got, _ := listAllUsers(t, db, pierredb.UserFilter{Status: pierredb.StatusActive, Limit: 2})
		assert.Equal(t, active, userIDs(got))
	})
})

// listAllUsers follows Page.Next from the first page to the last, checking that
// no user is listed twice and that only the last page is short; it returns the
// users and the number of pages.
func listAllUsers(t *testing.T, db *pierredb.Database, f pierredb.UserFilter) ([]pierredb.User, int) {
	t.Helper()
	return followPages(t, f.Limit, func(cursor string) (pierredb.Page[pierredb.User], error) {
		f.Cursor = cursor
		return db.Users().List(t.Context(), f)
	})
}

func followPages(t *testing.T, limit int, next func(cursor string) (pierredb.Page[pierredb.User], error)) ([]pierredb.User, int) {
	t.Helper()
	var got []pierredb.User
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		page, err := next(cursor)
		require.NoError(t, err)
		pages++
		require.LessOrEqual(t, len(page.Items), limit)
		for _, u := range page.Items {
			assert.False(t, seen[u.ID], "user %s listed twice", u.ID)
			seen[u.ID] = true
		}
		got = append(got, page.Items...)
		if page.Next == "" {
			return got, pages
		}
		require.Len(t, page.Items, limit, "only the last page is short")
		require.Less(t, pages, 20, "pagination does not end")
		cursor = page.Next
	}
}

var _ = register("Users", "ListFilters", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)

		pending := pendingUser(t, db, "pending")
		owner := activeUser(t, db, "owner")
		admin := activeUser(t, db, "admin")
		_, err := db.Users().SetAdmin(ctx, admin.ID, true)
		require.NoError(t, err)
		suspended := activeUser(t, db, "suspended")
		_, err = db.Users().Suspend(ctx, suspended.ID)
		require.NoError(t, err)
		tn, scope := newTenant(t, db, owner)
		_, err = scope.Members().Add(ctx, admin.ID, pierredb.RoleMember)
		require.NoError(t, err)
		newTenant(t, db, suspended) // a tenant that none of the filters below selects

		for _, tc := range []struct {
			name string
			f    pierredb.UserFilter
			want []pierredb.User
		}{
			{"everyone", pierredb.UserFilter{}, []pierredb.User{pending, owner, admin, suspended}},
			{"pending", pierredb.UserFilter{Status: pierredb.StatusPending}, []pierredb.User{pending}},
			{"active", pierredb.UserFilter{Status: pierredb.StatusActive}, []pierredb.User{owner, admin}},
			{"suspended", pierredb.UserFilter{Status: pierredb.StatusSuspended}, []pierredb.User{suspended}},
			{"admins", pierredb.UserFilter{IsAdmin: ptr(true)}, []pierredb.User{admin}},
			{"non-admins", pierredb.UserFilter{IsAdmin: ptr(false)}, []pierredb.User{pending, owner, suspended}},
			{"active admins", pierredb.UserFilter{Status: pierredb.StatusActive, IsAdmin: ptr(true)}, []pierredb.User{admin}},
			{"pending admins", pierredb.UserFilter{Status: pierredb.StatusPending, IsAdmin: ptr(true)}, nil},
			{"tenant members", pierredb.UserFilter{TenantID: tn.ID}, []pierredb.User{owner, admin}},
			{"tenant, active, admin", pierredb.UserFilter{TenantID: tn.ID, Status: pierredb.StatusActive, IsAdmin: ptr(true)}, []pierredb.User{admin}},
			{"tenant and pending", pierredb.UserFilter{TenantID: tn.ID, Status: pierredb.StatusPending}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				page, err := db.Users().List(ctx, tc.f)
				require.NoError(t, err)
				assert.Equal(t, userIDs(tc.want), userIDs(page.Items))
				assert.Empty(t, page.Next)
				n, err := db.Users().Count(ctx, tc.f)
				require.NoError(t, err)
				assert.Equal(t, len(tc.want), n)
				// Count ignores Limit and Cursor.
				withPage := tc.f
				withPage.Limit, withPage.Cursor = 1, "not even a cursor"
				n, err = db.Users().Count(ctx, withPage)
				require.NoError(t, err)
				assert.Equal(t, len(tc.want), n)
			})
		}

		// Changed: a tenant that does not exist is ErrNotFound (it used to list no
		// one), as every operation on an unknown tenant is.
		_, err = db.Users().List(ctx, pierredb.UserFilter{TenantID: uuid.NewString()})
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = db.Users().Count(ctx, pierredb.UserFilter{TenantID: uuid.NewString()})
		assert.ErrorIs(t, err, pierredb.ErrNotFound)

		for _, tc := range []struct {
			name string
			f    pierredb.UserFilter
		}{
			{"negative limit", pierredb.UserFilter{Limit: -1}},
			{"limit above 1000", pierredb.UserFilter{Limit: 1001}},
			{"unknown status", pierredb.UserFilter{Status: "deleted"}},
			{"unknown status in a tenant", pierredb.UserFilter{Status: "deleted", TenantID: tn.ID}},
			{"limit above 1000 in a tenant", pierredb.UserFilter{Limit: 1001, TenantID: tn.ID}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := db.Users().List(ctx, tc.f)
				assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
				onePrefix(t, err)
			})
		}
		page, err := db.Users().List(ctx, pierredb.UserFilter{Limit: 1000})
		require.NoError(t, err)
		assert.Len(t, page.Items, 4, "1000 is the largest page")

		_, err = db.Users().Count(ctx, pierredb.UserFilter{Status: "deleted"})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		_, err = db.Users().Count(ctx, pierredb.UserFilter{Status: "deleted", TenantID: tn.ID})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
})

// ForgedCursors: a cursor is opaque, and one that was not made by a listing is
// refused before it reaches a query, the same way on every engine (a time out of
// the engines' range would otherwise be an error on one and a page on the other).
var _ = register("Users", "ForgedCursors", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		_, scope := newTenant(t, db, owner)
		id := owner.ID

		forge := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		micros := func(tm time.Time) string { return strconv.FormatInt(tm.UnixMicro(), 10) }
		year1 := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
		year9999 := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)

		listings := []struct {
			name string
			list func(cursor string) (int, error)
		}{
			{"Users.List", func(c string) (int, error) {
				p, err := db.Users().List(ctx, pierredb.UserFilter{Cursor: c})
				return len(p.Items), err
			}},
			{"Users.List by tenant", func(c string) (int, error) {
				p, err := db.Users().List(ctx, pierredb.UserFilter{TenantID: scope.ID(), Cursor: c})
				return len(p.Items), err
			}},
			{"Members.ListUsers", func(c string) (int, error) {
				p, err := scope.Members().ListUsers(ctx, pierredb.UserFilter{Cursor: c})
				return len(p.Items), err
			}},
			{"Members.List", func(c string) (int, error) {
				p, err := scope.Members().List(ctx, pierredb.ListOptions{Cursor: c})
				return len(p.Items), err
			}},
			{"Tenants.List", func(c string) (int, error) {
				p, err := db.Tenants().List(ctx, pierredb.TenantFilter{Cursor: c})
				return len(p.Items), err
			}},
		}
		forged := []struct{ name, cursor string }{
			{"not base64", "not a cursor!"},
			{"padded base64", base64.URLEncoding.EncodeToString([]byte("v1|1700000000000000|" + id))},
			{"another version", forge("v2|1700000000000000|" + id)},
			{"missing id", forge("v1|1700000000000000|")},
			{"two parts", forge("v1|1700000000000000")},
			{"time not a number", forge("v1|yesterday|" + id)},
			{"time beyond int64", forge("v1|99999999999999999999|" + id)},
			{"largest int64", forge("v1|9223372036854775807|" + id)},
			{"smallest int64", forge("v1|-9223372036854775808|" + id)},
			{"before year 1", forge("v1|" + strconv.FormatInt(year1.UnixMicro()-1, 10) + "|" + id)},
			{"year 10000", forge("v1|" + micros(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)) + "|" + id)},
			{"id with NUL", forge("v1|1700000000000000|ab\x00cd")},
			{"id not UTF-8", forge("v1|1700000000000000|ab\xffcd")},
			{"id with a space", forge("v1|1700000000000000|ab cd")},
			{"id of 129 bytes", forge("v1|1700000000000000|" + strings.Repeat("a", 129))},
			{"too long", strings.Repeat("A", 400)},
		}
		for _, l := range listings {
			t.Run(l.name, func(t *testing.T) {
				for _, f := range forged {
					_, err := l.list(f.cursor)
					require.ErrorIs(t, err, pierredb.ErrInvalidArgument, "%s", f.name)
					onePrefix(t, err)
				}
				// The limits of the range are positions like any other.
				n, err := l.list(forge("v1|" + micros(year1.Add(time.Microsecond)) + "|" + id))
				require.NoError(t, err, "year 1")
				assert.Equal(t, 1, n, "everything is after year 1")
				n, err = l.list(forge("v1|" + micros(year9999) + "|" + id))
				require.NoError(t, err, "year 9999")
				assert.Zero(t, n, "nothing is after year 9999")
			})
		}
		// The first instant of year 1 is time.Time's zero: refused, or a position
		// before everything, but never a silently empty page.
		// (The store binds the zero time as NULL, so "(created_at, id) > (NULL, ?)"
		// would select nothing: an empty last page where every row follows.)
		page, err := db.Users().List(ctx, pierredb.UserFilter{Cursor: forge("v1|" + micros(year1) + "|" + id)})
		if err != nil {
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		} else {
			assert.Len(t, page.Items, 1, "everything is after the first instant of year 1")
		}
	})
})

// ListMembershipOrder: a tenant's members are listed in the order they joined,
// not in the order their accounts were made.
var _ = register("Users", "ListMembershipOrder", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock(base)
		db := e.Open(t, pierredb.WithClock(clk.Now))
		var users []pierredb.User // in creation order
		for _, name := range []string{"first", "second", "third", "fourth"} {
			clk.Advance(time.Second)
			users = append(users, activeUser(t, db, name))
		}
		// The newest account owns the tenant, then the others join in reverse,
		// two of them at the same instant (the user id breaks the tie).
		clk.Advance(time.Second)
		tn, scope := newTenant(t, db, users[3])
		clk.Advance(time.Second)
		_, err := scope.Members().Add(ctx, users[1].ID, pierredb.RoleMember)
		require.NoError(t, err)
		clk.Advance(time.Second)
		for _, u := range []pierredb.User{users[2], users[0]} {
			_, err := scope.Members().Add(ctx, u.ID, pierredb.RoleViewer)
			require.NoError(t, err)
		}
		tied := []string{users[2].ID, users[0].ID}
		slices.Sort(tied)
		want := append([]string{users[3].ID, users[1].ID}, tied...)

		lists := []struct {
			name string
			list func(f pierredb.UserFilter) (pierredb.Page[pierredb.User], error)
		}{
			{"Users.List", func(f pierredb.UserFilter) (pierredb.Page[pierredb.User], error) {
				f.TenantID = tn.ID
				return db.Users().List(ctx, f)
			}},
			{"Members.ListUsers", func(f pierredb.UserFilter) (pierredb.Page[pierredb.User], error) {
				return scope.Members().ListUsers(ctx, f)
			}},
		}
		for _, l := range lists {
			t.Run(l.name, func(t *testing.T) {
				page, err := l.list(pierredb.UserFilter{})
				require.NoError(t, err)
				assert.Equal(t, want, userIDs(page.Items), "oldest membership first")
				for _, limit := range []int{1, 2, 3} {
					got, _ := followPages(t, limit, func(c string) (pierredb.Page[pierredb.User], error) {
						return l.list(pierredb.UserFilter{Limit: limit, Cursor: c})
					})
					assert.Equal(t, want, userIDs(got), "limit %d: the cursor follows the membership order", limit)
				}
			})
		}
		n, err := scope.Members().CountUsers(ctx, pierredb.UserFilter{})
		require.NoError(t, err)
		assert.Equal(t, 4, n)

		// The same ids, in the same order, as the memberships.
		mb, err := scope.Members().List(ctx, pierredb.ListOptions{})
		require.NoError(t, err)
		assert.Equal(t, want, ids(mb.Items, func(m pierredb.Membership) string { return m.UserID }))
	})
})

// CountFollowsRawSQL: Users.Count reads counters that database triggers keep, so
// a change made outside pierre (the README's approval recipe, a DELETE, an
// INSERT) is counted like one made through it.
var _ = register("Users", "CountFollowsRawSQL", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		a := pendingUser(t, db, "a")
		b := pendingUser(t, db, "b")
		c := pendingUser(t, db, "c")
		d := activeUser(t, db, "d")

		check := func(step string) {
			t.Helper()
			for _, f := range []pierredb.UserFilter{
				{}, {Status: pierredb.StatusPending}, {Status: pierredb.StatusActive}, {Status: pierredb.StatusSuspended},
				{IsAdmin: ptr(true)}, {IsAdmin: ptr(false)},
				{Status: pierredb.StatusActive, IsAdmin: ptr(true)}, {Status: pierredb.StatusPending, IsAdmin: ptr(true)},
				{Status: pierredb.StatusPending, IsAdmin: ptr(false)},
			} {
				q, args := "SELECT count(*) FROM users WHERE 1 = 1", []any{}
				if f.Status != "" {
					q, args = q+" AND user_status = ?", append(args, string(f.Status))
				}
				if f.IsAdmin != nil {
					q, args = q+" AND is_admin = ?", append(args, *f.IsAdmin)
				}
				n, err := db.Users().Count(ctx, f)
				require.NoError(t, err)
				assert.Equal(t, rawCount(t, db, q, args...), n, "%s: status %q, admin %v", step, f.Status, f.IsAdmin)
			}
		}
		check("through the API")

		// The README's recipes, with the values bound by bun (PostgreSQL booleans
		// are TRUE/FALSE, SQLite's 1/0).
		exec := func(q string, args ...any) {
			t.Helper()
			_, err := db.Bun().ExecContext(ctx, q, args...)
			require.NoError(t, err)
		}
		exec("UPDATE users SET user_status = ?, approved_at = updated_at WHERE email = ?", "active", a.Email)
		n, err := db.Users().Count(ctx, pierredb.UserFilter{Status: pierredb.StatusActive})
		require.NoError(t, err)
		assert.Equal(t, 2, n, "the approval by SQL is counted")
		check("approved by SQL")

		exec("UPDATE users SET is_admin = ? WHERE email = ?", true, b.Email)
		n, err = db.Users().Count(ctx, pierredb.UserFilter{IsAdmin: ptr(true)})
		require.NoError(t, err)
		assert.Equal(t, 1, n, "the admin made by SQL is counted")
		check("admin by SQL")
		_, err = db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: uniqueEmail("root"), Password: Password})
		assert.ErrorIs(t, err, pierredb.ErrAlreadyExists, "an admin made by SQL counts as the first admin")

		exec("UPDATE users SET user_status = ?, is_admin = ?, is_active = ? WHERE id = ?", "suspended", true, false, d.ID)
		check("suspended admin by SQL")
		exec("UPDATE users SET user_status = user_status WHERE id = ?", c.ID)
		check("an update that changes nothing")
		exec("DELETE FROM users WHERE id = ?", c.ID)
		check("deleted by SQL")
		exec(`INSERT INTO users (id, email, password_hash, tier, is_active, is_admin, user_status, created_at, updated_at)
			SELECT ?, ?, password_hash, tier, is_active, ?, ?, created_at, updated_at FROM users WHERE id = ?`,
			uuid.NewString(), uniqueEmail("copy"), true, "active", a.ID)
		check("inserted by SQL")
		n, err = db.Users().Count(ctx, pierredb.UserFilter{})
		require.NoError(t, err)
		assert.Equal(t, 4, n)

		// And the API's own changes still add up after all that.
		_, err = db.Users().Suspend(ctx, a.ID)
		require.NoError(t, err)
		_, err = db.Users().SetAdmin(ctx, a.ID, true)
		require.NoError(t, err)
		require.NoError(t, db.Users().Delete(ctx, b.ID))
		check("through the API again")
	})
})

// SeedRecipes: the plain SQL an operator types into sqlite3 to seed or fix a
// database works verbatim, and the store reads the result. (CountFollowsRawSQL
// runs the same recipes on every engine.)
var _ = register("Users", "SeedRecipes", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		for _, email := range []string{"user@example.com", "admin@example.com"} {
			_, err := db.Users().Create(ctx, pierredb.NewUser{Email: email, Password: Password})
			require.NoError(t, err)
		}
		raw := db.Bun().DB // plain database/sql, no bun formatting
		// The README's recipes: sqlite3's, and their psql forms.
		approve, makeAdmin := `UPDATE users SET user_status = 'active', approved_at = datetime('now') WHERE email = 'user@example.com';`,
			`UPDATE users SET is_admin = 1 WHERE email = 'admin@example.com';`
		if e.Backend == pierredb.Postgres {
			approve, makeAdmin = `UPDATE users SET user_status = 'active', approved_at = now() WHERE email = 'user@example.com';`,
				`UPDATE users SET is_admin = true WHERE email = 'admin@example.com';`
		}

		type row struct {
			email, status string
			isAdmin       bool
			createdAt     any
		}
		selectAll := func() map[string]row {
			t.Helper()
			rows, err := raw.QueryContext(ctx, `SELECT email, user_status, is_admin, created_at FROM users;`)
			require.NoError(t, err)
			defer rows.Close()
			out := map[string]row{}
			for rows.Next() {
				var r row
				require.NoError(t, rows.Scan(&r.email, &r.status, &r.isAdmin, &r.createdAt))
				out[r.email] = r
			}
			require.NoError(t, rows.Err())
			return out
		}
		before := selectAll()
		require.Len(t, before, 2)
		assert.Equal(t, "pending", before["user@example.com"].status)
		assert.False(t, before["admin@example.com"].isAdmin)
		if s, ok := before["user@example.com"].createdAt.(string); ok {
			_, err := time.Parse(time.RFC3339Nano, s)
			assert.NoError(t, err, "created_at reads as RFC 3339")
		} else {
			assert.IsType(t, time.Time{}, before["user@example.com"].createdAt, "created_at is a TIMESTAMPTZ")
		}

		seeded := time.Now().UTC()
		_, err := raw.ExecContext(ctx, approve)
		require.NoError(t, err)
		_, err = raw.ExecContext(ctx, makeAdmin)
		require.NoError(t, err)

		after := selectAll()
		assert.Equal(t, "active", after["user@example.com"].status)
		assert.True(t, after["admin@example.com"].isAdmin)

		u, err := db.Users().GetByEmail(ctx, "user@example.com")
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusActive, u.Status)
		assert.False(t, u.ApprovedAt.IsZero(), "the recipe's timestamp parses")
		assert.WithinDuration(t, seeded, u.ApprovedAt, 5*time.Second)
		logged, err := db.Authenticate(ctx, "user@example.com", Password)
		require.NoError(t, err, "the seeded user can log in")
		assert.Equal(t, u.ID, logged.ID)

		a, err := db.Users().GetByEmail(ctx, "admin@example.com")
		require.NoError(t, err)
		assert.True(t, a.IsAdmin)
		admins, err := db.Users().List(ctx, pierredb.UserFilter{IsAdmin: ptr(true)})
		require.NoError(t, err)
		assert.Equal(t, []string{a.ID}, userIDs(admins.Items))
		for _, tc := range []struct {
			f    pierredb.UserFilter
			want int
		}{
			{pierredb.UserFilter{}, 2},
			{pierredb.UserFilter{Status: pierredb.StatusActive}, 1},
			{pierredb.UserFilter{Status: pierredb.StatusPending}, 1},
			{pierredb.UserFilter{IsAdmin: ptr(true)}, 1},
		} {
			n, err := db.Users().Count(ctx, tc.f)
			require.NoError(t, err)
			assert.Equal(t, tc.want, n, "count %+v follows the recipes", tc.f)
		}
		_, err = db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: "root@example.com", Password: Password})
		assert.ErrorIs(t, err, pierredb.ErrAlreadyExists, "a seeded admin counts as the first admin")
	})
})

// UnreadableTimestamp: a timestamp that an operator broke by hand is an error
// that still names pierredb once. SQLite only: PostgreSQL's TIMESTAMPTZ refuses
// such a value on write.
var _ = register("Users", "UnreadableTimestamp", func(t *testing.T) {
	RunOn(t, pierredb.SQLite, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		u := activeUser(t, db, "broken")
		_, err := db.Bun().ExecContext(ctx, "UPDATE users SET last_active = ? WHERE id = ?", "yesterday", u.ID)
		require.NoError(t, err)

		_, err = db.Users().Get(ctx, u.ID)
		require.Error(t, err)
		assert.True(t, strings.HasPrefix(err.Error(), "pierredb: get user: "), "%q", err)
		// The scan error of the timestamp column must not add a second prefix.
		onePrefix(t, err)
	})
})

var _ = register("Users", "Approve", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock(base)
		db := e.Open(t, pierredb.WithClock(clk.Now))
		admin := activeUser(t, db, "admin")
		_, err := db.Users().SetAdmin(ctx, admin.ID, true)
		require.NoError(t, err)
		byUser := pendingUser(t, db, "by-user")
		byService := pendingUser(t, db, "by-service")
		orphan := pendingUser(t, db, "orphan")

		clk.Advance(time.Hour)
		approvedAt := micro(clk.Now())
		u, err := db.Users().Approve(ctx, byUser.ID, pierredb.ByUser(admin.ID))
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusActive, u.Status)
		assert.Equal(t, admin.ID, u.ApprovedBy)
		assert.Empty(t, u.ApprovedByService)
		assert.Equal(t, approvedAt, u.ApprovedAt)
		assert.Equal(t, approvedAt, u.UpdatedAt)
		assert.True(t, u.CreatedAt.Before(u.UpdatedAt))
		got, err := db.Users().Get(ctx, byUser.ID)
		require.NoError(t, err)
		sameUser(t, u, got)

		clk.Advance(time.Minute)
		u, err = db.Users().Approve(ctx, byService.ID, pierredb.ByService("admin-token:ops"))
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusActive, u.Status)
		assert.Empty(t, u.ApprovedBy)
		assert.Equal(t, "admin-token:ops", u.ApprovedByService)
		assert.Equal(t, micro(clk.Now()), u.ApprovedAt)
		got, err = db.Users().Get(ctx, byService.ID)
		require.NoError(t, err)
		sameUser(t, u, got)

		for _, tc := range []struct {
			name string
			id   string
			by   pierredb.Approver
			want error
		}{
			{"already active", byUser.ID, pierredb.ByUser(admin.ID), pierredb.ErrConflict},
			{"approved by a service before", byService.ID, pierredb.ByService("again"), pierredb.ErrConflict},
			{"approving user does not exist", orphan.ID, pierredb.ByUser(uuid.NewString()), pierredb.ErrNotFound},
			{"neither user nor service", orphan.ID, pierredb.Approver{}, pierredb.ErrInvalidArgument},
			{"both user and service", orphan.ID, pierredb.Approver{UserID: admin.ID, Service: "svc"}, pierredb.ErrInvalidArgument},
			{"service name too long", orphan.ID, pierredb.ByService(strings.Repeat("s", 201)), pierredb.ErrInvalidArgument},
			{"unknown user", uuid.NewString(), pierredb.ByUser(admin.ID), pierredb.ErrNotFound},
			{"unknown user by a service", uuid.NewString(), pierredb.ByService("svc"), pierredb.ErrNotFound},
			{"empty id", "", pierredb.ByUser(admin.ID), pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := db.Users().Approve(ctx, tc.id, tc.by)
				assert.ErrorIs(t, err, tc.want)
				onePrefix(t, err)
			})
		}
		got, err = db.Users().Get(ctx, orphan.ID)
		require.NoError(t, err)
		sameUser(t, orphan, got) // refused approvals change nothing

		// A suspended user cannot be approved: it is reactivated instead.
		_, err = db.Users().Suspend(ctx, orphan.ID)
		require.NoError(t, err)
		_, err = db.Users().Approve(ctx, orphan.ID, pierredb.ByUser(admin.ID))
		assert.ErrorIs(t, err, pierredb.ErrConflict)
	})
})

// ApproveChecksApprover: only an active admin approves users, and never
// themselves. (Issue "ApproveUser does not check the approver": a pending
// non-admin approved others, and a user approved themselves.)
var _ = register("Users", "ApproveChecksApprover", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		users := db.Users()
		makeAdmin := func(u pierredb.User) pierredb.User {
			t.Helper()
			u, err := users.SetAdmin(ctx, u.ID, true)
			require.NoError(t, err)
			return u
		}
		admin := makeAdmin(activeUser(t, db, "admin"))
		plain := activeUser(t, db, "plain")
		pendingPlain := pendingUser(t, db, "pending-plain")
		pendingAdmin := makeAdmin(pendingUser(t, db, "pending-admin"))
		suspendedAdmin := makeAdmin(activeUser(t, db, "suspended-admin"))
		_, err := users.Suspend(ctx, suspendedAdmin.ID)
		require.NoError(t, err)
		target := pendingUser(t, db, "target")

		for _, tc := range []struct {
			name string
			id   string
			by   pierredb.Approver
			want error
		}{
			{"pending non-admin approves another", target.ID, pierredb.ByUser(pendingPlain.ID), pierredb.ErrPermissionDenied},
			{"pending non-admin approves themselves", pendingPlain.ID, pierredb.ByUser(pendingPlain.ID), pierredb.ErrPermissionDenied},
			{"active non-admin", target.ID, pierredb.ByUser(plain.ID), pierredb.ErrPermissionDenied},
			{"pending admin", target.ID, pierredb.ByUser(pendingAdmin.ID), pierredb.ErrPermissionDenied},
			{"pending admin approves themselves", pendingAdmin.ID, pierredb.ByUser(pendingAdmin.ID), pierredb.ErrPermissionDenied},
			{"suspended admin", target.ID, pierredb.ByUser(suspendedAdmin.ID), pierredb.ErrPermissionDenied},
			{"approver does not exist", target.ID, pierredb.ByUser(uuid.NewString()), pierredb.ErrNotFound},
			{"approver id malformed", target.ID, pierredb.ByUser("not an id"), pierredb.ErrInvalidArgument},
			{"service name with a terminal escape", target.ID, pierredb.ByService("svc\x1b[31m"), pierredb.ErrInvalidArgument},
			{"service name not UTF-8", target.ID, pierredb.ByService("svc\xff"), pierredb.ErrInvalidArgument},
			{"service name with U+200B", target.ID, pierredb.ByService("s\u200bvc"), pierredb.ErrInvalidArgument},
			{"service name blank", target.ID, pierredb.ByService(" \t "), pierredb.ErrInvalidArgument},
			{"service name of 201 bytes", target.ID, pierredb.ByService(strings.Repeat("s", 201)), pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, err := users.Get(ctx, tc.id)
				require.NoError(t, err)
				_, err = users.Approve(ctx, tc.id, tc.by)
				require.ErrorIs(t, err, tc.want)
				onePrefix(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), "pierredb: approve user: "), "%q", err)
				after, err := users.Get(ctx, tc.id)
				require.NoError(t, err)
				sameUser(t, before, after) // nothing changed
			})
		}
		_, err = users.Approve(ctx, target.ID, pierredb.ByUser(target.ID))
		assert.EqualError(t, err, "pierredb: approve user: permission denied: a user cannot approve themselves")
		_, err = users.Approve(ctx, target.ID, pierredb.ByUser(plain.ID))
		assert.EqualError(t, err, "pierredb: approve user: permission denied: the approving user is not an active admin")

		// An admin demoted is refused from then on; a user made admin may approve.
		second := makeAdmin(activeUser(t, db, "second"))
		_, err = users.SetAdmin(ctx, admin.ID, false)
		require.NoError(t, err)
		_, err = users.Approve(ctx, target.ID, pierredb.ByUser(admin.ID))
		require.ErrorIs(t, err, pierredb.ErrPermissionDenied, "a demoted admin")
		u, err := users.Approve(ctx, target.ID, pierredb.ByUser(second.ID))
		require.NoError(t, err, "an active admin")
		assert.Equal(t, second.ID, u.ApprovedBy)
		assert.Equal(t, pierredb.StatusActive, u.Status)

		// A suspended admin reactivated may approve again.
		_, err = users.Reactivate(ctx, suspendedAdmin.ID)
		require.NoError(t, err)
		u, err = users.Approve(ctx, pendingPlain.ID, pierredb.ByUser(suspendedAdmin.ID))
		require.NoError(t, err)
		assert.Equal(t, suspendedAdmin.ID, u.ApprovedBy)
	})
})

var _ = register("Users", "SuspendReactivate", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		active := activeUser(t, db, "active")
		pending := pendingUser(t, db, "pending")

		u, err := db.Users().Suspend(ctx, active.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusSuspended, u.Status)
		assert.False(t, u.IsActive)
		assert.Equal(t, active.ApprovedByService, u.ApprovedByService, "the approval record stays")
		_, err = db.Users().Suspend(ctx, active.ID)
		assert.ErrorIs(t, err, pierredb.ErrConflict, "suspending a suspended user")

		u, err = db.Users().Reactivate(ctx, active.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusActive, u.Status)
		assert.True(t, u.IsActive)
		got, err := db.Users().Get(ctx, active.ID)
		require.NoError(t, err)
		sameUser(t, u, got)
		_, err = db.Users().Reactivate(ctx, active.ID)
		assert.ErrorIs(t, err, pierredb.ErrConflict, "reactivating an active user")

		_, err = db.Users().Reactivate(ctx, pending.ID)
		assert.ErrorIs(t, err, pierredb.ErrConflict, "reactivating a pending user")
		u, err = db.Users().Suspend(ctx, pending.ID)
		require.NoError(t, err, "a pending user can be suspended")
		assert.Equal(t, pierredb.StatusSuspended, u.Status)
		u, err = db.Users().Reactivate(ctx, pending.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusPending, u.Status, "reactivation never bypasses approval")
		assert.True(t, u.IsActive)
		assert.True(t, u.ApprovedAt.IsZero())

		for _, tc := range []struct {
			name string
			call func() error
			want error
		}{
			{"suspend unknown", func() error { _, err := db.Users().Suspend(ctx, uuid.NewString()); return err }, pierredb.ErrNotFound},
			{"reactivate unknown", func() error { _, err := db.Users().Reactivate(ctx, uuid.NewString()); return err }, pierredb.ErrNotFound},
			{"suspend empty id", func() error { _, err := db.Users().Suspend(ctx, ""); return err }, pierredb.ErrInvalidArgument},
			{"reactivate empty id", func() error { _, err := db.Users().Reactivate(ctx, ""); return err }, pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.call()
				assert.ErrorIs(t, err, tc.want)
				onePrefix(t, err)
			})
		}
	})
})

var _ = register("Users", "SetAdmin", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		a := activeUser(t, db, "a")
		b := activeUser(t, db, "b")
		admins := func() int {
			t.Helper()
			n, err := db.Users().Count(ctx, pierredb.UserFilter{IsAdmin: ptr(true)})
			require.NoError(t, err)
			return n
		}

		u, err := db.Users().SetAdmin(ctx, a.ID, true)
		require.NoError(t, err)
		assert.True(t, u.IsAdmin)
		assert.Equal(t, 1, admins())
		u, err = db.Users().SetAdmin(ctx, a.ID, true)
		require.NoError(t, err, "granting twice is a no-op")
		assert.True(t, u.IsAdmin)

		_, err = db.Users().SetAdmin(ctx, a.ID, false)
		require.ErrorIs(t, err, pierredb.ErrConflict, "revoking the last admin")
		onePrefix(t, err)
		got, err := db.Users().Get(ctx, a.ID)
		require.NoError(t, err)
		assert.True(t, got.IsAdmin)

		_, err = db.Users().SetAdmin(ctx, b.ID, true)
		require.NoError(t, err)
		u, err = db.Users().SetAdmin(ctx, a.ID, false)
		require.NoError(t, err, "revoking one of two admins")
		assert.False(t, u.IsAdmin)
		_, err = db.Users().SetAdmin(ctx, b.ID, false)
		require.ErrorIs(t, err, pierredb.ErrConflict)
		_, err = db.Users().SetAdmin(ctx, a.ID, false)
		require.NoError(t, err, "revoking from a non-admin is a no-op")
		assert.Equal(t, 1, admins())

		_, err = db.Users().SetAdmin(ctx, uuid.NewString(), true)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = db.Users().SetAdmin(ctx, uuid.NewString(), false)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = db.Users().SetAdmin(ctx, "", true)
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)

		// Two admins revoked at the same moment: one revocation wins, the other is
		// refused, and the platform keeps an admin.
		for round := range 10 {
			_, err = db.Users().SetAdmin(ctx, a.ID, true)
			require.NoError(t, err)
			_, err = db.Users().SetAdmin(ctx, b.ID, true)
			require.NoError(t, err)
			start := make(chan struct{})
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i, id := range []string{a.ID, b.ID} {
				wg.Go(func() {
					<-start
					_, errs[i] = db.Users().SetAdmin(ctx, id, false)
				})
			}
			close(start)
			wg.Wait()
			require.Equal(t, 1, admins(), "round %d: %v", round, errs)
			conflicts := 0
			for _, err := range errs {
				if err != nil {
					require.ErrorIs(t, err, pierredb.ErrConflict, "round %d", round)
					conflicts++
				}
			}
			require.Equal(t, 1, conflicts, "round %d", round)
		}
	})
})

var _ = register("Users", "Update", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock(base)
		db := e.Open(t, pierredb.WithClock(clk.Now))
		u := pendingUser(t, db, "named")

		for _, name := range []string{"Ada Lovelace", "Zoë 🚀 Ñandú", strings.Repeat("n", 200)} {
			clk.Advance(time.Second)
			got, err := db.Users().Update(ctx, u.ID, pierredb.UserUpdate{DisplayName: &name})
			require.NoError(t, err)
			assert.Equal(t, name, got.DisplayName)
			assert.Equal(t, micro(clk.Now()), got.UpdatedAt)
			assert.Equal(t, pierredb.TierStarter, got.Tier, "the tier is left alone")
			got, err = db.Users().Get(ctx, u.ID)
			require.NoError(t, err)
			assert.Equal(t, name, got.DisplayName)
		}
		got, err := db.Users().Update(ctx, u.ID, pierredb.UserUpdate{DisplayName: ptr("Ada")})
		require.NoError(t, err)
		for _, tc := range []struct {
			name   string
			change pierredb.UserUpdate
		}{
			{"NUL", pierredb.UserUpdate{DisplayName: ptr("bad\x00name")}},
			{"newline", pierredb.UserUpdate{DisplayName: ptr("line\nbreak")}},
			{"carriage return", pierredb.UserUpdate{DisplayName: ptr("line\rbreak")}},
			{"tab", pierredb.UserUpdate{DisplayName: ptr("tab\there")}},
			{"escape", pierredb.UserUpdate{DisplayName: ptr("\x1b[31mred")}},
			{"delete", pierredb.UserUpdate{DisplayName: ptr("del\x7f")}},
			{"C1 control", pierredb.UserUpdate{DisplayName: ptr("c1\u0085")}},
			{"invalid UTF-8", pierredb.UserUpdate{DisplayName: ptr("bad\xff\xfe")}},
			{"201 bytes", pierredb.UserUpdate{DisplayName: ptr(strings.Repeat("n", 201))}},
			{"unknown tier", pierredb.UserUpdate{Tier: ptr(pierredb.Tier("gold"))}},
			{"trial tier", pierredb.UserUpdate{Tier: ptr(pierredb.TierTrial)}},
			{"empty tier", pierredb.UserUpdate{Tier: ptr(pierredb.Tier(""))}},
			{"good tier, bad name", pierredb.UserUpdate{DisplayName: ptr("bad\x00"), Tier: ptr(pierredb.TierEnterprise)}},
			{"good name, bad tier", pierredb.UserUpdate{DisplayName: ptr("Grace"), Tier: ptr(pierredb.Tier("gold"))}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := db.Users().Update(ctx, u.ID, tc.change)
				require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
				onePrefix(t, err)
			})
		}
		after, err := db.Users().Get(ctx, u.ID)
		require.NoError(t, err)
		assert.Equal(t, "Ada", after.DisplayName, "refused changes change nothing")
		assert.Equal(t, pierredb.TierStarter, after.Tier)
		assert.True(t, got.UpdatedAt.Equal(after.UpdatedAt))

		clk.Advance(time.Second)
		both, err := db.Users().Update(ctx, u.ID, pierredb.UserUpdate{DisplayName: ptr("Grace"), Tier: ptr(pierredb.TierEnterprise)})
		require.NoError(t, err)
		assert.Equal(t, "Grace", both.DisplayName)
		assert.Equal(t, pierredb.TierEnterprise, both.Tier)
		tier, err := db.Users().Update(ctx, u.ID, pierredb.UserUpdate{Tier: ptr(pierredb.TierProfessional)})
		require.NoError(t, err)
		assert.Equal(t, "Grace", tier.DisplayName, "the name is left alone")
		assert.Equal(t, pierredb.TierProfessional, tier.Tier)
		same, err := db.Users().Update(ctx, u.ID, pierredb.UserUpdate{})
		require.NoError(t, err, "no change is a read")
		sameUser(t, tier, same)

		cleared, err := db.Users().Update(ctx, u.ID, pierredb.UserUpdate{DisplayName: ptr("")})
		require.NoError(t, err)
		assert.Empty(t, cleared.DisplayName)
		assert.Equal(t, 1, rawCount(t, db, "SELECT count(*) FROM users WHERE id = ? AND display_name IS NULL", u.ID), `"" is stored as NULL`)

		_, err = db.Users().Update(ctx, uuid.NewString(), pierredb.UserUpdate{DisplayName: ptr("Ghost")})
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = db.Users().Update(ctx, uuid.NewString(), pierredb.UserUpdate{})
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = db.Users().Update(ctx, "", pierredb.UserUpdate{DisplayName: ptr("Ghost")})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
})

// ErrorMessages: every error names pierredb once and then its operation.
var _ = register("Users", "ErrorMessages", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		admin, err := db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: uniqueEmail("admin"), Password: Password})
		require.NoError(t, err)
		_, scope := newTenant(t, db, admin)
		unknown := uuid.NewString()

		_, err = db.Users().Create(ctx, pierredb.NewUser{Email: admin.Email, Password: Password})
		assert.EqualError(t, err, "pierredb: create user: already exists: email already registered; sign in, or use another email")
		_, err = db.Users().Get(ctx, unknown)
		assert.EqualError(t, err, "pierredb: get user: not found: no user has that id")
		_, err = scope.Members().CreateUser(ctx, pierredb.NewUser{Email: admin.Email, Password: Password})
		assert.EqualError(t, err, "pierredb: create user in tenant: already exists: email already registered; sign in, or use another email")

		for _, tc := range []struct {
			op   string
			call func() error
			want error
		}{
			{"create user", func() error {
				_, err := db.Users().Create(ctx, pierredb.NewUser{Email: "x", Password: Password})
				return err
			}, pierredb.ErrInvalidArgument},
			{"create first admin", func() error {
				_, err := db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: uniqueEmail("root"), Password: Password})
				return err
			}, pierredb.ErrAlreadyExists},
			{"get user by email", func() error { _, err := db.Users().GetByEmail(ctx, "nobody@example.com"); return err }, pierredb.ErrNotFound},
			{"list users", func() error { _, err := db.Users().List(ctx, pierredb.UserFilter{Limit: -1}); return err }, pierredb.ErrInvalidArgument},
			{"count users", func() error { _, err := db.Users().Count(ctx, pierredb.UserFilter{Status: "gone"}); return err }, pierredb.ErrInvalidArgument},
			{"approve user", func() error { _, err := db.Users().Approve(ctx, unknown, pierredb.ByService("svc")); return err }, pierredb.ErrNotFound},
			{"suspend user", func() error { _, err := db.Users().Suspend(ctx, unknown); return err }, pierredb.ErrNotFound},
			{"reactivate user", func() error { _, err := db.Users().Reactivate(ctx, unknown); return err }, pierredb.ErrNotFound},
			{"set admin", func() error { _, err := db.Users().SetAdmin(ctx, admin.ID, false); return err }, pierredb.ErrConflict},
			{"update user", func() error {
				_, err := db.Users().Update(ctx, unknown, pierredb.UserUpdate{DisplayName: ptr("x")})
				return err
			}, pierredb.ErrNotFound},
			{"set password", func() error { return db.Users().SetPassword(ctx, unknown, "New-Passw0rd-never-set") }, pierredb.ErrNotFound},
			{"change password", func() error {
				return db.Users().ChangePassword(ctx, admin.ID, "Wrong-Passw0rd-never-set", "New-Passw0rd-never-set")
			}, pierredb.ErrInvalidCredentials},
			{"authenticate", func() error { _, err := db.Authenticate(ctx, "nobody@example.com", Password); return err }, pierredb.ErrInvalidCredentials},
			{"touch user", func() error { return db.Users().Touch(ctx, "") }, pierredb.ErrInvalidArgument},
			{"delete user", func() error { return db.Users().Delete(ctx, unknown) }, pierredb.ErrNotFound},
			{"list user tenants", func() error { _, err := db.Users().Tenants(ctx, "a b"); return err }, pierredb.ErrInvalidArgument},
			{"open tenant scope", func() error { _, err := db.Tenant(ctx, ""); return err }, pierredb.ErrInvalidArgument},
			{"get tenant user", func() error { _, err := scope.Members().GetUser(ctx, unknown); return err }, pierredb.ErrNotFound},
			{"list tenant users", func() error { _, err := scope.Members().ListUsers(ctx, pierredb.UserFilter{Cursor: "!"}); return err }, pierredb.ErrInvalidArgument},
			{"count tenant users", func() error {
				_, err := scope.Members().CountUsers(ctx, pierredb.UserFilter{Status: "gone"})
				return err
			}, pierredb.ErrInvalidArgument},
			{"create user in tenant", func() error {
				_, err := scope.Members().CreateUser(ctx, pierredb.NewUser{Email: uniqueEmail("short"), Password: "short"})
				return err
			}, pierredb.ErrPasswordTooShort},
		} {
			t.Run(tc.op, func(t *testing.T) {
				err := tc.call()
				require.ErrorIs(t, err, tc.want)
				onePrefix(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), "pierredb: "+tc.op+": "), "%q names %q", err, tc.op)
				noLeak(t, err, Password, "New-Passw0rd-never-set", "Wrong-Passw0rd-never-set")
			})
		}

		// An update with nothing to change is a read, but still an update.
		// (It names "update user", not the read it runs.)
		_, err = db.Users().Update(ctx, unknown, pierredb.UserUpdate{})
		require.ErrorIs(t, err, pierredb.ErrNotFound)
		assert.EqualError(t, err, "pierredb: update user: not found: no user has that id")
	})
})

// UnknownTenantScope: making a scope runs no query, so a tenant id that names no
// tenant (or a tenant deleted since) gives a scope whose every operation answers
// ErrNotFound, and creates nothing.
var _ = register("Users", "UnknownTenantScope", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t, pierredb.WithAutoApproveUsers(true))
		owner := pendingUser(t, db, "owner")
		other := pendingUser(t, db, "other")
		unknownID := uuid.NewString()
		unknown, err := db.Tenant(ctx, unknownID)
		require.NoError(t, err, "a scope is made without a query")
		assert.Equal(t, unknownID, unknown.ID())
		gone, goneScope := newTenant(t, db, owner)
		_, err = goneScope.Members().Add(ctx, other.ID, pierredb.RoleMember)
		require.NoError(t, err)
		require.NoError(t, db.Tenants().Delete(ctx, gone.ID))

		for _, s := range []struct {
			name  string
			scope *pierredb.TenantScope
		}{{"never existed", unknown}, {"deleted", goneScope}} {
			t.Run(s.name, func(t *testing.T) {
				email := uniqueEmail("nowhere")
				m := s.scope.Members()
				for _, tc := range []struct {
					name string
					call func() error
				}{
					{"Get", func() error { _, err := s.scope.Get(ctx); return err }},
					{"GetUser", func() error { _, err := m.GetUser(ctx, owner.ID); return err }},
					{"ListUsers", func() error { _, err := m.ListUsers(ctx, pierredb.UserFilter{}); return err }},
					{"ListUsers, pending", func() error {
						_, err := m.ListUsers(ctx, pierredb.UserFilter{Status: pierredb.StatusPending})
						return err
					}},
					{"CountUsers", func() error { _, err := m.CountUsers(ctx, pierredb.UserFilter{}); return err }},
					{"CreateUser", func() error {
						_, err := m.CreateUser(ctx, pierredb.NewUser{Email: email, Password: Password})
						return err
					}},
					{"Add", func() error { _, err := m.Add(ctx, other.ID, pierredb.RoleMember); return err }},
					{"Get member", func() error { _, err := m.Get(ctx, owner.ID); return err }},
					{"List members", func() error { _, err := m.List(ctx, pierredb.ListOptions{}); return err }},
					{"SetRole", func() error { _, err := m.SetRole(ctx, owner.ID, pierredb.RoleAdmin); return err }},
					{"Remove", func() error { return m.Remove(ctx, other.ID) }},
					{"TransferOwnership", func() error { _, err := m.TransferOwnership(ctx, other.ID); return err }},
					{"Users.List", func() error {
						_, err := db.Users().List(ctx, pierredb.UserFilter{TenantID: s.scope.ID()})
						return err
					}},
					{"Users.Count", func() error {
						_, err := db.Users().Count(ctx, pierredb.UserFilter{TenantID: s.scope.ID()})
						return err
					}},
				} {
					t.Run(tc.name, func(t *testing.T) {
						err := tc.call()
						require.ErrorIs(t, err, pierredb.ErrNotFound)
						onePrefix(t, err)
					})
				}
				_, err := db.Users().GetByEmail(ctx, email)
				assert.ErrorIs(t, err, pierredb.ErrNotFound, "CreateUser created no user")
			})
		}
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM tenant_users"), "and no membership")
		tenants, err := db.Users().Tenants(ctx, other.ID)
		require.NoError(t, err)
		assert.Empty(t, tenants)
	})
})

// insertOwnedRows inserts, behind the API, an API key, an A2A client and an
// OAuth token of userID in tenantID (only the columns without a default: a
// column added later keeps it working).
func insertOwnedRows(t testing.TB, db *pierredb.Database, tenantID, userID string) {
	t.Helper()
	ctx := context.Background()
	w := db.Bun()
	const ts = "2026-01-01T00:00:00.000000Z"
	_, err := w.ExecContext(ctx, `INSERT INTO api_keys (id, tenant_id, user_id, name, key_prefix, key_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, uuid.NewString(), tenantID, userID, "key", "pk_test_"+uuid.NewString(), "hash", ts, ts)
	require.NoError(t, err)
	_, err = w.ExecContext(ctx, `INSERT INTO a2a_clients (client_id, tenant_id, user_id, name, public_key, client_secret_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, uuid.NewString(), tenantID, userID, "agent", "pub-"+uuid.NewString(), "hash", ts, ts)
	require.NoError(t, err)
	_, err = w.ExecContext(ctx, `INSERT INTO user_oauth_tokens (id, tenant_id, user_id, provider, access_token_encrypted, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, uuid.NewString(), tenantID, userID, "strava", []byte{1, 2, 3}, ts, ts)
	require.NoError(t, err)
}

// ownedRowCounts counts what insertOwnedRows inserts, plus memberships, for
// userID.
func ownedRowCounts(t testing.TB, db *pierredb.Database, userID string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"tenant_users", "api_keys", "a2a_clients", "user_oauth_tokens"} {
		out[table] = rawCount(t, db, "SELECT count(*) FROM "+table+" WHERE user_id = ?", userID)
	}
	return out
}

var _ = register("Users", "Delete", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		doomed := activeUser(t, db, "doomed")
		// doomed approves a user: only an active admin may, and an admin is
		// deleted only while another remains, so both are admins.
		for _, u := range []pierredb.User{owner, doomed} {
			_, err := db.Users().SetAdmin(ctx, u.ID, true)
			require.NoError(t, err)
		}
		approved := pendingUser(t, db, "approved")
		approved, err := db.Users().Approve(ctx, approved.ID, pierredb.ByUser(doomed.ID))
		require.NoError(t, err)
		require.Equal(t, doomed.ID, approved.ApprovedBy)

		shared, sharedScope := newTenant(t, db, owner)
		_, err = sharedScope.Members().Add(ctx, doomed.ID, pierredb.RoleAdmin)
		require.NoError(t, err)
		alone, _ := newTenant(t, db, doomed)
		insertOwnedRows(t, db, shared.ID, doomed.ID)
		insertOwnedRows(t, db, alone.ID, doomed.ID)
		insertOwnedRows(t, db, shared.ID, owner.ID)
		require.Equal(t, map[string]int{"tenant_users": 2, "api_keys": 2, "a2a_clients": 2, "user_oauth_tokens": 2}, ownedRowCounts(t, db, doomed.ID))

		require.NoError(t, db.Users().Delete(ctx, doomed.ID))

		_, err = db.Users().Get(ctx, doomed.ID)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = db.Users().GetByEmail(ctx, doomed.Email)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		assert.Equal(t, map[string]int{"tenant_users": 0, "api_keys": 0, "a2a_clients": 0, "user_oauth_tokens": 0}, ownedRowCounts(t, db, doomed.ID),
			"memberships, and with them keys, clients and tokens, are gone")
		_, err = db.Tenants().Get(ctx, alone.ID)
		assert.ErrorIs(t, err, pierredb.ErrNotFound, "the tenant the user owned alone went with them")
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM api_keys WHERE tenant_id = ?", alone.ID))
		tenants, err := db.Users().Tenants(ctx, doomed.ID)
		require.NoError(t, err)
		assert.Empty(t, tenants)

		// Everything else stays.
		_, err = db.Tenants().Get(ctx, shared.ID)
		require.NoError(t, err)
		m, err := sharedScope.Members().Get(ctx, owner.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.RoleOwner, m.Role)
		assert.Equal(t, map[string]int{"tenant_users": 1, "api_keys": 1, "a2a_clients": 1, "user_oauth_tokens": 1}, ownedRowCounts(t, db, owner.ID))
		got, err := db.Users().Get(ctx, approved.ID)
		require.NoError(t, err)
		assert.Empty(t, got.ApprovedBy, "approved_by of the users they approved becomes NULL")
		assert.Equal(t, pierredb.StatusActive, got.Status, "and those users stay approved")
		assert.False(t, got.ApprovedAt.IsZero())
		assert.Equal(t, 1, rawCount(t, db, "SELECT count(*) FROM users WHERE id = ? AND approved_by IS NULL", approved.ID))
		n, err := db.Users().Count(ctx, pierredb.UserFilter{IsAdmin: ptr(true)})
		require.NoError(t, err)
		assert.Equal(t, 1, n)

		for _, tc := range []struct {
			name string
			id   string
			want error
		}{
			{"deleting twice", doomed.ID, pierredb.ErrNotFound},
			{"unknown id", uuid.NewString(), pierredb.ErrNotFound},
			{"empty id", "", pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := db.Users().Delete(ctx, tc.id)
				assert.ErrorIs(t, err, tc.want)
				onePrefix(t, err)
			})
		}
	})
})

var _ = register("Users", "DeleteOwningSharedTenant", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		holder := activeUser(t, db, "holder")
		other := activeUser(t, db, "member")
		alone, _ := newTenant(t, db, holder)
		shared, scope := newTenant(t, db, holder)
		_, err := scope.Members().Add(ctx, other.ID, pierredb.RoleMember)
		require.NoError(t, err)
		insertOwnedRows(t, db, alone.ID, holder.ID)
		insertOwnedRows(t, db, shared.ID, holder.ID)
		before := ownedRowCounts(t, db, holder.ID)

		err = db.Users().Delete(ctx, holder.ID)
		require.ErrorIs(t, err, pierredb.ErrConflict)
		onePrefix(t, err)
		assert.Contains(t, err.Error(), shared.Slug, "the error names the tenant to hand over")

		_, err = db.Users().Get(ctx, holder.ID)
		require.NoError(t, err, "nothing was deleted")
		_, err = db.Tenants().Get(ctx, alone.ID)
		require.NoError(t, err, "not even the tenant the user owns alone")
		_, err = db.Tenants().Get(ctx, shared.ID)
		require.NoError(t, err)
		assert.Equal(t, before, ownedRowCounts(t, db, holder.ID))
		tenants, err := db.Users().Tenants(ctx, other.ID)
		require.NoError(t, err)
		assert.Len(t, tenants, 1)
		held, err := db.Users().Tenants(ctx, holder.ID)
		require.NoError(t, err)
		assert.Equal(t, []string{alone.ID, shared.ID}, ids(held, func(m pierredb.TenantMembership) string { return m.Tenant.ID }), "oldest membership first")
		for _, m := range held {
			assert.Equal(t, pierredb.RoleOwner, m.Role)
		}

		// Once ownership is handed over, the user can go.
		_, err = scope.Members().TransferOwnership(ctx, other.ID)
		require.NoError(t, err)
		require.NoError(t, db.Users().Delete(ctx, holder.ID))
		_, err = db.Tenants().Get(ctx, alone.ID)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		tn, err := db.Tenants().Get(ctx, shared.ID)
		require.NoError(t, err)
		assert.Equal(t, other.ID, tn.OwnerUserID)
	})
})

// DeleteLastAdmin: the last admin cannot be deleted (as SetAdmin refuses to
// revoke it), and if every admin is lost anyway (SQL outside pierre), the first
// admin can be made again.
var _ = register("Users", "DeleteLastAdmin", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		first, err := db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: "root@example.com", Password: Password})
		require.NoError(t, err)
		err = db.Users().Delete(ctx, first.ID)
		assert.ErrorIs(t, err, pierredb.ErrConflict)
		onePrefix(t, err)

		second := activeUser(t, db, "second-admin")
		_, err = db.Users().SetAdmin(ctx, second.ID, true)
		require.NoError(t, err)
		require.NoError(t, db.Users().Delete(ctx, first.ID), "another admin remains")
		assert.ErrorIs(t, db.Users().Delete(ctx, second.ID), pierredb.ErrConflict)

		_, err = db.Bun().ExecContext(ctx, "DELETE FROM users WHERE id = ?", second.ID)
		require.NoError(t, err)
		again, err := db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: "root2@example.com", Password: Password})
		require.NoError(t, err)
		assert.True(t, again.IsAdmin)
	})
})

var _ = register("Users", "CreateFirstAdmin", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()

		t.Run("once", func(t *testing.T) {
			ctx := t.Context()
			db := e.Open(t)
			_, err := db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: "root@example.com", Password: "short"})
			require.ErrorIs(t, err, pierredb.ErrPasswordTooShort, "an invalid first admin is refused...")
			_, err = db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: "root\u200b@example.com", Password: Password})
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument)

			admin, err := db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: " Root@Example.com ", Password: Password, DisplayName: "Root"})
			require.NoError(t, err, "...and does not use up the bootstrap")
			assert.Equal(t, "root@example.com", admin.Email)
			assert.True(t, admin.IsAdmin)
			assert.Equal(t, pierredb.StatusActive, admin.Status)
			assert.True(t, admin.IsActive)
			assert.Equal(t, "bootstrap", admin.ApprovedByService)
			assert.False(t, admin.ApprovedAt.IsZero())
			got, err := db.Users().Get(ctx, admin.ID)
			require.NoError(t, err)
			sameUser(t, admin, got)
			assert.Equal(t, [3]int{19456, 2, 1}, argonParams(t, rawPasswordHash(t, db, admin.ID)))
			logged, err := db.Authenticate(ctx, "root@example.com", Password)
			require.NoError(t, err, "the first admin can log in at once")
			assert.True(t, logged.IsAdmin)

			_, err = db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: "second@example.com", Password: Password})
			require.ErrorIs(t, err, pierredb.ErrAlreadyExists)
			onePrefix(t, err)
			noLeak(t, err, Password)
			n, err := db.Users().Count(ctx, pierredb.UserFilter{})
			require.NoError(t, err)
			assert.Equal(t, 1, n, "the refused call created nothing")
		})

		t.Run("concurrent", func(t *testing.T) {
			ctx := t.Context()
			db := e.Open(t)
			const n = 8
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					<-start
					_, errs[i] = db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: fmt.Sprintf("racer%d@example.com", i), Password: Password})
				})
			}
			close(start)
			wg.Wait()
			won := 0
			for i, err := range errs {
				if err == nil {
					won++
					continue
				}
				assert.ErrorIs(t, err, pierredb.ErrAlreadyExists, "racer %d", i)
			}
			assert.Equal(t, 1, won, "exactly one bootstrap wins")
			admins, err := db.Users().Count(ctx, pierredb.UserFilter{IsAdmin: ptr(true)})
			require.NoError(t, err)
			assert.Equal(t, 1, admins)
			total, err := db.Users().Count(ctx, pierredb.UserFilter{})
			require.NoError(t, err)
			assert.Equal(t, 1, total, "the losers created no user")
		})

		t.Run("admin granted already", func(t *testing.T) {
			ctx := t.Context()
			db := e.Open(t)
			u := activeUser(t, db, "granted")
			_, err := db.Users().SetAdmin(ctx, u.ID, true)
			require.NoError(t, err)
			_, err = db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: "late@example.com", Password: Password})
			require.ErrorIs(t, err, pierredb.ErrAlreadyExists)
		})

		t.Run("email taken by a user", func(t *testing.T) {
			ctx := t.Context()
			db := e.Open(t)
			u := pendingUser(t, db, "taken")
			_, err := db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: u.Email, Password: Password})
			require.ErrorIs(t, err, pierredb.ErrAlreadyExists)
			assert.EqualError(t, err, "pierredb: create first admin: already exists: email already registered")
			n, err := db.Users().Count(ctx, pierredb.UserFilter{IsAdmin: ptr(true)})
			require.NoError(t, err)
			assert.Zero(t, n)
		})
	})
})

var _ = register("Users", "AfterClose", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		u := activeUser(t, db, "closed")
		_, scope := newTenant(t, db, u)
		require.NoError(t, db.Close())

		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"Create", func() error {
				_, err := db.Users().Create(ctx, pierredb.NewUser{Email: uniqueEmail("after"), Password: Password})
				return err
			}},
			{"CreateFirstAdmin", func() error {
				_, err := db.Users().CreateFirstAdmin(ctx, pierredb.NewUser{Email: uniqueEmail("root"), Password: Password})
				return err
			}},
			{"Get", func() error { _, err := db.Users().Get(ctx, u.ID); return err }},
			{"GetByEmail", func() error { _, err := db.Users().GetByEmail(ctx, u.Email); return err }},
			{"List", func() error { _, err := db.Users().List(ctx, pierredb.UserFilter{}); return err }},
			{"Count", func() error { _, err := db.Users().Count(ctx, pierredb.UserFilter{}); return err }},
			{"Approve", func() error { _, err := db.Users().Approve(ctx, u.ID, pierredb.ByService("x")); return err }},
			{"Suspend", func() error { _, err := db.Users().Suspend(ctx, u.ID); return err }},
			{"Reactivate", func() error { _, err := db.Users().Reactivate(ctx, u.ID); return err }},
			{"SetAdmin", func() error { _, err := db.Users().SetAdmin(ctx, u.ID, true); return err }},
			{"Update", func() error {
				_, err := db.Users().Update(ctx, u.ID, pierredb.UserUpdate{DisplayName: ptr("x"), Tier: ptr(pierredb.TierEnterprise)})
				return err
			}},
			{"SetPassword", func() error { return db.Users().SetPassword(ctx, u.ID, "New-passw0rd") }},
			{"ChangePassword", func() error { return db.Users().ChangePassword(ctx, u.ID, Password, "New-passw0rd") }},
			{"Authenticate", func() error { _, err := db.Authenticate(ctx, u.Email, Password); return err }},
			{"Touch", func() error { return db.Users().Touch(ctx, u.ID) }},
			{"Delete", func() error { return db.Users().Delete(ctx, u.ID) }},
			{"Tenants", func() error { _, err := db.Users().Tenants(ctx, u.ID); return err }},
			{"AutoApproveUsers", func() error { _, err := db.Settings().AutoApproveUsers(ctx); return err }},
			{"SetAutoApproveUsers", func() error { return db.Settings().SetAutoApproveUsers(ctx, true) }},
			{"Tenant", func() error { _, err := db.Tenant(ctx, scope.ID()); return err }},
			{"Members.CreateUser", func() error {
				_, err := scope.Members().CreateUser(ctx, pierredb.NewUser{Email: uniqueEmail("scoped"), Password: Password})
				return err
			}},
			{"Members.GetUser", func() error { _, err := scope.Members().GetUser(ctx, u.ID); return err }},
			{"Members.ListUsers", func() error { _, err := scope.Members().ListUsers(ctx, pierredb.UserFilter{}); return err }},
			{"Members.CountUsers", func() error { _, err := scope.Members().CountUsers(ctx, pierredb.UserFilter{}); return err }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.call()
				require.ErrorIs(t, err, pierredb.ErrClosed)
				onePrefix(t, err)
				noLeak(t, err, Password, "New-passw0rd")
			})
		}
	})
})
