package storetest

// The APIKeys domain: issuing and managing a tenant's keys, verifying them,
// exact quotas, expiry, revocation, usage, and no plaintext at rest (which also
// covers A2A client secrets).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// keyWorld is a tenant with its owner and a member, on a database with a
// settable clock.
type keyWorld struct {
	db     *pierredb.Database
	clk    *clock
	scope  *pierredb.TenantScope
	owner  pierredb.User
	member pierredb.User
}

func newKeyWorld(t *testing.T, e Engine, opts ...pierredb.Option) *keyWorld {
	t.Helper()
	clk := newClock(base)
	db := e.Open(t, append([]pierredb.Option{pierredb.WithClock(clk.Now)}, opts...)...)
	return newKeyWorldOn(t, db, clk)
}

func newKeyWorldOn(t *testing.T, db *pierredb.Database, clk *clock) *keyWorld {
	t.Helper()
	w := &keyWorld{db: db, clk: clk, owner: activeUser(t, db, "key-owner")}
	_, w.scope = newTenant(t, db, w.owner)
	w.member = member(t, db, w.scope, "key-member", pierredb.RoleMember)
	return w
}

// newKey issues a key for the world's member.
func (w *keyWorld) newKey(t *testing.T, nk pierredb.NewAPIKey) pierredb.CreatedAPIKey {
	t.Helper()
	if nk.UserID == "" {
		nk.UserID = w.member.ID
	}
	if nk.Name == "" {
		nk.Name = fmt.Sprintf("key %d", seq.Add(1))
	}
	k, err := w.scope.APIKeys().Create(t.Context(), nk)
	require.NoError(t, err)
	return k
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// forgeKey returns a well-formed key (right length, alphabet and checksum) that
// starts with head: the checksum is computed as pierre computes it, so the key
// passes every check that needs no database.
func forgeKey(head string, bodyLen int) string {
	var b strings.Builder
	b.WriteString(head)
	for i := 0; b.Len() < bodyLen; i++ {
		b.WriteByte(base62[(i*7+3)%62])
	}
	body := b.String()
	v := uint64(crc32.ChecksumIEEE([]byte(body)))
	var sum [6]byte
	for i := 5; i >= 0; i-- {
		sum[i] = base62[v%62]
		v /= 62
	}
	return body + string(sum[:])
}

// sameLookupKey returns a well-formed key with key's lookup prefix and another
// tail: the row is found, the hash does not match.
func sameLookupKey(key string) string {
	kind := pierredb.APIKeyLivePrefix
	if strings.HasPrefix(key, pierredb.APIKeyTrialPrefix) {
		kind = pierredb.APIKeyTrialPrefix
	}
	return forgeKey(key[:len(kind)+12], len(kind)+22)
}

// sameTime asserts two instants are equal (a PostgreSQL round trip may change
// the location).
func sameTime(t testing.TB, want, got time.Time, msgAndArgs ...any) {
	t.Helper()
	assert.True(t, want.Equal(got), "want %v, got %v %v", want, got, fmt.Sprint(msgAndArgs...))
}

// redacts checks that a secret's holder shows no secret in any rendering.
func redacts(t testing.TB, v any, secret string) {
	t.Helper()
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("value", "v", v)
	js, err := json.Marshal(v)
	require.NoError(t, err)
	for _, text := range []string{fmt.Sprint(v), fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v),
		fmt.Sprintf("%s", v), fmt.Sprintf("%q", v), fmt.Sprintf("%x", v), logged.String(), string(js)} {
		assert.NotContains(t, text, secret, "a rendering reveals the secret")
		assert.NotContains(t, text, secret[len(secret)-16:], "a rendering reveals part of the secret")
	}
}

var _ = register("APIKeys", "Create", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newKeyWorld(t, e)
		now := micro(base)
		for _, tc := range []struct {
			name    string
			nk      pierredb.NewAPIKey
			prefix  string
			tier    pierredb.Tier
			limit   pierredb.RateLimit
			expires time.Time
		}{
			{"defaults", pierredb.NewAPIKey{Name: "  Default key  "}, "pk_live_", pierredb.TierStarter,
				pierredb.RateLimit{Requests: 10_000, Period: pierredb.PeriodMonth}, time.Time{}},
			{"trial", pierredb.NewAPIKey{Tier: pierredb.TierTrial}, "pk_trial_", pierredb.TierTrial,
				pierredb.RateLimit{Requests: 1_000, Period: pierredb.PeriodMonth}, now.Add(14 * 24 * time.Hour)},
			{"trial with its own expiry", pierredb.NewAPIKey{Tier: pierredb.TierTrial, ExpiresAt: base.Add(time.Hour)}, "pk_trial_", pierredb.TierTrial,
				pierredb.RateLimit{Requests: 1_000, Period: pierredb.PeriodMonth}, now.Add(time.Hour)},
			{"professional", pierredb.NewAPIKey{Tier: pierredb.TierProfessional}, "pk_live_", pierredb.TierProfessional,
				pierredb.RateLimit{Requests: 100_000, Period: pierredb.PeriodMonth}, time.Time{}},
			{"enterprise", pierredb.NewAPIKey{Tier: pierredb.TierEnterprise}, "pk_live_", pierredb.TierEnterprise,
				pierredb.RateLimit{Period: pierredb.PeriodMonth, Unlimited: true}, time.Time{}},
			{"override", pierredb.NewAPIKey{Tier: pierredb.TierStarter, RateLimit: &pierredb.RateLimit{Requests: 7, Period: pierredb.PeriodWeek}}, "pk_live_",
				pierredb.TierStarter, pierredb.RateLimit{Requests: 7, Period: pierredb.PeriodWeek}, time.Time{}},
			{"largest limit", pierredb.NewAPIKey{RateLimit: &pierredb.RateLimit{Requests: 1<<31 - 1, Period: pierredb.PeriodHour}}, "pk_live_",
				pierredb.TierStarter, pierredb.RateLimit{Requests: 1<<31 - 1, Period: pierredb.PeriodHour}, time.Time{}},
			{"override period defaults to month", pierredb.NewAPIKey{RateLimit: &pierredb.RateLimit{Requests: 3}}, "pk_live_",
				pierredb.TierStarter, pierredb.RateLimit{Requests: 3, Period: pierredb.PeriodMonth}, time.Time{}},
			{"unlimited starter", pierredb.NewAPIKey{RateLimit: &pierredb.RateLimit{Unlimited: true, Period: pierredb.PeriodHour}}, "pk_live_",
				pierredb.TierStarter, pierredb.RateLimit{Period: pierredb.PeriodHour, Unlimited: true}, time.Time{}},
			{"expiring", pierredb.NewAPIKey{ExpiresAt: base.Add(48 * time.Hour)}, "pk_live_", pierredb.TierStarter,
				pierredb.RateLimit{Requests: 10_000, Period: pierredb.PeriodMonth}, now.Add(48 * time.Hour)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.nk.Description = "for " + tc.name
				k := w.newKey(t, tc.nk)
				plain := k.Key.Reveal()
				require.True(t, strings.HasPrefix(plain, tc.prefix), "%s… has the tier's prefix", plain[:9])
				assert.Len(t, plain, len(tc.prefix)+22+6)
				assert.Equal(t, plain[:len(tc.prefix)+12], k.Prefix, "the lookup prefix is the plaintext's start")
				assert.Equal(t, w.scope.ID(), k.TenantID)
				assert.Equal(t, w.member.ID, k.UserID)
				assert.Equal(t, "for "+tc.name, k.Description)
				assert.Equal(t, tc.tier, k.Tier)
				assert.Equal(t, tc.limit, k.RateLimit)
				sameTime(t, tc.expires, k.ExpiresAt, "expiry")
				assert.True(t, k.IsActive)
				assert.True(t, k.RevokedAt.IsZero())
				assert.True(t, k.LastUsedAt.IsZero())
				assert.Zero(t, k.UsageCount)
				sameTime(t, now, k.CreatedAt)
				if tc.name == "defaults" {
					assert.Equal(t, "Default key", k.Name, "the name is trimmed")
				}

				got, err := w.scope.APIKeys().Get(ctx, k.ID)
				require.NoError(t, err)
				sameTime(t, k.ExpiresAt, got.ExpiresAt)
				sameTime(t, k.CreatedAt, got.CreatedAt)
				sameTime(t, k.UpdatedAt, got.UpdatedAt)
				got.ExpiresAt, got.CreatedAt, got.UpdatedAt = k.ExpiresAt, k.CreatedAt, k.UpdatedAt
				assert.Equal(t, k.APIKey, got)

				// What is stored is a keyed hash, never the key.
				var hash string
				require.NoError(t, w.db.Bun().QueryRowContext(ctx, "SELECT key_hash FROM api_keys WHERE id = ?", k.ID).Scan(&hash))
				assert.True(t, strings.HasPrefix(hash, "hmac-sha256$v1$"), "a keyed hash: %.16s…", hash)
				assert.NotContains(t, hash, plain[len(tc.prefix):])

				redacts(t, k, plain)
				redacts(t, k.Key, plain)
				redacts(t, &k, plain)
			})
		}
		assert.NotEqual(t, w.newKey(t, pierredb.NewAPIKey{}).Key.Reveal(), w.newKey(t, pierredb.NewAPIKey{}).Key.Reveal())
		assert.Equal(t, "[none]", pierredb.CredentialSecret{}.String())
		assert.True(t, pierredb.CredentialSecret{}.IsZero())
	})
})

var _ = register("APIKeys", "CreateRefused", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newKeyWorld(t, e)
		outsider := activeUser(t, w.db, "outsider")
		w.newKey(t, pierredb.NewAPIKey{Name: "taken"})
		gone, err := w.db.Tenant(ctx, uuid.NewString())
		require.NoError(t, err)
		past := base.Add(-time.Second)
		for _, tc := range []struct {
			name  string
			scope *pierredb.TenantScope
			nk    pierredb.NewAPIKey
			want  error
		}{
			{"no user", nil, pierredb.NewAPIKey{Name: "k"}, pierredb.ErrInvalidArgument},
			{"user id with a NUL", nil, pierredb.NewAPIKey{UserID: "a\x00b", Name: "k"}, pierredb.ErrInvalidArgument},
			{"user not a member", nil, pierredb.NewAPIKey{UserID: outsider.ID, Name: "k"}, pierredb.ErrNotFound},
			{"user that does not exist", nil, pierredb.NewAPIKey{UserID: uuid.NewString(), Name: "k"}, pierredb.ErrNotFound},
			{"tenant that does not exist", gone, pierredb.NewAPIKey{UserID: w.member.ID, Name: "k"}, pierredb.ErrNotFound},
			{"no name", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "  "}, pierredb.ErrInvalidArgument},
			{"name with a NUL", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "a\x00b"}, pierredb.ErrInvalidArgument},
			{"name not UTF-8", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "a\xffb"}, pierredb.ErrInvalidArgument},
			{"name with a zero-width space", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "ta\u200bken"}, pierredb.ErrInvalidArgument},
			{"name with a bidi override", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "\u202ekey"}, pierredb.ErrInvalidArgument},
			{"name too long", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: strings.Repeat("n", 201)}, pierredb.ErrInvalidArgument},
			{"name taken", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "taken"}, pierredb.ErrAlreadyExists},
			{"name taken, with spaces around", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: " taken "}, pierredb.ErrAlreadyExists},
			{"description too long", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "k", Description: strings.Repeat("d", 1001)}, pierredb.ErrInvalidArgument},
			{"description with a control character", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "k", Description: "a\x1b[2Jb"}, pierredb.ErrInvalidArgument},
			{"unknown tier", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "k", Tier: "platinum"}, pierredb.ErrInvalidArgument},
			{"zero requests", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "k", RateLimit: &pierredb.RateLimit{}}, pierredb.ErrInvalidArgument},
			{"negative requests", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "k", RateLimit: &pierredb.RateLimit{Requests: -1}}, pierredb.ErrInvalidArgument},
			{"huge requests", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "k", RateLimit: &pierredb.RateLimit{Requests: 1 << 50}}, pierredb.ErrInvalidArgument},
			{"requests past 32 bits", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "k", RateLimit: &pierredb.RateLimit{Requests: 1 << 31}}, pierredb.ErrInvalidArgument},
			{"unlimited with requests", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "k", RateLimit: &pierredb.RateLimit{Requests: 5, Unlimited: true}}, pierredb.ErrInvalidArgument},
			{"unknown period", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "k", RateLimit: &pierredb.RateLimit{Requests: 5, Period: "fortnight"}}, pierredb.ErrInvalidArgument},
			{"expiry in the past", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "k", ExpiresAt: past}, pierredb.ErrInvalidArgument},
			{"expiry now", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "k", ExpiresAt: base}, pierredb.ErrInvalidArgument},
			{"expiry after 9999", nil, pierredb.NewAPIKey{UserID: w.member.ID, Name: "k", ExpiresAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := tc.scope
				if s == nil {
					s = w.scope
				}
				k, err := s.APIKeys().Create(ctx, tc.nk)
				require.ErrorIs(t, err, tc.want)
				assert.Zero(t, k)
				onePrefix(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), "pierredb: create API key: "), err.Error())
			})
		}
		page, err := w.scope.APIKeys().List(ctx, pierredb.APIKeyFilter{})
		require.NoError(t, err)
		assert.Len(t, page.Items, 1, "nothing but the first key was written")
		assert.Zero(t, rawCount(t, w.db, "SELECT count(*) FROM api_keys WHERE user_id = ?", outsider.ID))
	})
})

var _ = register("APIKeys", "Verify", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newKeyWorld(t, e)
		k := w.newKey(t, pierredb.NewAPIKey{Name: "verify me", RateLimit: &pierredb.RateLimit{Requests: 5, Period: pierredb.PeriodDay}})
		plain := k.Key.Reveal()
		dayEnd := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

		p, err := w.db.APIKeys().Verify(ctx, plain)
		require.NoError(t, err)
		assert.Equal(t, k.ID, p.KeyID)
		assert.Equal(t, "verify me", p.KeyName)
		assert.Equal(t, w.member.ID, p.UserID)
		assert.Equal(t, w.member.Email, p.Email)
		require.NotNil(t, p.Tenant)
		assert.Equal(t, w.scope.ID(), p.Tenant.ID())
		assert.Equal(t, pierredb.TierStarter, p.Tier)
		assert.Equal(t, pierredb.RateLimit{Requests: 5, Period: pierredb.PeriodDay}, p.RateLimit)
		assert.EqualValues(t, 4, p.Remaining)
		sameTime(t, dayEnd, p.Reset)
		assert.True(t, p.ExpiresAt.IsZero())

		// The principal's tenant is a working scope of the key's tenant.
		got, err := p.Tenant.APIKeys().Get(ctx, k.ID)
		require.NoError(t, err)
		assert.Equal(t, k.ID, got.ID)
		sameTime(t, micro(base), got.LastUsedAt, "Verify records the last use")
		assert.EqualValues(t, 1, got.UsageCount)

		// Check verifies without counting.
		for range 3 {
			c, err := w.db.APIKeys().Check(ctx, plain)
			require.NoError(t, err)
			assert.Equal(t, k.ID, c.KeyID)
			assert.Zero(t, c.Remaining)
			assert.True(t, c.Reset.IsZero())
		}
		p, err = w.db.APIKeys().Verify(ctx, plain)
		require.NoError(t, err)
		assert.EqualValues(t, 3, p.Remaining, "Check counted nothing")

		usage, err := w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{})
		require.NoError(t, err)
		require.Len(t, usage.Items, 1)
		sameTime(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), usage.Items[0].Start)
		assert.EqualValues(t, 2, usage.Items[0].Requests)
		sameTime(t, micro(base), usage.Items[0].UpdatedAt)

		// An unlimited key is counted and never refused.
		u := w.newKey(t, pierredb.NewAPIKey{Tier: pierredb.TierEnterprise})
		for range 3 {
			p, err := w.db.APIKeys().Verify(ctx, u.Key.Reveal())
			require.NoError(t, err)
			assert.True(t, p.RateLimit.Unlimited)
			assert.Zero(t, p.Remaining)
		}
		usage, err = w.scope.APIKeys().Usage(ctx, u.ID, pierredb.UsageOptions{})
		require.NoError(t, err)
		require.Len(t, usage.Items, 1)
		assert.EqualValues(t, 3, usage.Items[0].Requests)

		// A trial key verifies with its own prefix, and says when it expires.
		tr := w.newKey(t, pierredb.NewAPIKey{Tier: pierredb.TierTrial})
		p, err = w.db.APIKeys().Verify(ctx, tr.Key.Reveal())
		require.NoError(t, err)
		assert.Equal(t, pierredb.TierTrial, p.Tier)
		sameTime(t, micro(base).Add(pierredb.TrialKeyLifetime), p.ExpiresAt)
		assert.EqualValues(t, 999, p.Remaining)
	})
})

var _ = register("APIKeys", "VerifyRefused", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newKeyWorld(t, e, pierredb.WithAutoApproveUsers(false))
		keys := w.scope.APIKeys()
		good := w.newKey(t, pierredb.NewAPIKey{})
		plain := good.Key.Reveal()

		revoked := w.newKey(t, pierredb.NewAPIKey{})
		_, err := keys.Revoke(ctx, revoked.ID)
		require.NoError(t, err)
		deactivated := w.newKey(t, pierredb.NewAPIKey{})
		_, err = keys.Deactivate(ctx, deactivated.ID)
		require.NoError(t, err)
		expiring := w.newKey(t, pierredb.NewAPIKey{ExpiresAt: base.Add(time.Minute)})
		limited := w.newKey(t, pierredb.NewAPIKey{RateLimit: &pierredb.RateLimit{Requests: 1, Period: pierredb.PeriodHour}})
		_, err = w.db.APIKeys().Verify(ctx, limited.Key.Reveal())
		require.NoError(t, err)

		pending, err := w.scope.Members().CreateUser(ctx, pierredb.NewUser{Email: uniqueEmail("pending"), Password: Password})
		require.NoError(t, err)
		require.Equal(t, pierredb.StatusPending, pending.Status)
		pendingKey := w.newKey(t, pierredb.NewAPIKey{UserID: pending.ID})
		suspended := member(t, w.db, w.scope, "suspended", pierredb.RoleMember)
		suspendedKey := w.newKey(t, pierredb.NewAPIKey{UserID: suspended.ID})
		_, err = w.db.Users().Suspend(ctx, suspended.ID)
		require.NoError(t, err)
		leaver := member(t, w.db, w.scope, "leaver", pierredb.RoleMember)
		leaverKey := w.newKey(t, pierredb.NewAPIKey{UserID: leaver.ID})
		require.NoError(t, w.scope.Members().Remove(ctx, leaver.ID))

		_, other := newTenant(t, w.db, activeUser(t, w.db, "other-owner"))
		otherMember := member(t, w.db, other, "other-member", pierredb.RoleMember)
		inactiveTenantKey, err := other.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: otherMember.ID, Name: "k"})
		require.NoError(t, err)
		_, err = w.db.Tenants().Update(ctx, other.ID(), pierredb.TenantUpdate{IsActive: ptr(false)})
		require.NoError(t, err)

		w.clk.Advance(time.Minute) // the expiring key's last instant has passed
		unknown := forgeKey("pk_live_", len("pk_live_")+22)

		var secrets []string
		for _, k := range []pierredb.CreatedAPIKey{good, revoked, deactivated, expiring, limited, pendingKey, suspendedKey, leaverKey, inactiveTenantKey} {
			secrets = append(secrets, k.Key.Reveal())
		}
		for _, tc := range []struct {
			name, key string
			want      error
		}{
			{"empty", "", pierredb.ErrInvalidCredential},
			{"truncated", plain[:len(plain)-1], pierredb.ErrInvalidCredential},
			{"one character more", plain + "x", pierredb.ErrInvalidCredential},
			{"typo", plain[:12] + string(rune(plain[12]^1)) + plain[13:], pierredb.ErrInvalidCredential},
			{"other kind", strings.Replace(plain, "pk_live_", "pk_test_", 1), pierredb.ErrInvalidCredential},
			{"live key as trial", strings.Replace(plain, "pk_live_", "pk_trial", 1), pierredb.ErrInvalidCredential},
			{"surrounding space", " " + plain, pierredb.ErrInvalidCredential},
			{"NUL inside", plain[:10] + "\x00" + plain[11:], pierredb.ErrInvalidCredential},
			{"not UTF-8", plain[:10] + "\xff" + plain[11:], pierredb.ErrInvalidCredential},
			{"huge", strings.Repeat(plain, 100), pierredb.ErrInvalidCredential},
			{"unknown", unknown, pierredb.ErrInvalidCredential},
			{"known prefix, wrong key", sameLookupKey(plain), pierredb.ErrInvalidCredential},
			{"revoked", revoked.Key.Reveal(), pierredb.ErrRevoked},
			{"deactivated", deactivated.Key.Reveal(), pierredb.ErrRevoked},
			{"expired", expiring.Key.Reveal(), pierredb.ErrExpired},
			{"rate limited", limited.Key.Reveal(), pierredb.ErrRateLimited},
			{"user pending", pendingKey.Key.Reveal(), pierredb.ErrUserPending},
			{"user suspended", suspendedKey.Key.Reveal(), pierredb.ErrUserSuspended},
			{"user left the tenant", leaverKey.Key.Reveal(), pierredb.ErrInvalidCredential},
			{"tenant deactivated", inactiveTenantKey.Key.Reveal(), pierredb.ErrTenantInactive},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, verify := range []func(context.Context, string) (pierredb.APIKeyPrincipal, error){w.db.APIKeys().Verify, w.db.APIKeys().Check} {
					p, err := verify(ctx, tc.key)
					if tc.want == pierredb.ErrRateLimited && err == nil {
						continue // Check does not count
					}
					require.ErrorIs(t, err, tc.want)
					assert.Zero(t, p)
					onePrefix(t, err)
					noLeak(t, err, append(secrets, tc.key)...)
					if tc.want == pierredb.ErrInvalidCredential {
						// Malformed, unknown and wrong keys are one and the same error.
						assert.Contains(t, []string{"pierredb: verify API key: invalid credential", "pierredb: check API key: invalid credential"}, err.Error())
					}
				}
			})
		}
		var rl *pierredb.RateLimitError
		_, err = w.db.APIKeys().Verify(ctx, limited.Key.Reveal())
		require.ErrorAs(t, err, &rl)
		assert.EqualValues(t, 1, rl.Limit)
		sameTime(t, time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC), rl.Reset)
		usage, err := keys.Usage(ctx, limited.ID, pierredb.UsageOptions{})
		require.NoError(t, err)
		require.Len(t, usage.Items, 1)
		assert.EqualValues(t, 1, usage.Items[0].Requests, "refused requests are not counted")

		// A suspension lifted, an approval given, a tenant reactivated: the keys work.
		_, err = w.db.Users().Reactivate(ctx, suspended.ID)
		require.NoError(t, err)
		_, err = w.db.Users().Approve(ctx, pending.ID, pierredb.ByService("test"))
		require.NoError(t, err)
		_, err = w.db.Tenants().Update(ctx, other.ID(), pierredb.TenantUpdate{IsActive: ptr(true)})
		require.NoError(t, err)
		for _, k := range []pierredb.CreatedAPIKey{suspendedKey, pendingKey, inactiveTenantKey} {
			_, err := w.db.APIKeys().Verify(ctx, k.Key.Reveal())
			require.NoError(t, err)
		}
		// A closed database says so.
		require.NoError(t, w.db.Close())
		_, err = w.db.APIKeys().Verify(ctx, plain)
		require.ErrorIs(t, err, pierredb.ErrClosed)
	})
})

var _ = register("APIKeys", "Expiry", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newKeyWorld(t, e)
		trial := w.newKey(t, pierredb.NewAPIKey{Tier: pierredb.TierTrial})
		dated := w.newKey(t, pierredb.NewAPIKey{ExpiresAt: base.Add(3 * time.Hour)})
		forever := w.newKey(t, pierredb.NewAPIKey{})
		verify := func(k pierredb.CreatedAPIKey) error {
			_, err := w.db.APIKeys().Verify(ctx, k.Key.Reveal())
			return err
		}

		w.clk.Set(micro(base).Add(3*time.Hour - time.Microsecond))
		require.NoError(t, verify(dated), "valid until its expiry")
		w.clk.Set(micro(base).Add(3 * time.Hour))
		require.ErrorIs(t, verify(dated), pierredb.ErrExpired, "expired at its expiry")
		require.NoError(t, verify(trial))

		w.clk.Set(micro(base).Add(pierredb.TrialKeyLifetime - time.Microsecond))
		require.NoError(t, verify(trial))
		w.clk.Set(micro(base).Add(pierredb.TrialKeyLifetime))
		require.ErrorIs(t, verify(trial), pierredb.ErrExpired, "a trial key lives 14 days")
		_, err := w.db.APIKeys().Check(ctx, trial.Key.Reveal())
		require.ErrorIs(t, err, pierredb.ErrExpired)

		// A new expiry revives it; clearing the expiry makes it last.
		_, err = w.scope.APIKeys().Update(ctx, trial.ID, pierredb.APIKeyUpdate{ExpiresAt: ptr(w.clk.Now().Add(time.Hour))})
		require.NoError(t, err)
		require.NoError(t, verify(trial))
		_, err = w.scope.APIKeys().Update(ctx, dated.ID, pierredb.APIKeyUpdate{ExpiresAt: ptr(time.Time{})})
		require.NoError(t, err)
		require.NoError(t, verify(dated))

		w.clk.Set(time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC))
		require.NoError(t, verify(forever), "a key without expiry never expires")
		require.NoError(t, verify(dated))
	})
})

// Windows align to calendar boundaries in UTC, and a new window is a new quota.
var _ = register("APIKeys", "Windows", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newKeyWorld(t, e)
		// base is Sunday 1 March 2026, 12:00 UTC.
		for _, tc := range []struct {
			period     pierredb.RateLimitPeriod
			start, end time.Time
		}{
			{pierredb.PeriodHour, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)},
			{pierredb.PeriodDay, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
			{pierredb.PeriodWeek, time.Date(2026, 2, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
			{pierredb.PeriodMonth, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		} {
			t.Run(string(tc.period), func(t *testing.T) {
				start, end := tc.period.Window(base.In(time.FixedZone("UTC-11", -11*3600)))
				sameTime(t, tc.start, start)
				sameTime(t, tc.end, end)
				s, en := tc.period.Window(tc.end.Add(-time.Nanosecond))
				sameTime(t, tc.start, s, "the window's last instant")
				sameTime(t, tc.end, en)
			})
		}
		assert.Equal(t, time.Monday, time.Date(2026, 2, 23, 0, 0, 0, 0, time.UTC).Weekday())

		k := w.newKey(t, pierredb.NewAPIKey{RateLimit: &pierredb.RateLimit{Requests: 2, Period: pierredb.PeriodWeek}})
		verify := func() (pierredb.APIKeyPrincipal, error) { return w.db.APIKeys().Verify(ctx, k.Key.Reveal()) }
		for range 2 {
			_, err := verify()
			require.NoError(t, err)
		}
		w.clk.Set(time.Date(2026, 3, 1, 23, 59, 59, 999999000, time.UTC)) // Sunday night: the same ISO week
		_, err := verify()
		var rl *pierredb.RateLimitError
		require.ErrorAs(t, err, &rl)
		sameTime(t, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), rl.Reset, "resets Monday 00:00 UTC")
		w.clk.Set(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
		p, err := verify()
		require.NoError(t, err, "a new week, a new quota")
		assert.EqualValues(t, 1, p.Remaining)

		// Changing the period counts in the new period's windows.
		_, err = w.scope.APIKeys().Update(ctx, k.ID, pierredb.APIKeyUpdate{RateLimit: &pierredb.RateLimit{Requests: 1, Period: pierredb.PeriodHour}})
		require.NoError(t, err)
		w.clk.Set(time.Date(2026, 3, 2, 5, 30, 0, 0, time.UTC))
		_, err = verify()
		require.NoError(t, err)
		_, err = verify()
		require.ErrorIs(t, err, pierredb.ErrRateLimited)

		usage, err := w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{})
		require.NoError(t, err)
		var got []string
		for _, u := range usage.Items {
			got = append(got, fmt.Sprintf("%s=%d", u.Start.UTC().Format(time.RFC3339), u.Requests))
		}
		assert.Equal(t, []string{"2026-02-23T00:00:00Z=2", "2026-03-02T00:00:00Z=1", "2026-03-02T05:00:00Z=1"}, got)

		// Paging and Since.
		page, err := w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{Limit: 2})
		require.NoError(t, err)
		require.Len(t, page.Items, 2)
		require.NotEmpty(t, page.Next)
		page, err = w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{Limit: 2, Cursor: page.Next})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		assert.Empty(t, page.Next)
		sameTime(t, time.Date(2026, 3, 2, 5, 0, 0, 0, time.UTC), page.Items[0].Start)
		page, err = w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{Since: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)})
		require.NoError(t, err)
		assert.Len(t, page.Items, 2)
		for _, bad := range []pierredb.UsageOptions{{Limit: -1}, {Limit: 1001}, {Cursor: "not a cursor"}} {
			_, err := w.scope.APIKeys().Usage(ctx, k.ID, bad)
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
			onePrefix(t, err)
		}
		fresh := w.newKey(t, pierredb.NewAPIKey{})
		page, err = w.scope.APIKeys().Usage(ctx, fresh.ID, pierredb.UsageOptions{})
		require.NoError(t, err, "a key never used has no windows")
		assert.Empty(t, page.Items)
		_, err = w.scope.APIKeys().Usage(ctx, uuid.NewString(), pierredb.UsageOptions{})
		require.ErrorIs(t, err, pierredb.ErrNotFound)
	})
})

// exactQuota runs 100 verifications at once (verify(i) is the i-th), of a
// credential with 50 requests left, and checks that exactly 50 pass.
func exactQuota(t *testing.T, verify func(i int) error) {
	t.Helper()
	const n = 100
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, limited int
	var others []error
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := verify(i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, pierredb.ErrRateLimited):
				limited++
			default:
				others = append(others, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	require.Empty(t, others)
	assert.Equal(t, 50, ok, "exactly the requests left pass")
	assert.Equal(t, 50, limited, "and every other one is refused")
}

var _ = register("APIKeys", "ExactQuota", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		w := newKeyWorldOn(t, db, nil)
		k := w.newKey(t, pierredb.NewAPIKey{RateLimit: &pierredb.RateLimit{Requests: 60, Period: pierredb.PeriodMonth}})
		for range 10 {
			_, err := db.APIKeys().Verify(ctx, k.Key.Reveal())
			require.NoError(t, err)
		}
		dbs := []*pierredb.Database{db}
		if e.Backend == pierredb.Postgres {
			// As four server instances would be: four pools, one database.
			for range 3 {
				dbs = append(dbs, e.OpenURL(t, url))
			}
		}
		exactQuota(t, func(i int) error {
			_, err := dbs[i%len(dbs)].APIKeys().Verify(context.Background(), k.Key.Reveal())
			return err
		})
		usage, err := w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{})
		require.NoError(t, err)
		require.Len(t, usage.Items, 1)
		assert.EqualValues(t, 60, usage.Items[0].Requests)

		// Two processes that count in the database (the default on PostgreSQL,
		// and the setting for several processes on one SQLite file).
		perRequest := []*pierredb.Database{
			e.OpenURL(t, url, pierredb.WithUsageFlushInterval(0)),
			e.OpenURL(t, url, pierredb.WithUsageFlushInterval(0)),
		}
		k2 := w.newKey(t, pierredb.NewAPIKey{RateLimit: &pierredb.RateLimit{Requests: 50, Period: pierredb.PeriodMonth}})
		exactQuota(t, func(i int) error {
			_, err := perRequest[i%2].APIKeys().Verify(context.Background(), k2.Key.Reveal())
			return err
		})

		// One process counting in memory (the default on SQLite).
		inMemory := e.OpenURL(t, url, pierredb.WithUsageFlushInterval(time.Hour))
		k3 := w.newKey(t, pierredb.NewAPIKey{RateLimit: &pierredb.RateLimit{Requests: 60, Period: pierredb.PeriodMonth}})
		for range 10 {
			_, err := inMemory.APIKeys().Verify(ctx, k3.Key.Reveal())
			require.NoError(t, err)
		}
		exactQuota(t, func(int) error {
			_, err := inMemory.APIKeys().Verify(context.Background(), k3.Key.Reveal())
			return err
		})
		usage, err = w.scope.APIKeys().Usage(ctx, k3.ID, pierredb.UsageOptions{})
		require.NoError(t, err)
		require.Len(t, usage.Items, 1)
		assert.EqualValues(t, 1, usage.Items[0].Requests, "another process sees what was written: the first request")
		require.NoError(t, inMemory.Close())
		usage, err = w.scope.APIKeys().Usage(ctx, k3.ID, pierredb.UsageOptions{})
		require.NoError(t, err)
		assert.EqualValues(t, 60, usage.Items[0].Requests, "and every request once the counting process closed")
	})
})

var _ = register("APIKeys", "RevokeAndDeactivate", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		clk := newClock(base)
		db := e.OpenURL(t, url, pierredb.WithClock(clk.Now))
		other := e.OpenURL(t, url, pierredb.WithClock(clk.Now)) // another process
		w := newKeyWorldOn(t, db, clk)
		keys := w.scope.APIKeys()
		k := w.newKey(t, pierredb.NewAPIKey{})
		plain := k.Key.Reveal()
		verifyBoth := func(want error) {
			t.Helper()
			for _, d := range []*pierredb.Database{db, other} {
				_, err := d.APIKeys().Verify(ctx, plain)
				if want == nil {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, want)
				}
			}
		}
		verifyBoth(nil)

		clk.Advance(time.Second)
		got, err := keys.Deactivate(ctx, k.ID)
		require.NoError(t, err)
		assert.False(t, got.IsActive)
		assert.True(t, got.RevokedAt.IsZero())
		sameTime(t, micro(clk.Now()), got.UpdatedAt)
		verifyBoth(pierredb.ErrRevoked)
		_, err = keys.Deactivate(ctx, k.ID)
		require.ErrorIs(t, err, pierredb.ErrConflict)
		onePrefix(t, err)

		got, err = keys.Reactivate(ctx, k.ID)
		require.NoError(t, err)
		assert.True(t, got.IsActive)
		verifyBoth(nil)
		_, err = keys.Reactivate(ctx, k.ID)
		require.ErrorIs(t, err, pierredb.ErrConflict)

		clk.Advance(time.Second)
		got, err = keys.Revoke(ctx, k.ID)
		require.NoError(t, err)
		assert.False(t, got.IsActive)
		sameTime(t, micro(clk.Now()), got.RevokedAt)
		verifyBoth(pierredb.ErrRevoked)
		again, err := keys.Revoke(ctx, k.ID)
		require.NoError(t, err, "revoking twice is harmless")
		sameTime(t, got.RevokedAt, again.RevokedAt, "and keeps the first revocation")
		_, err = keys.Reactivate(ctx, k.ID)
		require.ErrorIs(t, err, pierredb.ErrConflict, "a revoked key stays revoked")
		assert.Contains(t, err.Error(), "create a new key")
		_, err = keys.Deactivate(ctx, k.ID)
		require.ErrorIs(t, err, pierredb.ErrConflict)
		verifyBoth(pierredb.ErrRevoked)

		// A deactivated key, then revoked.
		d := w.newKey(t, pierredb.NewAPIKey{})
		_, err = keys.Deactivate(ctx, d.ID)
		require.NoError(t, err)
		_, err = keys.Revoke(ctx, d.ID)
		require.NoError(t, err)
		_, err = keys.Reactivate(ctx, d.ID)
		require.ErrorIs(t, err, pierredb.ErrConflict)

		for _, op := range []func(context.Context, string) (pierredb.APIKey, error){keys.Deactivate, keys.Reactivate, keys.Revoke} {
			_, err := op(ctx, uuid.NewString())
			require.ErrorIs(t, err, pierredb.ErrNotFound)
			onePrefix(t, err)
			_, err = op(ctx, "")
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		}

		// Delete: the key and its usage go; the key no longer verifies.
		del := w.newKey(t, pierredb.NewAPIKey{})
		_, err = db.APIKeys().Verify(ctx, del.Key.Reveal())
		require.NoError(t, err)
		require.NoError(t, keys.Delete(ctx, del.ID))
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM api_key_usage WHERE api_key_id = ?", del.ID))
		_, err = other.APIKeys().Verify(ctx, del.Key.Reveal())
		require.ErrorIs(t, err, pierredb.ErrInvalidCredential)
		err = keys.Delete(ctx, del.ID)
		require.ErrorIs(t, err, pierredb.ErrNotFound)
		onePrefix(t, err)
		_, err = keys.Get(ctx, del.ID)
		require.ErrorIs(t, err, pierredb.ErrNotFound)

		// A deleted user's keys go with the user.
		gone := member(t, db, w.scope, "gone", pierredb.RoleMember)
		gk := w.newKey(t, pierredb.NewAPIKey{UserID: gone.ID})
		require.NoError(t, db.Users().Delete(ctx, gone.ID))
		_, err = db.APIKeys().Verify(ctx, gk.Key.Reveal())
		require.ErrorIs(t, err, pierredb.ErrInvalidCredential)
	})
})

var _ = register("APIKeys", "ListAndUpdate", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newKeyWorld(t, e)
		keys := w.scope.APIKeys()
		var memberKeys, ownerKeys []string
		for i := range 5 {
			w.clk.Advance(time.Second)
			memberKeys = append(memberKeys, w.newKey(t, pierredb.NewAPIKey{Name: fmt.Sprintf("m%d", i)}).ID)
			ownerKeys = append(ownerKeys, w.newKey(t, pierredb.NewAPIKey{UserID: w.owner.ID, Name: fmt.Sprintf("o%d", i)}).ID)
		}
		_, err := keys.Deactivate(ctx, memberKeys[1])
		require.NoError(t, err)
		_, err = keys.Revoke(ctx, ownerKeys[2])
		require.NoError(t, err)
		keyIDs := func(items []pierredb.APIKey) []string {
			return ids(items, func(k pierredb.APIKey) string { return k.ID })
		}
		all := func(f pierredb.APIKeyFilter) []string {
			t.Helper()
			var out []string
			f.Limit = 2
			for {
				page, err := keys.List(ctx, f)
				require.NoError(t, err)
				require.LessOrEqual(t, len(page.Items), 2)
				out = append(out, keyIDs(page.Items)...)
				if page.Next == "" {
					return out
				}
				f.Cursor = page.Next
			}
		}
		interleaved := func(keep func(i int, owner bool) bool) []string {
			var out []string
			for i := range 5 {
				if keep(i, false) {
					out = append(out, memberKeys[i])
				}
				if keep(i, true) {
					out = append(out, ownerKeys[i])
				}
			}
			return out
		}
		assert.Equal(t, interleaved(func(int, bool) bool { return true }), all(pierredb.APIKeyFilter{}), "oldest first")
		assert.Equal(t, memberKeys, all(pierredb.APIKeyFilter{UserID: w.member.ID}))
		assert.Equal(t, interleaved(func(i int, o bool) bool { return !(i == 1 && !o) && !(i == 2 && o) }), all(pierredb.APIKeyFilter{Active: ptr(true)}))
		assert.Equal(t, []string{memberKeys[1], ownerKeys[2]}, all(pierredb.APIKeyFilter{Active: ptr(false)}))
		assert.Equal(t, []string{ownerKeys[2]}, all(pierredb.APIKeyFilter{UserID: w.owner.ID, Active: ptr(false)}))
		assert.Empty(t, all(pierredb.APIKeyFilter{UserID: uuid.NewString()}))

		for _, bad := range []pierredb.APIKeyFilter{{Limit: -1}, {Limit: 1001}, {Cursor: "x"}, {UserID: "a b"}} {
			_, err := keys.List(ctx, bad)
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
			onePrefix(t, err)
		}
		gone, err := w.db.Tenant(ctx, uuid.NewString())
		require.NoError(t, err)
		_, err = gone.APIKeys().List(ctx, pierredb.APIKeyFilter{})
		require.ErrorIs(t, err, pierredb.ErrNotFound, "a tenant that does not exist")

		// Update.
		w.clk.Advance(time.Minute)
		id := memberKeys[0]
		got, err := keys.Update(ctx, id, pierredb.APIKeyUpdate{Name: ptr("renamed"), Description: ptr("new words"),
			RateLimit: &pierredb.RateLimit{Requests: 42, Period: pierredb.PeriodDay}, ExpiresAt: ptr(base.Add(30 * time.Hour))})
		require.NoError(t, err)
		assert.Equal(t, "renamed", got.Name)
		assert.Equal(t, "new words", got.Description)
		assert.Equal(t, pierredb.RateLimit{Requests: 42, Period: pierredb.PeriodDay}, got.RateLimit)
		sameTime(t, micro(base).Add(30*time.Hour), got.ExpiresAt)
		sameTime(t, micro(w.clk.Now()), got.UpdatedAt)
		assert.Equal(t, pierredb.TierStarter, got.Tier, "the tier stays")
		same, err := keys.Update(ctx, id, pierredb.APIKeyUpdate{})
		require.NoError(t, err, "an empty update reads the key")
		assert.Equal(t, "renamed", same.Name)
		got, err = keys.Update(ctx, id, pierredb.APIKeyUpdate{Description: ptr(""), RateLimit: &pierredb.RateLimit{Unlimited: true}})
		require.NoError(t, err)
		assert.Empty(t, got.Description)
		assert.True(t, got.RateLimit.Unlimited)
		assert.Equal(t, pierredb.PeriodMonth, got.RateLimit.Period)

		for _, tc := range []struct {
			name   string
			id     string
			change pierredb.APIKeyUpdate
			want   error
		}{
			{"name taken", id, pierredb.APIKeyUpdate{Name: ptr("m3")}, pierredb.ErrAlreadyExists},
			{"empty name", id, pierredb.APIKeyUpdate{Name: ptr("")}, pierredb.ErrInvalidArgument},
			{"hidden name", id, pierredb.APIKeyUpdate{Name: ptr("x\u2060y")}, pierredb.ErrInvalidArgument},
			{"zero limit", id, pierredb.APIKeyUpdate{RateLimit: &pierredb.RateLimit{}}, pierredb.ErrInvalidArgument},
			{"bad period", id, pierredb.APIKeyUpdate{RateLimit: &pierredb.RateLimit{Requests: 1, Period: "year"}}, pierredb.ErrInvalidArgument},
			{"past expiry", id, pierredb.APIKeyUpdate{ExpiresAt: ptr(base)}, pierredb.ErrInvalidArgument},
			{"unknown key", uuid.NewString(), pierredb.APIKeyUpdate{Name: ptr("z")}, pierredb.ErrNotFound},
			{"no id", "", pierredb.APIKeyUpdate{Name: ptr("z")}, pierredb.ErrInvalidArgument},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := keys.Update(ctx, tc.id, tc.change)
				require.ErrorIs(t, err, tc.want)
				onePrefix(t, err)
			})
		}
		cur, err := keys.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, "renamed", cur.Name, "refused updates changed nothing")
		// The names of different users, and of different tenants, do not clash.
		_, err = keys.Update(ctx, ownerKeys[0], pierredb.APIKeyUpdate{Name: ptr("renamed")})
		require.NoError(t, err)
	})
})

// Last use and the running total are written at most once per interval per key,
// and the total catches up with the windows at each write.
var _ = register("APIKeys", "LastUseThrottled", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newKeyWorld(t, e, pierredb.WithLastActiveInterval(time.Minute))
		k := w.newKey(t, pierredb.NewAPIKey{})
		get := func() pierredb.APIKey {
			t.Helper()
			got, err := w.scope.APIKeys().Get(ctx, k.ID)
			require.NoError(t, err)
			return got
		}
		for range 5 {
			_, err := w.db.APIKeys().Verify(ctx, k.Key.Reveal())
			require.NoError(t, err)
			w.clk.Advance(time.Second)
		}
		got := get()
		sameTime(t, micro(base), got.LastUsedAt, "written by the first request only")
		assert.EqualValues(t, 1, got.UsageCount, "the total as of that write")

		w.clk.Advance(time.Minute)
		_, err := w.db.APIKeys().Verify(ctx, k.Key.Reveal())
		require.NoError(t, err)
		got = get()
		sameTime(t, micro(w.clk.Now()), got.LastUsedAt)
		assert.EqualValues(t, 6, got.UsageCount, "caught up with every window")

		// Within the interval nothing is written.
		w.clk.Advance(30 * time.Second)
		_, err = w.db.APIKeys().Check(ctx, k.Key.Reveal())
		require.NoError(t, err)
		assert.EqualValues(t, 6, get().UsageCount)
	})
})

// Verify rewrites a hash made under an older hashing key, so the old key can be
// retired once every credential was used.
var _ = register("APIKeys", "RehashAfterRotation", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newKeyWorld(t, e)
		k := w.newKey(t, pierredb.NewAPIKey{})
		unused := w.newKey(t, pierredb.NewAPIKey{})
		v2, err := w.db.Keyring().Rotate(ctx, keyring.PurposeHashing)
		require.NoError(t, err)
		require.EqualValues(t, 2, v2)
		hashOf := func(id string) string {
			var h string
			require.NoError(t, w.db.Bun().QueryRowContext(ctx, "SELECT key_hash FROM api_keys WHERE id = ?", id).Scan(&h))
			return h
		}
		require.True(t, strings.HasPrefix(hashOf(k.ID), "hmac-sha256$v1$"))
		_, err = w.db.APIKeys().Verify(ctx, k.Key.Reveal())
		require.NoError(t, err, "a hash under the old key still verifies")
		assert.True(t, strings.HasPrefix(hashOf(k.ID), "hmac-sha256$v2$"), "and is rewritten under the new one")
		_, err = w.db.APIKeys().Verify(ctx, k.Key.Reveal())
		require.NoError(t, err)
		n, err := w.db.Rotation().CountInUse(ctx, keyring.PurposeHashing, 1)
		require.NoError(t, err)
		assert.EqualValues(t, 1, n, "the unused key still needs version 1")
		_, err = w.db.APIKeys().Verify(ctx, unused.Key.Reveal())
		require.NoError(t, err)
		n, err = w.db.Rotation().CountInUse(ctx, keyring.PurposeHashing, 1)
		require.NoError(t, err)
		assert.Zero(t, n)
		require.NoError(t, w.db.Rotation().Retire(ctx, keyring.PurposeHashing, 1))
		_, err = w.db.APIKeys().Verify(ctx, k.Key.Reveal())
		require.NoError(t, err)
	})
})

// A key issued in tenant A authenticates as tenant A, whoever asks; a member of
// both tenants has keys in each, and each key reaches only its own.
var _ = register("APIKeys", "PrincipalTenant", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		w := newIsolationWorld(t, db)
		both := member(t, db, w.a, "both", pierredb.RoleMember)
		_, err := w.b.Members().Add(ctx, both.ID, pierredb.RoleMember)
		require.NoError(t, err)
		ka, err := w.a.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: both.ID, Name: "same name"})
		require.NoError(t, err)
		kb, err := w.b.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: both.ID, Name: "same name"})
		require.NoError(t, err)
		for _, tc := range []struct {
			key    pierredb.CreatedAPIKey
			tenant *pierredb.TenantScope
			other  *pierredb.TenantScope
		}{{ka, w.a, w.b}, {kb, w.b, w.a}} {
			p, err := db.APIKeys().Verify(ctx, tc.key.Key.Reveal())
			require.NoError(t, err)
			assert.Equal(t, tc.tenant.ID(), p.Tenant.ID())
			_, err = p.Tenant.APIKeys().Get(ctx, tc.key.ID)
			require.NoError(t, err)
			_, err = tc.other.APIKeys().Get(ctx, tc.key.ID)
			require.ErrorIs(t, err, pierredb.ErrNotFound)
		}
		// Leaving B removes B's key only.
		require.NoError(t, w.b.Members().Remove(ctx, both.ID))
		_, err = db.APIKeys().Verify(ctx, kb.Key.Reveal())
		require.ErrorIs(t, err, pierredb.ErrInvalidCredential)
		_, err = db.APIKeys().Verify(ctx, ka.Key.Reveal())
		require.NoError(t, err)
	})
})

// No plaintext at rest: every key and secret issued is absent from the raw
// database (SQLite's file and its WAL; PostgreSQL's pg_dump of the schema).
var _ = register("APIKeys", "NoPlaintextAtRest", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		w := newKeyWorldOn(t, db, nil)
		var secrets []string
		for _, tier := range []pierredb.Tier{pierredb.TierTrial, pierredb.TierStarter, pierredb.TierProfessional, pierredb.TierEnterprise} {
			k := w.newKey(t, pierredb.NewAPIKey{Tier: tier})
			secrets = append(secrets, k.Key.Reveal())
			_, err := db.APIKeys().Verify(ctx, k.Key.Reveal()) // usage and last use written too
			require.NoError(t, err)
		}
		c, err := w.scope.A2AClients().Register(ctx, pierredb.NewA2AClient{UserID: w.member.ID, Name: "agent",
			Capabilities: []pierredb.A2ACapability{pierredb.A2AGoalManagement}})
		require.NoError(t, err)
		secrets = append(secrets, c.Secret.Reveal())
		_, err = db.A2AClients().Verify(ctx, c.ClientID, c.Secret.Reveal())
		require.NoError(t, err)
		rotated, err := w.scope.A2AClients().RotateSecret(ctx, c.ClientID)
		require.NoError(t, err)
		secrets = append(secrets, rotated.Secret.Reveal())

		var dump []byte
		switch e.Backend {
		case pierredb.SQLite:
			path := strings.TrimPrefix(url, "sqlite:")
			for _, f := range []string{path, path + "-wal"} {
				b, err := os.ReadFile(f)
				require.NoError(t, err)
				dump = append(dump, b...)
			}
			require.Contains(t, string(dump), c.ClientID, "the search is not vacuous: the file holds the client's id")
		default:
			bin, err := exec.LookPath("pg_dump")
			if err != nil {
				t.Skip("pg_dump is not installed")
			}
			out, err := exec.CommandContext(ctx, bin, "--schema="+db.Info().Schema, os.Getenv(EnvPostgresURL)).Output()
			require.NoError(t, err)
			dump = out
			require.Contains(t, string(dump), c.ClientID, "the dump holds the client's id")
		}
		for _, s := range secrets {
			assert.False(t, bytes.Contains(dump, []byte(s)), "a plaintext %.12s… is at rest", s)
			tail := s[len(s)-16:]
			assert.False(t, bytes.Contains(dump, []byte(tail)), "part of a plaintext is at rest")
		}
	})
})

// The API key domain's operations in the isolation matrix.
var (
	_ = isolate(scopedOp{
		name: "api key",
		seed: func(ctx context.Context, t *testing.T, w *isolationWorld) string {
			k, err := w.a.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: w.memberA.ID, Name: fmt.Sprintf("iso %d", seq.Add(1))})
			require.NoError(t, err)
			return k.ID
		},
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.APIKeys().Get(ctx, key)
			return err
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.APIKeys().Update(ctx, key, pierredb.APIKeyUpdate{Name: ptr("hijacked"), RateLimit: &pierredb.RateLimit{Unlimited: true}})
			return err
		},
		delete: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			return s.APIKeys().Delete(ctx, key)
		},
		list: func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
			page, err := s.APIKeys().List(ctx, pierredb.APIKeyFilter{Limit: 1000})
			return ids(page.Items, func(k pierredb.APIKey) string { return k.ID }), err
		},
		check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			k, err := w.a.APIKeys().Get(ctx, key)
			require.NoError(t, err)
			assert.NotEqual(t, "hijacked", k.Name)
			assert.False(t, k.RateLimit.Unlimited)
			assert.True(t, k.IsActive)
		},
	})
	_ = isolate(scopedOp{
		name: "api key state",
		seed: func(ctx context.Context, t *testing.T, w *isolationWorld) string {
			k, err := w.a.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: w.memberA.ID, Name: fmt.Sprintf("iso %d", seq.Add(1))})
			require.NoError(t, err)
			return k.ID
		},
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.APIKeys().Usage(ctx, key, pierredb.UsageOptions{})
			return err
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.APIKeys().Deactivate(ctx, key)
			return err
		},
		delete: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.APIKeys().Revoke(ctx, key)
			return err
		},
		list: func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
			page, err := s.APIKeys().List(ctx, pierredb.APIKeyFilter{Active: ptr(true), Limit: 1000})
			return ids(page.Items, func(k pierredb.APIKey) string { return k.ID }), err
		},
		check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			k, err := w.a.APIKeys().Get(ctx, key)
			require.NoError(t, err)
			assert.True(t, k.IsActive)
			assert.True(t, k.RevokedAt.IsZero())
		},
	})
	_ = isolate(scopedOp{
		name: "deactivated api key",
		seed: func(ctx context.Context, t *testing.T, w *isolationWorld) string {
			k, err := w.a.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: w.memberA.ID, Name: fmt.Sprintf("iso %d", seq.Add(1))})
			require.NoError(t, err)
			_, err = w.a.APIKeys().Deactivate(ctx, k.ID)
			require.NoError(t, err)
			return k.ID
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.APIKeys().Reactivate(ctx, key)
			return err
		},
		list: func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
			page, err := s.APIKeys().List(ctx, pierredb.APIKeyFilter{Active: ptr(false), Limit: 1000})
			return ids(page.Items, func(k pierredb.APIKey) string { return k.ID }), err
		},
		check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			k, err := w.a.APIKeys().Get(ctx, key)
			require.NoError(t, err)
			assert.False(t, k.IsActive)
		},
	})
	_ = isolate(scopedOp{
		// Tenant B cannot issue a key for a member of A only.
		name: "api key for A's member",
		seed: func(ctx context.Context, t *testing.T, w *isolationWorld) string {
			_, err := w.a.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: w.memberA.ID, Name: fmt.Sprintf("iso %d", seq.Add(1))})
			require.NoError(t, err)
			return w.memberA.ID
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: key, Name: "planted"})
			return err
		},
		list: func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
			page, err := s.APIKeys().List(ctx, pierredb.APIKeyFilter{Limit: 1000})
			return ids(page.Items, func(k pierredb.APIKey) string { return k.UserID }), err
		},
		check: func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
			page, err := w.b.APIKeys().List(ctx, pierredb.APIKeyFilter{UserID: key})
			require.NoError(t, err)
			assert.Empty(t, page.Items)
		},
	})
)

// Rows edited by hand behind the store's back: an unusable hash refuses the
// key (and says so in the log, without the key), a limit of zero allows
// nothing, a client's capabilities that are not a JSON list are a conflict.
var _ = register("APIKeys", "HandEditedRows", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		var logs logBuffer
		w := newKeyWorld(t, e, pierredb.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		raw := w.db.Bun()

		k := w.newKey(t, pierredb.NewAPIKey{})
		_, err := raw.ExecContext(ctx, "UPDATE api_keys SET key_hash = 'hmac-sha256$v9$garbage' WHERE id = ?", k.ID)
		require.NoError(t, err)
		_, err = w.db.APIKeys().Verify(ctx, k.Key.Reveal())
		require.ErrorIs(t, err, pierredb.ErrInvalidCredential)
		assert.Contains(t, logs.String(), "stored credential hash is unusable")
		assert.Contains(t, logs.String(), k.ID, "the log names the key")
		assert.NotContains(t, logs.String(), k.Key.Reveal()[8:], "and never the key itself")

		z := w.newKey(t, pierredb.NewAPIKey{})
		_, err = raw.ExecContext(ctx, "UPDATE api_keys SET rate_limit_requests = 0 WHERE id = ?", z.ID)
		require.NoError(t, err)
		_, err = w.db.APIKeys().Verify(ctx, z.Key.Reveal())
		var rl *pierredb.RateLimitError
		require.ErrorAs(t, err, &rl)
		assert.Zero(t, rl.Limit)
		_, err = w.db.APIKeys().Check(ctx, z.Key.Reveal())
		require.NoError(t, err, "Check does not count, so it does not refuse")

		c := w.newClient(t, pierredb.NewA2AClient{})
		_, err = raw.ExecContext(ctx, "UPDATE a2a_clients SET capabilities = 'not json' WHERE client_id = ?", c.ClientID)
		require.NoError(t, err)
		_, err = w.db.A2AClients().Verify(ctx, c.ClientID, c.Secret.Reveal())
		require.ErrorIs(t, err, pierredb.ErrConflict)
		onePrefix(t, err)
		_, err = w.scope.A2AClients().Get(ctx, c.ClientID)
		require.ErrorIs(t, err, pierredb.ErrConflict)
		noLeak(t, err, c.Secret.Reveal())
	})
})

// Counting in memory (WithUsageFlushInterval > 0), on both engines: what the
// database holds, when it is written, and what a listing, a closed Database, a
// changed quota, a deleted key and a failed write do to the counts.
var _ = register("APIKeys", "UsageInMemory", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		clk := newClock(base)
		db := e.OpenURL(t, url, pierredb.WithClock(clk.Now), pierredb.WithUsageFlushInterval(time.Hour))
		w := newKeyWorldOn(t, db, clk)
		stored := func(id string) int {
			t.Helper()
			return rawCount(t, db, "SELECT COALESCE(SUM(request_count), 0) FROM api_key_usage WHERE api_key_id = ?", id)
		}
		verify := func(d *pierredb.Database, key string, n int) {
			t.Helper()
			for range n {
				_, err := d.APIKeys().Verify(ctx, key)
				require.NoError(t, err)
			}
		}

		t.Run("written at a listing", func(t *testing.T) {
			k := w.newKey(t, pierredb.NewAPIKey{RateLimit: &pierredb.RateLimit{Requests: 10, Period: pierredb.PeriodDay}})
			verify(db, k.Key.Reveal(), 3)
			assert.Equal(t, 1, stored(k.ID), "the first request of a window is counted in the database")
			p, err := db.APIKeys().Verify(ctx, k.Key.Reveal())
			require.NoError(t, err)
			assert.EqualValues(t, 6, p.Remaining, "the principal counts what memory holds")
			page, err := w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{})
			require.NoError(t, err)
			require.Len(t, page.Items, 1)
			assert.EqualValues(t, 4, page.Items[0].Requests)
			assert.Equal(t, 4, stored(k.ID))
			sameTime(t, micro(clk.Now()), page.Items[0].UpdatedAt)
		})

		t.Run("quota changes apply at once", func(t *testing.T) {
			k := w.newKey(t, pierredb.NewAPIKey{RateLimit: &pierredb.RateLimit{Requests: 100, Period: pierredb.PeriodDay}})
			verify(db, k.Key.Reveal(), 10)
			_, err := w.scope.APIKeys().Update(ctx, k.ID, pierredb.APIKeyUpdate{RateLimit: &pierredb.RateLimit{Requests: 10, Period: pierredb.PeriodDay}})
			require.NoError(t, err)
			_, err = db.APIKeys().Verify(ctx, k.Key.Reveal())
			require.ErrorIs(t, err, pierredb.ErrRateLimited)
			_, err = w.scope.APIKeys().Update(ctx, k.ID, pierredb.APIKeyUpdate{RateLimit: &pierredb.RateLimit{Requests: 12, Period: pierredb.PeriodDay}})
			require.NoError(t, err)
			verify(db, k.Key.Reveal(), 2)
			_, err = db.APIKeys().Verify(ctx, k.Key.Reveal())
			require.ErrorIs(t, err, pierredb.ErrRateLimited)
			page, err := w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{})
			require.NoError(t, err)
			assert.EqualValues(t, 12, page.Items[0].Requests, "refused requests are not counted")
		})

		t.Run("a new window starts in the database", func(t *testing.T) {
			k := w.newKey(t, pierredb.NewAPIKey{RateLimit: &pierredb.RateLimit{Requests: 3, Period: pierredb.PeriodHour}})
			verify(db, k.Key.Reveal(), 3)
			_, err := db.APIKeys().Verify(ctx, k.Key.Reveal())
			require.ErrorIs(t, err, pierredb.ErrRateLimited)
			clk.Advance(time.Hour)
			verify(db, k.Key.Reveal(), 3)
			// One request of each window was written: the first, counted in
			// the database. (The hour made the key's last use due, which writes
			// the current window's pending counts first: there were none.)
			assert.Equal(t, 1+1, stored(k.ID))
			page, err := w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{})
			require.NoError(t, err)
			require.Len(t, page.Items, 2)
			assert.EqualValues(t, 3, page.Items[0].Requests)
			assert.EqualValues(t, 3, page.Items[1].Requests)
		})

		t.Run("a deleted key's counts are dropped", func(t *testing.T) {
			k := w.newKey(t, pierredb.NewAPIKey{})
			verify(db, k.Key.Reveal(), 3)
			require.NoError(t, w.scope.APIKeys().Delete(ctx, k.ID))
			other := w.newKey(t, pierredb.NewAPIKey{})
			verify(db, other.Key.Reveal(), 2)
			_, err := w.scope.APIKeys().Usage(ctx, other.ID, pierredb.UsageOptions{})
			require.NoError(t, err, "a write that meets a deleted key writes the others")
			assert.Equal(t, 2, stored(other.ID))
			assert.Zero(t, stored(k.ID), "and brings nothing of the deleted key back")
		})

		t.Run("a failed write keeps the counts", func(t *testing.T) {
			k := w.newKey(t, pierredb.NewAPIKey{})
			verify(db, k.Key.Reveal(), 5)
			// Another connection holds the window's row (PostgreSQL) or the
			// database's write lock (SQLite) while a listing tries to write.
			raw := e.OpenRaw(t, url)
			tx, err := raw.BeginTx(ctx, nil)
			require.NoError(t, err)
			_, err = tx.ExecContext(ctx, "UPDATE api_key_usage SET request_count = request_count WHERE api_key_id = "+placeholder(e, 1), k.ID)
			require.NoError(t, err)
			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			_, err = w.scope.APIKeys().Usage(short, k.ID, pierredb.UsageOptions{})
			cancel()
			require.Error(t, err)
			require.NoError(t, tx.Rollback())
			page, err := w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{})
			require.NoError(t, err)
			assert.EqualValues(t, 5, page.Items[0].Requests)
		})

		t.Run("written at close", func(t *testing.T) {
			d := e.OpenURL(t, url, pierredb.WithClock(clk.Now), pierredb.WithUsageFlushInterval(time.Hour))
			k := w.newKey(t, pierredb.NewAPIKey{})
			verify(d, k.Key.Reveal(), 7)
			assert.Equal(t, 1, stored(k.ID))
			require.NoError(t, d.Close())
			assert.Equal(t, 7, stored(k.ID))
			_, err := d.APIKeys().Verify(ctx, k.Key.Reveal())
			require.ErrorIs(t, err, pierredb.ErrClosed)
			assert.Equal(t, 7, stored(k.ID))
		})

		t.Run("written after the interval", func(t *testing.T) {
			d := e.OpenURL(t, url, pierredb.WithClock(clk.Now), pierredb.WithUsageFlushInterval(20*time.Millisecond))
			k := w.newKey(t, pierredb.NewAPIKey{})
			verify(d, k.Key.Reveal(), 4)
			assert.Eventually(t, func() bool { return stored(k.ID) == 4 }, 10*time.Second, 10*time.Millisecond)
		})

		t.Run("inside RunInTx", func(t *testing.T) {
			k := w.newKey(t, pierredb.NewAPIKey{})
			verify(db, k.Key.Reveal(), 2)
			require.NoError(t, db.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
				if _, err := db.APIKeys().Verify(ctx, k.Key.Reveal()); err != nil {
					return err
				}
				page, err := w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{})
				if err == nil && len(page.Items) == 1 {
					assert.EqualValues(t, 2, page.Items[0].Requests,
						"the transaction's request is counted in it; what memory holds is not written from inside it")
				}
				return err
			}))
			page, err := w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{})
			require.NoError(t, err)
			assert.EqualValues(t, 3, page.Items[0].Requests)

			// A request counted in a transaction that rolls back is not
			// counted, and loses no other request's count.
			fresh := w.newKey(t, pierredb.NewAPIKey{})
			rollback := errors.New("roll back")
			err = db.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
				if _, err := db.APIKeys().Verify(ctx, fresh.Key.Reveal()); err != nil {
					return err
				}
				return rollback
			})
			require.ErrorIs(t, err, rollback)
			verify(db, fresh.Key.Reveal(), 5)
			page, err = w.scope.APIKeys().Usage(ctx, fresh.ID, pierredb.UsageOptions{})
			require.NoError(t, err)
			require.Len(t, page.Items, 1)
			assert.EqualValues(t, 5, page.Items[0].Requests)
		})

		t.Run("the first requests of a window at once", func(t *testing.T) {
			// Every request finds the window not in memory yet: one reads it
			// from the database, the others wait for it rather than count in
			// the database beside requests counted in memory.
			for range 20 {
				k := w.newKey(t, pierredb.NewAPIKey{RateLimit: &pierredb.RateLimit{Requests: 5, Period: pierredb.PeriodDay}})
				var wg sync.WaitGroup
				var passed atomic.Int64
				start := make(chan struct{})
				for range 32 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						_, err := db.APIKeys().Verify(ctx, k.Key.Reveal())
						if err == nil {
							passed.Add(1)
						} else if !errors.Is(err, pierredb.ErrRateLimited) {
							t.Error(err)
						}
					}()
				}
				close(start)
				wg.Wait()
				require.EqualValues(t, 5, passed.Load())
				page, err := w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{})
				require.NoError(t, err)
				require.EqualValues(t, 5, page.Items[0].Requests)
			}
		})

		t.Run("a window deleted by hand is written back", func(t *testing.T) {
			k := w.newKey(t, pierredb.NewAPIKey{})
			verify(db, k.Key.Reveal(), 4)
			_, err := db.Bun().ExecContext(ctx, "DELETE FROM api_key_usage WHERE api_key_id = ?", k.ID)
			require.NoError(t, err)
			page, err := w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{})
			require.NoError(t, err)
			require.Len(t, page.Items, 1)
			assert.EqualValues(t, 3, page.Items[0].Requests, "the three counted in memory")
		})
	})
})

// placeholder is the n-th bound parameter in e's own syntax, for raw statements.
func placeholder(e Engine, n int) string {
	if e.Backend == pierredb.Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// Counting in the database on PostgreSQL lets the counter's commit skip the
// WAL flush, and only the counter's: the session afterwards, and a host's
// transaction that verifies a key, keep the server's synchronous_commit.
var _ = register("APIKeys", "CounterCommitOnly", func(t *testing.T) {
	RunOn(t, pierredb.Postgres, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		w := newKeyWorld(t, e, pierredb.WithUsageFlushInterval(0), pierredb.WithMaxConnections(1))
		k := w.newKey(t, pierredb.NewAPIKey{})
		show := func(db bun.IDB) string {
			t.Helper()
			var v string
			require.NoError(t, db.QueryRowContext(ctx, "SHOW synchronous_commit").Scan(&v))
			return v
		}
		require.Equal(t, "on", show(w.db.Bun()))
		for range 3 {
			_, err := w.db.APIKeys().Verify(ctx, k.Key.Reveal())
			require.NoError(t, err)
			assert.Equal(t, "on", show(w.db.Bun()), "the pool's only connection")
		}
		require.NoError(t, w.db.RunInTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			if _, err := w.db.APIKeys().Verify(ctx, k.Key.Reveal()); err != nil {
				return err
			}
			assert.Equal(t, "on", show(tx), "the host's transaction still commits synchronously")
			return nil
		}))
		page, err := w.scope.APIKeys().Usage(ctx, k.ID, pierredb.UsageOptions{})
		require.NoError(t, err)
		assert.EqualValues(t, 4, page.Items[0].Requests)
	})
})
