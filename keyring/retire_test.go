package keyring

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tamper edits a MemoryStore's stored snapshot in place, as someone with
// write access to the database would with an UPDATE statement.
func tamper(m *MemoryStore, edit func(*Snapshot)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	edit(&m.snap)
}

// storedKey returns the stored row of (p, version).
func storedKey(t testing.TB, s Store, p Purpose, version uint32) WrappedKey {
	t.Helper()
	snap := mustLoad(t, s)
	i := findKey(snap.Keys, p, version)
	require.GreaterOrEqual(t, i, 0, "%s v%d stored", p, version)
	return snap.Keys[i]
}

// setState sets the stored state of (p, version).
func setState(m *MemoryStore, p Purpose, version uint32, s KeyState) {
	tamper(m, func(snap *Snapshot) { snap.Keys[findKey(snap.Keys, p, version)].State = s })
}

// retiredKeyring opens a keyring, seals values and a credential hash under
// version 1 of both purposes, rotates both and retires version 1 of both
// (with a counter that reports nothing in use, so the old values are still
// around to try).
func retiredKeyring(t *testing.T, mek MasterKey) (*Keyring, *MemoryStore, []sealed, string) {
	t.Helper()
	ctx := context.Background()
	k, store := openTest(t, mek)
	old := sealSome(t, k, 3)
	oldHash := k.HashCredential("api_key", []byte("pk_live_old"))
	for _, p := range purposes {
		_, err := k.Rotate(ctx, p)
		require.NoError(t, err)
		require.NoError(t, k.Retire(ctx, p, 1, countMap{}))
	}
	return k, store, old, oldHash
}

func TestRetireDestroysKeyMaterial(t *testing.T) {
	mek := sequentialKey(t, 1)
	fixed := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	k, store := openTest(t, mek, WithClock(func() time.Time { return fixed }))
	ctx := context.Background()
	for _, p := range purposes {
		_, err := k.Rotate(ctx, p)
		require.NoError(t, err)
		require.NoError(t, k.Retire(ctx, p, 1, countMap{}))

		w := storedKey(t, store, p, 1)
		assert.Equal(t, StateRetired, w.State)
		assert.Empty(t, w.Ciphertext, "%s v1: the wrapped key is gone", p)
		assert.NotNil(t, w.Ciphertext, "empty, not NULL: the SQL column is NOT NULL")
		assert.Empty(t, w.Fingerprint, "nothing is wrapped, so no master key fingerprint")
		assert.Equal(t, fixed, w.UpdatedAt)
		assert.Equal(t, StateRetired, keyState(k, p, 1), "Keys still lists the retired version")

		other := storedKey(t, store, p, 2)
		assert.Len(t, other.Ciphertext, wrappedKeySize, "the other version keeps its key")
	}

	// A retired, destroyed key is normal: the store opens and unlocks.
	for _, open := range []func(context.Context, Store, MasterKey, ...Option) (*Keyring, error){Open, Unlock} {
		counted := &countingStore{Store: store}
		again, err := open(ctx, counted, mek)
		require.NoError(t, err)
		assert.Zero(t, counted.writes())
		assert.Equal(t, k.Keys(), again.Keys())
	}
	require.NoError(t, k.Reload(ctx))

	t.Run("retiring again writes nothing", func(t *testing.T) {
		before := mustLoad(t, store)
		require.NoError(t, k.Retire(ctx, PurposeEncryption, 1, countMap{}))
		assert.Equal(t, before, mustLoad(t, store))
	})
}

func TestRetiredKeyCannotBeRevived(t *testing.T) {
	ctx := context.Background()
	mek := sequentialKey(t, 1)

	tests := []struct {
		name   string
		revive func(t *testing.T, m *MemoryStore)
		// names are the purpose and state the error must mention.
		purpose Purpose
		state   KeyState
	}{
		{"encryption key set back to active", func(_ *testing.T, m *MemoryStore) {
			setState(m, PurposeEncryption, 1, StateActive)
		}, PurposeEncryption, StateActive},
		{"hashing key set back to active", func(_ *testing.T, m *MemoryStore) {
			setState(m, PurposeHashing, 1, StateActive)
		}, PurposeHashing, StateActive},
		{"encryption key set back to primary", func(_ *testing.T, m *MemoryStore) {
			setState(m, PurposeEncryption, 2, StateActive)
			setState(m, PurposeEncryption, 1, StatePrimary)
		}, PurposeEncryption, StatePrimary},
		{"active with the fingerprint restored", func(_ *testing.T, m *MemoryStore) {
			tamper(m, func(s *Snapshot) {
				w := &s.Keys[findKey(s.Keys, PurposeEncryption, 1)]
				w.State, w.Fingerprint = StateActive, mek.Fingerprint()
			})
		}, PurposeEncryption, StateActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, store, old, oldHash := retiredKeyring(t, mek)
			tt.revive(t, store)
			before := mustLoad(t, store)

			for name, open := range map[string]func(context.Context, Store, MasterKey, ...Option) (*Keyring, error){"Open": Open, "Unlock": Unlock} {
				counted := &countingStore{Store: store}
				revived, err := open(ctx, counted, mek)
				require.ErrorIs(t, err, ErrKeyringCorrupt, name)
				assert.Nil(t, revived, name)
				assert.Zero(t, counted.writes(), name)
				msg := err.Error()
				assert.Contains(t, msg, string(tt.purpose)+" key version 1", name)
				assert.Contains(t, msg, string(tt.state), name)
				assert.Contains(t, msg, "retired", name)
				assert.Contains(t, msg, "destroyed", name)
			}

			// The running keyring refuses the revived store and keeps
			// treating version 1 as gone.
			require.ErrorIs(t, k.Reload(ctx), ErrKeyringCorrupt)
			for _, v := range old {
				_, err := k.Decrypt(v.envelope, v.ctx)
				require.ErrorIs(t, err, ErrUnknownKeyVersion)
			}
			_, err := k.VerifyCredential("api_key", []byte("pk_live_old"), oldHash)
			require.ErrorIs(t, err, ErrUnknownKeyVersion)

			// No key change goes through on top of the revived row.
			require.ErrorIs(t, k.Promote(ctx, tt.purpose, 1), ErrKeyringCorrupt)
			_, err = k.AddVersion(ctx, tt.purpose)
			require.ErrorIs(t, err, ErrKeyringCorrupt)
			require.ErrorIs(t, k.RotateMasterKey(ctx, sequentialKey(t, 90)), ErrKeyringCorrupt)
			assert.Equal(t, before, mustLoad(t, store), "nothing written")
		})
	}
}

func TestRetiredKeyCannotBeRevivedWithAnotherVersionsMaterial(t *testing.T) {
	ctx := context.Background()
	mek := sequentialKey(t, 1)
	_, store, old, _ := retiredKeyring(t, mek)
	tamper(store, func(s *Snapshot) {
		src := s.Keys[findKey(s.Keys, PurposeEncryption, 2)]
		w := &s.Keys[findKey(s.Keys, PurposeEncryption, 1)]
		w.State, w.Ciphertext, w.Fingerprint = StateActive, append([]byte(nil), src.Ciphertext...), src.Fingerprint
	})
	_, err := Unlock(ctx, store, mek)
	require.ErrorIs(t, err, ErrKeyringCorrupt, "a wrapped key is bound to its version")
	assert.NotEmpty(t, old)
}

func TestPromoteRefusesRetiredVersion(t *testing.T) {
	ctx := context.Background()
	k, store, _, _ := retiredKeyring(t, sequentialKey(t, 1))
	before := mustLoad(t, store)
	for _, p := range purposes {
		require.ErrorIs(t, k.Promote(ctx, p, 1), ErrUnknownKeyVersion)
	}
	assert.Equal(t, before, mustLoad(t, store))
}

func TestRotateMasterKeySkipsRetiredKeys(t *testing.T) {
	ctx := context.Background()
	oldMEK, newMEK := sequentialKey(t, 1), sequentialKey(t, 100)
	k, store, _, _ := retiredKeyring(t, oldMEK)
	retired := map[Purpose]WrappedKey{}
	for _, p := range purposes {
		retired[p] = storedKey(t, store, p, 1)
	}

	require.NoError(t, k.RotateMasterKey(ctx, newMEK))
	for _, p := range purposes {
		assert.Equal(t, retired[p], storedKey(t, store, p, 1), "%s v1: a destroyed key is not touched", p)
		assert.Equal(t, newMEK.Fingerprint(), storedKey(t, store, p, 2).Fingerprint)
	}
	reopened, err := Unlock(ctx, store, newMEK)
	require.NoError(t, err, "the new master key alone opens the store")
	assert.Equal(t, k.Keys(), reopened.Keys())
}

// legacyRetiredStore returns a store as Retire left it before retiring
// destroyed keys: encryption version 1 retired, its wrapped key still there.
func legacyRetiredStore(t *testing.T, mek MasterKey) (*MemoryStore, []sealed) {
	t.Helper()
	ctx := context.Background()
	k, store := openTest(t, mek)
	old := sealSome(t, k, 2)
	_, err := k.Rotate(ctx, PurposeEncryption)
	require.NoError(t, err)
	setState(store, PurposeEncryption, 1, StateRetired)
	require.Len(t, storedKey(t, store, PurposeEncryption, 1).Ciphertext, wrappedKeySize)
	return store, old
}

func TestLegacyRetiredKeyIsNeverUnwrapped(t *testing.T) {
	ctx := context.Background()
	mek := sequentialKey(t, 1)
	store, old := legacyRetiredStore(t, mek)

	// Even corrupt or under a master key nobody holds, it never stops the
	// store from opening: it is not unwrapped, so neither matters.
	tamper(store, func(s *Snapshot) {
		w := &s.Keys[findKey(s.Keys, PurposeEncryption, 1)]
		w.Ciphertext[30] ^= 1
		w.Fingerprint = sequentialKey(t, 77).Fingerprint()
	})
	counted := &countingStore{Store: store}
	k, err := Unlock(ctx, counted, mek)
	require.NoError(t, err)
	assert.Zero(t, counted.writes())
	_, err = k.Decrypt(old[0].envelope, old[0].ctx)
	require.ErrorIs(t, err, ErrUnknownKeyVersion)
}

func TestLegacyRetiredKeyIsDestroyedByRetire(t *testing.T) {
	ctx := context.Background()
	mek := sequentialKey(t, 1)
	store, old := legacyRetiredStore(t, mek)
	k, err := Unlock(ctx, store, mek)
	require.NoError(t, err)

	// Retire runs the in-use count again before destroying anything.
	require.ErrorIs(t, k.Retire(ctx, PurposeEncryption, 1, countMap{PurposeEncryption: {1: 2}}), ErrKeyInUse)
	assert.Len(t, storedKey(t, store, PurposeEncryption, 1).Ciphertext, wrappedKeySize)

	require.NoError(t, k.Retire(ctx, PurposeEncryption, 1, countMap{}))
	w := storedKey(t, store, PurposeEncryption, 1)
	assert.Equal(t, StateRetired, w.State)
	assert.Empty(t, w.Ciphertext)
	assert.Empty(t, w.Fingerprint)

	// Now the revival attack fails as on a store retired after the change.
	setState(store, PurposeEncryption, 1, StateActive)
	_, err = Unlock(ctx, store, mek)
	require.ErrorIs(t, err, ErrKeyringCorrupt)
	_, err = k.Decrypt(old[0].envelope, old[0].ctx)
	require.ErrorIs(t, err, ErrUnknownKeyVersion)
}

func TestLegacyRetiredKeyIsDestroyedByRotateMasterKey(t *testing.T) {
	ctx := context.Background()
	oldMEK, newMEK := sequentialKey(t, 1), sequentialKey(t, 100)
	store, old := legacyRetiredStore(t, oldMEK)
	// Corrupt too: it is destroyed, never unwrapped, so that does not matter.
	tamper(store, func(s *Snapshot) { s.Keys[findKey(s.Keys, PurposeEncryption, 1)].Ciphertext[30] ^= 1 })
	k, err := Unlock(ctx, store, oldMEK)
	require.NoError(t, err)

	require.NoError(t, k.RotateMasterKey(ctx, newMEK))
	w := storedKey(t, store, PurposeEncryption, 1)
	assert.Equal(t, StateRetired, w.State)
	assert.Empty(t, w.Ciphertext, "not rewrapped under the new master key: destroyed")
	assert.Empty(t, w.Fingerprint)

	reopened, err := Unlock(ctx, store, newMEK)
	require.NoError(t, err)
	_, err = reopened.Decrypt(old[0].envelope, old[0].ctx)
	require.ErrorIs(t, err, ErrUnknownKeyVersion)
	setState(store, PurposeEncryption, 1, StateActive)
	_, err = Unlock(ctx, store, newMEK)
	require.ErrorIs(t, err, ErrKeyringCorrupt)
}
