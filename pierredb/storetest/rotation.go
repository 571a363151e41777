package storetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

const rawNow = "2026-11-30T12:00:00.000000Z"

// sealRawToken stores an access token the way the store seals it, through raw
// SQL, and returns its context.
func sealRawToken(t *testing.T, db *pierredb.Database, tenantID, userID, id string, plain []byte) keyring.Context {
	t.Helper()
	c := keyring.Context{Tenant: tenantID, Table: "user_oauth_tokens", Column: "access_token_encrypted", RowID: id}
	env, err := db.Keyring().Encrypt(plain, c)
	require.NoError(t, err)
	_, err = db.Bun().ExecContext(t.Context(), "INSERT INTO user_oauth_tokens (id, tenant_id, user_id, provider, access_token_encrypted, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		id, tenantID, userID, "p"+id, env, rawNow, rawNow)
	require.NoError(t, err)
	return c
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
		tn, _ := newTenant(t, db, owner)
		keys, rot := db.Keyring(), db.Rotation()

		const tokens = 5
		secrets := map[string][]byte{}
		for i := range tokens {
			id := "tok-" + string(rune('a'+i))
			secrets[id] = []byte("strava-access-token-" + id)
			sealRawToken(t, db, tn.ID, owner.ID, id, secrets[id])
		}
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
		assert.Equal(t, pierredb.ReencryptResult{Rewritten: 2, Remaining: tokens - 2}, res)
		for res.Remaining > 0 {
			res, err = rot.ReencryptBatch(ctx, 2)
			require.NoError(t, err)
		}
		n, err = rot.CountInUse(ctx, keyring.PurposeEncryption, 1)
		require.NoError(t, err)
		assert.Zero(t, n)

		// Every secret reads back under version 2, bound to its row, and a
		// second instance (which loaded the keyring before) can read it too.
		other := e.OpenURL(t, url)
		for id, plain := range secrets {
			var env []byte
			require.NoError(t, db.Bun().QueryRowContext(ctx, "SELECT access_token_encrypted FROM user_oauth_tokens WHERE id = ?", id).Scan(&env))
			version, err := keyring.EnvelopeKeyVersion(env)
			require.NoError(t, err)
			assert.EqualValues(t, 2, version)
			c := keyring.Context{Tenant: tn.ID, Table: "user_oauth_tokens", Column: "access_token_encrypted", RowID: id}
			got, err := other.Keyring().Decrypt(env, c)
			require.NoError(t, err)
			assert.Equal(t, plain, got)
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
		tn, _ := newTenant(t, db, owner)
		rot := db.Rotation()
		for _, id := range []string{"tok-a", "tok-b", "tok-c", "tok-d"} {
			sealRawToken(t, db, tn.ID, owner.ID, id, []byte("secret of "+id))
		}
		// tok-b now holds tok-a's ciphertext: bound to tok-a, it fails to open.
		_, err := db.Bun().ExecContext(ctx, "UPDATE user_oauth_tokens SET access_token_encrypted = (SELECT access_token_encrypted FROM user_oauth_tokens WHERE id = 'tok-a') WHERE id = 'tok-b'")
		require.NoError(t, err)
		_, err = db.Keyring().Rotate(ctx, keyring.PurposeEncryption)
		require.NoError(t, err)

		// Batches of one: tok-a moves; then tok-b fails to open, is reported and
		// stepped over, and tok-c moves in the same batch; then tok-d.
		bad := pierredb.SealedValue{Table: "user_oauth_tokens", Column: "access_token_encrypted", RowID: "tok-b"}
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
		assert.Equal(t, pierredb.ReencryptResult{Remaining: 1, Unreadable: []pierredb.SealedValue{
			{Table: "user_oauth_tokens", Column: "access_token_encrypted", RowID: "tok-b"}}}, res)
		require.ErrorIs(t, rot.Retire(ctx, keyring.PurposeEncryption, 1), keyring.ErrKeyInUse, "the unreadable row still uses version 1")
		_, err = db.Bun().ExecContext(ctx, "DELETE FROM user_oauth_tokens WHERE id = 'tok-b'")
		require.NoError(t, err)
		require.NoError(t, rot.Retire(ctx, keyring.PurposeEncryption, 1))
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
		tn, _ := newTenant(t, db, owner)
		c := sealRawToken(t, db, tn.ID, owner.ID, "tok-a", []byte("sealed under version 1"))
		var old []byte
		require.NoError(t, db.Bun().QueryRowContext(ctx, "SELECT access_token_encrypted FROM user_oauth_tokens WHERE id = 'tok-a'").Scan(&old))

		_, err := db.Keyring().Rotate(ctx, keyring.PurposeEncryption)
		require.NoError(t, err)
		for res := (pierredb.ReencryptResult{Remaining: 1}); res.Remaining > 0; {
			res, err = db.Rotation().ReencryptBatch(ctx, 10)
			require.NoError(t, err)
		}
		require.NoError(t, db.Rotation().Retire(ctx, keyring.PurposeEncryption, 1))
		var material []byte
		require.NoError(t, db.Bun().QueryRowContext(ctx, "SELECT wrapped_key FROM keyring_keys WHERE purpose = 'encryption' AND version = 1").Scan(&material))
		assert.Empty(t, material, "retiring destroyed the wrapped key")
		_, err = db.Keyring().Decrypt(old, c)
		assert.ErrorIs(t, err, keyring.ErrUnknownKeyVersion)

		_, err = db.Bun().ExecContext(ctx, "UPDATE keyring_keys SET state = 'active' WHERE purpose = 'encryption' AND version = 1")
		require.NoError(t, err)
		_, err = pierredb.Open(url, e.Key)
		require.ErrorIs(t, err, keyring.ErrKeyringCorrupt)
		assert.Contains(t, err.Error(), "retired")
		onePrefix(t, err)
	})
})
