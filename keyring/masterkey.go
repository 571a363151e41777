package keyring

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
)

// MasterKeySize is the length in bytes of a master encryption key (AES-256).
const MasterKeySize = 32

// fingerprintLabel is the fixed message whose HMAC under the MEK identifies the
// key. A versioned label keeps the fingerprint from being any other MAC the key
// might compute.
const fingerprintLabel = "pierre/keyring/mek-fingerprint/v1"

// MasterKey is a 32-byte master encryption key (MEK). It is a value type; the
// zero value means "no key" (see IsZero).
//
// A MasterKey redacts itself everywhere it can be printed or serialised: every
// fmt verb, slog, JSON and encoding.TextMarshaler show only its fingerprint.
// The key bytes leave the value only through EncodeBase64 and EncodeHex.
type MasterKey struct {
	// key returns the key bytes, which are never mutated after construction.
	// It is a func because fmt and other reflection-based printers cannot
	// call the redacting methods of a MasterKey kept in an unexported field,
	// and they print a pointer, array or slice found there (%s of a pointer
	// to an array prints the array), but a func only as an address. Being a
	// func also makes MasterKey incomparable, so no one compares keys with ==
	// instead of the constant-time Equal.
	key func() *[MasterKeySize]byte
	fp  string
}

// newMasterKey copies b (which must be MasterKeySize bytes) into a new key.
func newMasterKey(b []byte) MasterKey {
	k := new([MasterKeySize]byte)
	copy(k[:], b)
	mac := hmac.New(sha256.New, k[:])
	mac.Write([]byte(fingerprintLabel))
	sum := mac.Sum(nil)
	return MasterKey{key: func() *[MasterKeySize]byte { return k }, fp: hex.EncodeToString(sum[:8])}
}

// Generate returns a new random master key read from crypto/rand.
func Generate() (MasterKey, error) {
	var b [MasterKeySize]byte
	defer clear(b[:])
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return MasterKey{}, fmt.Errorf("keyring: generate master key: %w", err)
		}
		// An all-zero key is refused by ParseMasterKey, so never hand one out
		// (the odds are 2^-256, but the loop costs nothing).
		if !isAllZero(b[:]) {
			return newMasterKey(b[:]), nil
		}
	}
}

// ParseMasterKey decodes a master key. Surrounding whitespace is trimmed. The
// accepted encodings are base64 in the standard or URL alphabet, padded or raw,
// decoding to exactly 32 bytes, and 64 hexadecimal characters. Anything else,
// including a key of all zero bytes, is ErrMasterKeyInvalid; the error says
// how many bytes were found and never repeats the input.
func ParseMasterKey(s string) (MasterKey, error) {
	return parseMasterKey([]byte(s))
}

// parseMasterKey is ParseMasterKey on bytes, so a key file's buffer need not
// be copied into an immutable string that cannot be cleared.
func parseMasterKey(in []byte) (MasterKey, error) {
	s := trimSpace(in)
	if len(s) == 0 {
		return MasterKey{}, fmt.Errorf("%w: empty (0 bytes)", ErrMasterKeyInvalid)
	}
	for _, c := range s {
		if isSpace(c) {
			return MasterKey{}, fmt.Errorf("%w: contains whitespace inside the encoded key (%d characters)", ErrMasterKeyInvalid, len(s))
		}
	}
	buf := make([]byte, len(s)) // large enough for both decoders
	defer clear(buf)
	var n int
	switch {
	case len(s)%2 == 0 && isAllHex(s):
		// Even-length all-hex input is read as hex; a real base64 key of 32
		// bytes is 43 or 44 characters with '=' so it never lands here
		// unless it could not be 32 bytes as base64 either.
		var err error
		n, err = hex.Decode(buf, s)
		if err != nil {
			return MasterKey{}, fmt.Errorf("%w: bad hex encoding (%d characters)", ErrMasterKeyInvalid, len(s))
		}
	default:
		enc := base64Encoding(s)
		var err error
		n, err = enc.Decode(buf, s)
		if err != nil {
			return MasterKey{}, fmt.Errorf("%w: neither base64 nor hex (%d characters)", ErrMasterKeyInvalid, len(s))
		}
	}
	if n != MasterKeySize {
		return MasterKey{}, fmt.Errorf("%w: decoded to %d bytes, want %d", ErrMasterKeyInvalid, n, MasterKeySize)
	}
	if isAllZero(buf[:n]) {
		return MasterKey{}, fmt.Errorf("%w: all %d bytes are zero", ErrMasterKeyInvalid, n)
	}
	return newMasterKey(buf[:n]), nil
}

// base64Encoding picks the strict decoder for s: URL alphabet when it uses
// '-' or '_', padded when it ends in '='.
func base64Encoding(s []byte) *base64.Encoding {
	url := false
	for _, c := range s {
		if c == '-' || c == '_' {
			url = true
			break
		}
	}
	padded := s[len(s)-1] == '='
	switch {
	case url && padded:
		return base64.URLEncoding.Strict()
	case url:
		return base64.RawURLEncoding.Strict()
	case padded:
		return base64.StdEncoding.Strict()
	default:
		return base64.RawStdEncoding.Strict()
	}
}

// EncodeBase64 returns the key in standard padded base64, the form
// PIERRE_MASTER_ENCRYPTION_KEY expects. It is meant for key-generation tools;
// the result is secret.
func (k MasterKey) EncodeBase64() string {
	if k.key == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(k.key()[:])
}

// EncodeHex returns the key as 64 lower-case hexadecimal characters. The
// result is secret.
func (k MasterKey) EncodeHex() string {
	if k.key == nil {
		return ""
	}
	return hex.EncodeToString(k.key()[:])
}

// Fingerprint returns 16 hexadecimal characters identifying the key: the first
// 8 bytes of HMAC-SHA256(key, fixed label). It reveals nothing usable about
// the key and is stored beside every wrapped key so that a wrong master key is
// told apart from corruption. The zero MasterKey has the empty fingerprint.
func (k MasterKey) Fingerprint() string { return k.fp }

// IsZero reports whether k is the zero value, i.e. no key.
func (k MasterKey) IsZero() bool { return k.key == nil }

// Equal reports in constant time whether k and other hold the same key bytes.
// Two zero keys are equal.
func (k MasterKey) Equal(other MasterKey) bool {
	if k.key == nil || other.key == nil {
		return k.key == nil && other.key == nil
	}
	return subtle.ConstantTimeCompare(k.key()[:], other.key()[:]) == 1
}

// String returns a redacted description such as
// "keyring.MasterKey(REDACTED fp=1a2b3c4d5e6f7a8b)".
func (k MasterKey) String() string {
	if k.key == nil {
		return "keyring.MasterKey(none)"
	}
	return "keyring.MasterKey(REDACTED fp=" + k.fp + ")"
}

// GoString returns the same redacted description as String, for %#v.
func (k MasterKey) GoString() string { return k.String() }

// Format implements fmt.Formatter so that every verb (%v, %+v, %#v, %s, %q,
// %x, ...) prints the redacted description instead of the key bytes.
func (k MasterKey) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, k.String())
}

// LogValue implements slog.LogValuer with the redacted description.
func (k MasterKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON encodes the redacted description as a JSON string.
func (k MasterKey) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(k.String())), nil
}

// MarshalText implements encoding.TextMarshaler with the redacted
// description, so YAML, TOML and similar encoders never see the key.
func (k MasterKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// formatRedacted writes s for any verb, quoted for %q.
func formatRedacted(f fmt.State, verb rune, s string) {
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	_, _ = f.Write([]byte(s))
}

func isAllZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}

func isAllHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
