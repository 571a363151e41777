package pierredb_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
	"github.com/pierre-mcp/pierre/pierredb/storetest"
)

// TestDataKeyRotation: rotate the data key, re-encrypt stored secrets in batches,
// and retire the old version only once nothing uses it.
func TestDataKeyRotation(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		db := e.OpenURL(t, url)
		owner := mustUser(t, db, "owner")
		tn, _ := mustTenant(t, db, "club", owner)
		keys := db.Keyring()
		w := pierredb.EngineOf(db).Writer
		now := "2026-11-30T12:00:00.000000Z"

		const tokens = 5
		secrets := map[string][]byte{}
		for i := range tokens {
			id := "tok-" + string(rune('a'+i))
			plain := []byte("strava-access-token-" + id)
			env, err := keys.Encrypt(plain, keyring.Context{Tenant: tn.ID, Table: "user_oauth_tokens", Column: "access_token_encrypted", RowID: id})
			require.NoError(t, err)
			_, err = w.ExecContext(ctx, "INSERT INTO user_oauth_tokens (id, tenant_id, user_id, provider, access_token_encrypted, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
				id, tn.ID, owner.ID, "p"+id, env, now, now)
			require.NoError(t, err)
			secrets[id] = plain
		}
		n, err := db.CountInUse(ctx, keyring.PurposeEncryption, 1)
		require.NoError(t, err)
		assert.EqualValues(t, tokens, n)

		v2, err := keys.Rotate(ctx, keyring.PurposeEncryption)
		require.NoError(t, err)
		require.EqualValues(t, 2, v2)
		err = db.RetireKey(ctx, keyring.PurposeEncryption, 1)
		require.ErrorIs(t, err, keyring.ErrKeyInUse, "version 1 still encrypts %d tokens", tokens)

		res, err := db.ReencryptBatch(ctx, 2)
		require.NoError(t, err)
		assert.Equal(t, pierredb.ReencryptResult{Rewritten: 2, Remaining: tokens - 2}, res)
		for res.Remaining > 0 {
			res, err = db.ReencryptBatch(ctx, 2)
			require.NoError(t, err)
		}
		n, err = db.CountInUse(ctx, keyring.PurposeEncryption, 1)
		require.NoError(t, err)
		assert.Zero(t, n)

		// Every secret reads back under version 2, bound to its row, and a
		// second instance (which loaded the keyring before) can read it too.
		other := e.OpenURL(t, url)
		for id, plain := range secrets {
			var env []byte
			require.NoError(t, w.QueryRowContext(ctx, "SELECT access_token_encrypted FROM user_oauth_tokens WHERE id = ?", id).Scan(&env))
			version, err := keyring.EnvelopeKeyVersion(env)
			require.NoError(t, err)
			assert.EqualValues(t, 2, version)
			c := keyring.Context{Tenant: tn.ID, Table: "user_oauth_tokens", Column: "access_token_encrypted", RowID: id}
			got, err := other.Keyring().Decrypt(env, c)
			require.NoError(t, err)
			assert.Equal(t, plain, got)
		}

		require.NoError(t, db.RetireKey(ctx, keyring.PurposeEncryption, 1))
		res, err = db.ReencryptBatch(ctx, 10)
		require.NoError(t, err)
		assert.Equal(t, pierredb.ReencryptResult{}, res)
		_, err = db.ReencryptBatch(ctx, 0)
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
}

// TestHashingKeyInUse: a hashing key that still verifies stored credentials is
// not retired.
func TestHashingKeyInUse(t *testing.T) {
	storetest.Run(t, func(t *testing.T, e storetest.Engine) {
		t.Parallel()
		ctx := t.Context()
		db := e.Open(t)
		owner := mustUser(t, db, "owner")
		tn, _ := mustTenant(t, db, "club", owner)
		hash := db.Keyring().HashCredential("api_key", []byte("pk_live_secret"))
		now := "2026-11-30T12:00:00.000000Z"
		_, err := pierredb.EngineOf(db).Writer.ExecContext(ctx,
			"INSERT INTO api_keys (id, tenant_id, user_id, name, key_prefix, key_hash, created_at, updated_at) VALUES ('k1', ?, ?, 'k', 'pk_live_x', ?, ?, ?)",
			tn.ID, owner.ID, hash, now, now)
		require.NoError(t, err)

		_, err = db.Keyring().Rotate(ctx, keyring.PurposeHashing)
		require.NoError(t, err)
		n, err := db.CountInUse(ctx, keyring.PurposeHashing, 1)
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
		require.ErrorIs(t, db.RetireKey(ctx, keyring.PurposeHashing, 1), keyring.ErrKeyInUse)
		n, err = db.CountInUse(ctx, keyring.PurposeHashing, 2)
		require.NoError(t, err)
		assert.Zero(t, n)
		_, err = db.CountInUse(ctx, "signing", 1)
		assert.ErrorIs(t, err, pierredb.ErrInvalidArgument)
	})
}
