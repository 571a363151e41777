// Package keyring is pierre's crypto core: it loads the master encryption key,
// keeps data keys wrapped in the database, seals individual fields in
// authenticated envelopes, hashes credentials with a secret key, and rotates
// all of these keys. It knows nothing of SQL; it persists through the small
// Store interface, which pierredb implements and MemoryStore implements in
// memory.
//
// # Two tiers of keys
//
// The master encryption key (MEK, a MasterKey) never touches the database. It
// comes from PIERRE_MASTER_ENCRYPTION_KEY (base64 or hex text) or from the
// file named by DATABASE_ENCRYPTION_KEY_PATH (base64 or hex text, or exactly
// 32 raw bytes; LoadMasterKey). It wraps the data keys, which are stored as
// WrappedKey rows:
//
//   - PurposeEncryption keys (DEKs) seal field envelopes with AES-256-GCM;
//   - PurposeHashing keys compute HMAC-SHA256 credential hashes, so a dump of
//     the database alone can neither verify nor forge an API key.
//
// Each purpose has numbered versions; exactly one is StatePrimary (used for
// new writes), others are StateActive (still read) or StateRetired
// (destroyed: the row stays so the version number is never reused, but its
// wrapped key has been erased). Every row stores the fingerprint of the MEK
// that wrapped it, so a wrong MEK is reported as ErrWrongMasterKey, distinct
// from ErrKeyringCorrupt.
//
// Open bootstraps an empty store (insert-if-absent, then re-read, so racing
// processes agree on one keyring) or unlocks an existing one; Unlock never
// writes. A Keyring is safe for concurrent use: its unwrapped keys live in an
// immutable state behind an atomic pointer, with one AEAD per DEK version
// built at unlock, so Encrypt and Decrypt take no lock and build no cipher.
//
// # Formats
//
// A wrapped key is 62 bytes:
//
//	0x01 format | 0x01 alg (AES-256-GCM) | 12-byte nonce | sealed 32-byte key and 16-byte tag
//
// sealed under the MEK with AAD = the 2 header bytes, then the label
// "pierre/keyring/wrap/v1", the database id, the purpose and the big-endian
// version, each prefixed by its uvarint length. A wrapped key copied to
// another version, purpose or database does not unwrap. A retired key is
// stored with an empty wrapped key and fingerprint.
//
// A field envelope is len(plaintext)+EnvelopeOverhead bytes:
//
//	0x01 format | 0x01 alg (AES-256-GCM) | uint32 big-endian DEK version | 12-byte nonce | ciphertext | 16-byte tag
//
// sealed under that DEK version with AAD = the 6 header bytes, then the label
// "pierre/keyring/field/v1", Context.Tenant, Table, Column and RowID, the
// number of extras and each of Context.Extra, every string prefixed by its
// uvarint length, then zero bytes up to a multiple of 16 and at least 128
// (the padding makes GHASH faster; the encoding is self-delimiting, so it
// stays unambiguous). The header is thus authenticated, and a ciphertext moved to
// another row, column, tenant or extra fails with ErrDecrypt. Any tampering
// or truncation is the same ErrDecrypt; a version the keyring does not hold
// is ErrUnknownKeyVersion. Nonces are random, so rotate a DEK well before it
// has sealed 2^32 values.
//
// A credential hash is "hmac-sha256$v<version>$<base64url, no padding>" of
// HMAC-SHA256 over the length-prefixed label "pierre/keyring/credential/v1",
// the length-prefixed domain, then the secret.
//
// # Rotation
//
// RotateMasterKey rewraps the key rows under a new MEK in one transaction
// (field envelopes are untouched); WithPreviousMasterKey and
// PIERRE_PREVIOUS_MASTER_ENCRYPTION_KEY cover the rollover window. For a
// data key, AddVersion then Promote (or Rotate for both at once) switches new
// writes to a new version while old versions still decrypt; Reencrypt moves
// stored envelopes over in batches.
//
// Retire destroys a version: it erases the wrapped key from the store, so
// whatever is still sealed or hashed under that version can never be read or
// verified again, by anyone (short of a backup taken before). That is why
// Retire, given an InUseCounter, refuses with ErrKeyInUse while anything
// still uses the version. Retirement does not rest on the stored state, which
// is not authenticated: a retired row set back to active or primary in the
// database holds no key, and Open, Unlock and Reload refuse it with
// ErrKeyringCorrupt. Keys retired before Retire destroyed material are never
// unwrapped; Retire on them again, or RotateMasterKey, destroys them.
//
// # Secrets stay secret
//
// No error, fmt verb, slog record or JSON encoding produced by this package
// contains key material: MasterKey and Keyring redact themselves, and error
// messages name only lengths, versions and fingerprints.
package keyring
