package keyring

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const (
	// credentialPrefix starts every credential hash; the version and the
	// MAC follow, e.g. "hmac-sha256$v1$<43 base64url characters>".
	credentialPrefix = "hmac-sha256$v"
	// credentialLabel heads the MAC input, separating credential hashes from
	// any other use of the hashing keys.
	credentialLabel  = "pierre/keyring/credential/v1"
	credentialMACB64 = 43 // base64.RawURLEncoding.EncodedLen(sha256.Size)
)

var credentialMACEncoding = base64.RawURLEncoding.Strict()

// HashCredential returns a keyed hash of secret under the primary hashing
// key, e.g. "hmac-sha256$v1$<base64url>". domain separates uses ("api_key",
// "a2a_client_secret"): the same secret hashes differently in each. The
// output names the key version, so the hashing key can rotate while older
// hashes still verify; without the master key, a database dump can neither
// verify nor forge these hashes.
func (k *Keyring) HashCredential(domain string, secret []byte) string {
	st := k.mustState()
	mac := credentialMAC(st.hashPrim.key, domain, secret)
	return formatCredentialHash(st.hashPrim.version, mac[:])
}

// VerifyCredential reports whether secret matches stored, a hash made by
// HashCredential with the same domain, comparing in constant time. A
// mismatch is (false, nil); a stored value of the wrong shape is
// ErrMalformedCredentialHash; a hash under a version this keyring does not
// hold, or that is retired, is ErrUnknownKeyVersion.
func (k *Keyring) VerifyCredential(domain string, secret []byte, stored string) (bool, error) {
	version, want, err := parseCredentialHash(stored)
	if err != nil {
		return false, err
	}
	key := k.mustState().hashKeyFor(version)
	if key == nil {
		return false, unknownVersion(PurposeHashing, version)
	}
	got := credentialMAC(key, domain, secret)
	return hmac.Equal(got[:], want[:]), nil
}

// CredentialHashVersion returns the hashing key version named by a stored
// credential hash, so that hashes under an old version can be found and
// re-hashed at the holder's next login. A malformed value is
// ErrMalformedCredentialHash.
func CredentialHashVersion(stored string) (uint32, error) {
	version, _, err := parseCredentialHash(stored)
	return version, err
}

// credentialMAC is HMAC-SHA256(key, prefixed(label) | prefixed(domain) | secret).
// The domain is length-prefixed so no (domain, secret) pair can be shifted
// into another.
func credentialMAC(key []byte, domain string, secret []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, key)
	var head [binary.MaxVarintLen64 + len(credentialLabel)]byte
	m.Write(appendPrefixed(head[:0], credentialLabel))
	m.Write(binary.AppendUvarint(head[:0], uint64(len(domain))))
	_, _ = io.WriteString(m, domain)
	m.Write(secret)
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	return sum
}

func formatCredentialHash(version uint32, mac []byte) string {
	var b strings.Builder
	b.Grow(len(credentialPrefix) + 10 + 1 + credentialMACB64)
	b.WriteString(credentialPrefix)
	b.WriteString(strconv.FormatUint(uint64(version), 10))
	b.WriteByte('$')
	b.WriteString(credentialMACEncoding.EncodeToString(mac))
	return b.String()
}

// parseCredentialHash parses "hmac-sha256$v<version>$<mac>" strictly: a
// decimal version from 1 to 2^32-1 without leading zeros or sign, and exactly
// 43 canonical base64url characters decoding to 32 bytes. Strictness makes
// the encoding canonical: one hash has exactly one accepted spelling.
func parseCredentialHash(stored string) (uint32, [sha256.Size]byte, error) {
	var mac [sha256.Size]byte
	rest, ok := strings.CutPrefix(stored, credentialPrefix)
	if !ok {
		return 0, mac, fmt.Errorf("%w: does not start with %q", ErrMalformedCredentialHash, credentialPrefix)
	}
	digits, encoded, ok := strings.Cut(rest, "$")
	if !ok || len(digits) == 0 || len(digits) > 10 || digits[0] == '0' || !isDecimal(digits) {
		return 0, mac, fmt.Errorf("%w: bad key version", ErrMalformedCredentialHash)
	}
	version, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		return 0, mac, fmt.Errorf("%w: bad key version", ErrMalformedCredentialHash)
	}
	if len(encoded) != credentialMACB64 {
		return 0, mac, fmt.Errorf("%w: MAC is %d characters, want %d", ErrMalformedCredentialHash, len(encoded), credentialMACB64)
	}
	n, err := credentialMACEncoding.Decode(mac[:], []byte(encoded))
	if err != nil || n != sha256.Size {
		return 0, mac, fmt.Errorf("%w: MAC is not canonical base64url", ErrMalformedCredentialHash)
	}
	return uint32(version), mac, nil
}

func isDecimal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
