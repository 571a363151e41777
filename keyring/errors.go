package keyring

import "errors"

// Sentinel errors. Every error this package returns wraps at most one of them
// (test with errors.Is) and never contains key material. ErrKeyringMissing
// is defined here but returned by the store's owner (package pierredb), not
// by this package.
var (
	// ErrMasterKeyMissing means neither PIERRE_MASTER_ENCRYPTION_KEY nor
	// DATABASE_ENCRYPTION_KEY_PATH is set, or a zero MasterKey was passed.
	ErrMasterKeyMissing = errors.New("keyring: master encryption key missing")

	// ErrMasterKeyConflict means both PIERRE_MASTER_ENCRYPTION_KEY and
	// DATABASE_ENCRYPTION_KEY_PATH are set, so the intended source is ambiguous.
	ErrMasterKeyConflict = errors.New("keyring: master encryption key set twice")

	// ErrMasterKeyInvalid means the master key has the wrong length, a bad
	// encoding or is all zero bytes. The wrapping message says how many bytes
	// were found, never the value.
	ErrMasterKeyInvalid = errors.New("keyring: invalid master encryption key")

	// ErrMasterKeyFileInsecure means the key file is writable by group or
	// others, is not a regular file after following links, is larger than
	// 4 KiB, or is readable by others without LoadOptions.AllowReadableByOthers.
	ErrMasterKeyFileInsecure = errors.New("keyring: insecure master key file")

	// ErrWrongMasterKey means the stored keys were wrapped by a different
	// master key. The wrapping message names the expected and actual
	// fingerprints.
	ErrWrongMasterKey = errors.New("keyring: wrong master encryption key")

	// ErrKeyringCorrupt means the master key is the right one (fingerprints
	// match) but a stored key fails to unwrap, or a stored record is malformed.
	ErrKeyringCorrupt = errors.New("keyring: stored keyring is corrupt")

	// ErrKeyringEmpty means Unlock found a store that was never bootstrapped.
	ErrKeyringEmpty = errors.New("keyring: store holds no keyring")

	// ErrKeyringMissing means the database was initialised with a keyring,
	// but the keyring is gone (its rows were deleted or not restored). Restore
	// it from a backup of the same database: creating a new keyring would
	// make every secret already stored unreadable. Package pierredb returns it
	// when it finds an initialised database without a keyring, instead of
	// letting Open bootstrap a new one; Open itself cannot tell "never
	// initialised" from "lost" and keeps bootstrapping an empty store.
	ErrKeyringMissing = errors.New("keyring: keyring missing from an initialised database")

	// ErrUnknownKeyVersion means an envelope or credential hash names a key
	// version this keyring does not hold, or one that is retired.
	ErrUnknownKeyVersion = errors.New("keyring: unknown key version")

	// ErrDecrypt is the one uniform error for a tampered, truncated, malformed
	// or moved ciphertext. It deliberately carries no detail about which check
	// failed.
	ErrDecrypt = errors.New("keyring: decryption failed")

	// ErrKeyInUse means Retire was refused because the version is primary or
	// still referenced by stored ciphertexts or hashes.
	ErrKeyInUse = errors.New("keyring: key version still in use")

	// ErrMalformedCredentialHash means a stored credential hash does not have
	// the "hmac-sha256$v<version>$<base64url>" shape HashCredential produces.
	ErrMalformedCredentialHash = errors.New("keyring: malformed credential hash")
)
