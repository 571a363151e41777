package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// Wrapped key format: format version | algorithm | nonce | AES-256-GCM
// ciphertext and tag of the 32-byte key.
const (
	wrapFormatV1   = 0x01
	wrapAlgAESGCM  = 0x01
	wrapHeaderSize = 2
	dataKeySize    = 32
	gcmNonceSize   = 12
	gcmTagSize     = 16
	wrappedKeySize = wrapHeaderSize + gcmNonceSize + dataKeySize + gcmTagSize

	// wrapLabel heads the wrapping AAD so it can never equal a field
	// envelope's or any other structure's AAD.
	wrapLabel = "pierre/keyring/wrap/v1"
)

// errUnwrap is the internal cause when a wrapped key does not open; callers
// turn it into ErrKeyringCorrupt with context.
var errUnwrap = errors.New("wrapped key does not open")

// wrapAAD binds a wrapped key to its header, database, purpose and version,
// each length-prefixed, so a wrapped key copied to another row or another
// database fails to unwrap.
//
// The key's state is deliberately not bound. Retirement is made final by
// destroying the wrapped key (Retire), and a row marked usable but holding
// no key is ErrKeyringCorrupt, so there is nothing left for a state flip to
// revive. Binding the state would not add to that: someone who can write
// the store can also put back a whole older row (state and the wrap made
// under that state) from a backup or an earlier read, which no AAD can tell
// from the current one. It would also change this format (stored keyrings
// and the known-answer vectors), force a rewrap on every Promote and
// demotion, and still not protect keys retired before Retire destroyed
// material, whose v1 wraps would have to stay accepted.
func wrapAAD(header []byte, databaseID string, p Purpose, version uint32) []byte {
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], version)
	aad := make([]byte, 0, len(header)+4*binary.MaxVarintLen64+len(wrapLabel)+len(databaseID)+len(p)+len(v))
	aad = append(aad, header...)
	aad = appendPrefixed(aad, wrapLabel)
	aad = appendPrefixed(aad, databaseID)
	aad = appendPrefixed(aad, string(p))
	aad = appendPrefixed(aad, string(v[:]))
	return aad
}

// newMasterAEAD builds the AES-256-GCM AEAD for mek. Wrapping is rare (bootstrap,
// rotation, unlock), so the AEAD is not cached.
func newMasterAEAD(mek MasterKey) (cipher.AEAD, error) {
	if mek.IsZero() {
		return nil, ErrMasterKeyMissing
	}
	block, err := aes.NewCipher(mek.key()[:])
	if err != nil {
		return nil, fmt.Errorf("keyring: master key cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// wrapKeyWithNonce seals key under mek with the given nonce. Only tests pass
// a fixed nonce (known-answer vectors); wrapKey draws a random one.
func wrapKeyWithNonce(mek MasterKey, databaseID string, p Purpose, version uint32, key, nonce []byte) ([]byte, error) {
	aead, err := newMasterAEAD(mek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, wrapHeaderSize+gcmNonceSize, wrappedKeySize)
	out[0], out[1] = wrapFormatV1, wrapAlgAESGCM
	copy(out[wrapHeaderSize:], nonce)
	return aead.Seal(out, nonce, key, wrapAAD(out[:wrapHeaderSize], databaseID, p, version)), nil
}

// wrapKey seals key under mek with a random nonce.
func wrapKey(mek MasterKey, databaseID string, p Purpose, version uint32, key []byte) ([]byte, error) {
	var nonce [gcmNonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("keyring: nonce: %w", err)
	}
	return wrapKeyWithNonce(mek, databaseID, p, version, key, nonce[:])
}

// unwrapKey opens a wrapped key. Any malformation or authentication failure
// is errUnwrap; the caller knows the fingerprint matched and reports
// ErrKeyringCorrupt.
func unwrapKey(mek MasterKey, databaseID string, p Purpose, version uint32, wrapped []byte) ([]byte, error) {
	if len(wrapped) != wrappedKeySize || wrapped[0] != wrapFormatV1 || wrapped[1] != wrapAlgAESGCM {
		return nil, errUnwrap
	}
	aead, err := newMasterAEAD(mek)
	if err != nil {
		return nil, err
	}
	nonce := wrapped[wrapHeaderSize : wrapHeaderSize+gcmNonceSize]
	key, err := aead.Open(nil, nonce, wrapped[wrapHeaderSize+gcmNonceSize:], wrapAAD(wrapped[:wrapHeaderSize], databaseID, p, version))
	if err != nil || len(key) != dataKeySize {
		return nil, errUnwrap
	}
	return key, nil
}

// newDataKey returns 32 random bytes for a new DEK or hashing key.
func newDataKey() ([]byte, error) {
	key := make([]byte, dataKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("keyring: generate data key: %w", err)
	}
	return key, nil
}

// appendPrefixed appends uvarint(len(s)) then s: the length prefix keeps
// field boundaries unambiguous ("ab"+"c" never encodes like "a"+"bc").
func appendPrefixed(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// prefixedLen is len(appendPrefixed(nil, s)).
func prefixedLen(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

// uvarintLen is the encoded size of binary.AppendUvarint(nil, x).
func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
