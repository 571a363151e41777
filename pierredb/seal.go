package pierredb

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/pierre-mcp/pierre/keyring"
)

// Several instances share one keyring: when one rotates the data key (or the
// hashing key), the others must learn of the new version without a restart,
// or they keep sealing under the old one and cannot open values sealed under
// the new one. seal and unseal do that for every domain that encrypts a column.

// keyringFreshness is how long an instance trusts the keyring it loaded before
// sealing re-reads it: a version another instance promoted is used within it.
const keyringFreshness = time.Minute

// keyringReloadGap bounds how often meeting an unknown, newer version makes an
// instance re-read the keyring (a flood of forged envelopes must not become a
// flood of queries).
const keyringReloadGap = time.Second

// keyringClock remembers when this Database last re-read its keyring.
type keyringClock struct{ last atomic.Int64 } // unix nanoseconds

// refresh re-reads the keyring when it was last read more than age ago.
// Failure is logged and the loaded keyring kept: sealing under a version that
// is still valid everywhere is never wrong, only late.
func (db *Database) refreshKeyring(ctx context.Context, age time.Duration) bool {
	now := db.now().UnixNano()
	last := db.keyringRead.last.Load()
	if now-last < int64(age) || !db.keyringRead.last.CompareAndSwap(last, now) {
		return false
	}
	// Callers that decrypt while scanning rows have no context of their own: a
	// re-read is bounded here.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := db.keys.Reload(ctx); err != nil {
		db.log.Warn("pierredb: could not re-read the keyring; using the one loaded", "reason", err.Error())
		return false
	}
	return true
}

// seal encrypts plaintext under the primary data key, bound to c, with a
// keyring at most keyringFreshness old.
func (db *Database) seal(ctx context.Context, plaintext []byte, c keyring.Context) ([]byte, error) {
	db.refreshKeyring(ctx, keyringFreshness)
	return db.keys.Encrypt(plaintext, c)
}

// unseal decrypts an envelope bound to c. An envelope sealed under a version
// newer than this instance has loaded (another instance rotated) makes it
// re-read the keyring once, then try again.
func (db *Database) unseal(ctx context.Context, envelope []byte, c keyring.Context) ([]byte, error) {
	out, err := db.keys.Decrypt(envelope, c)
	if !errors.Is(err, keyring.ErrUnknownKeyVersion) {
		return out, err
	}
	v, verr := keyring.EnvelopeKeyVersion(envelope)
	if verr != nil || !db.newerThanLoaded(keyring.PurposeEncryption, v) || !db.refreshKeyring(ctx, keyringReloadGap) {
		return out, err
	}
	return db.keys.Decrypt(envelope, c)
}

// newerThanLoaded reports whether version is newer than every version of
// purpose this instance knows (retired ones included).
func (db *Database) newerThanLoaded(p keyring.Purpose, version uint32) bool {
	for _, k := range db.keys.Keys() {
		if k.Purpose == p && k.Version >= version {
			return false
		}
	}
	return true
}

// hashCredential is the keyed hash of secret under the primary hashing key,
// with a keyring at most keyringFreshness old.
func (db *Database) hashCredential(ctx context.Context, domain string, secret []byte) string {
	db.refreshKeyring(ctx, keyringFreshness)
	return db.keys.HashCredential(domain, secret)
}

// verifyCredential checks secret against a stored keyed hash; a hash made
// under a hashing key newer than this instance has loaded makes it re-read the
// keyring once, then check again.
func (db *Database) verifyCredential(ctx context.Context, domain string, secret []byte, stored string) (bool, error) {
	ok, err := db.keys.VerifyCredential(domain, secret, stored)
	if !errors.Is(err, keyring.ErrUnknownKeyVersion) {
		return ok, err
	}
	v, verr := keyring.CredentialHashVersion(stored)
	if verr != nil || !db.newerThanLoaded(keyring.PurposeHashing, v) || !db.refreshKeyring(ctx, keyringReloadGap) {
		return ok, err
	}
	return db.keys.VerifyCredential(domain, secret, stored)
}
