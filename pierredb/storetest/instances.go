package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

// Two instances share one database. When one rotates the hashing key, a key it
// issues under the new version verifies on the other at once (the other
// re-reads the keyring when it meets a version newer than it knows), and the
// other seals under the new version within a minute of its clock.
var _ = register("Instances", "KeyRotationReachesOtherInstances", func(t *testing.T) {
	Run(t, func(t *testing.T, e Engine) {
		t.Parallel()
		ctx := t.Context()
		url := e.NewURL(t)
		clk := newClock(base)
		a := e.OpenURL(t, url, pierredb.WithClock(clk.Now))
		b := e.OpenURL(t, url, pierredb.WithClock(clk.Now))
		owner := activeUser(t, a, "owner")
		_, scope := newTenant(t, a, owner)

		v, err := a.Keyring().Rotate(ctx, keyring.PurposeHashing)
		require.NoError(t, err)
		created, err := scope.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: owner.ID, Name: "after rotation"})
		require.NoError(t, err)
		assert.Equal(t, uint32(1), b.Keyring().PrimaryVersion(keyring.PurposeHashing), "b still has the keyring it loaded")
		p, err := b.APIKeys().Check(ctx, created.Key.Reveal())
		require.NoError(t, err, "b verifies a key hashed under a version it had not loaded")
		assert.Equal(t, created.ID, p.KeyID)
		assert.Equal(t, v, b.Keyring().PrimaryVersion(keyring.PurposeHashing), "meeting the new version made b re-read the keyring")

		// Rotated again by a; b learns of it by itself once its keyring is a
		// minute old, and then hashes under the newest version.
		v3, err := a.Keyring().Rotate(ctx, keyring.PurposeHashing)
		require.NoError(t, err)
		clk.Advance(2 * time.Minute)
		scopeB, err := b.Tenant(ctx, scope.ID())
		require.NoError(t, err)
		fresh, err := scopeB.APIKeys().Create(ctx, pierredb.NewAPIKey{UserID: owner.ID, Name: "from b"})
		require.NoError(t, err)
		assert.Equal(t, v3, b.Keyring().PrimaryVersion(keyring.PurposeHashing))
		_, err = a.APIKeys().Check(ctx, fresh.Key.Reveal())
		require.NoError(t, err)
	})
})
