package keyring

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// Purpose says what a stored key is for. Each purpose has its own versions
// and exactly one primary version.
type Purpose string

const (
	// PurposeEncryption keys are data encryption keys (DEKs) for field
	// envelopes (Encrypt, Decrypt).
	PurposeEncryption Purpose = "encryption"
	// PurposeHashing keys are HMAC keys for credential hashes (API keys, A2A
	// client secrets; see HashCredential).
	PurposeHashing Purpose = "hashing"
)

// purposes lists every purpose a bootstrapped keyring must hold.
var purposes = [...]Purpose{PurposeEncryption, PurposeHashing}

func (p Purpose) valid() bool { return p == PurposeEncryption || p == PurposeHashing }

// KeyState is the lifecycle state of one key version.
type KeyState string

const (
	// StatePrimary marks the one version per purpose that new writes use.
	StatePrimary KeyState = "primary"
	// StateActive marks a version that still decrypts and verifies but is not
	// used for new writes.
	StateActive KeyState = "active"
	// StateRetired marks a destroyed version: Retire erased its wrapped key,
	// so what it sealed or hashed can never be read or verified again. The
	// row stays, with an empty Ciphertext and Fingerprint, so its version
	// number is never reused and Keys still lists it.
	StateRetired KeyState = "retired"
)

func (s KeyState) valid() bool {
	return s == StatePrimary || s == StateActive || s == StateRetired
}

// WrappedKey is one stored key row. Ciphertext is the key sealed under the
// master key; it is safe to store, log sizes of, and back up.
type WrappedKey struct {
	Purpose Purpose
	// Version starts at 1 for each purpose and only grows.
	Version uint32
	State   KeyState
	// Ciphertext is the wrapped key (see the package documentation for the
	// format). It is empty, but not nil, for a retired key, whose key
	// material was destroyed; a key in any other state without it is
	// ErrKeyringCorrupt.
	Ciphertext []byte
	// Fingerprint is MasterKey.Fingerprint of the master key that wrapped it;
	// empty for a retired key.
	Fingerprint string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// destroyed reports whether w holds no key material, as Retire leaves it.
func (w WrappedKey) destroyed() bool { return len(w.Ciphertext) == 0 }

// destroy returns w with its key material erased, as Retire stores it: an
// empty, non-nil Ciphertext (the SQL column is NOT NULL) and no fingerprint.
func (w WrappedKey) destroy(now time.Time) WrappedKey {
	w.Ciphertext, w.Fingerprint, w.UpdatedAt = []byte{}, "", now
	return w
}

// clone returns a copy of w that shares no memory with it.
func (w WrappedKey) clone() WrappedKey {
	w.Ciphertext = slices.Clone(w.Ciphertext)
	return w
}

// Snapshot is everything a Store holds. An empty DatabaseID means the store
// was never bootstrapped.
type Snapshot struct {
	// DatabaseID identifies the database; wrapped keys are bound to it so
	// they cannot be copied into another database.
	DatabaseID string
	Keys       []WrappedKey
}

// clone returns a deep copy of s.
func (s Snapshot) clone() Snapshot {
	out := Snapshot{DatabaseID: s.DatabaseID}
	if s.Keys != nil {
		out.Keys = make([]WrappedKey, len(s.Keys))
		for i, k := range s.Keys {
			out.Keys[i] = k.clone()
		}
	}
	return out
}

// Store persists the keyring. pierredb implements it in SQL; MemoryStore is
// the in-process implementation.
type Store interface {
	// Load returns the stored snapshot; an empty Snapshot (no error) when the
	// store was never bootstrapped.
	Load(ctx context.Context) (Snapshot, error)
	// Create writes s (id and keys) atomically if and only if no DatabaseID
	// is stored yet. It reports whether it wrote. Losing a race is
	// (false, nil), not an error.
	Create(ctx context.Context, s Snapshot) (created bool, err error)
	// Update runs a read-modify-write in one transaction: it locks and loads
	// the current snapshot, calls fn once, and upserts every returned key by
	// (Purpose, Version) (insert, or replace State, Ciphertext, Fingerprint
	// and UpdatedAt). It never deletes. If fn returns an error nothing is
	// written and Update returns that error.
	//
	// Retire writes an empty (non-nil) Ciphertext and an empty Fingerprint;
	// a store must keep them as empty values (not NULL) and load them back as
	// empty (nil or not).
	Update(ctx context.Context, fn func(current Snapshot) ([]WrappedKey, error)) error
}

// InUseCounter counts stored ciphertexts or hashes that still reference a key
// version. pierredb implements it over its encrypted columns; Retire uses it.
type InUseCounter interface {
	CountInUse(ctx context.Context, purpose Purpose, version uint32) (int64, error)
}

// InUseCounterFunc adapts a function to InUseCounter.
type InUseCounterFunc func(ctx context.Context, purpose Purpose, version uint32) (int64, error)

// CountInUse calls f.
func (f InUseCounterFunc) CountInUse(ctx context.Context, purpose Purpose, version uint32) (int64, error) {
	return f(ctx, purpose, version)
}

// upsertKeys returns current with each change applied by (Purpose, Version),
// following the Store.Update contract: an existing row keeps its CreatedAt and
// takes State, Ciphertext, Fingerprint and UpdatedAt from the change; a new
// row is appended whole. The result shares no memory with either input.
func upsertKeys(current, changes []WrappedKey) []WrappedKey {
	out := make([]WrappedKey, 0, len(current)+len(changes))
	for _, k := range current {
		out = append(out, k.clone())
	}
	for _, c := range changes {
		i := slices.IndexFunc(out, func(k WrappedKey) bool {
			return k.Purpose == c.Purpose && k.Version == c.Version
		})
		if i < 0 {
			out = append(out, c.clone())
			continue
		}
		out[i].State = c.State
		out[i].Ciphertext = slices.Clone(c.Ciphertext)
		out[i].Fingerprint = c.Fingerprint
		out[i].UpdatedAt = c.UpdatedAt
	}
	return out
}

// MemoryStore is a goroutine-safe in-memory Store. It keeps deep copies, so
// callers can never alias its state. Useful for tests, examples and
// single-process tools; its contents vanish with the process.
type MemoryStore struct {
	mu   sync.Mutex
	snap Snapshot
}

// NewMemoryStore returns an empty (never bootstrapped) MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// errMemoryStoreNotBootstrapped is returned by MemoryStore.Update when fn
// asks to write into a store that has no database id yet.
var errMemoryStoreNotBootstrapped = errors.New("keyring: MemoryStore.Update on a store that was never bootstrapped")

// Load implements Store.
func (m *MemoryStore) Load(ctx context.Context) (Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snap.clone(), nil
}

// Create implements Store.
func (m *MemoryStore) Create(ctx context.Context, s Snapshot) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if s.DatabaseID == "" {
		return false, errors.New("keyring: MemoryStore.Create needs a database id")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.snap.DatabaseID != "" {
		return false, nil
	}
	m.snap = s.clone()
	return true, nil
}

// Update implements Store.
func (m *MemoryStore) Update(ctx context.Context, fn func(current Snapshot) ([]WrappedKey, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	changes, err := fn(m.snap.clone())
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		return nil
	}
	if m.snap.DatabaseID == "" {
		return errMemoryStoreNotBootstrapped
	}
	m.snap.Keys = upsertKeys(m.snap.Keys, changes)
	return nil
}
