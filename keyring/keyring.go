package keyring

import (
	"cmp"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Option configures Open and Unlock.
type Option func(*options)

type options struct {
	previous MasterKey
	now      func() time.Time
	// fillNonce writes a fresh nonce; tests replace it to freeze
	// known-answer vectors.
	fillNonce func([]byte)
}

func defaultOptions() options {
	return options{now: time.Now, fillNonce: randomNonce}
}

// randomNonce fills b from crypto/rand, which never fails (it crashes the
// program instead of returning short or predictable output).
func randomNonce(b []byte) { _, _ = rand.Read(b) }

// WithPreviousMasterKey lets the keyring unwrap keys whose fingerprint matches
// prev during a master key rollover: start every instance with the new key as
// the master key and the old one as prev, call RotateMasterKey with the new
// key once, then drop prev. A zero prev is ignored.
func WithPreviousMasterKey(prev MasterKey) Option {
	return func(o *options) { o.previous = prev }
}

// WithClock sets the clock used for CreatedAt and UpdatedAt; nil keeps
// time.Now. Times are stored in UTC, truncated to microseconds so that they
// survive a round trip through PostgreSQL unchanged.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// KeyInfo describes one stored key version. It carries no key material.
type KeyInfo struct {
	Purpose   Purpose
	Version   uint32
	State     KeyState
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Keyring holds the unwrapped keys of one database and performs every
// operation that needs them. It is safe for concurrent use. Make one with
// Open or Unlock; the zero Keyring is not usable.
//
// The keys live in an immutable state behind an atomic pointer: Encrypt,
// Decrypt and the credential functions take no lock and build no cipher,
// while Reload and the rotation methods build a new state and swap it in.
type Keyring struct {
	store Store
	opts  options
	// writeMu orders this instance's writes and reloads so a slower one
	// never swaps an older state over a newer one.
	writeMu sync.Mutex
	state   atomic.Pointer[state]
}

// state is one immutable view of the keyring.
type state struct {
	databaseID string
	mek        MasterKey
	previous   MasterKey
	infos      []KeyInfo
	encPrimary encKey
	enc        []encKey // every usable encryption version, primary included
	hashPrim   hashKey
	hash       []hashKey // every usable hashing version, primary included
}

// encKey is a usable DEK version with its AEAD built once at unlock.
type encKey struct {
	version uint32
	aead    cipher.AEAD
}

// hashKey is a usable credential-hashing key version.
type hashKey struct {
	version uint32
	key     []byte
}

func (s *state) encAEAD(version uint32) cipher.AEAD {
	if version == s.encPrimary.version {
		return s.encPrimary.aead
	}
	for i := range s.enc {
		if s.enc[i].version == version {
			return s.enc[i].aead
		}
	}
	return nil
}

func (s *state) hashKeyFor(version uint32) []byte {
	for i := range s.hash {
		if s.hash[i].version == version {
			return s.hash[i].key
		}
	}
	return nil
}

func (s *state) primary(p Purpose) uint32 {
	switch p {
	case PurposeEncryption:
		return s.encPrimary.version
	case PurposeHashing:
		return s.hashPrim.version
	}
	return 0
}

// mustState returns the current state. Only a Keyring made by Open or
// Unlock has one; using a zero Keyring is a programming error.
func (k *Keyring) mustState() *state {
	st := k.state.Load()
	if st == nil {
		panic("keyring: Keyring used without Open or Unlock")
	}
	return st
}

func newKeyring(store Store, mek MasterKey, opts []Option) (*Keyring, error) {
	if store == nil {
		return nil, fmt.Errorf("keyring: nil Store")
	}
	if mek.IsZero() {
		return nil, fmt.Errorf("%w: the master key is the zero MasterKey", ErrMasterKeyMissing)
	}
	k := &Keyring{store: store, opts: defaultOptions()}
	for _, o := range opts {
		o(&k.opts)
	}
	return k, nil
}

// Open unlocks the keyring in store, bootstrapping it first when the store
// was never bootstrapped: it then generates a database id, an encryption key
// and a hashing key (version 1, primary), offers them with Store.Create
// (insert-if-absent) and always re-reads the store, so processes racing on an
// empty store all end up with the one keyring that won.
//
// A Load error is returned and never leads to a write. A wrong master key is
// ErrWrongMasterKey, reported before anything is written.
func Open(ctx context.Context, store Store, mek MasterKey, opts ...Option) (*Keyring, error) {
	k, err := newKeyring(store, mek, opts)
	if err != nil {
		return nil, err
	}
	snap, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("keyring: load: %w", err)
	}
	if snap.DatabaseID == "" && len(snap.Keys) == 0 {
		boot, err := bootstrapSnapshot(mek, k.now())
		if err != nil {
			return nil, err
		}
		if _, err := store.Create(ctx, boot); err != nil {
			return nil, fmt.Errorf("keyring: bootstrap: %w", err)
		}
		// Whether or not this process won, the stored keyring is the truth.
		if snap, err = store.Load(ctx); err != nil {
			return nil, fmt.Errorf("keyring: load after bootstrap: %w", err)
		}
	}
	st, err := buildState(snap, mek, k.opts.previous)
	if err != nil {
		return nil, err
	}
	k.state.Store(st)
	return k, nil
}

// Unlock unlocks the keyring in store without ever writing. A store that was
// never bootstrapped is ErrKeyringEmpty; a wrong master key is
// ErrWrongMasterKey.
func Unlock(ctx context.Context, store Store, mek MasterKey, opts ...Option) (*Keyring, error) {
	k, err := newKeyring(store, mek, opts)
	if err != nil {
		return nil, err
	}
	snap, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("keyring: load: %w", err)
	}
	st, err := buildState(snap, mek, k.opts.previous)
	if err != nil {
		return nil, err
	}
	k.state.Store(st)
	return k, nil
}

// bootstrapSnapshot makes a new database id and version 1 of every purpose.
func bootstrapSnapshot(mek MasterKey, now time.Time) (Snapshot, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Snapshot{}, fmt.Errorf("keyring: database id: %w", err)
	}
	snap := Snapshot{DatabaseID: id.String()}
	for _, p := range purposes {
		w, err := newWrappedKey(mek, snap.DatabaseID, p, 1, StatePrimary, now)
		if err != nil {
			return Snapshot{}, err
		}
		snap.Keys = append(snap.Keys, w)
	}
	return snap, nil
}

// newWrappedKey generates a key and wraps it under mek.
func newWrappedKey(mek MasterKey, databaseID string, p Purpose, version uint32, s KeyState, now time.Time) (WrappedKey, error) {
	key, err := newDataKey()
	if err != nil {
		return WrappedKey{}, err
	}
	defer clear(key)
	ct, err := wrapKey(mek, databaseID, p, version, key)
	if err != nil {
		return WrappedKey{}, err
	}
	return WrappedKey{
		Purpose: p, Version: version, State: s,
		Ciphertext: ct, Fingerprint: mek.Fingerprint(),
		CreatedAt: now, UpdatedAt: now,
	}, nil
}

func (k *Keyring) now() time.Time { return k.opts.now().UTC().Truncate(time.Microsecond) }

// buildState validates snap and unwraps its usable keys. Keys are unwrapped
// with mek, or with previous when their fingerprint names it. A retired key
// is never unwrapped, whether its material was destroyed (the normal case)
// or is still there (a key retired before Retire destroyed material).
func buildState(snap Snapshot, mek, previous MasterKey) (*state, error) {
	if snap.DatabaseID == "" {
		if len(snap.Keys) > 0 {
			return nil, fmt.Errorf("%w: %d keys stored without a database id", ErrKeyringCorrupt, len(snap.Keys))
		}
		return nil, ErrKeyringEmpty
	}
	if err := checkFingerprints(snap.Keys, mek, previous); err != nil {
		return nil, err
	}
	if err := checkStructure(snap.Keys); err != nil {
		return nil, err
	}
	st := &state{databaseID: snap.DatabaseID, mek: mek, previous: previous}
	for _, w := range snap.Keys {
		st.infos = append(st.infos, KeyInfo{
			Purpose: w.Purpose, Version: w.Version, State: w.State,
			CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
		})
		if w.State == StateRetired {
			continue
		}
		wrapping := mek
		if w.Fingerprint != mek.Fingerprint() {
			wrapping = previous
		}
		key, err := unwrapKey(wrapping, snap.DatabaseID, w.Purpose, w.Version, w.Ciphertext)
		if err != nil {
			return nil, fmt.Errorf("%w: %s key version %d does not unwrap although its master key fingerprint %s matches", ErrKeyringCorrupt, w.Purpose, w.Version, w.Fingerprint)
		}
		switch w.Purpose {
		case PurposeEncryption:
			aead, err := newDataAEAD(key)
			clear(key) // the AEAD holds its own expanded copy
			if err != nil {
				return nil, err
			}
			e := encKey{version: w.Version, aead: aead}
			st.enc = append(st.enc, e)
			if w.State == StatePrimary {
				st.encPrimary = e
			}
		case PurposeHashing:
			h := hashKey{version: w.Version, key: key}
			st.hash = append(st.hash, h)
			if w.State == StatePrimary {
				st.hashPrim = h
			}
		}
	}
	slices.SortFunc(st.infos, func(a, b KeyInfo) int {
		if c := strings.Compare(string(a.Purpose), string(b.Purpose)); c != 0 {
			return c
		}
		return cmp.Compare(a.Version, b.Version)
	})
	return st, nil
}

func newDataAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: data key cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// checkFingerprints reports ErrWrongMasterKey, naming the expected and actual
// fingerprints, when any key that would be unwrapped was wrapped by a master
// key other than the given ones. Retired keys are never unwrapped, and a key
// without material has nothing wrapped (checkStructure reports it), so
// neither says anything about the master key.
func checkFingerprints(keys []WrappedKey, meks ...MasterKey) error {
	var unknown []string
	for _, w := range keys {
		if w.State == StateRetired || w.destroyed() {
			continue
		}
		known := false
		for _, m := range meks {
			if !m.IsZero() && w.Fingerprint == m.Fingerprint() {
				known = true
				break
			}
		}
		if !known {
			fp := displayFingerprint(w.Fingerprint)
			if !slices.Contains(unknown, fp) {
				unknown = append(unknown, fp)
			}
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	var have []string
	for _, m := range meks {
		if !m.IsZero() {
			have = append(have, m.Fingerprint())
		}
	}
	return fmt.Errorf("%w: stored keys were wrapped by master key fingerprint %s, but the key(s) given have fingerprint %s",
		ErrWrongMasterKey, strings.Join(unknown, ", "), strings.Join(have, ", "))
}

// displayFingerprint makes a stored fingerprint safe to put in a message: a
// malformed value from a corrupt store is quoted and cut short.
func displayFingerprint(fp string) string {
	if len(fp) == 16 && isAllHex([]byte(fp)) {
		return fp
	}
	if len(fp) > 32 {
		fp = fp[:32] + "..."
	}
	return strconv.Quote(fp)
}

// checkStructure verifies purposes, versions and states: no duplicates,
// exactly one primary per purpose, and key material in every key that is
// not retired.
func checkStructure(keys []WrappedKey) error {
	primaries := map[Purpose]int{}
	seen := map[Purpose]map[uint32]bool{}
	for _, w := range keys {
		switch {
		case !w.Purpose.valid():
			return fmt.Errorf("%w: unknown key purpose %q", ErrKeyringCorrupt, w.Purpose)
		case w.Version == 0:
			return fmt.Errorf("%w: %s key with version 0", ErrKeyringCorrupt, w.Purpose)
		case !w.State.valid():
			return fmt.Errorf("%w: %s key version %d has unknown state %q", ErrKeyringCorrupt, w.Purpose, w.Version, w.State)
		case seen[w.Purpose][w.Version]:
			return fmt.Errorf("%w: %s key version %d stored twice", ErrKeyringCorrupt, w.Purpose, w.Version)
		case w.State != StateRetired && w.destroyed():
			// Only Retire empties a key, so this is a retired key whose state
			// was changed back in the store. Say so: nothing can bring the
			// key back, and it must not pass as a usable version.
			fix := "set its state back to " + string(StateRetired)
			if w.State == StatePrimary {
				fix += " and the version that was primary back to " + string(StatePrimary)
			}
			return fmt.Errorf("%w: %s key version %d is marked %s but holds no key material: "+
				"it was retired, which destroyed the key, and its state was changed back in the store afterwards; "+
				"nothing sealed or hashed under it can be read again, so %s",
				ErrKeyringCorrupt, w.Purpose, w.Version, w.State, fix)
		}
		if seen[w.Purpose] == nil {
			seen[w.Purpose] = map[uint32]bool{}
		}
		seen[w.Purpose][w.Version] = true
		if w.State == StatePrimary {
			primaries[w.Purpose]++
		}
	}
	for _, p := range purposes {
		if n := primaries[p]; n != 1 {
			return fmt.Errorf("%w: %d primary %s keys, want exactly 1", ErrKeyringCorrupt, n, p)
		}
	}
	return nil
}

// DatabaseID returns the id the keyring's keys are bound to.
func (k *Keyring) DatabaseID() string { return k.mustState().databaseID }

// MasterKeyFingerprint returns the fingerprint of the master key in use (the
// new one after RotateMasterKey).
func (k *Keyring) MasterKeyFingerprint() string { return k.mustState().mek.Fingerprint() }

// Keys lists every stored key version, retired ones included, ordered by
// purpose then version. It returns metadata only, never key material.
func (k *Keyring) Keys() []KeyInfo { return slices.Clone(k.mustState().infos) }

// PrimaryVersion returns the primary version of purpose p, or 0 for an
// unknown purpose.
func (k *Keyring) PrimaryVersion(p Purpose) uint32 { return k.mustState().primary(p) }

// Reload re-reads the store, picking up versions added, promoted or retired
// by another instance. On error the keyring keeps its current state.
func (k *Keyring) Reload(ctx context.Context) error {
	k.writeMu.Lock()
	defer k.writeMu.Unlock()
	cur := k.mustState()
	snap, err := k.store.Load(ctx)
	if err != nil {
		return fmt.Errorf("keyring: reload: %w", err)
	}
	if snap.DatabaseID != "" && snap.DatabaseID != cur.databaseID {
		return fmt.Errorf("%w: database id changed from %s to %s", ErrKeyringCorrupt, cur.databaseID, snap.DatabaseID)
	}
	next, err := buildState(snap, cur.mek, cur.previous)
	if err != nil {
		return fmt.Errorf("keyring: reload: %w", err)
	}
	k.state.Store(next)
	return nil
}

// String describes the keyring without key material.
func (k *Keyring) String() string {
	if k == nil {
		return "keyring.Keyring(nil)"
	}
	st := k.state.Load()
	if st == nil {
		return "keyring.Keyring(locked)"
	}
	return "keyring.Keyring(db=" + st.databaseID + " mek=" + st.mek.Fingerprint() + ")"
}

// GoString returns the same description as String, for %#v.
func (k *Keyring) GoString() string { return k.String() }

// Format implements fmt.Formatter so that no verb, %#v and %x included,
// ever walks into the keyring's internals.
func (k *Keyring) Format(f fmt.State, verb rune) { formatRedacted(f, verb, k.String()) }
