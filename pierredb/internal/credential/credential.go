// Package credential makes and parses pierre's secret tokens: API keys
// ("pk_live_…", "pk_trial_…"), A2A client secrets and ids, and the random parts of
// other credentials.
//
// A token is <kind>_<body><checksum>: kind names what it is (so a leaked token
// says what it unlocks, and secret scanners can find it), body is base62 of at
// least 128 random bits, and checksum is 6 base62 characters of the CRC-32 of
// everything before it, so that a typo or a truncated paste is refused before
// any query. The first LookupLength characters of the body are the token's
// lookup prefix: stored in clear under a UNIQUE index, they find the row, and
// with 71 random bits a collision would take tens of billions of tokens. The
// whole token is then checked against its keyed hash (keyring.HashCredential),
// which the database alone cannot test guesses against.
package credential

import (
	"crypto/rand"
	"errors"
	"hash/crc32"
	"strings"
)

const (
	// BodyLength is the number of random base62 characters of a token: 22
	// characters hold 130.9 bits.
	BodyLength = 22
	// LookupLength is how many characters of the body the lookup prefix keeps.
	LookupLength = 12
	// ChecksumLength is the number of base62 characters of the CRC-32 checksum.
	ChecksumLength = 6
	// MaxLength bounds any token this package parses.
	MaxLength = 128
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrMalformed says that a string is not a well-formed token of the expected
// kind: wrong prefix, length, alphabet or checksum.
var ErrMalformed = errors.New("malformed credential")

// New returns a new token of kind (for example "pk_live") and its lookup
// prefix ("pk_live_" plus the first LookupLength characters of the body).
func New(kind string) (token, lookup string) {
	return newWith(kind, rand.Read)
}

func newWith(kind string, read func([]byte) (int, error)) (token, lookup string) {
	var b strings.Builder
	b.Grow(len(kind) + 1 + BodyLength + ChecksumLength)
	b.WriteString(kind)
	b.WriteByte('_')
	// Rejection sampling keeps every character uniform: 62*4 = 248 of 256 byte
	// values are used.
	var buf [64]byte
	for n := 0; n < BodyLength; {
		if _, err := read(buf[:]); err != nil {
			panic("credential: system random source failed: " + err.Error())
		}
		for _, c := range buf {
			if c < 248 && n < BodyLength {
				b.WriteByte(alphabet[c%62])
				n++
			}
		}
	}
	body := b.String()
	b.WriteString(checksum(body))
	return b.String(), body[:len(kind)+1+LookupLength]
}

// Parse checks that token is a well-formed token of one of kinds and returns
// the kind and the lookup prefix. It reads nothing but the string: no query is
// needed to refuse a typo.
func Parse(token string, kinds ...string) (kind, lookup string, err error) {
	if len(token) > MaxLength {
		return "", "", ErrMalformed
	}
	for _, k := range kinds {
		if len(token) == len(k)+1+BodyLength+ChecksumLength && strings.HasPrefix(token, k) && token[len(k)] == '_' {
			kind = k
			break
		}
	}
	if kind == "" {
		return "", "", ErrMalformed
	}
	for i := len(kind) + 1; i < len(token); i++ {
		if strings.IndexByte(alphabet, token[i]) < 0 {
			return "", "", ErrMalformed
		}
	}
	split := len(token) - ChecksumLength
	if checksum(token[:split]) != token[split:] {
		return "", "", ErrMalformed
	}
	return kind, token[:len(kind)+1+LookupLength], nil
}

// checksum is the CRC-32 (IEEE) of s in ChecksumLength base62 characters.
func checksum(s string) string {
	v := uint64(crc32.ChecksumIEEE([]byte(s)))
	var out [ChecksumLength]byte
	for i := ChecksumLength - 1; i >= 0; i-- {
		out[i] = alphabet[v%62]
		v /= 62
	}
	return string(out[:])
}

// Random returns n random base62 characters, for identifiers that need no
// checksum (a token's id, an A2A client id).
func Random(n int) string {
	b := make([]byte, 0, n)
	var buf [64]byte
	for len(b) < n {
		if _, err := rand.Read(buf[:]); err != nil {
			panic("credential: system random source failed: " + err.Error())
		}
		for _, c := range buf {
			if c < 248 && len(b) < n {
				b = append(b, alphabet[c%62])
			}
		}
	}
	return string(b)
}
