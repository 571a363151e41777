package keyring

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sealed is one stored value for rotation tests.
type sealed struct {
	ctx       Context
	plaintext string
	envelope  []byte
}

func sealSome(t *testing.T, k *Keyring, n int) []sealed {
	t.Helper()
	out := make([]sealed, n)
	for i := range out {
		c := tokenContext()
		c.RowID = fmt.Sprintf("row-%d", i)
		env, err := k.Encrypt([]byte(fmt.Sprintf("token-%d", i)), c)
		require.NoError(t, err)
		out[i] = sealed{ctx: c, plaintext: fmt.Sprintf("token-%d", i), envelope: env}
	}
	return out
}

func requireAllOpen(t *testing.T, k *Keyring, values []sealed) {
	t.Helper()
	for _, v := range values {
		got, err := k.Decrypt(v.envelope, v.ctx)
		require.NoError(t, err)
		require.Equal(t, v.plaintext, string(got))
	}
}

// countMap is an InUseCounter over a fixed table of counts.
type countMap map[Purpose]map[uint32]int64

func (m countMap) CountInUse(_ context.Context, p Purpose, v uint32) (int64, error) {
	return m[p][v], nil
}

func TestRotateMasterKey(t *testing.T) {
	ctx := context.Background()
	oldMEK, newMEK := sequentialKey(t, 1), sequentialKey(t, 100)
	k, store := openTest(t, oldMEK)

	// A retired version has nothing left to rewrap.
	_, err := k.Rotate(ctx, PurposeEncryption)
	require.NoError(t, err)
	require.NoError(t, k.Retire(ctx, PurposeEncryption, 1, countMap{}))
	values := sealSome(t, k, 5)
	hash := k.HashCredential("api_key", []byte("pk_live_1"))

	require.NoError(t, k.RotateMasterKey(ctx, newMEK))
	assert.Equal(t, newMEK.Fingerprint(), k.MasterKeyFingerprint())
	for _, w := range mustLoad(t, store).Keys {
		if w.State == StateRetired {
			assert.Empty(t, w.Ciphertext, "%s v%d", w.Purpose, w.Version)
			assert.Empty(t, w.Fingerprint, "%s v%d", w.Purpose, w.Version)
			continue
		}
		assert.Equal(t, newMEK.Fingerprint(), w.Fingerprint, "%s v%d", w.Purpose, w.Version)
		_, err := unwrapKey(newMEK, k.DatabaseID(), w.Purpose, w.Version, w.Ciphertext)
		require.NoError(t, err, "%s v%d unwraps under the new key", w.Purpose, w.Version)
	}

	requireAllOpen(t, k, values)
	fresh, err := Open(ctx, store, newMEK)
	require.NoError(t, err)
	requireAllOpen(t, fresh, values)
	ok, err := fresh.VerifyCredential("api_key", []byte("pk_live_1"), hash)
	require.NoError(t, err)
	assert.True(t, ok)

	counted := &countingStore{Store: store}
	_, err = Open(ctx, counted, oldMEK)
	require.ErrorIs(t, err, ErrWrongMasterKey, "the old key alone no longer opens the store")
	assert.Zero(t, counted.writes())

	t.Run("repeating is harmless", func(t *testing.T) {
		before := mustLoad(t, store)
		require.NoError(t, k.RotateMasterKey(ctx, newMEK))
		assert.Equal(t, before, mustLoad(t, store))
	})
	t.Run("writes after rotation use the new key", func(t *testing.T) {
		v, err := k.AddVersion(ctx, PurposeHashing)
		require.NoError(t, err)
		snap := mustLoad(t, store)
		assert.Equal(t, newMEK.Fingerprint(), snap.Keys[findKey(snap.Keys, PurposeHashing, v)].Fingerprint)
	})
	t.Run("zero key refused", func(t *testing.T) {
		require.ErrorIs(t, k.RotateMasterKey(ctx, MasterKey{}), ErrMasterKeyMissing)
	})
}

func TestRotateMasterKeyRefusesCorruptKey(t *testing.T) {
	// A key that goes corrupt after unlock is found when it is rewrapped,
	// and nothing is written. (Retired keys are not rewrapped: see
	// TestLegacyRetiredKeyIsDestroyedByRotateMasterKey.)
	ctx := context.Background()
	k, store := openTest(t, sequentialKey(t, 1))
	_, err := k.AddVersion(ctx, PurposeEncryption)
	require.NoError(t, err)
	tamper(store, func(s *Snapshot) { s.Keys[findKey(s.Keys, PurposeEncryption, 2)].Ciphertext[30] ^= 1 })

	before := mustLoad(t, store)
	require.ErrorIs(t, k.RotateMasterKey(ctx, sequentialKey(t, 50)), ErrKeyringCorrupt)
	assert.Equal(t, before, mustLoad(t, store), "nothing written")
	assert.Equal(t, sequentialKey(t, 1).Fingerprint(), k.MasterKeyFingerprint())
}

func TestPreviousMasterKeyRollover(t *testing.T) {
	ctx := context.Background()
	oldMEK, newMEK := sequentialKey(t, 1), sequentialKey(t, 100)
	k, store := openTest(t, oldMEK)
	values := sealSome(t, k, 3)

	// The operator deploys the new key, keeping the old one as previous.
	env := envMap(map[string]string{EnvMasterKey: newMEK.EncodeBase64(), EnvPreviousMasterKey: oldMEK.EncodeHex()})
	mek, err := LoadMasterKey(LoadOptions{Getenv: env})
	require.NoError(t, err)
	prev, err := LoadPreviousMasterKey(LoadOptions{Getenv: env})
	require.NoError(t, err)

	_, err = Open(ctx, store, mek)
	require.ErrorIs(t, err, ErrWrongMasterKey, "without the previous key the new one cannot open")

	rolling, err := Open(ctx, store, mek, WithPreviousMasterKey(prev))
	require.NoError(t, err)
	requireAllOpen(t, rolling, values)
	assert.Equal(t, newMEK.Fingerprint(), rolling.MasterKeyFingerprint())

	// A version added mid-rollover is wrapped under the new key at once.
	v, err := rolling.AddVersion(ctx, PurposeEncryption)
	require.NoError(t, err)
	snap := mustLoad(t, store)
	assert.Equal(t, newMEK.Fingerprint(), snap.Keys[findKey(snap.Keys, PurposeEncryption, v)].Fingerprint)
	require.NoError(t, rolling.Reload(ctx), "a mixed keyring reloads with both keys")

	require.NoError(t, rolling.RotateMasterKey(ctx, mek))
	after, err := Open(ctx, store, newMEK)
	require.NoError(t, err, "after the rollover the new key alone suffices")
	requireAllOpen(t, after, values)
}

func TestStaleMasterKeyCannotWrite(t *testing.T) {
	ctx := context.Background()
	oldMEK := sequentialKey(t, 1)
	k1, store := openTest(t, oldMEK)
	k2, err := Open(ctx, store, oldMEK)
	require.NoError(t, err)
	require.NoError(t, k1.RotateMasterKey(ctx, sequentialKey(t, 100)))

	before := mustLoad(t, store)
	_, err = k2.AddVersion(ctx, PurposeEncryption)
	require.ErrorIs(t, err, ErrWrongMasterKey)
	_, err = k2.Rotate(ctx, PurposeHashing)
	require.ErrorIs(t, err, ErrWrongMasterKey)
	require.ErrorIs(t, k2.Reload(ctx), ErrWrongMasterKey)
	assert.Equal(t, before, mustLoad(t, store), "no key wrapped under the stale master key was written")
}

func TestDataKeyRotation(t *testing.T) {
	ctx := context.Background()
	k, store := openTest(t, sequentialKey(t, 1))
	old := sealSome(t, k, 3)

	v2, err := k.Rotate(ctx, PurposeEncryption)
	require.NoError(t, err)
	require.EqualValues(t, 2, v2)
	assert.EqualValues(t, 2, k.PrimaryVersion(PurposeEncryption))
	assert.EqualValues(t, 1, k.PrimaryVersion(PurposeHashing), "other purposes untouched")

	requireAllOpen(t, k, old)
	fresh := sealSome(t, k, 2)
	for _, v := range fresh {
		version, err := EnvelopeKeyVersion(v.envelope)
		require.NoError(t, err)
		assert.EqualValues(t, 2, version)
	}

	t.Run("reencrypt moves old values to the primary", func(t *testing.T) {
		for _, v := range old {
			out, changed, err := k.Reencrypt(v.envelope, v.ctx)
			require.NoError(t, err)
			assert.True(t, changed)
			version, err := EnvelopeKeyVersion(out)
			require.NoError(t, err)
			assert.EqualValues(t, 2, version)
			got, err := k.Decrypt(out, v.ctx)
			require.NoError(t, err)
			assert.Equal(t, v.plaintext, string(got))
		}
		out, changed, err := k.Reencrypt(fresh[0].envelope, fresh[0].ctx)
		require.NoError(t, err)
		assert.False(t, changed)
		assert.Equal(t, fresh[0].envelope, out)
	})
	t.Run("reencrypt refuses a moved or broken envelope", func(t *testing.T) {
		_, _, err := k.Reencrypt(old[0].envelope, old[1].ctx)
		require.ErrorIs(t, err, ErrDecrypt)
		_, _, err = k.Reencrypt(old[0].envelope[:10], old[0].ctx)
		require.ErrorIs(t, err, ErrDecrypt)
	})

	retire := []struct {
		name    string
		version uint32
		counter InUseCounter
		wantErr error
	}{
		{"primary refused", 2, countMap{}, ErrKeyInUse},
		{"still in use refused", 1, countMap{PurposeEncryption: {1: 3}}, ErrKeyInUse},
		{"counter failure propagated", 1, InUseCounterFunc(func(context.Context, Purpose, uint32) (int64, error) {
			return 0, errStoreDown
		}), errStoreDown},
		{"unknown version", 9, countMap{}, ErrUnknownKeyVersion},
		{"unused old version retires", 1, countMap{PurposeEncryption: {2: 5}}, nil},
		{"retiring again is a no-op", 1, countMap{}, nil},
	}
	for _, tt := range retire {
		t.Run("retire/"+tt.name, func(t *testing.T) {
			err := k.Retire(ctx, PurposeEncryption, tt.version, tt.counter)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
		})
	}
	require.Error(t, k.Retire(ctx, PurposeEncryption, 1, nil), "a counter is required")

	_, err = k.Decrypt(old[0].envelope, old[0].ctx)
	require.ErrorIs(t, err, ErrUnknownKeyVersion, "a retired version no longer decrypts")
	reopened, err := Open(ctx, store, sequentialKey(t, 1))
	require.NoError(t, err)
	_, err = reopened.Decrypt(old[0].envelope, old[0].ctx)
	require.ErrorIs(t, err, ErrUnknownKeyVersion)
	requireAllOpen(t, reopened, fresh)
	assert.Equal(t, StateRetired, reopened.Keys()[0].State)

	err = k.Promote(ctx, PurposeEncryption, 1)
	require.ErrorIs(t, err, ErrUnknownKeyVersion, "a retired version cannot come back")
	v3, err := k.Rotate(ctx, PurposeEncryption)
	require.NoError(t, err)
	assert.EqualValues(t, 3, v3, "version numbers are never reused")
}

func TestAddVersionThenPromote(t *testing.T) {
	ctx := context.Background()
	mek := sequentialKey(t, 1)
	k1, store := openTest(t, mek)
	k2, err := Open(ctx, store, mek)
	require.NoError(t, err)

	for _, p := range purposes {
		t.Run(string(p), func(t *testing.T) {
			v, err := k1.AddVersion(ctx, p)
			require.NoError(t, err)
			assert.EqualValues(t, 2, v)
			assert.EqualValues(t, 1, k1.PrimaryVersion(p), "an added version is not primary yet")
			assert.Equal(t, StateActive, keyState(k1, p, v))

			require.NoError(t, k2.Reload(ctx))
			require.NoError(t, k1.Promote(ctx, p, v))
			assert.EqualValues(t, 2, k1.PrimaryVersion(p))
			assert.Equal(t, StateActive, keyState(k1, p, 1), "the old primary stays usable")
			require.NoError(t, k1.Promote(ctx, p, v), "promoting the primary again is a no-op")
			require.ErrorIs(t, k1.Promote(ctx, p, 7), ErrUnknownKeyVersion)
		})
	}

	// k2 learned version 2 before it became primary, so it reads what k1 writes now.
	env, err := k1.Encrypt([]byte("v2"), tokenContext())
	require.NoError(t, err)
	got, err := k2.Decrypt(env, tokenContext())
	require.NoError(t, err)
	assert.Equal(t, "v2", string(got))
	hash := k1.HashCredential("api_key", []byte("secret"))
	ok, err := k2.VerifyCredential("api_key", []byte("secret"), hash)
	require.NoError(t, err)
	assert.True(t, ok)

	// Promoting back works too; the old primary becomes active.
	require.NoError(t, k1.Promote(ctx, PurposeEncryption, 1))
	assert.EqualValues(t, 1, k1.PrimaryVersion(PurposeEncryption))
}

func TestHashingKeyRotation(t *testing.T) {
	ctx := context.Background()
	k, _ := openTest(t, sequentialKey(t, 1))
	old := k.HashCredential("api_key", []byte("pk_live_old"))
	_, err := k.Rotate(ctx, PurposeHashing)
	require.NoError(t, err)
	newer := k.HashCredential("api_key", []byte("pk_live_old"))
	assert.NotEqual(t, old, newer)

	for _, tt := range []struct {
		stored  string
		version uint32
	}{{old, 1}, {newer, 2}} {
		v, err := CredentialHashVersion(tt.stored)
		require.NoError(t, err)
		assert.Equal(t, tt.version, v)
		ok, err := k.VerifyCredential("api_key", []byte("pk_live_old"), tt.stored)
		require.NoError(t, err)
		assert.True(t, ok)
	}
	require.NoError(t, k.Retire(ctx, PurposeHashing, 1, countMap{}))
	_, err = k.VerifyCredential("api_key", []byte("pk_live_old"), old)
	require.ErrorIs(t, err, ErrUnknownKeyVersion)
}

func TestRotationRejectsUnknownPurpose(t *testing.T) {
	ctx := context.Background()
	k, store := openTest(t, sequentialKey(t, 1))
	before := mustLoad(t, store)
	_, err := k.AddVersion(ctx, "signing")
	require.Error(t, err)
	_, err = k.Rotate(ctx, "signing")
	require.Error(t, err)
	require.Error(t, k.Promote(ctx, "signing", 1))
	require.Error(t, k.Retire(ctx, "signing", 1, countMap{}))
	assert.Equal(t, before, mustLoad(t, store))
}

// hostileStore hands Update a snapshot that differs from what the keyring
// opened, as a second database or a concurrent corruption would.
type hostileStore struct {
	*MemoryStore
	mutate func(*Snapshot)
}

func (h *hostileStore) Update(ctx context.Context, fn func(Snapshot) ([]WrappedKey, error)) error {
	snap, err := h.Load(ctx)
	if err != nil {
		return err
	}
	h.mutate(&snap)
	_, err = fn(snap)
	if err != nil {
		return err
	}
	return errors.New("hostileStore never writes")
}

func TestUpdateValidatesWhatItWouldWrite(t *testing.T) {
	ctx := context.Background()
	mek := sequentialKey(t, 1)
	_, mem := openTest(t, mek)
	tests := []struct {
		name    string
		mutate  func(*Snapshot)
		wantErr error
	}{
		{"another database", func(s *Snapshot) { s.DatabaseID = "other" }, ErrKeyringCorrupt},
		{"corrupt key appeared", func(s *Snapshot) { s.Keys[0].Ciphertext[25] ^= 1 }, ErrKeyringCorrupt},
		{"hashing key vanished", func(s *Snapshot) { s.Keys = s.Keys[:1] }, ErrKeyringCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Unlock(ctx, &hostileStore{MemoryStore: mem, mutate: tt.mutate}, mek)
			require.NoError(t, err)
			_, err = k.Rotate(ctx, PurposeEncryption)
			require.ErrorIs(t, err, tt.wantErr)
			require.ErrorIs(t, k.RotateMasterKey(ctx, sequentialKey(t, 60)), tt.wantErr)
			assert.EqualValues(t, 1, k.PrimaryVersion(PurposeEncryption), "state unchanged")
			assert.Equal(t, mek.Fingerprint(), k.MasterKeyFingerprint())
		})
	}
}

// keyState returns the state Keys reports for (p, version), or "".
func keyState(k *Keyring, p Purpose, version uint32) KeyState {
	for _, info := range k.Keys() {
		if info.Purpose == p && info.Version == version {
			return info.State
		}
	}
	return ""
}

func TestConcurrentRotationsStayConsistent(t *testing.T) {
	ctx := context.Background()
	mek := sequentialKey(t, 1)
	k1, store := openTest(t, mek)
	k2, err := Open(ctx, store, mek)
	require.NoError(t, err)

	const workers, rounds = 4, 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	var envelopes [][]byte
	for w := range workers {
		k := []*Keyring{k1, k2}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				_, err := k.Rotate(ctx, PurposeEncryption)
				if !assert.NoError(t, err) {
					return
				}
				env, err := k.Encrypt([]byte("v"), tokenContext())
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				envelopes = append(envelopes, env)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	snap := mustLoad(t, store)
	versions := map[uint32]bool{}
	primaries := 0
	for _, w := range snap.Keys {
		if w.Purpose != PurposeEncryption {
			continue
		}
		assert.False(t, versions[w.Version], "version %d stored twice", w.Version)
		versions[w.Version] = true
		if w.State == StatePrimary {
			primaries++
		}
	}
	assert.Len(t, versions, 1+workers*rounds)
	assert.Equal(t, 1, primaries)
	for _, k := range []*Keyring{k1, k2} {
		require.NoError(t, k.Reload(ctx))
		for _, env := range envelopes {
			_, err := k.Decrypt(env, tokenContext())
			require.NoError(t, err)
		}
	}
}
