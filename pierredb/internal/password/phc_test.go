package password

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// phcWith builds "$argon2id$v=19$<params>$<salt>$<key>" with a salt and key
// of the given lengths (the key does not match any password).
func phcWith(params string, saltLen, keyLen int) string {
	return argon2idPrefix + params + "$" + b64.EncodeToString([]byte(strings.Repeat("s", saltLen))) +
		"$" + b64.EncodeToString([]byte(strings.Repeat("k", keyLen)))
}

const (
	saltB64 = "c2FsdHNhbHRzYWx0c2FsdA" // "saltsaltsaltsalt"
	keyB64  = "mZMuDV8ZCegT0TrB/2YBSg"
)

// badHashes are stored hashes that parse and Verify must refuse, with the
// sentinel expected. Also used as fuzz seeds.
var badHashes = []struct {
	name   string
	stored string
	want   error
}{
	// Scheme and version.
	{"empty", "", ErrMalformedHash},
	{"plaintext", "correct horse battery staple", ErrMalformedHash},
	{"argon2i", "$argon2i$v=19$m=64,t=1,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"argon2d", "$argon2d$v=19$m=64,t=1,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"upper-case scheme", "$ARGON2ID$v=19$m=64,t=1,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"scrypt", "$scrypt$ln=16,r=8,p=1$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"leading space", " " + katSmall, ErrMalformedHash},
	{"version 16", "$argon2id$v=16$m=64,t=1,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"version 019", "$argon2id$v=019$m=64,t=1,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"no version", "$argon2id$m=64,t=1,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"scheme only", "$argon2id$", ErrMalformedHash},
	{"version only", "$argon2id$v=19$", ErrMalformedHash},
	// Parameters.
	{"reordered", "$argon2id$v=19$t=1,m=64,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"p first", "$argon2id$v=19$p=2,m=64,t=1$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"duplicate m", "$argon2id$v=19$m=64,m=64,t=1,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"duplicate p", "$argon2id$v=19$m=64,t=1,p=2,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"unknown keyid", "$argon2id$v=19$m=64,t=1,p=2,keyid=abc$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"unknown data", "$argon2id$v=19$m=64,t=1,p=2,data=abc$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"missing p", "$argon2id$v=19$m=64,t=1$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"missing params", "$argon2id$v=19$$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"params missing entirely", "$argon2id$v=19$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"space", "$argon2id$v=19$m=64, t=1,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"leading zero", "$argon2id$v=19$m=064,t=1,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"plus sign", "$argon2id$v=19$m=+64,t=1,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"minus sign", "$argon2id$v=19$m=-64,t=1,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"hex", "$argon2id$v=19$m=0x40,t=1,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"empty value", "$argon2id$v=19$m=,t=1,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"upper-case name", "$argon2id$v=19$M=64,t=1,p=2$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	{"trailing comma", "$argon2id$v=19$m=64,t=1,p=2,$" + saltB64 + "$" + keyB64, ErrMalformedHash},
	// Salt and key encoding.
	{"missing key", "$argon2id$v=19$m=64,t=1,p=2$" + saltB64, ErrMalformedHash},
	{"empty key", "$argon2id$v=19$m=64,t=1,p=2$" + saltB64 + "$", ErrMalformedHash},
	{"empty salt", "$argon2id$v=19$m=64,t=1,p=2$$" + keyB64, ErrMalformedHash},
	{"extra field", katSmall + "$extra", ErrMalformedHash},
	{"trailing $", katSmall + "$", ErrMalformedHash},
	{"trailing space", katSmall + " ", ErrMalformedHash},
	{"trailing newline", katSmall + "\n", ErrMalformedHash},
	{"newline inside salt", "$argon2id$v=19$m=64,t=1,p=2$c2FsdHNh\nbHRzYWx0c2FsdA$" + keyB64, ErrMalformedHash},
	{"padded salt", "$argon2id$v=19$m=64,t=1,p=2$" + saltB64 + "==$" + keyB64, ErrMalformedHash},
	{"padded key", "$argon2id$v=19$m=64,t=1,p=2$" + saltB64 + "$" + keyB64 + "==", ErrMalformedHash},
	{"url-safe alphabet", "$argon2id$v=19$m=64,t=1,p=2$" + saltB64 + "$mZMuDV8ZCegT0TrB_2YBSg", ErrMalformedHash},
	{"non-canonical trailing bits", "$argon2id$v=19$m=64,t=1,p=2$c2FsdHNhbHRzYWx0c2FsdB$" + keyB64, ErrMalformedHash},
	{"impossible base64 length", "$argon2id$v=19$m=64,t=1,p=2$c2FsdHNhbHRzYWx0c2Fsd$" + keyB64, ErrMalformedHash},
	{"far too long", katSmall + strings.Repeat("A", 600), ErrMalformedHash},
	// bcrypt shapes.
	{"bcrypt $2x$", "$2x$" + bcrypt4[4:], ErrMalformedHash},
	{"bcrypt $2$", "$2$04$" + bcrypt4[7:], ErrMalformedHash},
	{"bcrypt $2A$", "$2A$" + bcrypt4[4:], ErrMalformedHash},
	{"bcrypt short", bcrypt4[:59], ErrMalformedHash},
	{"bcrypt long", bcrypt4 + "A", ErrMalformedHash},
	{"bcrypt cost not digits", "$2y$1a$" + bcrypt4[7:], ErrMalformedHash},
	{"bcrypt cost one digit", "$2y$4$" + bcrypt4[7:] + "A", ErrMalformedHash},
	{"bcrypt bad alphabet", bcrypt4[:59] + "+", ErrMalformedHash},
	{"bcrypt newline", bcrypt4[:59] + "\n", ErrMalformedHash},

	// Out of bounds: rejected before allocating.
	{"m zero", phcWith("m=0,t=1,p=1", 16, 32), ErrHashParams},
	{"t zero", phcWith("m=64,t=0,p=1", 16, 32), ErrHashParams},
	{"p zero", phcWith("m=64,t=1,p=0", 16, 32), ErrHashParams},
	{"m just over 1 GiB", phcWith("m=1048577,t=1,p=1", 16, 32), ErrHashParams},
	{"m max uint32", phcWith("m=4294967295,t=1,p=1", 16, 32), ErrHashParams},
	{"m over uint32", phcWith("m=4294967296,t=1,p=1", 16, 32), ErrHashParams},
	{"m over uint64", phcWith("m=18446744073709551616,t=1,p=1", 16, 32), ErrHashParams},
	{"m 40 digits", phcWith("m="+strings.Repeat("9", 40)+",t=1,p=1", 16, 32), ErrHashParams},
	{"t 11", phcWith("m=64,t=11,p=1", 16, 32), ErrHashParams},
	{"t max uint32", phcWith("m=64,t=4294967295,p=1", 16, 32), ErrHashParams},
	{"p 17", phcWith("m=1024,t=1,p=17", 16, 32), ErrHashParams},
	{"p 255", phcWith("m=4096,t=1,p=255", 16, 32), ErrHashParams},
	{"p 256 (wraps in uint8)", phcWith("m=4096,t=1,p=256", 16, 32), ErrHashParams},
	{"m below 8 per lane", phcWith("m=15,t=1,p=2", 16, 32), ErrHashParams},
	{"all at max uint32", phcWith("m=4294967295,t=4294967295,p=4294967295", 16, 32), ErrHashParams},
	{"salt 7 bytes", phcWith("m=64,t=1,p=1", 7, 32), ErrHashParams},
	{"salt 65 bytes", phcWith("m=64,t=1,p=1", 65, 32), ErrHashParams},
	{"key 15 bytes", phcWith("m=64,t=1,p=1", 16, 15), ErrHashParams},
	{"key 129 bytes", phcWith("m=64,t=1,p=1", 16, 129), ErrHashParams},
	{"bcrypt cost 03", "$2y$03$" + bcrypt4[7:], ErrHashParams},
	{"bcrypt cost 15", "$2y$15$" + bcrypt4[7:], ErrHashParams},
	{"bcrypt cost 31", "$2b$31$" + bcrypt4[7:], ErrHashParams},
	{"bcrypt cost 99", "$2a$99$" + bcrypt4[7:], ErrHashParams},
}

// goodHashes parse; argon2id ones re-encode to themselves.
var goodHashes = []struct {
	name   string
	stored string
	scheme string
}{
	{"kat default", katDefault, schemeArgon2id},
	{"kat small", katSmall, schemeArgon2id},
	{"upper bounds", phcWith("m=1048576,t=10,p=16", 64, 128), schemeArgon2id},
	{"lower bounds", phcWith("m=8,t=1,p=1", 8, 16), schemeArgon2id},
	{"8 KiB per lane", phcWith("m=128,t=1,p=16", 16, 32), schemeArgon2id},
	{"odd lengths", phcWith("m=100,t=3,p=3", 17, 33), schemeArgon2id},
	{"bcrypt $2y$ 12", bcrypt12, schemeBcrypt},
	{"bcrypt $2y$ 04", bcrypt4, schemeBcrypt},
	{"bcrypt $2a$", "$2a$" + bcrypt4[4:], schemeBcrypt},
	{"bcrypt $2b$ max cost", "$2b$14$" + bcrypt4[7:], schemeBcrypt},
}

func TestParseValid(t *testing.T) {
	for _, tc := range goodHashes {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(tc.stored)
			require.NoError(t, err)
			assert.Equal(t, tc.scheme, got.scheme)
			if got.scheme == schemeArgon2id {
				assert.Equal(t, tc.stored, got.argon.encode(), "strict parse is canonical")
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	ctx := context.Background()
	h := newHasher(cheap, 1)
	rec := recorded(h)
	const pw = "correct horse battery staple"
	for _, tc := range badHashes {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.stored)
			require.ErrorIs(t, err, tc.want)
			assertNoLeak(t, err, "", tc.stored)

			needsRehash, err := h.Verify(ctx, pw, tc.stored)
			require.ErrorIs(t, err, tc.want)
			assert.False(t, needsRehash)
			assertNoLeak(t, err, pw, tc.stored)
			assert.Empty(t, rec.take(), "nothing hashed for an unusable hash")
		})
	}
}

// TestOutOfBoundsRejectedBeforeAllocation shows that hostile parameters are
// refused quickly and without allocating anything in proportion to them,
// and (as a control) that the same measurement does see a real hash's memory.
func TestOutOfBoundsRejectedBeforeAllocation(t *testing.T) {
	ctx := context.Background()
	h := newHasher(cheap, 1)
	rec := recorded(h)
	const pw = "correct horse battery staple"

	tests := []struct {
		name   string
		stored string
	}{
		{"m max uint32 (4 TiB)", phcWith("m=4294967295,t=1,p=1", 16, 32)},
		{"m just over 1 GiB", phcWith("m=1048577,t=1,p=1", 16, 32)},
		{"t max uint32", phcWith("m=1048576,t=4294967295,p=1", 16, 32)},
		{"p 255 at 1 GiB", phcWith("m=1048576,t=1,p=255", 16, 32)},
		{"bcrypt cost 31", "$2b$31$" + bcrypt4[7:]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := h.Verify(ctx, pw, tc.stored)
			elapsed := time.Since(start)
			require.ErrorIs(t, err, ErrHashParams)
			assert.Less(t, elapsed, 50*time.Millisecond)
			assert.Empty(t, rec.take(), "no hash started")

			allocated := bytesAllocated(func() { _, _ = h.Verify(ctx, pw, tc.stored) })
			assert.Less(t, allocated, uint64(64<<10), "bytes allocated by a refused Verify")
			// The property is the byte bound above; the count only shows that the
			// refusal allocates a handful of small objects. MemStats counts every
			// goroutine's mallocs, so leave room for the runtime (seen: 5 under -race).
			allocs := testing.AllocsPerRun(20, func() { _, _ = h.Verify(ctx, pw, tc.stored) })
			assert.LessOrEqual(t, allocs, 16.0, "allocations by a refused Verify")
		})
	}

	// Control: a 4 MiB hash that is within bounds is seen allocating.
	inBounds := makeArgon2id(t, pw, 4096, 1, 1, SaltLength, KeyLength)
	allocated := bytesAllocated(func() {
		_, err := h.Verify(ctx, pw, inBounds)
		require.NoError(t, err)
	})
	assert.GreaterOrEqual(t, allocated, uint64(4<<20), "the measurement sees argon2's memory")
}

func bytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
