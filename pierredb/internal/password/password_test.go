package password

import (
	"context"
	"math"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

var phcRe = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$`)

func TestPolicyNormalization(t *testing.T) {
	def := DefaultPolicy()
	tests := []struct {
		name string
		in   Policy
		want Policy
	}{
		{"zero means default", Policy{}, def},
		{"below floor is raised", Policy{MemoryKiB: 1024, Iterations: 1, Parallelism: 0}, def},
		{"one below floor", Policy{MemoryKiB: 19455, Iterations: 2, Parallelism: 1}, def},
		{"partial raise keeps other defaults", Policy{Iterations: 3}, Policy{MemoryKiB: 19456, Iterations: 3, Parallelism: 1}},
		{"above floor kept", Policy{MemoryKiB: 65536, Iterations: 4, Parallelism: 4}, Policy{MemoryKiB: 65536, Iterations: 4, Parallelism: 4}},
		{"above parse bounds is lowered", Policy{MemoryKiB: math.MaxUint32, Iterations: math.MaxUint32, Parallelism: math.MaxUint8},
			Policy{MemoryKiB: MaxMemoryKiB, Iterations: MaxIterations, Parallelism: MaxParallelism}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, NewHasher(tc.in).Policy())
		})
	}
	assert.Equal(t, Policy{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}, def)

	var zero Hasher
	assert.Equal(t, def, zero.Policy(), "zero Hasher uses the default policy")
	assert.Equal(t, runtime.GOMAXPROCS(0), cap(NewHasher(Policy{}).sem), "concurrency limit is GOMAXPROCS")
}

func TestValidateNew(t *testing.T) {
	tests := []struct {
		name     string
		password string
		want     error
	}{
		{"empty", "", ErrTooShort},
		{"7 ascii", "abcdefg", ErrTooShort},
		{"8 ascii", "abcdefgh", nil},
		{"7 two-byte runes (14 bytes)", strings.Repeat("é", 7), ErrTooShort},
		{"8 two-byte runes", strings.Repeat("é", 8), nil},
		{"8 four-byte runes", strings.Repeat("🔑", 8), nil},
		{"7 four-byte runes (28 bytes)", strings.Repeat("🔑", 7), ErrTooShort},
		{"exactly MaxLength bytes", strings.Repeat("a", MaxLength), nil},
		{"MaxLength+1 bytes", strings.Repeat("a", MaxLength+1), ErrTooLong},
		{"MaxLength+1 bytes of multi-byte runes", strings.Repeat("é", MaxLength/2) + "a", ErrTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateNew(tc.password)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			assertNoLeak(t, err, tc.password, "")
		})
	}
}

func TestHashVerifyRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := newHasher(cheap, 2)
	tests := []struct {
		name     string
		password string
	}{
		{"ascii", "correct horse battery staple"},
		{"exactly 8", "12345678"},
		{"unicode", "pässwörd-ünïcode-🔑"},
		{"spaces kept", "  spaced  out  "},
		{"NUL byte", "before\x00after"},
		{"MaxLength bytes", strings.Repeat("x", MaxLength)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			phc, err := h.Hash(ctx, tc.password)
			require.NoError(t, err)
			require.Regexp(t, `^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`, phc)

			needsRehash, err := h.Verify(ctx, tc.password, phc)
			require.NoError(t, err)
			assert.False(t, needsRehash)

			again, err := h.Hash(ctx, tc.password)
			require.NoError(t, err)
			assert.NotEqual(t, phc, again, "each hash has a fresh salt")
			_, err = h.Verify(ctx, tc.password, again)
			require.NoError(t, err)
		})
	}
}

func TestVerifyWrongPassword(t *testing.T) {
	ctx := context.Background()
	h := newHasher(cheap, 2)
	const right = "correct horse battery staple"
	phc, err := h.Hash(ctx, right)
	require.NoError(t, err)

	tests := []struct {
		name     string
		password string
	}{
		{"different", "incorrect horse battery staple"},
		{"empty", ""},
		{"prefix", right[:len(right)-1]},
		{"extra char", right + "!"},
		{"case", strings.ToUpper(right)},
		{"trailing space", right + " "},
		{"with NUL", right + "\x00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			needsRehash, err := h.Verify(ctx, tc.password, phc)
			require.ErrorIs(t, err, ErrMismatch)
			assert.False(t, needsRehash)
			assertNoLeak(t, err, tc.password, phc)
		})
	}
}

// TestKnownAnswer checks hashing against vectors from the reference C
// implementation, byte for byte, and that Verify accepts them.
func TestKnownAnswer(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		password string
		salt     string
		want     string
	}{
		{"default policy", katDefaultPassword, katDefaultSalt, katDefault},
		{"small, p=2, 16-byte key, unicode", katSmallPassword, katSmallSalt, katSmall},
	}
	h := NewHasher(Policy{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parsed, err := parse(tc.want)
			require.NoError(t, err)
			a := parsed.argon
			require.Equal(t, []byte(tc.salt), a.salt)

			key, err := h.argon2id(ctx, tc.password, []byte(tc.salt), a.memoryKiB, a.iterations, a.parallelism, uint32(len(a.key)))
			require.NoError(t, err)
			got := argon2Hash{memoryKiB: a.memoryKiB, iterations: a.iterations, parallelism: a.parallelism, salt: []byte(tc.salt), key: key}.encode()
			assert.Equal(t, tc.want, got)

			_, err = h.Verify(ctx, tc.password, tc.want)
			require.NoError(t, err)
		})
	}
}

// TestDefaultPolicyEndToEnd exercises the real default policy: the only test
// that pays for full-cost hashes (about 26 ms each).
func TestDefaultPolicyEndToEnd(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(Policy{})
	rec := recorded(h)
	atPolicy := hashOp{scheme: schemeArgon2id, memoryKiB: 19456, iterations: 2, parallelism: 1}
	const pw = "correct horse battery staple"

	phc, err := h.Hash(ctx, pw)
	require.NoError(t, err)
	m := phcRe.FindStringSubmatch(phc)
	require.NotNil(t, m, "not a default-policy PHC string")
	assert.Equal(t, []string{"19456", "2", "1"}, m[1:4])
	assert.Equal(t, []hashOp{atPolicy}, rec.take())

	needsRehash, err := h.Verify(ctx, pw, phc)
	require.NoError(t, err)
	assert.False(t, needsRehash, "hash at policy needs no rehash")

	_, err = h.Verify(ctx, "wrong password", phc)
	require.ErrorIs(t, err, ErrMismatch)

	require.ErrorIs(t, h.DummyVerify(ctx, pw), ErrMismatch)
	assert.Equal(t, []hashOp{atPolicy, atPolicy, atPolicy}, rec.take(), "Verify and DummyVerify hash at the policy")

	// Raising the policy makes the existing hash due for a rehash.
	raised := NewHasher(Policy{Iterations: 3})
	needsRehash, err = raised.Verify(ctx, pw, phc)
	require.NoError(t, err)
	assert.True(t, needsRehash, "hash below a raised policy needs a rehash")

	// A weaker stored hash (t=1 at the default memory) needs a rehash.
	weak := makeArgon2id(t, pw, 19456, 1, 1, SaltLength, KeyLength)
	needsRehash, err = h.Verify(ctx, pw, weak)
	require.NoError(t, err)
	assert.True(t, needsRehash)
}

func TestNeedsRehashArgon2id(t *testing.T) {
	ctx := context.Background()
	policy := Policy{MemoryKiB: 64, Iterations: 2, Parallelism: 2}
	h := newHasher(policy, 2)
	const pw = "correct horse battery staple"
	tests := []struct {
		name          string
		m, iter       uint32
		p             uint8
		saltLen, keyL int
		want          bool
	}{
		{"at policy", 64, 2, 2, SaltLength, KeyLength, false},
		{"memory below", 32, 2, 2, SaltLength, KeyLength, true},
		{"iterations below", 64, 1, 2, SaltLength, KeyLength, true},
		{"parallelism below", 64, 2, 1, SaltLength, KeyLength, true},
		{"short salt", 64, 2, 2, 8, KeyLength, true},
		{"short key", 64, 2, 2, SaltLength, 16, true},
		{"all above", 128, 3, 4, 32, 64, false},
		{"memory above, iterations below", 256, 1, 2, SaltLength, KeyLength, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stored := makeArgon2id(t, pw, tc.m, tc.iter, tc.p, tc.saltLen, tc.keyL)
			needsRehash, err := h.Verify(ctx, pw, stored)
			require.NoError(t, err)
			assert.Equal(t, tc.want, needsRehash)

			needsRehash, err = h.Verify(ctx, pw+"x", stored)
			require.ErrorIs(t, err, ErrMismatch)
			assert.False(t, needsRehash, "no rehash on mismatch")
		})
	}
	fresh, err := h.Hash(ctx, pw)
	require.NoError(t, err)
	needsRehash, err := h.Verify(ctx, pw, fresh)
	require.NoError(t, err)
	assert.False(t, needsRehash, "own hash is at policy")
}

func TestVerifyBcrypt(t *testing.T) {
	ctx := context.Background()

	generated, err := bcrypt.GenerateFromPassword([]byte("generated-password"), bcrypt.MinCost)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(generated), "$2a$04$"))

	long72 := strings.Repeat("p", 72)
	generated72, err := bcrypt.GenerateFromPassword([]byte(long72), bcrypt.MinCost)
	require.NoError(t, err)
	// x/crypto itself accepts any password that shares the first 72 bytes.
	require.NoError(t, bcrypt.CompareHashAndPassword(generated72, []byte(long72+"anything")))

	tests := []struct {
		name     string
		stored   string
		password string
		wantErr  error
		wantCost int
	}{
		{"x/crypto $2a$ MinCost", string(generated), "generated-password", nil, 4},
		{"x/crypto $2a$ wrong", string(generated), "generated-passwore", ErrMismatch, 4},
		{"htpasswd $2y$ cost 12", bcrypt12, bcrypt12Password, nil, 12},
		{"htpasswd $2y$ cost 4 wrong", bcrypt4, "legacy-password-5", ErrMismatch, 4},
		{"htpasswd $2y$ cost 4", bcrypt4, bcrypt4Password, nil, 4},
		{"same hash as $2b$", "$2b$" + bcrypt4[4:], bcrypt4Password, nil, 4},
		{"same hash as $2a$", "$2a$" + bcrypt4[4:], bcrypt4Password, nil, 4},
		{"empty password", bcrypt4, "", ErrMismatch, 4},
		{"exactly 72 bytes", string(generated72), long72, nil, 4},
		{"73 bytes sharing the first 72 is refused", string(generated72), long72 + "x", ErrMismatch, 4},
		{"4096 bytes sharing the first 72 is refused", string(generated72), long72 + strings.Repeat("x", MaxLength-72), ErrMismatch, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A fresh Hasher per case: verifying the cost-12 hash raises the
			// floor, which would pad every later case to its time.
			h := newHasher(cheap, 2)
			rec := recorded(h)
			needsRehash, err := h.Verify(ctx, tc.password, tc.stored)
			assert.Equal(t, []hashOp{{scheme: schemeBcrypt, bcryptCost: tc.wantCost}}, rec.take(), "one bcrypt computation, also for refusals")
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.False(t, needsRehash)
				assertNoLeak(t, err, tc.password, tc.stored)
				return
			}
			require.NoError(t, err)
			assert.True(t, needsRehash, "bcrypt always needs a rehash")
		})
	}
}

func TestTooLong(t *testing.T) {
	ctx := context.Background()
	h := newHasher(cheap, 1)
	valid, err := h.Hash(ctx, "correct horse battery staple")
	require.NoError(t, err)
	long := strings.Repeat("a", MaxLength+1)
	longRunes := strings.Repeat("é", MaxLength/2+1)

	tests := []struct {
		name string
		call func() error
	}{
		{"Hash", func() error { _, err := h.Hash(ctx, long); return err }},
		{"Hash multi-byte", func() error { _, err := h.Hash(ctx, longRunes); return err }},
		{"Verify argon2id", func() error { _, err := h.Verify(ctx, long, valid); return err }},
		{"Verify bcrypt", func() error { _, err := h.Verify(ctx, long, bcrypt12); return err }},
		{"Verify before parsing", func() error { _, err := h.Verify(ctx, long, "garbage"); return err }},
		{"Verify out-of-bounds hash", func() error {
			_, err := h.Verify(ctx, long, "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$mZMuDV8ZCegT0TrB/2YBSg")
			return err
		}},
		{"DummyVerify", func() error { return h.DummyVerify(ctx, long) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := recorded(h)
			err := tc.call()
			require.ErrorIs(t, err, ErrTooLong)
			assert.Empty(t, rec.take(), "nothing hashed")
		})
	}
}

func TestDummyVerify(t *testing.T) {
	ctx := context.Background()
	policy := Policy{MemoryKiB: 128, Iterations: 3, Parallelism: 2}
	h := newHasher(policy, 2)
	rec := recorded(h)
	tests := []struct {
		name     string
		password string
	}{
		{"ordinary", "correct horse battery staple"},
		{"empty", ""},
		{"short", "x"},
		{"MaxLength", strings.Repeat("z", MaxLength)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := h.DummyVerify(ctx, tc.password)
			require.ErrorIs(t, err, ErrMismatch)
			assertNoLeak(t, err, tc.password, h.floor.Load().dummy)
			assert.Equal(t, []hashOp{{scheme: schemeArgon2id, memoryKiB: 128, iterations: 3, parallelism: 2}}, rec.take(),
				"one hash at the policy, like a Verify of a hash at policy")
		})
	}
	// The dummy is a well-formed hash at policy that needs no rehash, so it
	// goes through exactly the path a real stored hash does.
	dummy := h.floor.Load().dummy
	parsed, err := parse(dummy)
	require.NoError(t, err)
	assert.False(t, h.belowPolicy(parsed.argon))
	assert.NotEqual(t, dummy, newHasher(policy, 2).floor.Load().dummy, "random per Hasher")
}
