package pierredb_test

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// Helpers of this file carry a "ut" prefix: other test files of the package are
// written alongside and must not collide with them.

// utPassword is distinctive enough that finding it in an error message or a log
// line is a leak, never a coincidence.
const utPassword = "Zq7-utPassw0rd-never-shown"

var utSeq atomic.Int64

// utEmail returns a unique address for name.
func utEmail(name string) string {
	return fmt.Sprintf("%s-%d@example.com", name, utSeq.Add(1))
}

// utCreate creates a user (pending unless auto-approval is on) with utPassword.
func utCreate(t testing.TB, db *pierredb.Database, name string) pierredb.User {
	t.Helper()
	u, err := db.CreateUser(t.Context(), pierredb.NewUser{Email: utEmail(name), Password: utPassword, DisplayName: name})
	require.NoError(t, err)
	return u
}

// utActive creates a user and approves it.
func utActive(t testing.TB, db *pierredb.Database, name string) pierredb.User {
	t.Helper()
	u := utCreate(t, db, name)
	u, err := db.ApproveUser(t.Context(), u.ID, pierredb.ByService("test"))
	require.NoError(t, err)
	return u
}

// utTenant creates a tenant owned by owner and returns it with its scope.
func utTenant(t testing.TB, db *pierredb.Database, owner pierredb.User) (pierredb.Tenant, *pierredb.TenantScope) {
	t.Helper()
	tn, err := db.CreateTenant(t.Context(), pierredb.NewTenant{
		Name: "Tenant", Slug: fmt.Sprintf("ut-%d", utSeq.Add(1)), OwnerUserID: owner.ID,
	})
	require.NoError(t, err)
	scope, err := db.Tenant(t.Context(), tn.ID)
	require.NoError(t, err)
	return tn, scope
}

// utClock is a settable clock for WithClock, safe for concurrent use.
type utClock struct {
	mu  sync.Mutex
	now time.Time
}

func newUTClock(t time.Time) *utClock { return &utClock{now: t} }

func (c *utClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *utClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *utClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// utBase is the fake clocks' starting instant; its sub-microsecond part is
// dropped by the store.
var utBase = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// utMicro is t as the store keeps it.
func utMicro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// utRawHash reads a user's password_hash straight from the table.
func utRawHash(t testing.TB, db *pierredb.Database, id string) string {
	t.Helper()
	var h string
	require.NoError(t, pierredb.EngineOf(db).Writer.QueryRowContext(t.Context(),
		"SELECT password_hash FROM users WHERE id = ?", id).Scan(&h))
	return h
}

// utSetRawHash replaces a user's password_hash behind the store's back.
func utSetRawHash(t testing.TB, db *pierredb.Database, id, hash string) {
	t.Helper()
	_, err := pierredb.EngineOf(db).Writer.ExecContext(t.Context(),
		"UPDATE users SET password_hash = ? WHERE id = ?", hash, id)
	require.NoError(t, err)
}

// utRawTime reads a timestamp column of a user straight from the table: TEXT on
// SQLite, TIMESTAMPTZ on PostgreSQL. NULL is the zero time.
func utRawTime(t testing.TB, db *pierredb.Database, column, id string) time.Time {
	t.Helper()
	var v any
	require.NoError(t, pierredb.EngineOf(db).Writer.QueryRowContext(t.Context(),
		"SELECT "+column+" FROM users WHERE id = ?", id).Scan(&v))
	switch v := v.(type) {
	case nil:
		return time.Time{}
	case time.Time:
		return v.UTC()
	case string:
		return utParseTime(t, v)
	case []byte:
		return utParseTime(t, string(v))
	default:
		t.Fatalf("%s: unexpected type %T", column, v)
		return time.Time{}
	}
}

func utParseTime(t testing.TB, s string) time.Time {
	t.Helper()
	for _, layout := range []string{time.RFC3339Nano, time.DateTime} {
		if p, err := time.Parse(layout, s); err == nil {
			return p.UTC()
		}
	}
	t.Fatalf("%q is not a timestamp", s)
	return time.Time{}
}

// utCount runs a count(*) query with bun's '?' placeholders.
func utCount(t testing.TB, db *pierredb.Database, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pierredb.EngineOf(db).Writer.QueryRowContext(t.Context(), query, args...).Scan(&n))
	return n
}

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

// utArgonParams parses an argon2id PHC string (16-byte salt, 32-byte key) and
// returns its m, t and p.
func utArgonParams(t testing.TB, phc string) (m, iters, p int) {
	t.Helper()
	g := phcRE.FindStringSubmatch(phc)
	require.NotNil(t, g, "not an argon2id PHC string with a 16-byte salt and 32-byte key: %.20s…", phc)
	m, _ = strconv.Atoi(g[1])
	iters, _ = strconv.Atoi(g[2])
	p, _ = strconv.Atoi(g[3])
	return m, iters, p
}

// utNoLeak fails if err, in any of the usual renderings, contains a secret.
// Secrets shorter than 8 bytes ("short") are too common a word to look for.
func utNoLeak(t testing.TB, err error, secrets ...string) {
	t.Helper()
	require.Error(t, err)
	for _, text := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%q", err)} {
		for _, s := range secrets {
			if len(s) >= 8 {
				assert.NotContains(t, text, s, "an error reveals a password")
			}
		}
	}
}

func utIDs(users []pierredb.User) []string {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	return ids
}

func utPtr[T any](v T) *T { return &v }

// utSameUser compares two users field by field, timestamps by instant.
func utSameUser(t testing.TB, want, got pierredb.User) {
	t.Helper()
	assert.Equal(t, want.ID, got.ID)
	assert.Equal(t, want.Email, got.Email)
	assert.Equal(t, want.DisplayName, got.DisplayName)
	assert.Equal(t, want.Tier, got.Tier)
	assert.Equal(t, want.TenantID, got.TenantID)
	assert.Equal(t, want.Status, got.Status)
	assert.Equal(t, want.IsActive, got.IsActive)
	assert.Equal(t, want.IsAdmin, got.IsAdmin)
	assert.Equal(t, want.ApprovedBy, got.ApprovedBy)
	assert.Equal(t, want.ApprovedByService, got.ApprovedByService)
	sameTime := func(field string, w, g time.Time) {
		t.Helper()
		assert.True(t, w.Equal(g), "%s: want %v, got %v", field, w, g)
	}
	sameTime("ApprovedAt", want.ApprovedAt, got.ApprovedAt)
	sameTime("CreatedAt", want.CreatedAt, got.CreatedAt)
	sameTime("UpdatedAt", want.UpdatedAt, got.UpdatedAt)
	sameTime("LastActive", want.LastActive, got.LastActive)
}

func TestCreateUser(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newUTClock(utBase)
		db := e.Open(t, pierredb.WithClock(clk.Now))

		u, err := db.CreateUser(ctx, pierredb.NewUser{
			Email: " \tAlice.Smith@Example.COM \n", Password: utPassword, DisplayName: "Alice Smith",
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
		assert.Equal(t, utMicro(utBase), u.CreatedAt, "the store's clock, at microsecond precision")
		assert.Equal(t, u.CreatedAt, u.UpdatedAt)

		got, err := db.GetUser(ctx, u.ID)
		require.NoError(t, err)
		utSameUser(t, u, got)

		// The stored hash is argon2id in PHC form at the default policy.
		stored := utRawHash(t, db, u.ID)
		m, iters, p := utArgonParams(t, stored)
		assert.Equal(t, [3]int{19456, 2, 1}, [3]int{m, iters, p})
		assert.NotContains(t, stored, utPassword)

		// A second user with the same email, however it is spelt, is refused.
		for _, email := range []string{"alice.smith@example.com", "ALICE.SMITH@EXAMPLE.COM", "  Alice.Smith@example.com\t"} {
			_, err := db.CreateUser(ctx, pierredb.NewUser{Email: email, Password: "another-password"})
			require.ErrorIs(t, err, pierredb.ErrAlreadyExists, "email %q", email)
			utNoLeak(t, err, "another-password")
		}

		// Tiers and the password length boundaries.
		pro, err := db.CreateUser(ctx, pierredb.NewUser{Email: utEmail("pro"), Password: "12345678", Tier: pierredb.TierProfessional})
		require.NoError(t, err, "eight characters is enough")
		assert.Equal(t, pierredb.TierProfessional, pro.Tier)
		_, err = db.CreateUser(ctx, pierredb.NewUser{Email: utEmail("long"), Password: strings.Repeat("p", 4096)})
		require.NoError(t, err, "4096 bytes is the most a password may have")
		_, err = db.CreateUser(ctx, pierredb.NewUser{Email: utEmail("unicode"), Password: "ünïcödé!"})
		require.NoError(t, err, "eight characters in twelve bytes")

		n, err := db.CountUsers(ctx, pierredb.UserFilter{})
		require.NoError(t, err)
		assert.Equal(t, 4, n)
	})
}

func TestCreateUserRejects(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		long := strings.Repeat("L0ng", 1025) // 4100 bytes
		for _, tc := range []struct {
			name string
			nu   pierredb.NewUser
			want error
		}{
			{"empty email", pierredb.NewUser{Email: "", Password: utPassword}, pierredb.ErrInvalidArgument},
			{"blank email", pierredb.NewUser{Email: " \t ", Password: utPassword}, pierredb.ErrInvalidArgument},
			{"no at sign", pierredb.NewUser{Email: "plainaddress", Password: utPassword}, pierredb.ErrInvalidArgument},
			{"no local part", pierredb.NewUser{Email: "@example.com", Password: utPassword}, pierredb.ErrInvalidArgument},
			{"no domain", pierredb.NewUser{Email: "user@", Password: utPassword}, pierredb.ErrInvalidArgument},
			{"two at signs", pierredb.NewUser{Email: "a@b@example.com", Password: utPassword}, pierredb.ErrInvalidArgument},
			{"display name form", pierredb.NewUser{Email: "Alice <alice@example.com>", Password: utPassword}, pierredb.ErrInvalidArgument},
			{"angle brackets", pierredb.NewUser{Email: "<alice@example.com>", Password: utPassword}, pierredb.ErrInvalidArgument},
			{"address list", pierredb.NewUser{Email: "alice@example.com, bob@example.com", Password: utPassword}, pierredb.ErrInvalidArgument},
			{"inner space", pierredb.NewUser{Email: "alice smith@example.com", Password: utPassword}, pierredb.ErrInvalidArgument},
			{"header injection", pierredb.NewUser{Email: "alice@example.com\r\nBcc: eve@example.com", Password: utPassword}, pierredb.ErrInvalidArgument},
			{"longer than 254 bytes", pierredb.NewUser{Email: strings.Repeat("a", 250) + "@example.com", Password: utPassword}, pierredb.ErrInvalidArgument},
			{"empty password", pierredb.NewUser{Email: utEmail("p0"), Password: ""}, pierredb.ErrPasswordTooShort},
			{"seven characters", pierredb.NewUser{Email: utEmail("p7"), Password: "Sev3n!!"}, pierredb.ErrPasswordTooShort},
			{"seven characters in many bytes", pierredb.NewUser{Email: utEmail("p7u"), Password: "ünïcödé"}, pierredb.ErrPasswordTooShort},
			{"4097 bytes", pierredb.NewUser{Email: utEmail("p4097"), Password: strings.Repeat("x", 4097)}, pierredb.ErrPasswordTooLong},
			{"4100 bytes", pierredb.NewUser{Email: utEmail("p4100"), Password: long}, pierredb.ErrPasswordTooLong},
			{"unknown tier", pierredb.NewUser{Email: utEmail("tier"), Password: utPassword, Tier: "gold"}, pierredb.ErrInvalidArgument},
			{"trial is for API keys", pierredb.NewUser{Email: utEmail("trial"), Password: utPassword, Tier: pierredb.TierTrial}, pierredb.ErrInvalidArgument},
			{"control character in display name", pierredb.NewUser{Email: utEmail("ctl"), Password: utPassword, DisplayName: "bad\x00name"}, pierredb.ErrInvalidArgument},
			{"display name too long", pierredb.NewUser{Email: utEmail("dn"), Password: utPassword, DisplayName: strings.Repeat("d", 201)}, pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := db.CreateUser(ctx, tc.nu)
				require.ErrorIs(t, err, tc.want)
				if len(tc.nu.Password) >= 8 {
					utNoLeak(t, err, tc.nu.Password)
				}
			})
		}
		n, err := db.CountUsers(ctx, pierredb.UserFilter{})
		require.NoError(t, err)
		assert.Zero(t, n, "no refused user was created")
	})
}

func TestAutoApproval(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)

		on, err := db.AutoApproveUsers(ctx)
		require.NoError(t, err)
		assert.False(t, on, "auto-approval is off by default")
		assert.Equal(t, pierredb.StatusPending, utCreate(t, db, "default").Status)

		require.NoError(t, db.SetAutoApproveUsers(ctx, true))
		on, err = db.AutoApproveUsers(ctx)
		require.NoError(t, err)
		assert.True(t, on)
		u := utCreate(t, db, "auto")
		assert.Equal(t, pierredb.StatusActive, u.Status)
		assert.Equal(t, "auto-approval", u.ApprovedByService)
		assert.Empty(t, u.ApprovedBy)
		assert.False(t, u.ApprovedAt.IsZero())
		assert.True(t, u.ApprovedAt.Equal(u.CreatedAt))
		got, err := db.GetUser(ctx, u.ID)
		require.NoError(t, err)
		utSameUser(t, u, got)

		// WithAutoApproveUsers(false) overrides a stored "on"...
		off := e.OpenURL(t, url, pierredb.WithAutoApproveUsers(false))
		on, err = off.AutoApproveUsers(ctx)
		require.NoError(t, err)
		assert.False(t, on)
		assert.Equal(t, pierredb.StatusPending, utCreate(t, off, "override-off").Status)

		// ...and WithAutoApproveUsers(true) a stored "off", which it still stores.
		require.NoError(t, db.SetAutoApproveUsers(ctx, false))
		forced := e.OpenURL(t, url, pierredb.WithAutoApproveUsers(true))
		require.NoError(t, forced.SetAutoApproveUsers(ctx, false))
		on, err = forced.AutoApproveUsers(ctx)
		require.NoError(t, err)
		assert.True(t, on, "the override wins over the stored setting")
		v := utCreate(t, forced, "override-on")
		assert.Equal(t, pierredb.StatusActive, v.Status)
		assert.Equal(t, "auto-approval", v.ApprovedByService)

		on, err = db.AutoApproveUsers(ctx)
		require.NoError(t, err)
		assert.False(t, on, "the stored setting is unchanged for instances without an override")
	})
}

func TestGetUser(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		u, err := db.CreateUser(ctx, pierredb.NewUser{Email: "Bob.Jones@Example.com", Password: utPassword})
		require.NoError(t, err)

		got, err := db.GetUser(ctx, u.ID)
		require.NoError(t, err)
		utSameUser(t, u, got)
		for _, email := range []string{"bob.jones@example.com", "BOB.JONES@EXAMPLE.COM", "  Bob.Jones@example.COM \t"} {
			got, err := db.GetUserByEmail(ctx, email)
			require.NoError(t, err, email)
			utSameUser(t, u, got)
		}

		for _, tc := range []struct {
			name string
			call func() error
			want error
		}{
			{"empty id", func() error { _, err := db.GetUser(ctx, ""); return err }, pierredb.ErrInvalidArgument},
			{"overlong id", func() error { _, err := db.GetUser(ctx, strings.Repeat("x", 129)); return err }, pierredb.ErrInvalidArgument},
			{"unknown id", func() error { _, err := db.GetUser(ctx, uuid.NewString()); return err }, pierredb.ErrNotFound},
			{"unknown email", func() error { _, err := db.GetUserByEmail(ctx, "nobody@example.com"); return err }, pierredb.ErrNotFound},
			{"empty email", func() error { _, err := db.GetUserByEmail(ctx, ""); return err }, pierredb.ErrInvalidArgument},
			{"malformed email", func() error { _, err := db.GetUserByEmail(ctx, "bob.jones"); return err }, pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				assert.ErrorIs(t, tc.call(), tc.want)
			})
		}
	})
}

// TestListUsersPagination pages through users whose created_at collide, in an
// order that is not their creation order, so that both the (created_at, id)
// order and the id tie-break inside the cursor are exercised.
func TestListUsersPagination(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newUTClock(utBase)
		db := e.Open(t, pierredb.WithClock(clk.Now))

		// Creation order vs clock: the fourth and fifth seconds hold four users at
		// one instant, and the sixth user is the oldest.
		offsets := []time.Duration{2 * time.Second, time.Second, time.Second, time.Second, time.Second, 0, 2 * time.Second}
		users := make([]pierredb.User, len(offsets))
		for i, off := range offsets {
			clk.Set(utBase.Add(off))
			users[i] = utCreate(t, db, fmt.Sprintf("page%d", i))
		}
		want := slices.Clone(users)
		slices.SortFunc(want, func(a, b pierredb.User) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
		})
		require.Equal(t, users[5].ID, want[0].ID)

		all, err := db.ListUsers(ctx, pierredb.UserFilter{Limit: 1000})
		require.NoError(t, err)
		assert.Equal(t, utIDs(want), utIDs(all.Items), "one page holds every user in (created_at, id) order")
		assert.Empty(t, all.Next)
		for i, u := range all.Items {
			utSameUser(t, want[i], u)
		}
		def, err := db.ListUsers(ctx, pierredb.UserFilter{})
		require.NoError(t, err)
		assert.Len(t, def.Items, len(users), "the default page size is larger than seven")

		for _, limit := range []int{1, 2, 3, 6, 7} {
			t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
				var got []pierredb.User
				seen := map[string]bool{}
				cursor, pages := "", 0
				for {
					page, err := db.ListUsers(ctx, pierredb.UserFilter{Limit: limit, Cursor: cursor})
					require.NoError(t, err)
					pages++
					require.LessOrEqual(t, len(page.Items), limit)
					for _, u := range page.Items {
						assert.False(t, seen[u.ID], "user %s listed twice", u.ID)
						seen[u.ID] = true
					}
					got = append(got, page.Items...)
					if page.Next == "" {
						break
					}
					require.Len(t, page.Items, limit, "only the last page is short")
					require.Less(t, pages, 20, "pagination does not end")
					cursor = page.Next
				}
				assert.Equal(t, utIDs(want), utIDs(got))
				assert.Equal(t, (len(users)+limit-1)/limit, pages, "no empty trailing page")
			})
		}

		// A filter applies on every page. Approve the users at odd positions of the
		// order: the active ones straddle the tie.
		var active []string
		for i, u := range want {
			if i%2 == 1 {
				_, err := db.ApproveUser(ctx, u.ID, pierredb.ByService("test"))
				require.NoError(t, err)
				active = append(active, u.ID)
			}
		}
		var got []string
		cursor := ""
		for {
			page, err := db.ListUsers(ctx, pierredb.UserFilter{Status: pierredb.StatusActive, Limit: 2, Cursor: cursor})
			require.NoError(t, err)
			got = append(got, utIDs(page.Items)...)
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
		assert.Equal(t, active, got)
	})
}

func TestListUsersFilters(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)

		pending := utCreate(t, db, "pending")
		owner := utActive(t, db, "owner")
		admin := utActive(t, db, "admin")
		_, err := db.SetAdmin(ctx, admin.ID, true)
		require.NoError(t, err)
		suspended := utActive(t, db, "suspended")
		_, err = db.SuspendUser(ctx, suspended.ID)
		require.NoError(t, err)
		tn, scope := utTenant(t, db, owner)
		_, err = scope.AddMember(ctx, admin.ID, pierredb.RoleMember)
		require.NoError(t, err)
		utTenant(t, db, suspended) // a tenant that none of the filters below selects

		for _, tc := range []struct {
			name string
			f    pierredb.UserFilter
			want []pierredb.User
		}{
			{"everyone", pierredb.UserFilter{}, []pierredb.User{pending, owner, admin, suspended}},
			{"pending", pierredb.UserFilter{Status: pierredb.StatusPending}, []pierredb.User{pending}},
			{"active", pierredb.UserFilter{Status: pierredb.StatusActive}, []pierredb.User{owner, admin}},
			{"suspended", pierredb.UserFilter{Status: pierredb.StatusSuspended}, []pierredb.User{suspended}},
			{"admins", pierredb.UserFilter{IsAdmin: utPtr(true)}, []pierredb.User{admin}},
			{"non-admins", pierredb.UserFilter{IsAdmin: utPtr(false)}, []pierredb.User{pending, owner, suspended}},
			{"tenant members", pierredb.UserFilter{TenantID: tn.ID}, []pierredb.User{owner, admin}},
			{"tenant, active, admin", pierredb.UserFilter{TenantID: tn.ID, Status: pierredb.StatusActive, IsAdmin: utPtr(true)}, []pierredb.User{admin}},
			{"tenant and pending", pierredb.UserFilter{TenantID: tn.ID, Status: pierredb.StatusPending}, nil},
			{"unknown tenant", pierredb.UserFilter{TenantID: uuid.NewString()}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				page, err := db.ListUsers(ctx, tc.f)
				require.NoError(t, err)
				assert.Equal(t, utIDs(tc.want), utIDs(page.Items))
				assert.Empty(t, page.Next)
				n, err := db.CountUsers(ctx, tc.f)
				require.NoError(t, err)
				assert.Equal(t, len(tc.want), n)
				// Count ignores Limit and Cursor.
				withPage := tc.f
				withPage.Limit, withPage.Cursor = 1, "not even a cursor"
				n, err = db.CountUsers(ctx, withPage)
				require.NoError(t, err)
				assert.Equal(t, len(tc.want), n)
			})
		}

		cursorOf := base64.RawURLEncoding.EncodeToString
		for _, tc := range []struct {
			name string
			f    pierredb.UserFilter
		}{
			{"negative limit", pierredb.UserFilter{Limit: -1}},
			{"limit above 1000", pierredb.UserFilter{Limit: 1001}},
			{"unknown status", pierredb.UserFilter{Status: "deleted"}},
			{"cursor not base64", pierredb.UserFilter{Cursor: "not a cursor!"}},
			{"cursor of another version", pierredb.UserFilter{Cursor: cursorOf([]byte("v2|1700000000000000|" + owner.ID))}},
			{"cursor missing id", pierredb.UserFilter{Cursor: cursorOf([]byte("v1|1700000000000000|"))}},
			{"cursor with two parts", pierredb.UserFilter{Cursor: cursorOf([]byte("v1|1700000000000000"))}},
			{"cursor time not a number", pierredb.UserFilter{Cursor: cursorOf([]byte("v1|yesterday|" + owner.ID))}},
			{"cursor too long", pierredb.UserFilter{Cursor: strings.Repeat("A", 400)}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := db.ListUsers(ctx, tc.f)
				assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
			})
		}
		page, err := db.ListUsers(ctx, pierredb.UserFilter{Limit: 1000})
		require.NoError(t, err)
		assert.Len(t, page.Items, 4, "1000 is the largest page")

		_, err = db.CountUsers(ctx, pierredb.UserFilter{Status: "deleted"})
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
}

func TestApproveUser(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newUTClock(utBase)
		db := e.Open(t, pierredb.WithClock(clk.Now))
		admin := utActive(t, db, "admin")
		byUser := utCreate(t, db, "by-user")
		byService := utCreate(t, db, "by-service")
		orphan := utCreate(t, db, "orphan")

		clk.Advance(time.Hour)
		approvedAt := utMicro(clk.Now())
		u, err := db.ApproveUser(ctx, byUser.ID, pierredb.ByUser(admin.ID))
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusActive, u.Status)
		assert.Equal(t, admin.ID, u.ApprovedBy)
		assert.Empty(t, u.ApprovedByService)
		assert.Equal(t, approvedAt, u.ApprovedAt)
		assert.Equal(t, approvedAt, u.UpdatedAt)
		assert.True(t, u.CreatedAt.Before(u.UpdatedAt))
		got, err := db.GetUser(ctx, byUser.ID)
		require.NoError(t, err)
		utSameUser(t, u, got)

		clk.Advance(time.Minute)
		u, err = db.ApproveUser(ctx, byService.ID, pierredb.ByService("admin-token:ops"))
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusActive, u.Status)
		assert.Empty(t, u.ApprovedBy)
		assert.Equal(t, "admin-token:ops", u.ApprovedByService)
		assert.Equal(t, utMicro(clk.Now()), u.ApprovedAt)
		got, err = db.GetUser(ctx, byService.ID)
		require.NoError(t, err)
		utSameUser(t, u, got)

		// An approving user that does not exist: nothing changes.
		_, err = db.ApproveUser(ctx, orphan.ID, pierredb.ByUser(uuid.NewString()))
		require.ErrorIs(t, err, pierredb.ErrNotFound)
		got, err = db.GetUser(ctx, orphan.ID)
		require.NoError(t, err)
		utSameUser(t, orphan, got)

		for _, tc := range []struct {
			name string
			id   string
			by   pierredb.Approver
			want error
		}{
			{"already active", byUser.ID, pierredb.ByUser(admin.ID), pierredb.ErrConflict},
			{"approved by a service before", byService.ID, pierredb.ByService("again"), pierredb.ErrConflict},
			{"neither user nor service", orphan.ID, pierredb.Approver{}, pierredb.ErrInvalidArgument},
			{"both user and service", orphan.ID, pierredb.Approver{UserID: admin.ID, Service: "svc"}, pierredb.ErrInvalidArgument},
			{"service name too long", orphan.ID, pierredb.ByService(strings.Repeat("s", 201)), pierredb.ErrInvalidArgument},
			{"unknown user", uuid.NewString(), pierredb.ByUser(admin.ID), pierredb.ErrNotFound},
			{"empty id", "", pierredb.ByUser(admin.ID), pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := db.ApproveUser(ctx, tc.id, tc.by)
				assert.ErrorIs(t, err, tc.want)
			})
		}
		got, err = db.GetUser(ctx, orphan.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusPending, got.Status, "refused approvals change nothing")

		// A suspended user cannot be approved: it is reactivated instead.
		_, err = db.SuspendUser(ctx, orphan.ID)
		require.NoError(t, err)
		_, err = db.ApproveUser(ctx, orphan.ID, pierredb.ByUser(admin.ID))
		assert.ErrorIs(t, err, pierredb.ErrConflict)
	})
}

func TestSuspendAndReactivate(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		active := utActive(t, db, "active")
		pending := utCreate(t, db, "pending")

		u, err := db.SuspendUser(ctx, active.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusSuspended, u.Status)
		assert.False(t, u.IsActive)
		assert.Equal(t, active.ApprovedByService, u.ApprovedByService, "the approval record stays")
		_, err = db.SuspendUser(ctx, active.ID)
		assert.ErrorIs(t, err, pierredb.ErrConflict, "suspending a suspended user")

		u, err = db.ReactivateUser(ctx, active.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusActive, u.Status)
		assert.True(t, u.IsActive)
		got, err := db.GetUser(ctx, active.ID)
		require.NoError(t, err)
		utSameUser(t, u, got)
		_, err = db.ReactivateUser(ctx, active.ID)
		assert.ErrorIs(t, err, pierredb.ErrConflict, "reactivating an active user")

		_, err = db.ReactivateUser(ctx, pending.ID)
		assert.ErrorIs(t, err, pierredb.ErrConflict, "reactivating a pending user")
		u, err = db.SuspendUser(ctx, pending.ID)
		require.NoError(t, err, "a pending user can be suspended")
		assert.Equal(t, pierredb.StatusSuspended, u.Status)
		u, err = db.ReactivateUser(ctx, pending.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusPending, u.Status, "reactivation never bypasses approval")
		assert.True(t, u.IsActive)
		assert.True(t, u.ApprovedAt.IsZero())

		_, err = db.SuspendUser(ctx, uuid.NewString())
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = db.ReactivateUser(ctx, uuid.NewString())
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = db.SuspendUser(ctx, "")
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		_, err = db.ReactivateUser(ctx, "")
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
}

func TestSetAdmin(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		a := utActive(t, db, "a")
		b := utActive(t, db, "b")
		admins := func() int {
			t.Helper()
			n, err := db.CountUsers(ctx, pierredb.UserFilter{IsAdmin: utPtr(true)})
			require.NoError(t, err)
			return n
		}

		u, err := db.SetAdmin(ctx, a.ID, true)
		require.NoError(t, err)
		assert.True(t, u.IsAdmin)
		assert.Equal(t, 1, admins())
		u, err = db.SetAdmin(ctx, a.ID, true)
		require.NoError(t, err, "granting twice is a no-op")
		assert.True(t, u.IsAdmin)

		_, err = db.SetAdmin(ctx, a.ID, false)
		require.ErrorIs(t, err, pierredb.ErrConflict, "revoking the last admin")
		got, err := db.GetUser(ctx, a.ID)
		require.NoError(t, err)
		assert.True(t, got.IsAdmin)

		_, err = db.SetAdmin(ctx, b.ID, true)
		require.NoError(t, err)
		u, err = db.SetAdmin(ctx, a.ID, false)
		require.NoError(t, err, "revoking one of two admins")
		assert.False(t, u.IsAdmin)
		_, err = db.SetAdmin(ctx, b.ID, false)
		require.ErrorIs(t, err, pierredb.ErrConflict)
		_, err = db.SetAdmin(ctx, a.ID, false)
		require.NoError(t, err, "revoking from a non-admin is a no-op")
		assert.Equal(t, 1, admins())

		_, err = db.SetAdmin(ctx, uuid.NewString(), true)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = db.SetAdmin(ctx, "", true)
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)

		// Two admins revoked at the same moment: one revocation wins, the other is
		// refused, and the platform keeps an admin.
		for round := range 10 {
			_, err = db.SetAdmin(ctx, a.ID, true)
			require.NoError(t, err)
			_, err = db.SetAdmin(ctx, b.ID, true)
			require.NoError(t, err)
			start := make(chan struct{})
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i, id := range []string{a.ID, b.ID} {
				wg.Go(func() {
					<-start
					_, errs[i] = db.SetAdmin(ctx, id, false)
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
}

func TestUpdateDisplayName(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		u := utCreate(t, db, "named")

		for _, name := range []string{"Ada Lovelace", "Zoë 🚀 Ñandú", strings.Repeat("n", 200)} {
			got, err := db.UpdateDisplayName(ctx, u.ID, name)
			require.NoError(t, err)
			assert.Equal(t, name, got.DisplayName)
			got, err = db.GetUser(ctx, u.ID)
			require.NoError(t, err)
			assert.Equal(t, name, got.DisplayName)
		}
		got, err := db.UpdateDisplayName(ctx, u.ID, "Ada")
		require.NoError(t, err)
		for _, tc := range []struct{ name, value string }{
			{"NUL", "bad\x00name"},
			{"newline", "line\nbreak"},
			{"carriage return", "line\rbreak"},
			{"tab", "tab\there"},
			{"escape", "\x1b[31mred"},
			{"delete", "del\x7f"},
			{"C1 control", "c1\u0085"},
			{"invalid UTF-8", "bad\xff\xfe"},
			{"201 bytes", strings.Repeat("n", 201)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := db.UpdateDisplayName(ctx, u.ID, tc.value)
				require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
			})
		}
		after, err := db.GetUser(ctx, u.ID)
		require.NoError(t, err)
		assert.Equal(t, "Ada", after.DisplayName, "refused names change nothing")
		assert.True(t, got.UpdatedAt.Equal(after.UpdatedAt))

		cleared, err := db.UpdateDisplayName(ctx, u.ID, "")
		require.NoError(t, err)
		assert.Empty(t, cleared.DisplayName)
		var isNull bool
		require.NoError(t, pierredb.EngineOf(db).Writer.QueryRowContext(ctx,
			"SELECT display_name IS NULL FROM users WHERE id = ?", u.ID).Scan(&isNull))
		assert.True(t, isNull, `"" is stored as NULL`)

		_, err = db.UpdateDisplayName(ctx, uuid.NewString(), "Ghost")
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = db.UpdateDisplayName(ctx, "", "Ghost")
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
}

func TestSetAndChangePassword(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		u := utActive(t, db, "pw")
		const reset, next = "Reset-Passw0rd-by-admin", "Next-Passw0rd-by-user"

		// SetPassword: an admin reset, no old password needed.
		for _, tc := range []struct {
			name, id, pw string
			want         error
		}{
			{"too short", u.ID, "short", pierredb.ErrPasswordTooShort},
			{"too long", u.ID, strings.Repeat("y", 4097), pierredb.ErrPasswordTooLong},
			{"empty id", "", reset, pierredb.ErrInvalidArgument},
			{"unknown user", uuid.NewString(), reset, pierredb.ErrNotFound},
		} {
			t.Run("set "+tc.name, func(t *testing.T) {
				err := db.SetPassword(ctx, tc.id, tc.pw)
				require.ErrorIs(t, err, tc.want)
				utNoLeak(t, err, tc.pw, utPassword)
			})
		}
		before := utRawHash(t, db, u.ID)
		require.NoError(t, db.SetPassword(ctx, u.ID, reset))
		after := utRawHash(t, db, u.ID)
		assert.NotEqual(t, before, after)
		m, iters, p := utArgonParams(t, after)
		assert.Equal(t, [3]int{19456, 2, 1}, [3]int{m, iters, p})
		_, err := db.Authenticate(ctx, u.Email, reset)
		require.NoError(t, err)
		_, err = db.Authenticate(ctx, u.Email, utPassword)
		require.ErrorIs(t, err, pierredb.ErrInvalidCredentials, "the old password no longer works")

		// ChangePassword: the current password is required.
		err = db.ChangePassword(ctx, u.ID, "Wrong-current-passw0rd", next)
		require.ErrorIs(t, err, pierredb.ErrInvalidCredentials)
		utNoLeak(t, err, "Wrong-current-passw0rd", next, reset)
		assert.Equal(t, after, utRawHash(t, db, u.ID), "a refused change leaves the hash alone")
		err = db.ChangePassword(ctx, u.ID, reset, "short")
		require.ErrorIs(t, err, pierredb.ErrPasswordTooShort)
		utNoLeak(t, err, reset)
		err = db.ChangePassword(ctx, u.ID, reset, strings.Repeat("z", 4097))
		require.ErrorIs(t, err, pierredb.ErrPasswordTooLong)
		err = db.ChangePassword(ctx, u.ID, strings.Repeat("z", 4097), next)
		require.ErrorIs(t, err, pierredb.ErrInvalidCredentials, "an over-long current password is just wrong")
		err = db.ChangePassword(ctx, uuid.NewString(), reset, next)
		require.ErrorIs(t, err, pierredb.ErrNotFound)
		err = db.ChangePassword(ctx, "", reset, next)
		require.ErrorIs(t, err, pierredb.ErrInvalidArgument)

		require.NoError(t, db.ChangePassword(ctx, u.ID, reset, next))
		m, iters, p = utArgonParams(t, utRawHash(t, db, u.ID))
		assert.Equal(t, [3]int{19456, 2, 1}, [3]int{m, iters, p})
		got, err := db.Authenticate(ctx, u.Email, next)
		require.NoError(t, err, "the new password works")
		assert.Equal(t, u.ID, got.ID)
		_, err = db.Authenticate(ctx, u.Email, reset)
		require.ErrorIs(t, err, pierredb.ErrInvalidCredentials, "the old password fails")
	})
}

func TestAuthenticate(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		active := utActive(t, db, "active")
		pending := utCreate(t, db, "pending")
		suspended := utActive(t, db, "suspended")
		_, err := db.SuspendUser(ctx, suspended.ID)
		require.NoError(t, err)
		const wrong = "Wr0ng-Passw0rd-attempt"

		got, err := db.Authenticate(ctx, active.Email, utPassword)
		require.NoError(t, err)
		assert.Equal(t, active.ID, got.ID)
		assert.Equal(t, pierredb.StatusActive, got.Status)
		assert.False(t, got.LastActive.IsZero(), "a login records last_active")
		got, err = db.Authenticate(ctx, "  "+strings.ToUpper(active.Email)+" ", utPassword)
		require.NoError(t, err, "the email is normalised on the login path too")
		assert.Equal(t, active.ID, got.ID)

		for _, tc := range []struct {
			name, email, pw string
			want            error
		}{
			{"wrong password", active.Email, wrong, pierredb.ErrInvalidCredentials},
			{"password in another case", active.Email, strings.ToUpper(utPassword), pierredb.ErrInvalidCredentials},
			{"empty password", active.Email, "", pierredb.ErrInvalidCredentials},
			{"over-long password", active.Email, strings.Repeat(wrong, 200), pierredb.ErrInvalidCredentials},
			{"unknown email", "nobody@example.com", utPassword, pierredb.ErrInvalidCredentials},
			{"malformed email", "not an email", utPassword, pierredb.ErrInvalidCredentials},
			{"empty email", "", utPassword, pierredb.ErrInvalidCredentials},
			{"pending, right password", pending.Email, utPassword, pierredb.ErrUserPending},
			{"pending, wrong password", pending.Email, wrong, pierredb.ErrInvalidCredentials},
			{"suspended, right password", suspended.Email, utPassword, pierredb.ErrUserSuspended},
			{"suspended, wrong password", suspended.Email, wrong, pierredb.ErrInvalidCredentials},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u, err := db.Authenticate(ctx, tc.email, tc.pw)
				require.ErrorIs(t, err, tc.want)
				assert.Zero(t, u, "a failed login returns no user")
				utNoLeak(t, err, tc.pw, utPassword, wrong)
				if tc.want == pierredb.ErrInvalidCredentials {
					// Wrong password and unknown email are one and the same error.
					assert.Equal(t, pierredb.ErrInvalidCredentials.Error(), err.Error())
					if tc.email != "" {
						assert.NotContains(t, err.Error(), tc.email)
					}
				}
			})
		}
	})
}

// TestAuthenticateRehash: a login upgrades an imported bcrypt hash and a hash
// below the current policy, and a failed upgrade does not fail the login.
func TestAuthenticateRehash(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		params := func(id string) [3]int {
			t.Helper()
			m, iters, p := utArgonParams(t, utRawHash(t, db, id))
			return [3]int{m, iters, p}
		}

		t.Run("bcrypt import", func(t *testing.T) {
			u := utActive(t, db, "legacy")
			legacy, err := bcrypt.GenerateFromPassword([]byte(utPassword), bcrypt.MinCost)
			require.NoError(t, err)
			utSetRawHash(t, db, u.ID, string(legacy))

			_, err = db.Authenticate(ctx, u.Email, "not-the-legacy-password")
			require.ErrorIs(t, err, pierredb.ErrInvalidCredentials)
			assert.Equal(t, string(legacy), utRawHash(t, db, u.ID), "a failed login rehashes nothing")

			got, err := db.Authenticate(ctx, u.Email, utPassword)
			require.NoError(t, err, "a bcrypt hash verifies")
			assert.Equal(t, u.ID, got.ID)
			assert.Equal(t, [3]int{19456, 2, 1}, params(u.ID), "and is replaced by argon2id at policy")
			_, err = db.Authenticate(ctx, u.Email, utPassword)
			require.NoError(t, err, "the new hash verifies")
		})

		t.Run("policy raised", func(t *testing.T) {
			u := utActive(t, db, "policy")
			require.Equal(t, [3]int{19456, 2, 1}, params(u.ID))
			strict := e.OpenURL(t, url, pierredb.WithPasswordPolicy(pierredb.PasswordPolicy{Iterations: 3}))

			_, err := strict.Authenticate(ctx, u.Email, utPassword)
			require.NoError(t, err)
			assert.Equal(t, [3]int{19456, 3, 1}, params(u.ID), "rehashed to the raised policy")

			stored := utRawHash(t, db, u.ID)
			_, err = db.Authenticate(ctx, u.Email, utPassword)
			require.NoError(t, err, "an instance with the lower policy still verifies it")
			assert.Equal(t, stored, utRawHash(t, db, u.ID), "and never lowers the cost")
		})

		t.Run("rehash failure does not fail the login", func(t *testing.T) {
			u := utActive(t, db, "refused")
			stored := utRawHash(t, db, u.ID)
			var logs utLogBuffer
			strict := e.OpenURL(t, url, pierredb.WithPasswordPolicy(pierredb.PasswordPolicy{Iterations: 3}),
				pierredb.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

			// A trigger makes every UPDATE of password_hash fail inside the database.
			w := pierredb.EngineOf(db).Writer
			if e.Backend == pierredb.Postgres {
				_, err := w.ExecContext(ctx, `CREATE FUNCTION ut_refuse_rehash() RETURNS trigger LANGUAGE plpgsql AS
					'BEGIN RAISE EXCEPTION ''password_hash is frozen by the test''; END'`)
				require.NoError(t, err)
				_, err = w.ExecContext(ctx, `CREATE TRIGGER ut_refuse_rehash BEFORE UPDATE OF password_hash ON users
					FOR EACH ROW EXECUTE FUNCTION ut_refuse_rehash()`)
				require.NoError(t, err)
			} else {
				_, err := w.ExecContext(ctx, `CREATE TRIGGER ut_refuse_rehash BEFORE UPDATE OF password_hash ON users
					BEGIN SELECT RAISE(ABORT, 'password_hash is frozen by the test'); END`)
				require.NoError(t, err)
			}
			_, err := w.ExecContext(ctx, "UPDATE users SET password_hash = password_hash WHERE id = ?", u.ID)
			require.Error(t, err, "the trigger is in force")

			got, err := strict.Authenticate(ctx, u.Email, utPassword)
			require.NoError(t, err, "the login succeeds although the rehash failed")
			assert.Equal(t, u.ID, got.ID)
			assert.Equal(t, stored, utRawHash(t, db, u.ID), "the old hash stays")
			assert.Contains(t, logs.String(), "rehash failed")
			assert.Contains(t, logs.String(), u.ID)
			assert.NotContains(t, logs.String(), utPassword)

			if e.Backend == pierredb.Postgres {
				_, err = w.ExecContext(ctx, "DROP TRIGGER ut_refuse_rehash ON users")
			} else {
				_, err = w.ExecContext(ctx, "DROP TRIGGER ut_refuse_rehash")
			}
			require.NoError(t, err)
			_, err = strict.Authenticate(ctx, u.Email, utPassword)
			require.NoError(t, err)
			assert.Equal(t, [3]int{19456, 3, 1}, params(u.ID), "the next login rehashes")
		})
	})
}

// utLogBuffer is a strings.Builder safe for a slog handler and a reader.
type utLogBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *utLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *utLogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestTouchUser(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newUTClock(utBase)
		url := e.NewURL(t)
		opts := []pierredb.Option{pierredb.WithClock(clk.Now), pierredb.WithLastActiveInterval(time.Minute)}
		db := e.OpenURL(t, url, opts...)
		u := utActive(t, db, "busy")
		lastActive := func() time.Time { t.Helper(); return utRawTime(t, db, "last_active", u.ID) }
		require.True(t, lastActive().IsZero(), "never seen")

		require.NoError(t, db.TouchUser(ctx, u.ID))
		first := utMicro(clk.Now())
		assert.Equal(t, first, lastActive(), "the first touch writes")

		clk.Advance(10 * time.Second)
		require.NoError(t, db.TouchUser(ctx, u.ID))
		assert.Equal(t, first, lastActive(), "a touch within the interval writes nothing")

		clk.Set(utBase.Add(61 * time.Second))
		require.NoError(t, db.TouchUser(ctx, u.ID))
		second := utMicro(clk.Now())
		assert.Equal(t, second, lastActive(), "after the interval it writes again")
		got, err := db.GetUser(ctx, u.ID)
		require.NoError(t, err)
		assert.Equal(t, second, got.LastActive)

		// Another instance has no memory of those writes: the conditional UPDATE
		// keeps it from moving last_active within the interval.
		other := e.OpenURL(t, url, opts...)
		clk.Advance(10 * time.Second) // base+71s
		require.NoError(t, other.TouchUser(ctx, u.ID))
		assert.Equal(t, second, lastActive(), "another instance within the interval writes nothing")

		// A login through a third instance reports what is stored, not a write
		// that the conditional UPDATE skipped.
		third := e.OpenURL(t, url, opts...)
		logged, err := third.Authenticate(ctx, u.Email, utPassword)
		require.NoError(t, err)
		assert.Equal(t, second, logged.LastActive)
		assert.Equal(t, second, lastActive())

		clk.Set(utBase.Add(132 * time.Second)) // 61 s after other's skipped touch
		require.NoError(t, other.TouchUser(ctx, u.ID))
		latest := utMicro(clk.Now())
		assert.Equal(t, latest, lastActive(), "past the interval another instance writes")
		require.NoError(t, db.TouchUser(ctx, u.ID))
		assert.Equal(t, latest, lastActive(), "and the first instance now defers to it")

		clk.Advance(2 * time.Minute)
		logged, err = db.Authenticate(ctx, u.Email, utPassword)
		require.NoError(t, err)
		assert.Equal(t, utMicro(clk.Now()), logged.LastActive, "a login touches")
		assert.Equal(t, utMicro(clk.Now()), lastActive())

		assert.ErrorIs(t, db.TouchUser(ctx, ""), pierredb.ErrInvalidArgument)
	})
}

func TestBootstrapFirstAdmin(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()

		t.Run("once", func(t *testing.T) {
			ctx := t.Context()
			db := e.Open(t)
			_, err := db.BootstrapFirstAdmin(ctx, pierredb.NewUser{Email: "root@example.com", Password: "short"})
			require.ErrorIs(t, err, pierredb.ErrPasswordTooShort, "an invalid first admin is refused...")

			admin, err := db.BootstrapFirstAdmin(ctx, pierredb.NewUser{Email: " Root@Example.com ", Password: utPassword, DisplayName: "Root"})
			require.NoError(t, err, "...and does not use up the bootstrap")
			assert.Equal(t, "root@example.com", admin.Email)
			assert.True(t, admin.IsAdmin)
			assert.Equal(t, pierredb.StatusActive, admin.Status)
			assert.True(t, admin.IsActive)
			assert.Equal(t, "bootstrap", admin.ApprovedByService)
			assert.False(t, admin.ApprovedAt.IsZero())
			got, err := db.GetUser(ctx, admin.ID)
			require.NoError(t, err)
			utSameUser(t, admin, got)
			m, iters, p := utArgonParams(t, utRawHash(t, db, admin.ID))
			assert.Equal(t, [3]int{19456, 2, 1}, [3]int{m, iters, p})
			logged, err := db.Authenticate(ctx, "root@example.com", utPassword)
			require.NoError(t, err, "the first admin can log in at once")
			assert.True(t, logged.IsAdmin)

			_, err = db.BootstrapFirstAdmin(ctx, pierredb.NewUser{Email: "second@example.com", Password: utPassword})
			require.ErrorIs(t, err, pierredb.ErrAlreadyExists)
			utNoLeak(t, err, utPassword)
			n, err := db.CountUsers(ctx, pierredb.UserFilter{})
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
					_, errs[i] = db.BootstrapFirstAdmin(ctx, pierredb.NewUser{Email: fmt.Sprintf("racer%d@example.com", i), Password: utPassword})
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
			admins, err := db.CountUsers(ctx, pierredb.UserFilter{IsAdmin: utPtr(true)})
			require.NoError(t, err)
			assert.Equal(t, 1, admins)
			total, err := db.CountUsers(ctx, pierredb.UserFilter{})
			require.NoError(t, err)
			assert.Equal(t, 1, total, "the losers created no user")
		})

		t.Run("admin granted already", func(t *testing.T) {
			ctx := t.Context()
			db := e.Open(t)
			u := utActive(t, db, "granted")
			_, err := db.SetAdmin(ctx, u.ID, true)
			require.NoError(t, err)
			_, err = db.BootstrapFirstAdmin(ctx, pierredb.NewUser{Email: "late@example.com", Password: utPassword})
			require.ErrorIs(t, err, pierredb.ErrAlreadyExists)
		})
	})
}

// utInsertOwned inserts, behind the API, an API key, an A2A client and an OAuth
// token of userID in tenantID.
func utInsertOwned(t testing.TB, db *pierredb.Database, tenantID, userID string) {
	t.Helper()
	ctx := t.Context()
	w := pierredb.EngineOf(db).Writer
	const ts = "2026-01-01T00:00:00.000000Z"
	_, err := w.ExecContext(ctx, `INSERT INTO api_keys (id, tenant_id, user_id, name, key_prefix, key_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, uuid.NewString(), tenantID, userID, "key", "pk_test_"+uuid.NewString(), "hash", ts, ts)
	require.NoError(t, err)
	_, err = w.ExecContext(ctx, `INSERT INTO a2a_clients (id, tenant_id, user_id, name, public_key, client_secret_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, uuid.NewString(), tenantID, userID, "agent", "pub-"+uuid.NewString(), "hash", ts, ts)
	require.NoError(t, err)
	_, err = w.ExecContext(ctx, `INSERT INTO user_oauth_tokens (id, tenant_id, user_id, provider, access_token_encrypted, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, uuid.NewString(), tenantID, userID, "strava", []byte{1, 2, 3}, ts, ts)
	require.NoError(t, err)
}

// utOwnedRows counts what utInsertOwned inserts, plus memberships, for userID.
func utOwnedRows(t testing.TB, db *pierredb.Database, userID string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"tenant_users", "api_keys", "a2a_clients", "user_oauth_tokens"} {
		out[table] = utCount(t, db, "SELECT count(*) FROM "+table+" WHERE user_id = ?", userID)
	}
	return out
}

func TestDeleteUser(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := utActive(t, db, "owner")
		doomed := utActive(t, db, "doomed")
		approved := utCreate(t, db, "approved")
		approved, err := db.ApproveUser(ctx, approved.ID, pierredb.ByUser(doomed.ID))
		require.NoError(t, err)
		require.Equal(t, doomed.ID, approved.ApprovedBy)

		shared, sharedScope := utTenant(t, db, owner)
		_, err = sharedScope.AddMember(ctx, doomed.ID, pierredb.RoleAdmin)
		require.NoError(t, err)
		alone, _ := utTenant(t, db, doomed)
		utInsertOwned(t, db, shared.ID, doomed.ID)
		utInsertOwned(t, db, alone.ID, doomed.ID)
		utInsertOwned(t, db, shared.ID, owner.ID)
		require.Equal(t, map[string]int{"tenant_users": 2, "api_keys": 2, "a2a_clients": 2, "user_oauth_tokens": 2}, utOwnedRows(t, db, doomed.ID))

		require.NoError(t, db.DeleteUser(ctx, doomed.ID))

		_, err = db.GetUser(ctx, doomed.ID)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		_, err = db.GetUserByEmail(ctx, doomed.Email)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		assert.Equal(t, map[string]int{"tenant_users": 0, "api_keys": 0, "a2a_clients": 0, "user_oauth_tokens": 0}, utOwnedRows(t, db, doomed.ID),
			"memberships, and with them keys, clients and tokens, are gone")
		_, err = db.GetTenant(ctx, alone.ID)
		assert.ErrorIs(t, err, pierredb.ErrNotFound, "the tenant the user owned alone went with them")
		assert.Zero(t, utCount(t, db, "SELECT count(*) FROM api_keys WHERE tenant_id = ?", alone.ID))

		// Everything else stays.
		_, err = db.GetTenant(ctx, shared.ID)
		require.NoError(t, err)
		role, err := sharedScope.Role(ctx, owner.ID)
		require.NoError(t, err)
		assert.Equal(t, pierredb.RoleOwner, role)
		assert.Equal(t, map[string]int{"tenant_users": 1, "api_keys": 1, "a2a_clients": 1, "user_oauth_tokens": 1}, utOwnedRows(t, db, owner.ID))
		got, err := db.GetUser(ctx, approved.ID)
		require.NoError(t, err)
		assert.Empty(t, got.ApprovedBy, "approved_by of the users they approved becomes NULL")
		assert.Equal(t, pierredb.StatusActive, got.Status, "and those users stay approved")
		assert.False(t, got.ApprovedAt.IsZero())
		assert.Equal(t, 1, utCount(t, db, "SELECT count(*) FROM users WHERE id = ? AND approved_by IS NULL", approved.ID))

		assert.ErrorIs(t, db.DeleteUser(ctx, doomed.ID), pierredb.ErrNotFound, "deleting twice")
		assert.ErrorIs(t, db.DeleteUser(ctx, uuid.NewString()), pierredb.ErrNotFound)
		assert.ErrorIs(t, db.DeleteUser(ctx, ""), pierredb.ErrInvalidArgument)
	})
}

func TestDeleteUserOwningASharedTenant(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		holder := utActive(t, db, "holder")
		member := utActive(t, db, "member")
		alone, _ := utTenant(t, db, holder)
		shared, scope := utTenant(t, db, holder)
		_, err := scope.AddMember(ctx, member.ID, pierredb.RoleMember)
		require.NoError(t, err)
		utInsertOwned(t, db, alone.ID, holder.ID)
		utInsertOwned(t, db, shared.ID, holder.ID)
		before := utOwnedRows(t, db, holder.ID)

		err = db.DeleteUser(ctx, holder.ID)
		require.ErrorIs(t, err, pierredb.ErrConflict)
		assert.Contains(t, err.Error(), shared.Slug, "the error names the tenant to hand over")

		_, err = db.GetUser(ctx, holder.ID)
		require.NoError(t, err, "nothing was deleted")
		_, err = db.GetTenant(ctx, alone.ID)
		require.NoError(t, err, "not even the tenant the user owns alone")
		_, err = db.GetTenant(ctx, shared.ID)
		require.NoError(t, err)
		assert.Equal(t, before, utOwnedRows(t, db, holder.ID))
		tenants, err := db.UserTenants(ctx, member.ID)
		require.NoError(t, err)
		assert.Len(t, tenants, 1)

		// Once ownership is handed over, the user can go.
		_, err = scope.TransferOwnership(ctx, member.ID)
		require.NoError(t, err)
		require.NoError(t, db.DeleteUser(ctx, holder.ID))
		_, err = db.GetTenant(ctx, alone.ID)
		assert.ErrorIs(t, err, pierredb.ErrNotFound)
		tn, err := db.GetTenant(ctx, shared.ID)
		require.NoError(t, err)
		assert.Equal(t, member.ID, tn.OwnerUserID)
	})
}

// TestSeedRecipes: the plain SQL an operator types into sqlite3 to seed or fix a
// database works verbatim, and the store reads the result.
func TestSeedRecipes(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		if e.Backend != pierredb.SQLite {
			t.Skip("the recipes are SQLite's")
		}
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		for _, email := range []string{"user@example.com", "admin@example.com"} {
			_, err := db.CreateUser(ctx, pierredb.NewUser{Email: email, Password: utPassword})
			require.NoError(t, err)
		}
		raw := pierredb.EngineOf(db).Writer.DB // plain database/sql, no bun formatting

		type row struct {
			email, status string
			isAdmin       int
			createdAt     string
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
		assert.Equal(t, 0, before["admin@example.com"].isAdmin)
		_, err := time.Parse(time.RFC3339Nano, before["user@example.com"].createdAt)
		assert.NoError(t, err, "created_at reads as RFC 3339")

		seeded := time.Now().UTC()
		_, err = raw.ExecContext(ctx, `UPDATE users SET user_status = 'active', approved_at = datetime('now') WHERE email = 'user@example.com';`)
		require.NoError(t, err)
		_, err = raw.ExecContext(ctx, `UPDATE users SET is_admin = 1 WHERE email = 'admin@example.com';`)
		require.NoError(t, err)

		after := selectAll()
		assert.Equal(t, "active", after["user@example.com"].status)
		assert.Equal(t, 1, after["admin@example.com"].isAdmin)

		u, err := db.GetUserByEmail(ctx, "user@example.com")
		require.NoError(t, err)
		assert.Equal(t, pierredb.StatusActive, u.Status)
		assert.False(t, u.ApprovedAt.IsZero(), "datetime('now') parses")
		assert.WithinDuration(t, seeded, u.ApprovedAt, 5*time.Second)
		logged, err := db.Authenticate(ctx, "user@example.com", utPassword)
		require.NoError(t, err, "the seeded user can log in")
		assert.Equal(t, u.ID, logged.ID)

		a, err := db.GetUserByEmail(ctx, "admin@example.com")
		require.NoError(t, err)
		assert.True(t, a.IsAdmin)
		admins, err := db.ListUsers(ctx, pierredb.UserFilter{IsAdmin: utPtr(true)})
		require.NoError(t, err)
		assert.Equal(t, []string{a.ID}, utIDs(admins.Items))
		_, err = db.BootstrapFirstAdmin(ctx, pierredb.NewUser{Email: "root@example.com", Password: utPassword})
		assert.ErrorIs(t, err, pierredb.ErrAlreadyExists, "a seeded admin counts as the first admin")
	})
}

func TestUserOperationsAfterClose(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		u := utActive(t, db, "closed")
		require.NoError(t, db.Close())

		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"CreateUser", func() error {
				_, err := db.CreateUser(ctx, pierredb.NewUser{Email: utEmail("after"), Password: utPassword})
				return err
			}},
			{"BootstrapFirstAdmin", func() error {
				_, err := db.BootstrapFirstAdmin(ctx, pierredb.NewUser{Email: utEmail("root"), Password: utPassword})
				return err
			}},
			{"GetUser", func() error { _, err := db.GetUser(ctx, u.ID); return err }},
			{"GetUserByEmail", func() error { _, err := db.GetUserByEmail(ctx, u.Email); return err }},
			{"ListUsers", func() error { _, err := db.ListUsers(ctx, pierredb.UserFilter{}); return err }},
			{"CountUsers", func() error { _, err := db.CountUsers(ctx, pierredb.UserFilter{}); return err }},
			{"ApproveUser", func() error { _, err := db.ApproveUser(ctx, u.ID, pierredb.ByService("x")); return err }},
			{"SuspendUser", func() error { _, err := db.SuspendUser(ctx, u.ID); return err }},
			{"ReactivateUser", func() error { _, err := db.ReactivateUser(ctx, u.ID); return err }},
			{"SetAdmin", func() error { _, err := db.SetAdmin(ctx, u.ID, true); return err }},
			{"UpdateDisplayName", func() error { _, err := db.UpdateDisplayName(ctx, u.ID, "x"); return err }},
			{"SetPassword", func() error { return db.SetPassword(ctx, u.ID, "New-passw0rd") }},
			{"ChangePassword", func() error { return db.ChangePassword(ctx, u.ID, utPassword, "New-passw0rd") }},
			{"Authenticate", func() error { _, err := db.Authenticate(ctx, u.Email, utPassword); return err }},
			{"TouchUser", func() error { return db.TouchUser(ctx, u.ID) }},
			{"DeleteUser", func() error { return db.DeleteUser(ctx, u.ID) }},
			{"AutoApproveUsers", func() error { _, err := db.AutoApproveUsers(ctx); return err }},
			{"SetAutoApproveUsers", func() error { return db.SetAutoApproveUsers(ctx, true) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.call()
				require.ErrorIs(t, err, pierredb.ErrClosed)
				utNoLeak(t, err, utPassword, "New-passw0rd")
			})
		}
	})
}

// BenchmarkAuthenticate compares a login with a known email and a wrong password
// to one with an unknown email: the dummy verify makes them cost about the same,
// so response time does not tell which emails exist.
//
//	go test -run '^$' -bench Authenticate ./pierredb/
func BenchmarkAuthenticate(b *testing.B) {
	for _, e := range storetest.Engines() {
		b.Run(string(e.Backend), func(b *testing.B) {
			e.Require(b)
			ctx := b.Context()
			db := e.Open(b)
			u, err := db.CreateUser(ctx, pierredb.NewUser{Email: utEmail("bench"), Password: utPassword})
			require.NoError(b, err)
			_, err = db.ApproveUser(ctx, u.ID, pierredb.ByService("bench"))
			require.NoError(b, err)

			for _, bc := range []struct{ name, email, pw string }{
				{"known-email-wrong-password", u.Email, "Wr0ng-Passw0rd-attempt"},
				{"unknown-email", "nobody@example.com", "Wr0ng-Passw0rd-attempt"},
				{"right-password", u.Email, utPassword},
			} {
				b.Run(bc.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						_, err := db.Authenticate(ctx, bc.email, bc.pw)
						if bc.pw == utPassword {
							if err != nil {
								b.Fatal(err)
							}
						} else if !errors.Is(err, pierredb.ErrInvalidCredentials) {
							b.Fatalf("got %v", err)
						}
					}
				})
			}
		})
	}
}

// TestDeleteLastAdmin: the last admin cannot be deleted (like SetAdmin refuses to
// revoke it), and if every admin is lost anyway (SQL outside pierre), the first
// admin can be bootstrapped again.
func TestDeleteLastAdmin(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		first, err := db.BootstrapFirstAdmin(ctx, pierredb.NewUser{Email: "root@example.com", Password: fixturePassword})
		require.NoError(t, err)
		assert.ErrorIs(t, db.DeleteUser(ctx, first.ID), pierredb.ErrConflict)

		second := mustUser(t, db, "second-admin")
		_, err = db.SetAdmin(ctx, second.ID, true)
		require.NoError(t, err)
		require.NoError(t, db.DeleteUser(ctx, first.ID), "another admin remains")
		assert.ErrorIs(t, db.DeleteUser(ctx, second.ID), pierredb.ErrConflict)

		_, err = pierredb.EngineOf(db).Writer.ExecContext(ctx, "DELETE FROM users WHERE id = ?", second.ID)
		require.NoError(t, err)
		again, err := db.BootstrapFirstAdmin(ctx, pierredb.NewUser{Email: "root2@example.com", Password: fixturePassword})
		require.NoError(t, err)
		assert.True(t, again.IsAdmin)
	})
}
