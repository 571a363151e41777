package keyring

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMasterKey(t *testing.T) {
	key := sequentialKey(t, 0x80)
	raw := key.key()[:]
	zero := make([]byte, 32)
	tests := []struct {
		name    string
		input   string
		wantErr string // substring of the error; "" means success
	}{
		{"base64 std padded", base64.StdEncoding.EncodeToString(raw), ""},
		{"base64 std raw", base64.RawStdEncoding.EncodeToString(raw), ""},
		{"base64 url padded", base64.URLEncoding.EncodeToString(raw), ""},
		{"base64 url raw", base64.RawURLEncoding.EncodeToString(raw), ""},
		{"hex lower", hex.EncodeToString(raw), ""},
		{"hex upper", strings.ToUpper(hex.EncodeToString(raw)), ""},
		{"surrounding whitespace", " \t" + base64.StdEncoding.EncodeToString(raw) + "\r\n", ""},
		{"31 bytes base64", base64.StdEncoding.EncodeToString(raw[:31]), "31 bytes"},
		{"33 bytes base64", base64.StdEncoding.EncodeToString(append(raw[:32:32], 1)), "33 bytes"},
		{"31 bytes hex", hex.EncodeToString(raw[:31]), "31 bytes"},
		{"33 bytes hex", hex.EncodeToString(append(raw[:32:32], 1)), "33 bytes"},
		{"all zero base64", base64.StdEncoding.EncodeToString(zero), "all 32 bytes are zero"},
		{"all zero hex", hex.EncodeToString(zero), "all 32 bytes are zero"},
		{"empty", "", "0 bytes"},
		{"only whitespace", " \n ", "0 bytes"},
		{"inner whitespace", base64.StdEncoding.EncodeToString(raw)[:20] + "\n" + base64.StdEncoding.EncodeToString(raw)[20:], "whitespace"},
		{"not base64", "!!!!" + base64.StdEncoding.EncodeToString(raw)[4:], "neither base64 nor hex"},
		{"mixed alphabets", "+-" + base64.StdEncoding.EncodeToString(raw)[2:], "neither base64 nor hex"},
		{"wrong padding", base64.RawStdEncoding.EncodeToString(raw) + "==", "neither base64 nor hex"},
		{"odd hex", hex.EncodeToString(raw)[1:], "63 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMasterKey(tt.input)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.True(t, got.Equal(key))
				assert.Equal(t, key.Fingerprint(), got.Fingerprint())
				return
			}
			require.ErrorIs(t, err, ErrMasterKeyInvalid)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.True(t, got.IsZero())
			if trimmed := strings.TrimSpace(tt.input); len(trimmed) >= 8 {
				assert.NotContains(t, err.Error(), trimmed)
			}
		})
	}
}

func TestMasterKeyEncodingsRoundTrip(t *testing.T) {
	key, err := Generate()
	require.NoError(t, err)
	require.False(t, key.IsZero())
	for name, encoded := range map[string]string{"base64": key.EncodeBase64(), "hex": key.EncodeHex()} {
		t.Run(name, func(t *testing.T) {
			back, err := ParseMasterKey(encoded)
			require.NoError(t, err)
			assert.True(t, back.Equal(key))
		})
	}
	assert.Len(t, key.EncodeBase64(), 44)
	assert.Len(t, key.EncodeHex(), 64)
}

func TestGenerateIsRandom(t *testing.T) {
	seen := map[string]bool{}
	for range 64 {
		k, err := Generate()
		require.NoError(t, err)
		require.False(t, seen[k.EncodeHex()], "Generate repeated a key")
		seen[k.EncodeHex()] = true
	}
}

func TestMasterKeyZeroValue(t *testing.T) {
	var zero MasterKey
	assert.True(t, zero.IsZero())
	assert.Empty(t, zero.Fingerprint())
	assert.Empty(t, zero.EncodeBase64())
	assert.Empty(t, zero.EncodeHex())
	assert.Equal(t, "keyring.MasterKey(none)", zero.String())
	assert.True(t, zero.Equal(MasterKey{}))
	assert.False(t, zero.Equal(sequentialKey(t, 1)))
}

func TestFingerprint(t *testing.T) {
	a, b := sequentialKey(t, 1), sequentialKey(t, 2)
	assert.Len(t, a.Fingerprint(), 16)
	assert.True(t, isAllHex([]byte(a.Fingerprint())))
	assert.NotEqual(t, a.Fingerprint(), b.Fingerprint())
	again, err := ParseMasterKey(a.EncodeHex())
	require.NoError(t, err)
	assert.Equal(t, a.Fingerprint(), again.Fingerprint())
	assert.Equal(t, "keyring.MasterKey(REDACTED fp="+a.Fingerprint()+")", a.String())
}
