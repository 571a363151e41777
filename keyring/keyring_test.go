package keyring

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenBootstrapsThenReopens(t *testing.T) {
	mek := sequentialKey(t, 1)
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	store := &countingStore{Store: NewMemoryStore()}
	k, err := Open(context.Background(), store, mek, WithClock(func() time.Time { return fixed }))
	require.NoError(t, err)
	assert.EqualValues(t, 1, store.creates.Load())
	assert.EqualValues(t, 2, store.loads.Load(), "bootstrap always re-reads")
	assert.NotEmpty(t, k.DatabaseID())
	assert.Equal(t, mek.Fingerprint(), k.MasterKeyFingerprint())

	wantTime := fixed.UTC().Truncate(time.Microsecond)
	assert.Equal(t, []KeyInfo{
		{Purpose: PurposeEncryption, Version: 1, State: StatePrimary, CreatedAt: wantTime, UpdatedAt: wantTime},
		{Purpose: PurposeHashing, Version: 1, State: StatePrimary, CreatedAt: wantTime, UpdatedAt: wantTime},
	}, k.Keys())
	for _, p := range purposes {
		assert.EqualValues(t, 1, k.PrimaryVersion(p))
	}
	assert.Zero(t, k.PrimaryVersion("bogus"))

	snap := mustLoad(t, store)
	require.Len(t, snap.Keys, 2)
	for _, w := range snap.Keys {
		assert.Len(t, w.Ciphertext, wrappedKeySize)
		assert.Equal(t, mek.Fingerprint(), w.Fingerprint)
	}

	env, err := k.Encrypt([]byte("hello"), tokenContext())
	require.NoError(t, err)
	hash := k.HashCredential("api_key", []byte("pk_live_x"))

	// A second Open and an Unlock find the keyring and write nothing.
	for name, open := range map[string]func(context.Context, Store, MasterKey, ...Option) (*Keyring, error){"Open": Open, "Unlock": Unlock} {
		t.Run(name, func(t *testing.T) {
			counted := &countingStore{Store: store.Store}
			again, err := open(context.Background(), counted, mek)
			require.NoError(t, err)
			assert.Zero(t, counted.writes())
			assert.Equal(t, k.DatabaseID(), again.DatabaseID())
			got, err := again.Decrypt(env, tokenContext())
			require.NoError(t, err)
			assert.Equal(t, "hello", string(got))
			ok, err := again.VerifyCredential("api_key", []byte("pk_live_x"), hash)
			require.NoError(t, err)
			assert.True(t, ok)
		})
	}
}

func TestUnlockEmptyStore(t *testing.T) {
	store := &countingStore{Store: NewMemoryStore()}
	_, err := Unlock(context.Background(), store, sequentialKey(t, 1))
	require.ErrorIs(t, err, ErrKeyringEmpty)
	assert.Zero(t, store.writes())
}

func TestOpenRefusesBadArguments(t *testing.T) {
	tests := []struct {
		name    string
		store   Store
		mek     MasterKey
		wantErr error
	}{
		{"zero master key", NewMemoryStore(), MasterKey{}, ErrMasterKeyMissing},
		{"nil store", nil, sequentialKey(t, 1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, open := range []func(context.Context, Store, MasterKey, ...Option) (*Keyring, error){Open, Unlock} {
				k, err := open(context.Background(), tt.store, tt.mek)
				require.Error(t, err)
				assert.Nil(t, k)
				if tt.wantErr != nil {
					assert.ErrorIs(t, err, tt.wantErr)
				}
			}
		})
	}
}

func TestWrongMasterKeyMakesNoWrites(t *testing.T) {
	right, wrong := sequentialKey(t, 1), sequentialKey(t, 2)
	_, mem := openTest(t, right)
	before := mustLoad(t, mem)

	for name, open := range map[string]func(context.Context, Store, MasterKey, ...Option) (*Keyring, error){"Open": Open, "Unlock": Unlock} {
		t.Run(name, func(t *testing.T) {
			store := &countingStore{Store: mem}
			k, err := open(context.Background(), store, wrong)
			require.ErrorIs(t, err, ErrWrongMasterKey)
			assert.Nil(t, k)
			assert.Contains(t, err.Error(), right.Fingerprint(), "names the expected fingerprint")
			assert.Contains(t, err.Error(), wrong.Fingerprint(), "names the actual fingerprint")
			assert.Zero(t, store.creates.Load())
			assert.Zero(t, store.updates.Load())
		})
	}
	t.Run("wrong previous key does not help", func(t *testing.T) {
		store := &countingStore{Store: mem}
		_, err := Open(context.Background(), store, wrong, WithPreviousMasterKey(sequentialKey(t, 3)))
		require.ErrorIs(t, err, ErrWrongMasterKey)
		assert.Zero(t, store.writes())
	})
	assert.Equal(t, before, mustLoad(t, mem))
}

func TestLoadFailureNeverWrites(t *testing.T) {
	for name, open := range map[string]func(context.Context, Store, MasterKey, ...Option) (*Keyring, error){"Open": Open, "Unlock": Unlock} {
		t.Run(name, func(t *testing.T) {
			store := &failingLoadStore{countingStore{Store: NewMemoryStore()}}
			k, err := open(context.Background(), store, sequentialKey(t, 1))
			require.ErrorIs(t, err, errStoreDown)
			assert.Nil(t, k)
			assert.Zero(t, store.writes())
			assert.Empty(t, mustLoad(t, store.Store).DatabaseID)
		})
	}
}

// raceStore lets another bootstrapper win between Open's Load and Create.
type raceStore struct {
	*MemoryStore
	winner Snapshot
}

func (r *raceStore) Create(ctx context.Context, s Snapshot) (bool, error) {
	_, _ = r.MemoryStore.Create(ctx, r.winner)
	return r.MemoryStore.Create(ctx, s)
}

func TestOpenAdoptsTheWinningBootstrap(t *testing.T) {
	mek := sequentialKey(t, 1)
	winner, err := bootstrapSnapshot(mek, time.Now())
	require.NoError(t, err)
	k, err := Open(context.Background(), &raceStore{MemoryStore: NewMemoryStore(), winner: winner}, mek)
	require.NoError(t, err)
	assert.Equal(t, winner.DatabaseID, k.DatabaseID())
}

func TestOpenLosingRaceToAnotherMasterKey(t *testing.T) {
	winner, err := bootstrapSnapshot(sequentialKey(t, 9), time.Now())
	require.NoError(t, err)
	store := &raceStore{MemoryStore: NewMemoryStore(), winner: winner}
	_, err = Open(context.Background(), store, sequentialKey(t, 1))
	require.ErrorIs(t, err, ErrWrongMasterKey)
	assert.Equal(t, winner.DatabaseID, mustLoad(t, store).DatabaseID)
}

func TestConcurrentBootstrapAgreesOnOneKeyring(t *testing.T) {
	const n = 8
	mek := sequentialKey(t, 1)
	store := NewMemoryStore()
	start := make(chan struct{})
	keyrings := make([]*Keyring, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			keyrings[i], errs[i] = Open(context.Background(), store, mek)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "goroutine %d", i)
	}

	snap := mustLoad(t, store)
	perPurpose := map[Purpose]int{}
	for _, w := range snap.Keys {
		perPurpose[w.Purpose]++
	}
	assert.Equal(t, map[Purpose]int{PurposeEncryption: 1, PurposeHashing: 1}, perPurpose)

	envelopes := make([][]byte, n)
	for i, k := range keyrings {
		assert.Equal(t, snap.DatabaseID, k.DatabaseID())
		var err error
		envelopes[i], err = k.Encrypt([]byte{byte(i)}, tokenContext())
		require.NoError(t, err)
	}
	for i, k := range keyrings {
		for j, env := range envelopes {
			got, err := k.Decrypt(env, tokenContext())
			require.NoError(t, err, "keyring %d decrypting envelope of %d", i, j)
			assert.Equal(t, []byte{byte(j)}, got)
		}
	}
}

func TestCorruptKeyringIsReported(t *testing.T) {
	mek := sequentialKey(t, 1)
	good, err := bootstrapSnapshot(mek, time.Now())
	require.NoError(t, err)
	other, err := bootstrapSnapshot(mek, time.Now())
	require.NoError(t, err)
	encIdx := findKey(good.Keys, PurposeEncryption, 1)
	hashIdx := findKey(good.Keys, PurposeHashing, 1)

	tests := []struct {
		name    string
		mutate  func(s *Snapshot)
		wantErr error
	}{
		{"flipped byte in wrapped DEK", func(s *Snapshot) { s.Keys[encIdx].Ciphertext[20] ^= 1 }, ErrKeyringCorrupt},
		{"flipped tag of wrapped hashing key", func(s *Snapshot) { s.Keys[hashIdx].Ciphertext[wrappedKeySize-1] ^= 1 }, ErrKeyringCorrupt},
		{"flipped format byte", func(s *Snapshot) { s.Keys[encIdx].Ciphertext[0] = 2 }, ErrKeyringCorrupt},
		{"truncated wrapped key", func(s *Snapshot) { s.Keys[encIdx].Ciphertext = s.Keys[encIdx].Ciphertext[:40] }, ErrKeyringCorrupt},
		{"empty wrapped key", func(s *Snapshot) { s.Keys[encIdx].Ciphertext = nil }, ErrKeyringCorrupt},
		{"wrapped keys swapped between purposes", func(s *Snapshot) {
			s.Keys[encIdx].Ciphertext, s.Keys[hashIdx].Ciphertext = s.Keys[hashIdx].Ciphertext, s.Keys[encIdx].Ciphertext
		}, ErrKeyringCorrupt},
		{"wrapped key moved to another version", func(s *Snapshot) { s.Keys[encIdx].Version = 2 }, ErrKeyringCorrupt},
		{"wrapped key from another database", func(s *Snapshot) {
			s.Keys[encIdx].Ciphertext = other.Keys[findKey(other.Keys, PurposeEncryption, 1)].Ciphertext
		}, ErrKeyringCorrupt},
		{"database id changed", func(s *Snapshot) { s.DatabaseID = other.DatabaseID }, ErrKeyringCorrupt},
		{"no hashing key", func(s *Snapshot) { s.Keys = s.Keys[encIdx : encIdx+1] }, ErrKeyringCorrupt},
		{"two primaries", func(s *Snapshot) {
			extra := s.Keys[encIdx].clone()
			extra.Version = 2
			s.Keys = append(s.Keys, extra)
		}, ErrKeyringCorrupt},
		{"no primary", func(s *Snapshot) { s.Keys[encIdx].State = StateActive }, ErrKeyringCorrupt},
		{"duplicate version", func(s *Snapshot) {
			dup := s.Keys[encIdx].clone()
			dup.State = StateActive
			s.Keys = append(s.Keys, dup)
		}, ErrKeyringCorrupt},
		{"unknown purpose", func(s *Snapshot) { s.Keys[hashIdx].Purpose = "signing" }, ErrKeyringCorrupt},
		{"version 0", func(s *Snapshot) { s.Keys[encIdx].Version = 0 }, ErrKeyringCorrupt},
		{"unknown state", func(s *Snapshot) { s.Keys[hashIdx].State = "paused" }, ErrKeyringCorrupt},
		{"missing fingerprint", func(s *Snapshot) { s.Keys[encIdx].Fingerprint = "" }, ErrWrongMasterKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := good.clone()
			tt.mutate(&snap)
			store := &countingStore{Store: storeWith(t, snap)}
			for _, open := range []func(context.Context, Store, MasterKey, ...Option) (*Keyring, error){Open, Unlock} {
				k, err := open(context.Background(), store, mek)
				require.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, k)
			}
			assert.Zero(t, store.writes())
		})
	}
}

func TestKeysWithoutDatabaseIDAreCorrupt(t *testing.T) {
	// A store reporting keys but no id must not be "bootstrapped" over.
	store := &countingStore{Store: &snapshotStore{snap: Snapshot{Keys: []WrappedKey{{Purpose: PurposeEncryption, Version: 1}}}}}
	_, err := Open(context.Background(), store, sequentialKey(t, 1))
	require.ErrorIs(t, err, ErrKeyringCorrupt)
	assert.Zero(t, store.writes())
}

// snapshotStore always loads snap and refuses writes.
type snapshotStore struct{ snap Snapshot }

func (s *snapshotStore) Load(context.Context) (Snapshot, error) { return s.snap.clone(), nil }
func (s *snapshotStore) Create(context.Context, Snapshot) (bool, error) {
	return false, errors.New("read-only")
}
func (s *snapshotStore) Update(context.Context, func(Snapshot) ([]WrappedKey, error)) error {
	return errors.New("read-only")
}

func TestReload(t *testing.T) {
	mek := sequentialKey(t, 1)
	k1, store := openTest(t, mek)
	k2, err := Open(context.Background(), store, mek)
	require.NoError(t, err)

	v, err := k1.Rotate(context.Background(), PurposeEncryption)
	require.NoError(t, err)
	env, err := k1.Encrypt([]byte("new"), tokenContext())
	require.NoError(t, err)

	_, err = k2.Decrypt(env, tokenContext())
	require.ErrorIs(t, err, ErrUnknownKeyVersion, "k2 has not seen the new version yet")
	require.NoError(t, k2.Reload(context.Background()))
	assert.Equal(t, v, k2.PrimaryVersion(PurposeEncryption))
	got, err := k2.Decrypt(env, tokenContext())
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))

	t.Run("keeps the old state on error", func(t *testing.T) {
		broken := &Keyring{store: &failingLoadStore{}, opts: k2.opts}
		broken.state.Store(k2.state.Load())
		require.ErrorIs(t, broken.Reload(context.Background()), errStoreDown)
		got, err := broken.Decrypt(env, tokenContext())
		require.NoError(t, err)
		assert.Equal(t, "new", string(got))
	})
	t.Run("refuses another database", func(t *testing.T) {
		_, otherStore := openTest(t, mek)
		moved := &Keyring{store: otherStore, opts: k2.opts}
		moved.state.Store(k2.state.Load())
		require.ErrorIs(t, moved.Reload(context.Background()), ErrKeyringCorrupt)
		assert.Equal(t, k2.DatabaseID(), moved.DatabaseID())
	})
}

func TestZeroKeyringPanicsClearly(t *testing.T) {
	var k Keyring
	assert.PanicsWithValue(t, "keyring: Keyring used without Open or Unlock", func() { _, _ = k.Encrypt(nil, Context{}) })
	assert.Equal(t, "keyring.Keyring(locked)", k.String())
}

func TestConcurrentUseWithRotation(t *testing.T) {
	// Run with -race: readers on the hot path while versions rotate.
	k, _ := openTest(t, sequentialKey(t, 1))
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				env, err := k.Encrypt([]byte("payload"), tokenContext())
				if !assert.NoError(t, err) {
					return
				}
				got, err := k.Decrypt(env, tokenContext())
				if !assert.NoError(t, err) || !assert.True(t, bytes.Equal(got, []byte("payload"))) {
					return
				}
				h := k.HashCredential("api_key", []byte("s"))
				if ok, err := k.VerifyCredential("api_key", []byte("s"), h); !assert.NoError(t, err) || !assert.True(t, ok) {
					return
				}
			}
		}()
	}
	for range 5 {
		_, err := k.Rotate(ctx, PurposeEncryption)
		require.NoError(t, err)
		_, err = k.Rotate(ctx, PurposeHashing)
		require.NoError(t, err)
	}
	close(stop)
	wg.Wait()
	assert.EqualValues(t, 6, k.PrimaryVersion(PurposeEncryption))
}

func TestErrKeyringMissingIsItsOwnSentinel(t *testing.T) {
	// pierredb returns ErrKeyringMissing; keyring's Open still bootstraps an
	// empty store, and Unlock still reports it as ErrKeyringEmpty.
	for _, other := range []error{ErrKeyringEmpty, ErrKeyringCorrupt, ErrWrongMasterKey, ErrMasterKeyMissing} {
		assert.NotErrorIs(t, ErrKeyringMissing, other)
		assert.NotErrorIs(t, other, ErrKeyringMissing)
	}
	assert.Contains(t, ErrKeyringMissing.Error(), "missing")

	_, err := Unlock(context.Background(), NewMemoryStore(), sequentialKey(t, 1))
	require.ErrorIs(t, err, ErrKeyringEmpty)
	assert.NotErrorIs(t, err, ErrKeyringMissing)
	k, err := Open(context.Background(), NewMemoryStore(), sequentialKey(t, 1))
	require.NoError(t, err)
	assert.NotEmpty(t, k.DatabaseID())
}
