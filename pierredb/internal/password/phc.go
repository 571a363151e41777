package password

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

const (
	schemeArgon2id = "argon2id"
	schemeBcrypt   = "bcrypt"

	argon2idPrefix = "$argon2id$v=19$"

	// maxStoredLen bounds a stored hash before any parsing. The longest
	// accepted argon2id string is about 320 bytes; a bcrypt hash is 60.
	maxStoredLen = 512

	bcryptHashLen  = 60
	bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// b64 is the PHC encoding: standard alphabet, no padding, and (Strict) no
// non-zero trailing bits, so that every accepted string is canonical.
var b64 = base64.RawStdEncoding.Strict()

// argon2Hash is a parsed, bounds-checked argon2id PHC string.
type argon2Hash struct {
	memoryKiB   uint32
	iterations  uint32
	parallelism uint8
	salt        []byte
	key         []byte
}

// storedHash is a parsed stored hash of either scheme.
type storedHash struct {
	scheme     string
	argon      argon2Hash // when scheme == schemeArgon2id
	bcryptCost int        // when scheme == schemeBcrypt
}

// malformed and badParams wrap the sentinels with a fixed description that
// never quotes the input.
func malformed(what string) error { return fmt.Errorf("%w: %s", ErrMalformedHash, what) }
func badParams(what string) error { return fmt.Errorf("%w: %s", ErrHashParams, what) }

// parse recognises and strictly parses a stored hash. Every cost parameter
// and length is checked against its bounds before anything proportional to
// it is allocated; the only allocations are the decoded salt and key, at
// most 64 and 128 bytes.
func parse(stored string) (storedHash, error) {
	if len(stored) > maxStoredLen {
		return storedHash{}, malformed("too long")
	}
	switch {
	case strings.HasPrefix(stored, "$argon2id$"):
		a, err := parseArgon2id(stored)
		if err != nil {
			return storedHash{}, err
		}
		return storedHash{scheme: schemeArgon2id, argon: a}, nil
	case isBcryptVersion(stored):
		cost, err := parseBcrypt(stored)
		if err != nil {
			return storedHash{}, err
		}
		return storedHash{scheme: schemeBcrypt, bcryptCost: cost}, nil
	default:
		return storedHash{}, malformed("unknown scheme")
	}
}

// parseArgon2id parses exactly
//
//	$argon2id$v=19$m=<m>,t=<t>,p=<p>$<salt>$<key>
//
// with canonical decimal numbers and canonical unpadded standard base64.
func parseArgon2id(s string) (argon2Hash, error) {
	rest, ok := strings.CutPrefix(s, argon2idPrefix)
	if !ok {
		return argon2Hash{}, malformed("missing or unsupported argon2 version")
	}
	params, rest, ok := strings.Cut(rest, "$")
	if !ok {
		return argon2Hash{}, malformed("missing salt")
	}
	saltB64, keyB64, ok := strings.Cut(rest, "$")
	if !ok {
		return argon2Hash{}, malformed("missing key")
	}

	m, t, p, err := parseArgon2Params(params)
	if err != nil {
		return argon2Hash{}, err
	}
	saltLen, err := decodedLen(saltB64, "salt")
	if err != nil {
		return argon2Hash{}, err
	}
	keyLen, err := decodedLen(keyB64, "key")
	if err != nil {
		return argon2Hash{}, err
	}

	// Bounds, before anything is allocated.
	if err := checkArgon2Params(m, t, p); err != nil {
		return argon2Hash{}, err
	}
	if saltLen < minSaltLen || saltLen > maxSaltLen {
		return argon2Hash{}, badParams("salt length")
	}
	if keyLen < minKeyLen || keyLen > maxKeyLen {
		return argon2Hash{}, badParams("key length")
	}

	salt, err := b64.DecodeString(saltB64)
	if err != nil {
		return argon2Hash{}, malformed("salt is not canonical base64")
	}
	key, err := b64.DecodeString(keyB64)
	if err != nil {
		return argon2Hash{}, malformed("key is not canonical base64")
	}
	return argon2Hash{memoryKiB: uint32(m), iterations: uint32(t), parallelism: uint8(p), salt: salt, key: key}, nil
}

// parseArgon2Params parses exactly "m=<m>,t=<t>,p=<p>" with canonical
// decimal numbers. The values are not bounded yet: see checkArgon2Params.
func parseArgon2Params(params string) (m, t, p uint64, err error) {
	mStr, params, ok1 := strings.Cut(params, ",")
	tStr, pStr, ok2 := strings.Cut(params, ",")
	if !ok1 || !ok2 {
		return 0, 0, 0, malformed("parameters must be m,t,p")
	}
	if m, err = parseParam(mStr, "m="); err != nil {
		return 0, 0, 0, err
	}
	if t, err = parseParam(tStr, "t="); err != nil {
		return 0, 0, 0, err
	}
	if p, err = parseParam(pStr, "p="); err != nil {
		return 0, 0, 0, err
	}
	return m, t, p, nil
}

// checkArgon2Params reports ErrHashParams for zero or excessive costs, or
// memory below the 8 KiB per lane that argon2 requires.
func checkArgon2Params(m, t, p uint64) error {
	switch {
	case m == 0 || m > MaxMemoryKiB:
		return badParams("memory")
	case t == 0 || t > MaxIterations:
		return badParams("iterations")
	case p == 0 || p > MaxParallelism:
		return badParams("parallelism")
	case m < 8*p:
		return badParams("memory below 8 KiB per lane")
	}
	return nil
}

// parseParam parses "<name><canonical decimal>". Values too large for any
// bound saturate rather than fail, so they are reported as ErrHashParams.
func parseParam(s, name string) (uint64, error) {
	digits, ok := strings.CutPrefix(s, name)
	if !ok {
		return 0, malformed("parameters must be m,t,p")
	}
	if digits == "" {
		return 0, malformed("empty parameter")
	}
	if len(digits) > 1 && digits[0] == '0' {
		return 0, malformed("non-canonical parameter")
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, malformed("non-numeric parameter")
		}
	}
	if len(digits) > 19 {
		return 1<<64 - 1, nil
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, malformed("non-numeric parameter")
	}
	return v, nil
}

// decodedLen checks that s is made of the standard base64 alphabet with a
// length unpadded base64 can have, and returns the decoded length. Checking
// the alphabet here also stops the decoder from skipping '\r' and '\n'.
func decodedLen(s, what string) (int, error) {
	if s == "" {
		return 0, malformed("empty " + what)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return 0, malformed(what + " is not base64")
		}
	}
	if len(s)%4 == 1 {
		return 0, malformed(what + " is not base64")
	}
	return b64.DecodedLen(len(s)), nil
}

// parseBcrypt validates a 60-character $2a$/$2b$/$2y$ hash and returns its cost.
func parseBcrypt(s string) (int, error) {
	if len(s) != bcryptHashLen {
		return 0, malformed("bcrypt hash length")
	}
	// s[:4] is the version, checked by the caller.
	if s[6] != '$' || !isDigit(s[4]) || !isDigit(s[5]) {
		return 0, malformed("bcrypt cost")
	}
	for i := 7; i < len(s); i++ {
		if strings.IndexByte(bcryptAlphabet, s[i]) < 0 {
			return 0, malformed("bcrypt hash is not bcrypt base64")
		}
	}
	cost := int(s[4]-'0')*10 + int(s[5]-'0')
	if cost < 4 || cost > MaxBcryptCost {
		return 0, badParams("bcrypt cost")
	}
	return cost, nil
}

// isBcryptVersion reports whether s starts with "$2a$", "$2b$" or "$2y$".
func isBcryptVersion(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// encodePrefix returns "$argon2id$v=19$m=<m>,t=<t>,p=<p>$".
func encodePrefix(m, t uint32, p uint8) string {
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$", argon2idPrefix, m, t, p)
}

// encode returns the PHC string of a, the inverse of parseArgon2id.
func (a argon2Hash) encode() string {
	return encodePrefix(a.memoryKiB, a.iterations, a.parallelism) + b64.EncodeToString(a.salt) + "$" + b64.EncodeToString(a.key)
}
