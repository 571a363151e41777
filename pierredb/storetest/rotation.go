package storetest

// Data key rotation over every sealed column: counting, re-encrypting in
// batches beside live writes, resuming after a cancel, and retiring.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

const rawNow = "2026-11-30T12:00:00.000000Z"

// accessOnly is a token without refresh token: one sealed value.
func accessOnly(userID string, p pierredb.Provider, tag string) pierredb.OAuthToken {
	in := newToken(userID, p, tag)
	in.RefreshToken = pierredb.OAuthSecret{}
	return in
}

// storedVersion is the data key version of a stored envelope.
func storedVersion(t testing.TB, db *pierredb.Database, table, column, id string) uint32 {
	t.Helper()
	v, err := keyring.EnvelopeKeyVersion(rawSealed(t, db, table, column, id))
	require.NoError(t, err)
	return v
}

// Rotate the data key, re-encrypt stored secrets in batches, and retire the old
// version only once nothing uses it.
var _ = register("Rotation", "DataKey", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		owner := activeUser(t, db, "owner")
		_, scope := newTenant(t, db, owner)
		keys, rot := db.Keyring(), db.Rotation()

		providers := []pierredb.Provider{pierredb.ProviderStrava, pierredb.ProviderFitbit, pierredb.ProviderGarmin, pierredb.ProviderWhoop, pierredb.ProviderTerra}
		stored := map[pierredb.Provider]pierredb.OAuthToken{}
		for _, p := range providers {
			tok, err := scope.OAuthTokens().Put(ctx, accessOnly(owner.ID, p, "rotate"))
			require.NoError(t, err)
			stored[p] = tok
		}
		tokens := len(providers)
		n, err := rot.CountInUse(ctx, keyring.PurposeEncryption, 1)
		require.NoError(t, err)
		assert.EqualValues(t, tokens, n)

		v2, err := keys.Rotate(ctx, keyring.PurposeEncryption)
		require.NoError(t, err)
		require.EqualValues(t, 2, v2)
		err = rot.Retire(ctx, keyring.PurposeEncryption, 1)
		require.ErrorIs(t, err, keyring.ErrKeyInUse, "version 1 still encrypts %d tokens", tokens)
		onePrefix(t, err)

		res, err := rot.ReencryptBatch(ctx, 2)
		require.NoError(t, err)
		assert.Equal(t, pierredb.ReencryptResult{Rewritten: 2, Remaining: int64(tokens - 2)}, res)
		for res.Remaining > 0 {
			res, err = rot.ReencryptBatch(ctx, 2)
			require.NoError(t, err)
		}
		n, err = rot.CountInUse(ctx, keyring.PurposeEncryption, 1)
		require.NoError(t, err)
		assert.Zero(t, n)

		// Every secret reads back under version 2, and a second instance (which
		// loads the keyring anew) reads it too.
		other := e.OpenURL(t, url)
		otherScope, err := other.Tenant(ctx, scope.ID())
		require.NoError(t, err)
		for p, want := range stored {
			assert.EqualValues(t, 2, storedVersion(t, db, "user_oauth_tokens", "access_token_encrypted", want.ID))
			got, err := otherScope.OAuthTokens().Get(ctx, owner.ID, p)
			require.NoError(t, err)
			sameToken(t, want, got)
		}

		require.NoError(t, rot.Retire(ctx, keyring.PurposeEncryption, 1))
		res, err = rot.ReencryptBatch(ctx, 10)
		require.NoError(t, err)
		assert.Equal(t, pierredb.ReencryptResult{}, res)
		_, err = rot.ReencryptBatch(ctx, 0)
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
})

// One value that no longer decrypts (copied by hand from another row) does not
// stop re-encryption: it is skipped and reported, every other value moves, and
// the remaining count says what is left and why.
var _ = register("Rotation", "UnreadableValueIsSkipped", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		_, scope := newTenant(t, db, owner)
		rot := db.Rotation()
		var ids []string
		for _, p := range []pierredb.Provider{pierredb.ProviderStrava, pierredb.ProviderFitbit, pierredb.ProviderGarmin, pierredb.ProviderWhoop} {
			tok, err := scope.OAuthTokens().Put(ctx, accessOnly(owner.ID, p, "skip"))
			require.NoError(t, err)
			ids = append(ids, tok.ID) // ids are time-ordered: the batches' order
		}
		// The second token now holds the first one's ciphertext: bound to the
		// first one's provider, it fails to open.
		_, err := db.Bun().ExecContext(ctx, "UPDATE user_oauth_tokens SET access_token_encrypted = ? WHERE id = ?",
			rawSealed(t, db, "user_oauth_tokens", "access_token_encrypted", ids[0]), ids[1])
		require.NoError(t, err)
		_, err = db.Keyring().Rotate(ctx, keyring.PurposeEncryption)
		require.NoError(t, err)

		// Batches of one: the first moves; then the second fails to open, is
		// reported and stepped over, and the third moves in the same batch;
		// then the fourth.
		bad := pierredb.SealedValue{Table: "user_oauth_tokens", Column: "access_token_encrypted", RowID: ids[1]}
		for i, want := range []pierredb.ReencryptResult{
			{Rewritten: 1, Remaining: 3},
			{Rewritten: 1, Remaining: 2, Unreadable: []pierredb.SealedValue{bad}},
			{Rewritten: 1, Remaining: 1, Unreadable: []pierredb.SealedValue{bad}},
		} {
			res, err := rot.ReencryptBatch(ctx, 1)
			require.NoError(t, err)
			assert.Equal(t, want, res, "batch %d", i)
		}
		res, err := rot.ReencryptBatch(ctx, 10)
		require.NoError(t, err)
		assert.Equal(t, pierredb.ReencryptResult{Remaining: 1, Unreadable: []pierredb.SealedValue{bad}}, res)

		// The one-call form reports it the same way, and is done.
		prog, err := rot.Reencrypt(ctx, pierredb.ReencryptOptions{})
		require.NoError(t, err)
		assert.Equal(t, []pierredb.SealedValue{bad}, prog.Unreadable)
		assert.EqualValues(t, 1, prog.Remaining())
		assert.True(t, prog.Done())

		require.ErrorIs(t, rot.Retire(ctx, keyring.PurposeEncryption, 1), keyring.ErrKeyInUse, "the unreadable row still uses version 1")
		_, err = db.Bun().ExecContext(ctx, "DELETE FROM user_oauth_tokens WHERE id = ?", ids[1])
		require.NoError(t, err)
		require.NoError(t, rot.Retire(ctx, keyring.PurposeEncryption, 1))
	})
})

// Progress counts ciphertexts per data key version, in total and per column;
// Reencrypt moves them all in one call, reporting after each batch.
var _ = register("Rotation", "ReencryptAndProgress", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		rot := db.Rotation()
		var apps, accessTokens, refreshTokens int64
		for i := range 3 {
			_, scope := newTenant(t, db, owner)
			_, err := scope.OAuthApps().Set(ctx, pierredb.ProviderStrava, appConfig("progress"))
			require.NoError(t, err)
			apps++
			for _, p := range []pierredb.Provider{pierredb.ProviderStrava, pierredb.ProviderPolar} {
				in := newToken(owner.ID, p, "progress")
				if i == 0 {
					in.RefreshToken = pierredb.OAuthSecret{} // a NULL is not counted
				} else {
					refreshTokens++
				}
				_, err := scope.OAuthTokens().Put(ctx, in)
				require.NoError(t, err)
				accessTokens++
			}
		}
		column := func(p pierredb.RotationProgress, table, col string) map[uint32]int64 {
			for _, c := range p.Columns {
				if c.Table == table && c.Column == col {
					return c.Versions
				}
			}
			t.Fatalf("no column %s.%s in the progress", table, col)
			return nil
		}
		sealed := apps + accessTokens + refreshTokens
		prog, err := rot.Progress(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, 1, prog.Primary)
		assert.GreaterOrEqual(t, prog.Versions[1], sealed, "other domains' sealed values count too")
		assert.Zero(t, prog.Remaining())
		assert.Equal(t, map[uint32]int64{1: apps}, column(prog, "tenant_oauth_configs", "client_secret_encrypted"))
		assert.Equal(t, map[uint32]int64{1: accessTokens}, column(prog, "user_oauth_tokens", "access_token_encrypted"))
		assert.Equal(t, map[uint32]int64{1: refreshTokens}, column(prog, "user_oauth_tokens", "refresh_token_encrypted"))
		before := prog.Versions[1]

		_, err = db.Keyring().Rotate(ctx, keyring.PurposeEncryption)
		require.NoError(t, err)
		prog, err = rot.Progress(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, 2, prog.Primary)
		assert.Equal(t, before, prog.Remaining())
		assert.False(t, prog.Done())

		for _, bad := range []pierredb.ReencryptOptions{{BatchSize: -1}, {BatchSize: 2001}, {Pause: -time.Second}} {
			_, err := rot.Reencrypt(ctx, bad)
			require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
			onePrefix(t, err)
		}

		var reports []pierredb.RotationProgress
		final, err := rot.Reencrypt(ctx, pierredb.ReencryptOptions{BatchSize: 2, Pause: time.Millisecond,
			Progress: func(p pierredb.RotationProgress) { reports = append(reports, p) }})
		require.NoError(t, err)
		assert.Equal(t, before, final.Rewritten)
		assert.Equal(t, map[uint32]int64{2: before}, final.Versions)
		assert.Zero(t, final.Remaining())
		assert.True(t, final.Done())
		assert.Empty(t, final.Unreadable)
		assert.Equal(t, map[uint32]int64{2: accessTokens}, column(final, "user_oauth_tokens", "access_token_encrypted"))
		require.Greater(t, len(reports), int(accessTokens/2), "a report after every batch")
		for i := 1; i < len(reports); i++ {
			assert.GreaterOrEqual(t, reports[i].Rewritten, reports[i-1].Rewritten, "progress only grows")
			assert.LessOrEqual(t, reports[i].Remaining(), reports[i-1].Remaining())
		}
		assert.Equal(t, final, reports[len(reports)-1], "the last report is the result")

		again, err := rot.Reencrypt(ctx, pierredb.ReencryptOptions{})
		require.NoError(t, err)
		assert.Zero(t, again.Rewritten, "nothing left to move")
		require.NoError(t, rot.Retire(ctx, keyring.PurposeEncryption, 1))
		prog, err = rot.Progress(ctx)
		require.NoError(t, err)
		assert.Equal(t, map[uint32]int64{2: before}, prog.Versions)
	})
})

// Rotation runs while 4 goroutines keep writing tokens; it is cancelled
// halfway and resumed. At the end every value reads back as last written, no
// ciphertext is on the old version, and the old version retires.
var _ = register("Rotation", "ReencryptWhileWriting", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		providers := []pierredb.Provider{pierredb.ProviderStrava, pierredb.ProviderFitbit, pierredb.ProviderGarmin,
			pierredb.ProviderWhoop, pierredb.ProviderTerra, pierredb.ProviderPolar, pierredb.ProviderOura,
			pierredb.ProviderCoros, pierredb.ProviderSuunto}
		const tenants, writers = 8, 4
		type key struct {
			tenant   int
			provider pierredb.Provider
		}
		scopes := make([]*pierredb.TenantScope, tenants)
		var mu sync.Mutex
		latest := map[key]pierredb.OAuthToken{} // what each token must read back as
		apps := map[int]pierredb.OAuthSecret{}
		for i := range scopes {
			_, scopes[i] = newTenant(t, db, owner)
			app, err := scopes[i].OAuthApps().Set(ctx, pierredb.ProviderStrava, appConfig(fmt.Sprint("tenant-", i)))
			require.NoError(t, err)
			apps[i] = app.ClientSecret
			for _, p := range providers {
				latest[key{i, p}] = putToken(t, scopes[i], owner.ID, p, "seed")
			}
		}
		_, err := db.Keyring().Rotate(ctx, keyring.PurposeEncryption)
		require.NoError(t, err)

		// Writers: writer w owns the strava and fitbit tokens of tenants w and
		// w+4, so each token's last write is known; the other providers' tokens
		// are left to rotation alone.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var writes atomic.Int64
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 7))
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					k := key{w + writers*rng.IntN(tenants/writers), providers[rng.IntN(2)]}
					in := newToken(owner.ID, k.provider, fmt.Sprintf("w%d-%d", w, n))
					var tok pierredb.OAuthToken
					var err error
					if n%2 == 0 {
						tok, err = scopes[k.tenant].OAuthTokens().Put(ctx, in)
					} else {
						tok, err = scopes[k.tenant].OAuthTokens().Update(ctx, owner.ID, k.provider, func(old pierredb.OAuthToken) (pierredb.OAuthToken, error) {
							old.AccessToken, old.RefreshToken = in.AccessToken, in.RefreshToken
							return old, nil
						})
					}
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					latest[k] = tok
					mu.Unlock()
					writes.Add(1)
				}
			}()
		}

		total := int64(tenants*len(providers)*2 + tenants) // tokens' two columns and the apps
		runCtx, cancel := context.WithCancel(ctx)
		prog, err := db.Rotation().Reencrypt(runCtx, pierredb.ReencryptOptions{BatchSize: 8, Progress: func(p pierredb.RotationProgress) {
			if p.Rewritten >= total/2 {
				cancel()
			}
		}})
		cancel()
		require.ErrorIs(t, err, context.Canceled)
		onePrefix(t, err)
		assert.Positive(t, prog.Rewritten)
		left, err := db.Rotation().CountInUse(ctx, keyring.PurposeEncryption, 1)
		require.NoError(t, err)
		assert.Positive(t, left, "cancelled halfway, values remain under version 1")

		prog, err = db.Rotation().Reencrypt(ctx, pierredb.ReencryptOptions{BatchSize: 8})
		require.NoError(t, err, "resumed")
		assert.Empty(t, prog.Unreadable)
		close(stop)
		wg.Wait()
		assert.Positive(t, writes.Load(), "the writers wrote during the rotation")

		left, err = db.Rotation().CountInUse(ctx, keyring.PurposeEncryption, 1)
		require.NoError(t, err)
		assert.Zero(t, left, "nothing is left under version 1")
		for k, want := range latest {
			got, err := scopes[k.tenant].OAuthTokens().Get(ctx, owner.ID, k.provider)
			require.NoError(t, err)
			sameSecret(t, want.AccessToken, got.AccessToken, fmt.Sprintf("tenant %d %s access token", k.tenant, k.provider))
			sameSecret(t, want.RefreshToken, got.RefreshToken, fmt.Sprintf("tenant %d %s refresh token", k.tenant, k.provider))
			assert.EqualValues(t, 2, storedVersion(t, db, "user_oauth_tokens", "access_token_encrypted", got.ID))
		}
		for i, s := range scopes {
			app, err := s.OAuthApps().Get(ctx, pierredb.ProviderStrava)
			require.NoError(t, err)
			sameSecret(t, apps[i], app.ClientSecret, "client secret")
		}
		require.NoError(t, db.Rotation().Retire(ctx, keyring.PurposeEncryption, 1))
		for k := range latest {
			_, err := scopes[k.tenant].OAuthTokens().Get(ctx, owner.ID, k.provider)
			require.NoError(t, err, "still readable after the old key is destroyed")
		}
	})
})

// Two instances re-encrypt the same database at once: both finish, and
// every value moves exactly once and reads back.
var _ = register("Rotation", "TwoInstances", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		owner := activeUser(t, db, "owner")
		var stored []pierredb.OAuthToken
		var scopes []*pierredb.TenantScope
		for range 4 {
			_, scope := newTenant(t, db, owner)
			for _, p := range []pierredb.Provider{pierredb.ProviderStrava, pierredb.ProviderFitbit, pierredb.ProviderGarmin, pierredb.ProviderOura, pierredb.ProviderPolar} {
				stored = append(stored, putToken(t, scope, owner.ID, p, "two"))
				scopes = append(scopes, scope)
			}
		}
		other := e.OpenURL(t, url)
		_, err := db.Keyring().Rotate(ctx, keyring.PurposeEncryption)
		require.NoError(t, err)
		var wg sync.WaitGroup
		results := make([]pierredb.RotationProgress, 2)
		for i, d := range []*pierredb.Database{db, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				results[i], err = d.Rotation().Reencrypt(ctx, pierredb.ReencryptOptions{BatchSize: 3})
				assert.NoError(t, err)
			}()
		}
		wg.Wait()
		assert.EqualValues(t, 2*len(stored), results[0].Rewritten+results[1].Rewritten, "each value moved once")
		for i, want := range stored {
			got, err := scopes[i].OAuthTokens().Get(ctx, owner.ID, want.Provider)
			require.NoError(t, err)
			sameToken(t, want, got)
		}
		require.NoError(t, other.Rotation().Retire(ctx, keyring.PurposeEncryption, 1))
	})
})

// Rotation moves every registered column, global ones included: the admin
// JWT signing secret (a table without tenant_id, keyed by an integer) moves
// to the new data key with the tokens, and after the old key is destroyed a
// fresh instance still verifies an admin token signed before.
var _ = register("Rotation", "GlobalColumn", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		owner := activeUser(t, db, "owner")
		_, scope := newTenant(t, db, owner)
		tok := putToken(t, scope, owner.ID, pierredb.ProviderStrava, "global")
		admin, err := db.AdminTokens().CreateFirst(ctx, pierredb.NewAdminToken{ServiceName: "rotation-test"})
		require.NoError(t, err)
		var secret []byte
		require.NoError(t, db.Bun().QueryRowContext(ctx, "SELECT secret_encrypted FROM admin_jwt_secret WHERE id = 1").Scan(&secret))
		v, err := keyring.EnvelopeKeyVersion(secret)
		require.NoError(t, err)
		require.EqualValues(t, 1, v)

		_, err = db.Keyring().Rotate(ctx, keyring.PurposeEncryption)
		require.NoError(t, err)
		prog, err := db.Rotation().Reencrypt(ctx, pierredb.ReencryptOptions{})
		require.NoError(t, err)
		assert.Empty(t, prog.Unreadable)
		require.NoError(t, db.Bun().QueryRowContext(ctx, "SELECT secret_encrypted FROM admin_jwt_secret WHERE id = 1").Scan(&secret))
		v, err = keyring.EnvelopeKeyVersion(secret)
		require.NoError(t, err)
		assert.EqualValues(t, 2, v, "the global secret moved")
		require.NoError(t, db.Rotation().Retire(ctx, keyring.PurposeEncryption, 1))

		fresh := e.OpenURL(t, url) // reads the secret from the table, not a cache
		_, err = fresh.AdminTokens().Verify(ctx, admin.Token.Reveal(), pierredb.AdminRotateKeys)
		require.NoError(t, err)
		freshScope, err := fresh.Tenant(ctx, scope.ID())
		require.NoError(t, err)
		got, err := freshScope.OAuthTokens().Get(ctx, owner.ID, pierredb.ProviderStrava)
		require.NoError(t, err)
		sameToken(t, tok, got)
	})
})

// A hashing key that still verifies stored credentials is not retired.
var _ = register("Rotation", "HashingKeyInUse", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := activeUser(t, db, "owner")
		tn, _ := newTenant(t, db, owner)
		rot := db.Rotation()
		hash := db.Keyring().HashCredential("api_key", []byte("pk_live_secret"))
		_, err := db.Bun().ExecContext(ctx,
			"INSERT INTO api_keys (id, tenant_id, user_id, name, key_prefix, key_hash, created_at, updated_at) VALUES ('k1', ?, ?, 'k', 'pk_live_x', ?, ?, ?)",
			tn.ID, owner.ID, hash, rawNow, rawNow)
		require.NoError(t, err)

		_, err = db.Keyring().Rotate(ctx, keyring.PurposeHashing)
		require.NoError(t, err)
		n, err := rot.CountInUse(ctx, keyring.PurposeHashing, 1)
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
		require.ErrorIs(t, rot.Retire(ctx, keyring.PurposeHashing, 1), keyring.ErrKeyInUse)
		n, err = rot.CountInUse(ctx, keyring.PurposeHashing, 2)
		require.NoError(t, err)
		assert.Zero(t, n)
		_, err = rot.CountInUse(ctx, "signing", 1)
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
})

// Retiring a data key destroys it: the stored row keeps its version but no key
// material, so setting its state back to active by hand cannot revive it; the
// next Open refuses the keyring as corrupt instead of decrypting again.
var _ = register("Rotation", "RetiredKeyCannotBeRevived", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		owner := activeUser(t, db, "owner")
		_, scope := newTenant(t, db, owner)
		tok := putToken(t, scope, owner.ID, pierredb.ProviderStrava, "revive")
		old := rawSealed(t, db, "user_oauth_tokens", "access_token_encrypted", tok.ID)

		_, err := db.Keyring().Rotate(ctx, keyring.PurposeEncryption)
		require.NoError(t, err)
		_, err = db.Rotation().Reencrypt(ctx, pierredb.ReencryptOptions{})
		require.NoError(t, err)
		require.NoError(t, db.Rotation().Retire(ctx, keyring.PurposeEncryption, 1))
		var material []byte
		require.NoError(t, db.Bun().QueryRowContext(ctx, "SELECT wrapped_key FROM keyring_keys WHERE purpose = 'encryption' AND version = 1").Scan(&material))
		assert.Empty(t, material, "retiring destroyed the wrapped key")

		// The old ciphertext, written back by hand, names a key that is gone.
		_, err = db.Bun().ExecContext(ctx, "UPDATE user_oauth_tokens SET access_token_encrypted = ? WHERE id = ?", old, tok.ID)
		require.NoError(t, err)
		_, err = scope.OAuthTokens().Get(ctx, owner.ID, pierredb.ProviderStrava)
		assert.ErrorIs(t, err, keyring.ErrUnknownKeyVersion)

		_, err = db.Bun().ExecContext(ctx, "UPDATE keyring_keys SET state = 'active' WHERE purpose = 'encryption' AND version = 1")
		require.NoError(t, err)
		_, err = pierredb.Open(url, e.Key)
		require.ErrorIs(t, err, keyring.ErrKeyringCorrupt)
		assert.Contains(t, err.Error(), "retired")
		onePrefix(t, err)
	})
})

// Rotation/KeyringRefusedInTx: the keyring commits on its own, so changing it
// inside RunInTx is refused at once (on SQLite it would otherwise wait forever
// for the writer connection the transaction holds), and nothing changes.
var _ = register("Rotation", "KeyringRefusedInTx", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		db := e.Open(t)
		before := db.Keyring().Keys()
		err := db.RunInTx(ctx, func(ctx context.Context, _ bun.Tx) error {
			_, err := db.Keyring().Rotate(ctx, keyring.PurposeEncryption)
			return err
		})
		require.ErrorIs(t, err, pierredb.ErrInvalidArgument)
		assert.Contains(t, err.Error(), "RunInTx")
		require.NoError(t, ctx.Err(), "refused at once, not after waiting")
		assert.Equal(t, before, db.Keyring().Keys())
		require.NoError(t, db.Keyring().Reload(ctx))
		assert.Equal(t, before, db.Keyring().Keys(), "nothing stored either")
		v, err := db.Keyring().Rotate(ctx, keyring.PurposeEncryption) // outside: fine
		require.NoError(t, err)
		assert.EqualValues(t, 2, v)
	})
})
