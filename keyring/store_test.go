package keyring

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemoryStoreContract(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	key := func(p Purpose, v uint32, s KeyState, ct byte, at time.Time) WrappedKey {
		return WrappedKey{Purpose: p, Version: v, State: s, Ciphertext: []byte{ct}, Fingerprint: "fp", CreatedAt: at, UpdatedAt: at}
	}
	initial := Snapshot{DatabaseID: "db-1", Keys: []WrappedKey{key(PurposeEncryption, 1, StatePrimary, 1, t0)}}

	t.Run("load of an empty store", func(t *testing.T) {
		snap, err := NewMemoryStore().Load(ctx)
		require.NoError(t, err)
		assert.Equal(t, Snapshot{}, snap)
	})
	t.Run("create is insert-if-absent", func(t *testing.T) {
		s := NewMemoryStore()
		created, err := s.Create(ctx, initial)
		require.NoError(t, err)
		assert.True(t, created)
		created, err = s.Create(ctx, Snapshot{DatabaseID: "db-2"})
		require.NoError(t, err)
		assert.False(t, created, "losing is (false, nil)")
		assert.Equal(t, initial, mustLoad(t, s))
	})
	t.Run("create needs an id", func(t *testing.T) {
		_, err := NewMemoryStore().Create(ctx, Snapshot{})
		require.Error(t, err)
	})
	t.Run("update upserts and keeps CreatedAt", func(t *testing.T) {
		s := storeWith(t, initial)
		require.NoError(t, s.Update(ctx, func(cur Snapshot) ([]WrappedKey, error) {
			assert.Equal(t, initial, cur)
			return []WrappedKey{
				key(PurposeEncryption, 1, StateActive, 9, t1),
				key(PurposeEncryption, 2, StatePrimary, 2, t1),
			}, nil
		}))
		assert.Equal(t, Snapshot{DatabaseID: "db-1", Keys: []WrappedKey{
			{Purpose: PurposeEncryption, Version: 1, State: StateActive, Ciphertext: []byte{9}, Fingerprint: "fp", CreatedAt: t0, UpdatedAt: t1},
			key(PurposeEncryption, 2, StatePrimary, 2, t1),
		}}, mustLoad(t, s))
	})
	t.Run("update error writes nothing", func(t *testing.T) {
		s := storeWith(t, initial)
		boom := errors.New("boom")
		err := s.Update(ctx, func(Snapshot) ([]WrappedKey, error) {
			return []WrappedKey{key(PurposeHashing, 1, StatePrimary, 3, t1)}, boom
		})
		require.ErrorIs(t, err, boom)
		assert.Equal(t, initial, mustLoad(t, s))
	})
	t.Run("update on an empty store refuses to write", func(t *testing.T) {
		s := NewMemoryStore()
		err := s.Update(ctx, func(Snapshot) ([]WrappedKey, error) {
			return []WrappedKey{key(PurposeHashing, 1, StatePrimary, 3, t1)}, nil
		})
		require.Error(t, err)
		assert.Equal(t, Snapshot{}, mustLoad(t, s))
	})
	t.Run("no aliasing", func(t *testing.T) {
		s := storeWith(t, initial)
		snap := mustLoad(t, s)
		snap.Keys[0].Ciphertext[0] = 0xEE
		require.NoError(t, s.Update(ctx, func(cur Snapshot) ([]WrappedKey, error) {
			cur.Keys[0].Ciphertext[0] = 0xDD
			return nil, nil
		}))
		assert.Equal(t, []byte{1}, mustLoad(t, s).Keys[0].Ciphertext)
	})
	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		s := NewMemoryStore()
		_, err := s.Load(cctx)
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.Create(cctx, initial)
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, s.Update(cctx, func(Snapshot) ([]WrappedKey, error) { return nil, nil }), context.Canceled)
		assert.Equal(t, Snapshot{}, mustLoad(t, s))
	})
	t.Run("updates are serialised", func(t *testing.T) {
		s := storeWith(t, initial)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				assert.NoError(t, s.Update(ctx, func(cur Snapshot) ([]WrappedKey, error) {
					v, err := nextVersion(cur.Keys, PurposeEncryption)
					return []WrappedKey{key(PurposeEncryption, v, StateActive, byte(v), t1)}, err
				}))
			}()
		}
		wg.Wait()
		assert.Len(t, mustLoad(t, s).Keys, 9, "each read-modify-write saw the previous one")
	})
}
