package keyring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTripEveryPurpose(t *testing.T) {
	k, _ := openTest(t, sequentialKey(t, 1))
	tests := []struct {
		purpose Purpose
		check   func(t *testing.T)
	}{
		{PurposeEncryption, func(t *testing.T) {
			for _, plaintext := range [][]byte{nil, {}, []byte("x"), []byte("ya29.a0AfH6SMB-refresh-token"), bytes.Repeat([]byte{0xff}, 4096)} {
				env, err := k.Encrypt(plaintext, tokenContext())
				require.NoError(t, err)
				assert.Len(t, env, len(plaintext)+EnvelopeOverhead)
				got, err := k.Decrypt(env, tokenContext())
				require.NoError(t, err)
				assert.Equal(t, len(plaintext), len(got))
				assert.True(t, bytes.Equal(plaintext, got))
			}
		}},
		{PurposeHashing, func(t *testing.T) {
			for _, secret := range [][]byte{nil, []byte("pk_live_abc"), bytes.Repeat([]byte("s"), 1000)} {
				stored := k.HashCredential("api_key", secret)
				ok, err := k.VerifyCredential("api_key", secret, stored)
				require.NoError(t, err)
				assert.True(t, ok)
			}
		}},
	}
	require.Len(t, tests, len(purposes), "every purpose has a round trip")
	for _, tt := range tests {
		t.Run(string(tt.purpose), tt.check)
	}
}

func TestEmptyPlaintextIsAuthenticated(t *testing.T) {
	k, _ := openTest(t, sequentialKey(t, 1))
	env, err := k.Encrypt(nil, tokenContext())
	require.NoError(t, err)
	require.Len(t, env, EnvelopeOverhead)
	_, err = k.Decrypt(env, Context{Tenant: "other"})
	require.ErrorIs(t, err, ErrDecrypt)
	_, err = k.Decrypt(nil, tokenContext())
	require.ErrorIs(t, err, ErrDecrypt)
}

func TestNoncesAreDistinct(t *testing.T) {
	k, _ := openTest(t, sequentialKey(t, 1))
	const n = 100_000
	seen := make(map[[gcmNonceSize]byte]struct{}, n)
	buf := make([]byte, 0, 256)
	for range n {
		var err error
		buf, err = k.AppendEncrypt(buf[:0], nil, Context{})
		require.NoError(t, err)
		seen[[gcmNonceSize]byte(buf[envelopeHeaderSize:envelopeNonceEnd])] = struct{}{}
	}
	assert.Len(t, seen, n)
}

func TestTamperingIsDetected(t *testing.T) {
	k, _ := openTest(t, sequentialKey(t, 1))
	c := tokenContext()
	plaintext := []byte("refresh-token-0123456789")
	env, err := k.Encrypt(plaintext, c)
	require.NoError(t, err)

	region := func(i int) string {
		switch {
		case i < 2:
			return "format/alg"
		case i < envelopeHeaderSize:
			return "version"
		case i < envelopeNonceEnd:
			return "nonce"
		case i < len(env)-gcmTagSize:
			return "body"
		default:
			return "tag"
		}
	}
	for i := range env {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			mutated := bytes.Clone(env)
			mutated[i] ^= mask
			got, err := k.Decrypt(mutated, c)
			require.Error(t, err, "byte %d (%s) ^ %#x", i, region(i), mask)
			assert.Nil(t, got)
			if region(i) == "version" {
				// A version the keyring does not hold is reported as such;
				// version 0 is malformed.
				assert.True(t, isDecryptOrUnknown(err), "byte %d: %v", i, err)
			} else {
				assert.ErrorIs(t, err, ErrDecrypt, "byte %d (%s)", i, region(i))
			}
		}
	}
	for n := range len(env) {
		got, err := k.Decrypt(env[:n], c)
		require.ErrorIs(t, err, ErrDecrypt, "truncated to %d bytes", n)
		assert.Nil(t, got)
	}
	got, err := k.Decrypt(append(bytes.Clone(env), 0), c)
	require.ErrorIs(t, err, ErrDecrypt, "extended by one byte")
	assert.Nil(t, got)
}

func isDecryptOrUnknown(err error) bool {
	return errors.Is(err, ErrDecrypt) || errors.Is(err, ErrUnknownKeyVersion)
}

func TestVersionSwappedToAnotherHeldVersionFails(t *testing.T) {
	k, _ := openTest(t, sequentialKey(t, 1))
	c := tokenContext()
	old, err := k.Encrypt([]byte("v1 secret"), c)
	require.NoError(t, err)
	_, err = k.Rotate(context.Background(), PurposeEncryption)
	require.NoError(t, err)
	newer, err := k.Encrypt([]byte("v2 secret"), c)
	require.NoError(t, err)

	for _, tt := range []struct {
		name    string
		env     []byte
		version uint32
	}{
		{"v1 envelope relabelled v2", old, 2},
		{"v2 envelope relabelled v1", newer, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mutated := bytes.Clone(tt.env)
			binary.BigEndian.PutUint32(mutated[2:6], tt.version)
			_, err := k.Decrypt(mutated, c)
			require.ErrorIs(t, err, ErrDecrypt)
		})
	}
}

func TestMovedCiphertextFails(t *testing.T) {
	k, _ := openTest(t, sequentialKey(t, 1))
	base := tokenContext()
	env, err := k.Encrypt([]byte("secret"), base)
	require.NoError(t, err)

	with := func(change func(c *Context)) Context {
		c := base
		c.Extra = append([]string(nil), base.Extra...)
		change(&c)
		return c
	}
	tests := []struct {
		name string
		ctx  Context
	}{
		{"other tenant", with(func(c *Context) { c.Tenant = "tenant-2" })},
		{"no tenant", with(func(c *Context) { c.Tenant = "" })},
		{"other table", with(func(c *Context) { c.Table = "tenant_oauth_apps" })},
		{"other column", with(func(c *Context) { c.Column = "refresh_token" })},
		{"other row", with(func(c *Context) { c.RowID = "row-43" })},
		{"other extra", with(func(c *Context) { c.Extra[0] = "fitbit" })},
		{"extra added", with(func(c *Context) { c.Extra = append(c.Extra, "") })},
		{"extra removed", with(func(c *Context) { c.Extra = nil })},
		{"zero context", Context{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := k.Decrypt(env, tt.ctx)
			require.ErrorIs(t, err, ErrDecrypt)
			assert.Nil(t, got)
		})
	}
	got, err := k.Decrypt(env, with(func(*Context) {}))
	require.NoError(t, err, "an equal context built separately decrypts")
	assert.Equal(t, []byte("secret"), got)
}

func TestContextEncodingIsUnambiguous(t *testing.T) {
	k, _ := openTest(t, sequentialKey(t, 1))
	tests := []struct {
		name string
		a, b Context
	}{
		{"tenant/table boundary", Context{Tenant: "ab", Table: "c"}, Context{Tenant: "a", Table: "bc"}},
		{"table/column boundary", Context{Table: "ab", Column: "c"}, Context{Table: "a", Column: "bc"}},
		{"column/row boundary", Context{Column: "ab", RowID: "c"}, Context{Column: "a", RowID: "bc"}},
		{"row/extra boundary", Context{RowID: "ab", Extra: []string{"c"}}, Context{RowID: "a", Extra: []string{"bc"}}},
		{"extra/extra boundary", Context{Extra: []string{"ab", "c"}}, Context{Extra: []string{"a", "bc"}}},
		{"nil extra vs one empty extra", Context{}, Context{Extra: []string{""}}},
		{"one vs two empty extras", Context{Extra: []string{""}}, Context{Extra: []string{"", ""}}},
		{"field shifted", Context{Tenant: "x"}, Context{Table: "x"}},
		{"length byte in value", Context{Tenant: "a\x01b"}, Context{Tenant: "a", Table: "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := []byte{1, 1, 0, 0, 0, 1}
			aadA := tt.a.appendAAD(make([]byte, 0, tt.a.aadLen()), header, tt.a.aadLen())
			aadB := tt.b.appendAAD(make([]byte, 0, tt.b.aadLen()), header, tt.b.aadLen())
			assert.NotEqual(t, aadA, aadB)
			env, err := k.Encrypt([]byte("v"), tt.a)
			require.NoError(t, err)
			_, err = k.Decrypt(env, tt.b)
			require.ErrorIs(t, err, ErrDecrypt)
		})
	}
}

// referenceAAD is the envelope AAD spelled out plainly, which the
// optimised appendAAD must match byte for byte.
func referenceAAD(header []byte, c Context) []byte {
	aad := append([]byte(nil), header[:envelopeHeaderSize]...)
	for _, s := range []string{fieldLabel, c.Tenant, c.Table, c.Column, c.RowID} {
		aad = binary.AppendUvarint(aad, uint64(len(s)))
		aad = append(aad, s...)
	}
	aad = binary.AppendUvarint(aad, uint64(len(c.Extra)))
	for _, s := range c.Extra {
		aad = binary.AppendUvarint(aad, uint64(len(s)))
		aad = append(aad, s...)
	}
	for len(aad) < 128 || len(aad)%16 != 0 {
		aad = append(aad, 0)
	}
	return aad
}

func TestAADMatchesReference(t *testing.T) {
	require.Len(t, fieldLabel, int(fieldLabelPrefixed[0]), "fieldLabelPrefixed carries the label's length")

	long := strings.Repeat("x", 200)     // two-byte length prefix
	longer := strings.Repeat("y", 20000) // three-byte length prefix
	many := make([]string, 130)          // two-byte extras count
	tests := []struct {
		name string
		ctx  Context
	}{
		{"zero", Context{}},
		{"encoding of exactly 128 bytes", Context{Tenant: strings.Repeat("t", 128-6-24-1-1-1-1-1)}},
		{"encoding of 129 bytes", Context{Tenant: strings.Repeat("t", 129-6-24-1-1-1-1-1)}},
		{"typical", tokenContext()},
		{"long fields", Context{Tenant: long, Table: longer, Column: long, RowID: "", Extra: []string{long, ""}}},
		{"many extras", Context{Tenant: "t", Extra: many}},
	}
	header := []byte{1, 1, 0xde, 0xad, 0xbe, 0xef}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := referenceAAD(header, tt.ctx)
			require.Equal(t, len(want), tt.ctx.aadLen())
			dirty := bytes.Repeat([]byte{0xAA}, len(want)+7) // stale bytes in reused capacity
			got := tt.ctx.appendAAD(dirty[:3], header, len(want))[3:]
			assert.Equal(t, want, got)

			k, _ := openTest(t, sequentialKey(t, 1))
			env, err := k.Encrypt([]byte("p"), tt.ctx)
			require.NoError(t, err)
			plain, err := k.Decrypt(env, tt.ctx)
			require.NoError(t, err)
			assert.Equal(t, "p", string(plain))
		})
	}
}

func TestAppendVariants(t *testing.T) {
	k, _ := openTest(t, sequentialKey(t, 1))
	c := tokenContext()
	plaintext := []byte("access-token")

	t.Run("appends after existing bytes", func(t *testing.T) {
		prefix := []byte("prefix:")
		env, err := k.AppendEncrypt(bytes.Clone(prefix), plaintext, c)
		require.NoError(t, err)
		require.Equal(t, prefix, env[:len(prefix)])
		out, err := k.AppendDecrypt([]byte("out:"), env[len(prefix):], c)
		require.NoError(t, err)
		assert.Equal(t, "out:access-token", string(out))
	})
	t.Run("failed decrypt returns dst unchanged", func(t *testing.T) {
		env, err := k.Encrypt(plaintext, c)
		require.NoError(t, err)
		env[len(env)-1] ^= 1
		dst := make([]byte, 3, 256)
		copy(dst, "abc")
		out, err := k.AppendDecrypt(dst, env, c)
		require.ErrorIs(t, err, ErrDecrypt)
		assert.Equal(t, "abc", string(out))
		assert.Equal(t, make([]byte, len(plaintext)), dst[3:3+len(plaintext)], "no plaintext left in spare capacity")
	})
	t.Run("plaintext inside dst spare capacity is not clobbered", func(t *testing.T) {
		buf := make([]byte, 0, 512)
		src := buf[200 : 200+len(plaintext)]
		copy(src, plaintext)
		env, err := k.AppendEncrypt(buf[:0], src, c)
		require.NoError(t, err)
		got, err := k.Decrypt(env, c)
		require.NoError(t, err)
		assert.Equal(t, plaintext, got)
	})
	t.Run("envelope inside dst spare capacity is not clobbered", func(t *testing.T) {
		env, err := k.Encrypt(plaintext, c)
		require.NoError(t, err)
		buf := make([]byte, 0, 512)
		src := buf[40 : 40+len(env)]
		copy(src, env)
		got, err := k.AppendDecrypt(buf[:0], src, c)
		require.NoError(t, err)
		assert.Equal(t, plaintext, got)
	})
	t.Run("reused buffers allocate nothing", func(t *testing.T) {
		if raceEnabled {
			t.Skip("allocation counts are not meaningful under -race")
		}
		var env, out []byte
		env, _ = k.AppendEncrypt(env[:0], plaintext, c)
		out, _ = k.AppendDecrypt(out[:0], env, c)
		allocs := testing.AllocsPerRun(100, func() {
			env, _ = k.AppendEncrypt(env[:0], plaintext, c)
			out, _ = k.AppendDecrypt(out[:0], env, c)
		})
		assert.Zero(t, allocs)
		assert.Equal(t, plaintext, out)
	})
	t.Run("Encrypt and Decrypt allocate only their output", func(t *testing.T) {
		if raceEnabled {
			t.Skip("allocation counts are not meaningful under -race")
		}
		env, _ := k.Encrypt(plaintext, c)
		assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _, _ = k.Encrypt(plaintext, c) }))
		assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _, _ = k.Decrypt(env, c) }))
	})
}

func TestEnvelopeKeyVersion(t *testing.T) {
	valid := func(version uint32) []byte {
		env := make([]byte, EnvelopeOverhead)
		env[0], env[1] = envelopeFormatV1, envelopeAlgAESGCM
		binary.BigEndian.PutUint32(env[2:6], version)
		return env
	}
	tests := []struct {
		name    string
		env     []byte
		want    uint32
		wantErr bool
	}{
		{"version 1", valid(1), 1, false},
		{"version max", valid(^uint32(0)), ^uint32(0), false},
		{"version 0", valid(0), 0, true},
		{"bad format", append([]byte{2}, valid(1)[1:]...), 0, true},
		{"bad alg", append([]byte{1, 2}, valid(1)[2:]...), 0, true},
		{"too short", valid(1)[:EnvelopeOverhead-1], 0, true},
		{"empty", nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EnvelopeKeyVersion(tt.env)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrDecrypt)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestOverlaps(t *testing.T) {
	buf := make([]byte, 10)
	tests := []struct {
		name string
		x, y []byte
		want bool
	}{
		{"same", buf, buf, true},
		{"adjacent", buf[:5], buf[5:], false},
		{"one byte shared", buf[:6], buf[5:], true},
		{"inside", buf, buf[3:4], true},
		{"empty", buf[:0], buf, false},
		{"distinct arrays", buf, make([]byte, 10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, overlaps(tt.x, tt.y))
			assert.Equal(t, tt.want, overlaps(tt.y, tt.x))
		})
	}
}
