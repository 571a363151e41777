package storetest

// The OAuth tokens domain: users' provider tokens, their listings, the atomic
// refresh (Update under a row lock, Refresh with a compare-and-swap) and what
// removes them.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb"
)

var _ = register("OAuthTokens", "Lifecycle", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock(base)
		db := e.Open(t, pierredb.WithClock(clk.Now))
		owner := activeUser(t, db, "owner")
		tn, scope := newTenant(t, db, owner)
		tokens := scope.OAuthTokens()

		list, err := tokens.List(ctx, owner.ID)
		require.NoError(t, err)
		assert.Empty(t, list, "a member without connections")

		in := newToken(owner.ID, pierredb.ProviderStrava, "strava")
		in.TokenType, in.LastSyncAt = "", base.Add(-time.Hour)
		tok, err := tokens.Put(ctx, in)
		require.NoError(t, err)
		assert.NotEmpty(t, tok.ID)
		assert.Equal(t, tn.ID, tok.TenantID)
		assert.Equal(t, owner.ID, tok.UserID)
		assert.Equal(t, pierredb.ProviderStrava, tok.Provider)
		sameSecret(t, in.AccessToken, tok.AccessToken, "access token")
		sameSecret(t, in.RefreshToken, tok.RefreshToken, "refresh token")
		assert.Equal(t, "Bearer", tok.TokenType, "the default token type")
		assert.Equal(t, micro(in.ExpiresAt), tok.ExpiresAt)
		assert.Equal(t, micro(in.LastSyncAt), tok.LastSyncAt)
		assert.Equal(t, in.Scope, tok.Scope)
		assert.Equal(t, micro(base), tok.CreatedAt)
		assert.Equal(t, tok.CreatedAt, tok.UpdatedAt)

		got, err := tokens.Get(ctx, owner.ID, pierredb.ProviderStrava)
		require.NoError(t, err)
		sameToken(t, tok, got)

		// Put again replaces the pair and keeps the id and creation time; a
		// token without refresh token, expiry or scope stores NULLs.
		clk.Advance(time.Minute)
		in2 := pierredb.OAuthToken{UserID: owner.ID, Provider: pierredb.ProviderStrava, TokenType: "mac",
			AccessToken: pierredb.NewOAuthSecret(oauthSecret("access", "second"))}
		tok2, err := tokens.Put(ctx, in2)
		require.NoError(t, err)
		assert.Equal(t, tok.ID, tok2.ID)
		assert.Equal(t, tok.CreatedAt, tok2.CreatedAt)
		assert.Equal(t, micro(base.Add(time.Minute)), tok2.UpdatedAt)
		assert.True(t, tok2.RefreshToken.IsZero())
		assert.True(t, tok2.ExpiresAt.IsZero())
		got, err = tokens.Get(ctx, owner.ID, pierredb.ProviderStrava)
		require.NoError(t, err)
		sameToken(t, tok2, got)
		assert.Equal(t, 1, rawCount(t, db, "SELECT count(*) FROM user_oauth_tokens WHERE refresh_token_encrypted IS NULL AND expires_at IS NULL AND scope IS NULL"))

		fitbit := putToken(t, scope, owner.ID, pierredb.ProviderFitbit, "fitbit")
		list, err = tokens.List(ctx, owner.ID)
		require.NoError(t, err)
		require.Len(t, list, 2)
		sameToken(t, fitbit, list[0]) // provider order
		sameToken(t, tok2, list[1])

		require.NoError(t, tokens.Delete(ctx, owner.ID, pierredb.ProviderStrava))
		_, err = tokens.Get(ctx, owner.ID, pierredb.ProviderStrava)
		require.ErrorIs(t, err, pierredb.ErrNotFound)
		assert.Contains(t, err.Error(), "no strava token")
		onePrefix(t, err)
		err = tokens.Delete(ctx, owner.ID, pierredb.ProviderStrava)
		require.ErrorIs(t, err, pierredb.ErrNotFound)

		putToken(t, scope, owner.ID, pierredb.ProviderGarmin, "garmin")
		n, err := tokens.DeleteAll(ctx, owner.ID)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		n, err = tokens.DeleteAll(ctx, owner.ID)
		require.NoError(t, err, "a member without tokens")
		assert.Zero(t, n)
		list, err = tokens.List(ctx, owner.ID)
		require.NoError(t, err)
		assert.Empty(t, list)
	})
})

// A user who is not a member of the tenant has no tokens there: putting one
// is refused by the schema itself and reads as ErrNotFound, as does every
// operation of a scope whose tenant does not exist.
var _ = register("OAuthTokens", "NotMember", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		stranger := activeUser(t, db, "stranger")
		_, scope := newTenant(t, db, owner)
		ghost, err := db.Tenant(ctx, missingID)
		require.NoError(t, err)
		for name, s := range map[string]struct {
			scope *pierredb.TenantScope
			user  string
		}{"stranger": {scope, stranger.ID}, "missing user": {scope, missingID}, "missing tenant": {ghost, owner.ID}} {
			t.Run(name, func(t *testing.T) {
				tokens := s.scope.OAuthTokens()
				_, err := tokens.Put(ctx, newToken(s.user, pierredb.ProviderStrava, "nope"))
				require.ErrorIs(t, err, pierredb.ErrNotFound)
				assert.Contains(t, err.Error(), "not a member")
				onePrefix(t, err)
				_, err = tokens.Get(ctx, s.user, pierredb.ProviderStrava)
				require.ErrorIs(t, err, pierredb.ErrNotFound)
				_, err = tokens.List(ctx, s.user)
				require.ErrorIs(t, err, pierredb.ErrNotFound)
				_, err = tokens.DeleteAll(ctx, s.user)
				require.ErrorIs(t, err, pierredb.ErrNotFound)
				require.ErrorIs(t, tokens.Delete(ctx, s.user, pierredb.ProviderStrava), pierredb.ErrNotFound)
				_, err = tokens.Update(ctx, s.user, pierredb.ProviderStrava, func(old pierredb.OAuthToken) (pierredb.OAuthToken, error) { return old, nil })
				require.ErrorIs(t, err, pierredb.ErrNotFound)
				_, err = tokens.Refresh(ctx, s.user, pierredb.ProviderStrava, func(_ context.Context, old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
					return old, nil
				})
				require.ErrorIs(t, err, pierredb.ErrNotFound)
			})
		}
		_, err = ghost.OAuthTokens().ListExpiring(ctx, base, pierredb.ListOptions{})
		require.ErrorIs(t, err, pierredb.ErrNotFound)
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM user_oauth_tokens"))
	})
})

var _ = register("OAuthTokens", "Rejects", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		_, scope := newTenant(t, db, owner)
		tokens := scope.OAuthTokens()
		for _, tc := range []struct {
			name   string
			change func(*pierredb.OAuthToken)
			want   string
		}{
			{"no user", func(o *pierredb.OAuthToken) { o.UserID = "" }, "user id is required"},
			{"user id with a space", func(o *pierredb.OAuthToken) { o.UserID = "a b" }, "user id"},
			{"unknown provider", func(o *pierredb.OAuthToken) { o.Provider = "myspace" }, "known providers are"},
			{"no access token", func(o *pierredb.OAuthToken) { o.AccessToken = pierredb.OAuthSecret{} }, "access token is required"},
			{"huge access token", func(o *pierredb.OAuthToken) {
				o.AccessToken = pierredb.NewOAuthSecret(strings.Repeat("a", 64<<10+1))
			}, "longer"},
			{"huge refresh token", func(o *pierredb.OAuthToken) {
				o.RefreshToken = pierredb.NewOAuthSecret(strings.Repeat("r", 64<<10+1))
			}, "longer"},
			{"token type with a space", func(o *pierredb.OAuthToken) { o.TokenType = "Bear er" }, "space"},
			{"token type with an escape", func(o *pierredb.OAuthToken) { o.TokenType = "Bearer\x1b[31m" }, "control"},
			{"scope with NUL", func(o *pierredb.OAuthToken) { o.Scope = "read\x00" }, "control"},
			{"scope with invalid UTF-8", func(o *pierredb.OAuthToken) { o.Scope = "read\xff" }, "UTF-8"},
			{"expiry past year 9999", func(o *pierredb.OAuthToken) { o.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "years"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				in := newToken(owner.ID, pierredb.ProviderStrava, "rejected")
				tc.change(&in)
				_, err := tokens.Put(ctx, in)
				require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
				assert.Contains(t, err.Error(), tc.want)
				onePrefix(t, err)
				noLeak(t, err, in.AccessToken.Reveal(), in.RefreshToken.Reveal())
			})
		}
		assert.Zero(t, rawCount(t, db, "SELECT count(*) FROM user_oauth_tokens"), "nothing was stored")
		_, err := tokens.ListExpiring(ctx, time.Time{}, pierredb.ListOptions{})
		require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		_, err = tokens.ListExpiring(ctx, base, pierredb.ListOptions{Cursor: "garbage"})
		require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		_, err = tokens.Update(ctx, owner.ID, pierredb.ProviderStrava, nil)
		require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		_, err = tokens.Refresh(ctx, owner.ID, pierredb.ProviderStrava, nil)
		require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
})

// ListExpiring pages through the tenant's tokens that expire before a time,
// soonest first (ties in id order), and never lists tokens without an expiry,
// expiring later, or of another tenant.
var _ = register("OAuthTokens", "ListExpiring", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		_, a := newTenant(t, db, owner)
		_, b := newTenant(t, db, owner)
		other := member(t, db, a, "other", pierredb.RoleMember)
		put := func(s *pierredb.TenantScope, userID string, p pierredb.Provider, expires time.Time) pierredb.OAuthToken {
			in := newToken(userID, p, string(p))
			in.ExpiresAt = expires
			tok, err := s.OAuthTokens().Put(ctx, in)
			require.NoError(t, err)
			return tok
		}
		strava := put(a, owner.ID, pierredb.ProviderStrava, base.Add(time.Hour))
		fitbit := put(a, owner.ID, pierredb.ProviderFitbit, base.Add(2*time.Hour))
		expired := put(a, owner.ID, pierredb.ProviderGarmin, base.Add(-time.Hour))
		put(a, owner.ID, pierredb.ProviderWhoop, time.Time{})
		otherStrava := put(a, other.ID, pierredb.ProviderStrava, base.Add(time.Hour))
		put(a, other.ID, pierredb.ProviderPolar, base.Add(30*24*time.Hour))
		put(b, owner.ID, pierredb.ProviderStrava, base.Add(time.Hour))

		tie := []pierredb.OAuthToken{strava, otherStrava}
		if tie[1].ID < tie[0].ID {
			tie[0], tie[1] = tie[1], tie[0]
		}
		want := []pierredb.OAuthToken{expired, tie[0], tie[1], fitbit}
		var got []pierredb.OAuthToken
		o := pierredb.ListOptions{Limit: 2}
		for pages := 0; ; pages++ {
			require.Less(t, pages, 3)
			page, err := a.OAuthTokens().ListExpiring(ctx, base.Add(3*time.Hour), o)
			require.NoError(t, err)
			got = append(got, page.Items...)
			if page.Next == "" {
				break
			}
			o.Cursor = page.Next
		}
		require.Len(t, got, len(want))
		for i := range want {
			sameToken(t, want[i], got[i])
		}

		page, err := a.OAuthTokens().ListExpiring(ctx, fitbit.ExpiresAt, pierredb.ListOptions{})
		require.NoError(t, err)
		assert.Len(t, page.Items, 3, "strictly before: the token expiring at that instant is not listed")
		page, err = a.OAuthTokens().ListExpiring(ctx, base.Add(-2*time.Hour), pierredb.ListOptions{})
		require.NoError(t, err)
		assert.Empty(t, page.Items)
		assert.Empty(t, page.Next)
	})
})

// Update is a read-modify-write under a row lock: fn sees what is stored,
// what it returns is stored, and returning the token unchanged writes nothing.
var _ = register("OAuthTokens", "Update", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		clk := newClock(base)
		db := e.Open(t, pierredb.WithClock(clk.Now))
		owner := activeUser(t, db, "owner")
		_, scope := newTenant(t, db, owner)
		tokens := scope.OAuthTokens()
		tok := putToken(t, scope, owner.ID, pierredb.ProviderFitbit, "before")

		clk.Advance(time.Minute)
		access, refresh := oauthSecret("access", "after"), oauthSecret("refresh", "after")
		calls := 0
		updated, err := tokens.Update(ctx, owner.ID, pierredb.ProviderFitbit, func(old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
			calls++
			sameToken(t, tok, old)
			old.AccessToken, old.RefreshToken = pierredb.NewOAuthSecret(access), pierredb.NewOAuthSecret(refresh)
			old.ExpiresAt, old.LastSyncAt = base.Add(8*time.Hour), base
			old.ID, old.CreatedAt = "ignored", time.Time{} // the store's fields are not the caller's to change
			return old, nil
		})
		require.NoError(t, err)
		assert.Equal(t, 1, calls)
		assert.Equal(t, tok.ID, updated.ID)
		assert.Equal(t, tok.CreatedAt, updated.CreatedAt)
		assert.Equal(t, micro(base.Add(time.Minute)), updated.UpdatedAt)
		assert.Equal(t, access, updated.AccessToken.Reveal())
		assert.Equal(t, refresh, updated.RefreshToken.Reveal())
		assert.Equal(t, micro(base.Add(8*time.Hour)), updated.ExpiresAt)
		got, err := tokens.Get(ctx, owner.ID, pierredb.ProviderFitbit)
		require.NoError(t, err)
		sameToken(t, updated, got)

		// Unchanged: nothing written, not even updated_at.
		clk.Advance(time.Minute)
		same, err := tokens.Update(ctx, owner.ID, pierredb.ProviderFitbit, func(old pierredb.OAuthToken) (pierredb.OAuthToken, error) { return old, nil })
		require.NoError(t, err)
		sameToken(t, updated, same)
		assert.Equal(t, micro(base.Add(time.Minute)), rawTime(t, db, "user_oauth_tokens", "updated_at", tok.ID))
		before := rawSealed(t, db, "user_oauth_tokens", "access_token_encrypted", tok.ID)

		// An error from fn aborts, is returned as is, and changes nothing.
		errProvider := errors.New("provider said invalid_grant")
		_, err = tokens.Update(ctx, owner.ID, pierredb.ProviderFitbit, func(old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
			old.AccessToken = pierredb.NewOAuthSecret("lost")
			return old, errProvider
		})
		require.ErrorIs(t, err, errProvider)
		onePrefix(t, err)
		assert.Equal(t, before, rawSealed(t, db, "user_oauth_tokens", "access_token_encrypted", tok.ID))

		// fn may not move the token to another user or provider, nor store an
		// invalid one.
		for name, change := range map[string]func(*pierredb.OAuthToken){
			"user":     func(o *pierredb.OAuthToken) { o.UserID = missingID },
			"provider": func(o *pierredb.OAuthToken) { o.Provider = pierredb.ProviderStrava },
			"empty":    func(o *pierredb.OAuthToken) { o.AccessToken = pierredb.OAuthSecret{} },
		} {
			_, err = tokens.Update(ctx, owner.ID, pierredb.ProviderFitbit, func(old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
				change(&old)
				return old, nil
			})
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument, name)
			_, err = tokens.Refresh(ctx, owner.ID, pierredb.ProviderFitbit, func(_ context.Context, old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
				change(&old)
				return old, nil
			})
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument, name)
		}
		assert.Equal(t, before, rawSealed(t, db, "user_oauth_tokens", "access_token_encrypted", tok.ID))

		// Refresh outside a race: fn gets the stored token and its context.
		type ctxKey struct{}
		rctx := context.WithValue(ctx, ctxKey{}, "mine")
		refreshed, err := tokens.Refresh(rctx, owner.ID, pierredb.ProviderFitbit, func(fctx context.Context, old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
			assert.Equal(t, "mine", fctx.Value(ctxKey{}))
			sameToken(t, updated, old)
			old.AccessToken = pierredb.NewOAuthSecret(oauthSecret("access", "refreshed"))
			return old, nil
		})
		require.NoError(t, err)
		got, err = tokens.Get(ctx, owner.ID, pierredb.ProviderFitbit)
		require.NoError(t, err)
		sameToken(t, refreshed, got)
		sameSecret(t, updated.RefreshToken, got.RefreshToken, "the refresh token fn kept")
	})
})

// A write during a Refresh's provider call that leaves the pair as it was (an
// Update of the last sync time) does not cost the pair the provider issued:
// the provider has consumed the old refresh token, so dropping the new pair
// would break the connection. A write that changes the pair still wins.
var _ = register("OAuthTokens", "RefreshBesideSyncUpdate", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		_, scope := newTenant(t, db, owner)
		tokens := scope.OAuthTokens()
		putToken(t, scope, owner.ID, pierredb.ProviderFitbit, "before")
		synced := base.Add(time.Hour)
		access, refresh := oauthSecret("access", "issued"), oauthSecret("refresh", "issued")
		refreshed, err := tokens.Refresh(ctx, owner.ID, pierredb.ProviderFitbit, func(_ context.Context, old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
			_, err := tokens.Update(ctx, owner.ID, pierredb.ProviderFitbit, func(cur pierredb.OAuthToken) (pierredb.OAuthToken, error) {
				cur.LastSyncAt = synced
				return cur, nil
			})
			require.NoError(t, err)
			old.AccessToken, old.RefreshToken = pierredb.NewOAuthSecret(access), pierredb.NewOAuthSecret(refresh)
			return old, nil
		})
		require.NoError(t, err)
		got, err := tokens.Get(ctx, owner.ID, pierredb.ProviderFitbit)
		require.NoError(t, err)
		sameToken(t, refreshed, got)
		assert.Equal(t, access, got.AccessToken.Reveal())
		assert.Equal(t, refresh, got.RefreshToken.Reveal())

		// A write that changes the pair meanwhile still makes Refresh lose.
		_, err = tokens.Refresh(ctx, owner.ID, pierredb.ProviderFitbit, func(_ context.Context, old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
			putToken(t, scope, owner.ID, pierredb.ProviderFitbit, "winner")
			old.AccessToken = pierredb.NewOAuthSecret(oauthSecret("access", "loser"))
			return old, nil
		})
		require.ErrorIs(t, err, pierredb.ErrConflict)
		got, err = tokens.Get(ctx, owner.ID, pierredb.ProviderFitbit)
		require.NoError(t, err)
		assert.NotEqual(t, oauthSecret("access", "loser"), got.AccessToken.Reveal())
	})
})

// fakeProvider issues token pairs. A single-use provider (Fitbit) refuses a
// refresh token used twice; a reusable one (Strava) accepts it again.
type fakeProvider struct {
	mu       sync.Mutex
	reusable bool
	used     map[string]bool
	n        int
}

func (p *fakeProvider) refresh(refresh string) (access, next string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used[refresh] && !p.reusable {
		return "", "", errors.New("invalid_grant: refresh token already used")
	}
	p.used[refresh] = true
	p.n++
	return fmt.Sprintf("access-%d-Zq7-never-shown", p.n), fmt.Sprintf("refresh-%d-Zq7-never-shown", p.n), nil
}

// barrier lets n goroutines wait for each other, for at most 10 seconds.
type barrier struct {
	wg   sync.WaitGroup
	done chan struct{}
}

func newBarrier(n int) *barrier {
	b := &barrier{done: make(chan struct{})}
	b.wg.Add(n)
	go func() { b.wg.Wait(); close(b.done) }()
	return b
}

func (b *barrier) arrive() {
	b.wg.Done()
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
	}
}

// Two refreshes of one token race, round after round. With Update (the row
// lock) the second fn sees the first one's pair and leaves it; with Refresh
// (compare-and-swap; both have read the same pair before either writes) one
// stores its pair and the other gets ErrConflict from the store (a provider
// that accepts the refresh token twice) or the provider's refusal (a
// single-use one). Either way exactly one new pair is stored, whole, and a
// stale pair is never written back.
var _ = register("OAuthTokens", "ConcurrentRefresh", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		_, scope := newTenant(t, db, owner)
		tokens := scope.OAuthTokens()
		const rounds = 30
		for round := range rounds {
			useLock := round%3 == 0
			p := &fakeProvider{used: map[string]bool{}, reusable: round%3 == 1}
			start := putToken(t, scope, owner.ID, pierredb.ProviderFitbit, fmt.Sprint("round-", round))
			startRefresh := start.RefreshToken.Reveal()

			var (
				wg       sync.WaitGroup
				gate     = make(chan struct{})
				read     = newBarrier(2) // Refresh: both have read before either writes
				results  [2]pierredb.OAuthToken
				errs     [2]error
				issued   [2]string // the refresh token each caller got from the provider, if any
				sawFresh [2]bool   // the caller's fn saw a pair newer than start's
			)
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					refresh := func(old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
						if old.RefreshToken.Reveal() != startRefresh {
							sawFresh[i] = true
							return old, nil // another caller refreshed it: use theirs
						}
						access, next, err := p.refresh(old.RefreshToken.Reveal())
						if err != nil {
							return pierredb.OAuthToken{}, err
						}
						issued[i] = next
						old.AccessToken, old.RefreshToken = pierredb.NewOAuthSecret(access), pierredb.NewOAuthSecret(next)
						return old, nil
					}
					if useLock {
						results[i], errs[i] = tokens.Update(ctx, owner.ID, pierredb.ProviderFitbit, refresh)
						return
					}
					results[i], errs[i] = tokens.Refresh(ctx, owner.ID, pierredb.ProviderFitbit,
						func(_ context.Context, old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
							read.arrive()
							return refresh(old)
						})
				}()
			}
			close(gate)
			wg.Wait()

			stored, err := tokens.Get(ctx, owner.ID, pierredb.ProviderFitbit)
			require.NoError(t, err)
			winners := 0
			for i := range 2 {
				if errs[i] == nil && issued[i] != "" {
					winners++
					assert.Equal(t, issued[i], stored.RefreshToken.Reveal(), "round %d: the winner's pair is stored", round)
					sameToken(t, stored, results[i])
				}
			}
			require.Equal(t, 1, winners, "round %d (lock %v): exactly one new pair is kept; errors %v", round, useLock, errs)
			assert.NotEqual(t, startRefresh, stored.RefreshToken.Reveal(), "round %d: the stale pair is not written back", round)
			assert.True(t, strings.HasPrefix(stored.AccessToken.Reveal(), "access-1-") == strings.HasPrefix(stored.RefreshToken.Reveal(), "refresh-1-"),
				"round %d: access and refresh token come from the same refresh", round)
			for i := range 2 {
				if errs[i] == nil && issued[i] == "" {
					assert.True(t, sawFresh[i], "round %d: a caller that stored nothing saw the winner's pair", round)
					sameToken(t, stored, results[i])
					continue
				}
				if errs[i] != nil {
					if useLock {
						t.Errorf("round %d: Update failed: %v", round, errs[i])
						continue
					}
					if p.reusable {
						assert.ErrorIs(t, errs[i], pierredb.ErrConflict, "round %d: the loser's pair is refused", round)
					} else {
						assert.Contains(t, errs[i].Error(), "invalid_grant", "round %d: the provider refused the loser", round)
					}
					onePrefix(t, errs[i])
					noLeak(t, errs[i], startRefresh, stored.RefreshToken.Reveal(), stored.AccessToken.Reveal())
				}
			}
		}
	})
})

// Removing a member, deleting the user or deleting the tenant removes the
// user's tokens (the foreign keys cascade), and nothing else.
var _ = register("OAuthTokens", "RemovedWithMembership", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		_, a := newTenant(t, db, owner)
		tb, b := newTenant(t, db, owner)
		leaver := member(t, db, a, "leaver", pierredb.RoleMember)
		deleted := member(t, db, a, "deleted", pierredb.RoleMember)
		_, err := b.Members().Add(ctx, leaver.ID, pierredb.RoleMember)
		require.NoError(t, err)
		for _, u := range []pierredb.User{owner, leaver, deleted} {
			putToken(t, a, u.ID, pierredb.ProviderStrava, "a")
			putToken(t, a, u.ID, pierredb.ProviderOura, "a")
		}
		putToken(t, b, leaver.ID, pierredb.ProviderStrava, "b")
		count := func(s *pierredb.TenantScope, userID string) int {
			list, err := s.OAuthTokens().List(ctx, userID)
			if errors.Is(err, pierredb.ErrNotFound) {
				return -1 // not a member
			}
			require.NoError(t, err)
			return len(list)
		}

		require.NoError(t, a.Members().Remove(ctx, leaver.ID))
		assert.Equal(t, -1, count(a, leaver.ID))
		assert.Equal(t, 1, count(b, leaver.ID), "the user's tokens in another tenant stay")
		assert.Equal(t, 2, count(a, owner.ID))

		require.NoError(t, db.Users().Delete(ctx, deleted.ID))
		assert.Equal(t, 0, rawCount(t, db, "SELECT count(*) FROM user_oauth_tokens WHERE user_id = ?", deleted.ID))
		assert.Equal(t, 2, count(a, owner.ID))

		require.NoError(t, db.Tenants().Delete(ctx, tb.ID))
		assert.Equal(t, 2, rawCount(t, db, "SELECT count(*) FROM user_oauth_tokens"), "only the owner's tokens in A remain")
	})
})

// The OAuth token domain's operations in the isolation matrix: tenant B
// reaches none of tenant A's tokens, with any operation, even for a user who
// is a member of both (the world's users are not; each op uses its own
// provider so that no op's probes touch another's seed).
var (
	_ = isolate(scopedOp{
		name: "oauth token",
		seed: func(ctx context.Context, t *testing.T, w *isolationWorld) string {
			return putToken(t, w.a, w.memberA.ID, pierredb.ProviderGarmin, "isolated").UserID
		},
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.OAuthTokens().Get(ctx, key, pierredb.ProviderGarmin)
			return err
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.OAuthTokens().Update(ctx, key, pierredb.ProviderGarmin, func(old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
				old.AccessToken = pierredb.NewOAuthSecret("overwritten-by-b")
				return old, nil
			})
			return err
		},
		delete: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			return s.OAuthTokens().Delete(ctx, key, pierredb.ProviderGarmin)
		},
		list: func(ctx context.Context, s *pierredb.TenantScope) ([]string, error) {
			page, err := s.OAuthTokens().ListExpiring(ctx, base.Add(24*time.Hour), pierredb.ListOptions{Limit: 1000})
			return ids(page.Items, func(o pierredb.OAuthToken) string { return o.UserID }), err
		},
		check: checkIsolatedToken(pierredb.ProviderGarmin),
	})
	_ = isolate(scopedOp{
		name: "oauth token (refresh, list, delete all)",
		seed: func(ctx context.Context, t *testing.T, w *isolationWorld) string {
			return putToken(t, w.a, w.memberA.ID, pierredb.ProviderWhoop, "isolated").UserID
		},
		get: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.OAuthTokens().List(ctx, key)
			return err
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.OAuthTokens().Refresh(ctx, key, pierredb.ProviderWhoop, func(_ context.Context, old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
				old.AccessToken = pierredb.NewOAuthSecret("overwritten-by-b")
				return old, nil
			})
			return err
		},
		delete: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.OAuthTokens().DeleteAll(ctx, key)
			return err
		},
		check: checkIsolatedToken(pierredb.ProviderWhoop),
	})
	_ = isolate(scopedOp{
		name: "oauth token put",
		seed: func(ctx context.Context, t *testing.T, w *isolationWorld) string {
			return putToken(t, w.a, w.memberA.ID, pierredb.ProviderTerra, "isolated").UserID
		},
		update: func(ctx context.Context, s *pierredb.TenantScope, key string) error {
			_, err := s.OAuthTokens().Put(ctx, newToken(key, pierredb.ProviderTerra, "put-by-b"))
			return err
		},
		check: checkIsolatedToken(pierredb.ProviderTerra),
	})
)

// checkIsolatedToken confirms that tenant A's token seeded by an isolation op
// is intact: it decrypts to what was stored (never "overwritten-by-b").
func checkIsolatedToken(p pierredb.Provider) func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
	return func(ctx context.Context, t *testing.T, w *isolationWorld, key string) {
		tok, err := w.a.OAuthTokens().Get(ctx, key, p)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(tok.AccessToken.Reveal(), "access-isolated-"), "A's token is intact")
		assert.Zero(t, rawCount(t, w.db, "SELECT count(*) FROM user_oauth_tokens WHERE tenant_id = ?", w.b.ID()))
	}
}
