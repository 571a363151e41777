package keyring

import (
	"context"
	"crypto/subtle"
	"fmt"
	"math"
	"time"
)

// unknownVersion is ErrUnknownKeyVersion naming the purpose and version.
func unknownVersion(p Purpose, version uint32) error {
	return fmt.Errorf("%w: %s version %d", ErrUnknownKeyVersion, p, version)
}

// masterKeys are the master keys a keyring state unwraps with.
type masterKeys struct {
	current, previous MasterKey
}

// update runs change inside one Store.Update. change receives the keyring's
// state, read under writeMu so no local write lands in between, and the
// current stored snapshot; it returns the rows to upsert and the master keys
// the keyring uses afterwards. Before the transaction commits, the snapshot
// it would leave behind is unlocked with those keys: a change that would
// leave an unusable keyring (a key that does not round-trip, two primaries,
// ...) is refused and nothing is written. After a successful commit the
// keyring switches to that new state.
func (k *Keyring) update(ctx context.Context, change func(st *state, cur Snapshot) ([]WrappedKey, masterKeys, error)) error {
	k.writeMu.Lock()
	defer k.writeMu.Unlock()
	st := k.mustState()
	var next *state
	err := k.store.Update(ctx, func(cur Snapshot) ([]WrappedKey, error) {
		next = nil // Update calls fn once, but never trust a stale result
		if cur.DatabaseID != st.databaseID {
			return nil, fmt.Errorf("%w: database id is %q, the keyring was opened on %q", ErrKeyringCorrupt, cur.DatabaseID, st.databaseID)
		}
		changes, keys, err := change(st, cur)
		if err != nil {
			return nil, err
		}
		written := Snapshot{DatabaseID: cur.DatabaseID, Keys: upsertKeys(cur.Keys, changes)}
		ns, err := buildState(written, keys.current, keys.previous)
		if err != nil {
			return nil, fmt.Errorf("keyring: refusing a change that leaves an unusable keyring: %w", err)
		}
		next = ns
		return changes, nil
	})
	if err != nil {
		return err
	}
	if next == nil {
		return fmt.Errorf("keyring: Store.Update returned without calling its function")
	}
	k.state.Store(next)
	return nil
}

// keyChange is what a key change writes with: the master key new keys are
// wrapped under and the timestamp of the change.
type keyChange struct {
	mek MasterKey
	now time.Time
}

// updateKeys is update for changes that keep the master keys: the current
// snapshot must unlock with them first, so a wrong master key or a corrupt
// store stops the change before anything is generated or written.
func (k *Keyring) updateKeys(ctx context.Context, change func(cur Snapshot, kc keyChange) ([]WrappedKey, error)) error {
	return k.update(ctx, func(st *state, cur Snapshot) ([]WrappedKey, masterKeys, error) {
		keys := masterKeys{current: st.mek, previous: st.previous}
		if _, err := buildState(cur, keys.current, keys.previous); err != nil {
			return nil, keys, err
		}
		changes, err := change(cur, keyChange{mek: st.mek, now: k.now()})
		return changes, keys, err
	})
}

// findKey returns the index of (p, version) in keys, or -1.
func findKey(keys []WrappedKey, p Purpose, version uint32) int {
	for i, w := range keys {
		if w.Purpose == p && w.Version == version {
			return i
		}
	}
	return -1
}

// nextVersion is one past the highest stored version of p, retired ones
// included, so a version number is never reused.
func nextVersion(keys []WrappedKey, p Purpose) (uint32, error) {
	var highest uint32
	for _, w := range keys {
		if w.Purpose == p && w.Version > highest {
			highest = w.Version
		}
	}
	if highest == math.MaxUint32 {
		return 0, fmt.Errorf("keyring: %s key versions exhausted", p)
	}
	return highest + 1, nil
}

// demotePrimary returns the current primary of p moved to StateActive.
func demotePrimary(keys []WrappedKey, p Purpose, now time.Time) []WrappedKey {
	for _, w := range keys {
		if w.Purpose == p && w.State == StatePrimary {
			w.State, w.UpdatedAt = StateActive, now
			return []WrappedKey{w}
		}
	}
	return nil
}

func checkPurpose(p Purpose) error {
	if !p.valid() {
		return fmt.Errorf("keyring: unknown key purpose %q", p)
	}
	return nil
}

// AddVersion generates a new key version of purpose p in StateActive and
// returns its number. Adding before promoting lets every instance Reload and
// learn the version before any ciphertext under it exists; Promote it later.
func (k *Keyring) AddVersion(ctx context.Context, p Purpose) (uint32, error) {
	if err := checkPurpose(p); err != nil {
		return 0, err
	}
	var added uint32
	err := k.updateKeys(ctx, func(cur Snapshot, kc keyChange) ([]WrappedKey, error) {
		v, err := nextVersion(cur.Keys, p)
		if err != nil {
			return nil, err
		}
		w, err := newWrappedKey(kc.mek, cur.DatabaseID, p, v, StateActive, kc.now)
		if err != nil {
			return nil, err
		}
		added = v
		return []WrappedKey{w}, nil
	})
	if err != nil {
		return 0, err
	}
	return added, nil
}

// Promote makes version the primary of purpose p; the previous primary
// becomes active, so it still decrypts and verifies. Promoting the primary
// again is a no-op. A missing or retired version is ErrUnknownKeyVersion.
func (k *Keyring) Promote(ctx context.Context, p Purpose, version uint32) error {
	if err := checkPurpose(p); err != nil {
		return err
	}
	return k.updateKeys(ctx, func(cur Snapshot, kc keyChange) ([]WrappedKey, error) {
		i := findKey(cur.Keys, p, version)
		if i < 0 {
			return nil, unknownVersion(p, version)
		}
		target := cur.Keys[i]
		switch target.State {
		case StatePrimary:
			return nil, nil
		case StateRetired:
			return nil, fmt.Errorf("%w: %s version %d is retired", ErrUnknownKeyVersion, p, version)
		}
		target.State, target.UpdatedAt = StatePrimary, kc.now
		return append(demotePrimary(cur.Keys, p, kc.now), target), nil
	})
}

// Rotate adds a new version of purpose p and makes it primary in one
// transaction, returning its number. Old versions stay active: existing
// ciphertexts and hashes still open and verify. With several instances,
// prefer AddVersion, Reload everywhere, then Promote, so that no instance
// meets a version it has not loaded yet.
func (k *Keyring) Rotate(ctx context.Context, p Purpose) (uint32, error) {
	if err := checkPurpose(p); err != nil {
		return 0, err
	}
	var added uint32
	err := k.updateKeys(ctx, func(cur Snapshot, kc keyChange) ([]WrappedKey, error) {
		v, err := nextVersion(cur.Keys, p)
		if err != nil {
			return nil, err
		}
		w, err := newWrappedKey(kc.mek, cur.DatabaseID, p, v, StatePrimary, kc.now)
		if err != nil {
			return nil, err
		}
		added = v
		return append(demotePrimary(cur.Keys, p, kc.now), w), nil
	})
	if err != nil {
		return 0, err
	}
	return added, nil
}

// Retire destroys a non-primary version of purpose p: its row stays, in
// StateRetired, but its wrapped key is erased from the store (an empty
// Ciphertext and Fingerprint), so the version can never be unwrapped again,
// by this keyring or by anyone who later gains write access to the store.
// Whatever it still protected is lost for good: envelopes under it fail with
// ErrUnknownKeyVersion, credential hashes under it never verify again. That
// is why Retire refuses with ErrKeyInUse when the version is primary or
// counter reports stored values still using it; move them first (Reencrypt,
// or rehash credentials on use). A backup of the store taken before Retire
// still holds the key.
//
// Retiring a retired version writes nothing, unless it was retired before
// Retire destroyed key material and still holds its wrapped key: then that
// is destroyed now, after the same in-use check.
//
// Retirement is final because the key is gone, not because the state says
// so: the state is not authenticated, and a row set back to active or
// primary in the store makes Open, Unlock and Reload fail with
// ErrKeyringCorrupt, naming the version.
//
// The count runs before the keyring transaction, not inside it: counting
// scans whole tables, and holding the keyring lock that long would stall
// every other instance's rotation. Only primary versions receive new writes
// and the transaction re-checks that the version is not primary, so the
// count cannot go stale as long as every instance has reloaded since the
// version stopped being primary.
func (k *Keyring) Retire(ctx context.Context, p Purpose, version uint32, counter InUseCounter) error {
	if err := checkPurpose(p); err != nil {
		return err
	}
	if counter == nil {
		return fmt.Errorf("keyring: Retire needs an InUseCounter")
	}
	if k.mustState().primary(p) == version {
		return fmt.Errorf("%w: %s version %d is primary", ErrKeyInUse, p, version)
	}
	n, err := counter.CountInUse(ctx, p, version)
	if err != nil {
		return fmt.Errorf("keyring: count uses of %s version %d: %w", p, version, err)
	}
	if n != 0 {
		return fmt.Errorf("%w: %d stored values still use %s version %d", ErrKeyInUse, n, p, version)
	}
	return k.updateKeys(ctx, func(cur Snapshot, kc keyChange) ([]WrappedKey, error) {
		i := findKey(cur.Keys, p, version)
		if i < 0 {
			return nil, unknownVersion(p, version)
		}
		w := cur.Keys[i]
		switch {
		case w.State == StatePrimary:
			return nil, fmt.Errorf("%w: %s version %d is primary", ErrKeyInUse, p, version)
		case w.State == StateRetired && w.destroyed() && w.Fingerprint == "":
			return nil, nil
		}
		w.State = StateRetired
		return []WrappedKey{w.destroy(kc.now)}, nil
	})
}

// RotateMasterKey rewraps every stored key that is not retired under newMEK
// in one Store.Update. Each key is unwrapped with whichever of the
// keyring's master keys (current, previous, or newMEK itself) its fingerprint
// names, rewrapped, and verified by unwrapping the result before anything is
// written; a key already under newMEK is left as is, so repeating the call is
// harmless. Retired keys have nothing to rewrap and are left alone; one
// retired before Retire destroyed key material still holds its wrapped key,
// which is destroyed (not rewrapped) in the same transaction. Afterwards the
// keyring uses newMEK alone, and other instances need newMEK (or
// WithPreviousMasterKey) to open the store. Only the small key rows change:
// no field envelope is touched.
func (k *Keyring) RotateMasterKey(ctx context.Context, newMEK MasterKey) error {
	if newMEK.IsZero() {
		return fmt.Errorf("%w: RotateMasterKey needs a new master key", ErrMasterKeyMissing)
	}
	return k.update(ctx, func(st *state, cur Snapshot) ([]WrappedKey, masterKeys, error) {
		next := masterKeys{current: newMEK}
		candidates := []MasterKey{newMEK, st.mek, st.previous}
		if err := checkFingerprints(cur.Keys, candidates...); err != nil {
			return nil, next, err
		}
		now := k.now()
		var changes []WrappedKey
		for _, w := range cur.Keys {
			if w.State == StateRetired {
				if !w.destroyed() || w.Fingerprint != "" {
					changes = append(changes, w.destroy(now))
				}
				continue
			}
			if w.Fingerprint == newMEK.Fingerprint() {
				continue // buildState of the result verifies it unwraps
			}
			rewrapped, err := rewrap(w, cur.DatabaseID, candidates, newMEK)
			if err != nil {
				return nil, next, err
			}
			w.Ciphertext, w.Fingerprint, w.UpdatedAt = rewrapped, newMEK.Fingerprint(), now
			changes = append(changes, w)
		}
		return changes, next, nil
	})
}

// rewrap unwraps w with the candidate its fingerprint names and wraps the key
// under newMEK, verifying the result by a round trip.
func rewrap(w WrappedKey, databaseID string, candidates []MasterKey, newMEK MasterKey) ([]byte, error) {
	var old MasterKey
	for _, m := range candidates {
		if !m.IsZero() && m.Fingerprint() == w.Fingerprint {
			old = m
			break
		}
	}
	key, err := unwrapKey(old, databaseID, w.Purpose, w.Version, w.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: %s key version %d does not unwrap although its master key fingerprint %s matches", ErrKeyringCorrupt, w.Purpose, w.Version, w.Fingerprint)
	}
	defer clear(key)
	rewrapped, err := wrapKey(newMEK, databaseID, w.Purpose, w.Version, key)
	if err != nil {
		return nil, err
	}
	check, err := unwrapKey(newMEK, databaseID, w.Purpose, w.Version, rewrapped)
	if err != nil || subtle.ConstantTimeCompare(check, key) != 1 {
		return nil, fmt.Errorf("keyring: %s key version %d failed verification after rewrapping", w.Purpose, w.Version)
	}
	clear(check)
	return rewrapped, nil
}
