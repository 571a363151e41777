package keyring

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// sequentialKey returns a master key of the bytes first, first+1, ...
func sequentialKey(t testing.TB, first byte) MasterKey {
	t.Helper()
	b := make([]byte, MasterKeySize)
	for i := range b {
		b[i] = first + byte(i)
	}
	return newMasterKey(b)
}

// countingStore wraps a Store and counts every call, to prove which
// operations write.
type countingStore struct {
	Store
	loads, creates, updates atomic.Int64
}

func (c *countingStore) Load(ctx context.Context) (Snapshot, error) {
	c.loads.Add(1)
	return c.Store.Load(ctx)
}

func (c *countingStore) Create(ctx context.Context, s Snapshot) (bool, error) {
	c.creates.Add(1)
	return c.Store.Create(ctx, s)
}

func (c *countingStore) Update(ctx context.Context, fn func(Snapshot) ([]WrappedKey, error)) error {
	c.updates.Add(1)
	return c.Store.Update(ctx, fn)
}

func (c *countingStore) writes() int64 { return c.creates.Load() + c.updates.Load() }

// errStoreDown is what failingLoadStore reports.
var errStoreDown = errors.New("store down")

// failingLoadStore fails every Load, as a database that is unreachable.
type failingLoadStore struct{ countingStore }

func (f *failingLoadStore) Load(context.Context) (Snapshot, error) {
	f.loads.Add(1)
	return Snapshot{}, errStoreDown
}

// openTest bootstraps a fresh MemoryStore under mek.
func openTest(t testing.TB, mek MasterKey, opts ...Option) (*Keyring, *MemoryStore) {
	t.Helper()
	store := NewMemoryStore()
	k, err := Open(context.Background(), store, mek, opts...)
	require.NoError(t, err)
	return k, store
}

// withNonceSource replaces the random nonce source, for known-answer vectors.
func withNonceSource(fill func([]byte)) Option {
	return func(o *options) { o.fillNonce = fill }
}

// tokenContext is a typical binding for an OAuth token column.
func tokenContext() Context {
	return Context{Tenant: "tenant-1", Table: "user_oauth_tokens", Column: "access_token", RowID: "row-42", Extra: []string{"strava"}}
}

// mustLoad returns the store's snapshot.
func mustLoad(t testing.TB, s Store) Snapshot {
	t.Helper()
	snap, err := s.Load(context.Background())
	require.NoError(t, err)
	return snap
}

// storeWith returns a MemoryStore already holding snap.
func storeWith(t testing.TB, snap Snapshot) *MemoryStore {
	t.Helper()
	s := NewMemoryStore()
	created, err := s.Create(context.Background(), snap)
	require.NoError(t, err)
	require.True(t, created)
	return s
}
