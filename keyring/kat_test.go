package keyring

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Known-answer vectors freeze the formats. They were computed independently
// of this package (Python's hmac and cryptography AESGCM following the
// layouts in doc.go, AAD padding included); a change here is a format break
// that would make stored data unreadable.
const (
	katDatabaseID  = "0192f0c1-7a3b-7c3d-8e4f-5a6b7c8d9e0f"
	katFingerprint = "5cb36d8eae9c8d73"
	katWrappedDEK  = "0101a0a1a2a3a4a5a6a7a8a9aaabc6395e0e61ee24984a4cadf82b57eef1409d6b23a682745ba4371cbd43964b3e37ff59c3d98fe477912ee290b0802f89"
	katWrappedHash = "0101b0b1b2b3b4b5b6b7b8b9babbd91418e8a888fd180fb1dde98110c68dd46d1b81417bd9620697d8aa00dfac49c1b976ca478b1c719626fab88635a7e6"
	katEnvelope    = "010100000001c0c1c2c3c4c5c6c7c8c9cacb13f20bc8ad1b24801f4b731e40e2193a403be1199136807f05e6"
	katEmpty       = "010100000001c0c1c2c3c4c5c6c7c8c9cacbdc4119801dba0fef8ded3a8181ea0391"
	// katLong has a 155-byte AAD encoding, padded to 160 rather than 128.
	katLong       = "010100000001c0c1c2c3c4c5c6c7c8c9cacb5bbc16c1f10a2d991f5636a76f16a1d92e3bf133b0ff5bdfa53fcf"
	katCredential = "hmac-sha256$v1$XrFXR_fX2xjpq8xWbkLWxCpT70D1dwCeJjxWyoDesz4"
)

// katPlaintextContext is the binding of katEnvelope.
var katPlaintextContext = Context{Tenant: "t1", Table: "user_oauth_tokens", Column: "access_token", RowID: "u1:strava", Extra: []string{"strava"}}

func byteRange(first byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = first + byte(i)
	}
	return b
}

// katKeyring unlocks a store holding the vector keys, with a fixed nonce.
func katKeyring(t testing.TB) *Keyring {
	t.Helper()
	mek := sequentialKey(t, 0)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	snap := Snapshot{DatabaseID: katDatabaseID, Keys: []WrappedKey{
		{Purpose: PurposeEncryption, Version: 1, State: StatePrimary, Ciphertext: mustHex(t, katWrappedDEK), Fingerprint: katFingerprint, CreatedAt: now, UpdatedAt: now},
		{Purpose: PurposeHashing, Version: 1, State: StatePrimary, Ciphertext: mustHex(t, katWrappedHash), Fingerprint: katFingerprint, CreatedAt: now, UpdatedAt: now},
	}}
	k, err := Unlock(context.Background(), storeWith(t, snap), mek,
		withNonceSource(func(b []byte) { copy(b, byteRange(0xc0, gcmNonceSize)) }))
	require.NoError(t, err)
	return k
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

func TestKnownAnswerWrappedKeys(t *testing.T) {
	mek := sequentialKey(t, 0)
	require.Equal(t, katFingerprint, mek.Fingerprint())
	tests := []struct {
		purpose Purpose
		key     []byte
		nonce   []byte
		want    string
	}{
		{PurposeEncryption, byteRange(0x20, 32), byteRange(0xa0, 12), katWrappedDEK},
		{PurposeHashing, byteRange(0x40, 32), byteRange(0xb0, 12), katWrappedHash},
	}
	for _, tt := range tests {
		t.Run(string(tt.purpose), func(t *testing.T) {
			got, err := wrapKeyWithNonce(mek, katDatabaseID, tt.purpose, 1, tt.key, tt.nonce)
			require.NoError(t, err)
			assert.Equal(t, tt.want, hex.EncodeToString(got))
			back, err := unwrapKey(mek, katDatabaseID, tt.purpose, 1, got)
			require.NoError(t, err)
			assert.Equal(t, tt.key, back)
		})
	}
}

func TestKnownAnswerEnvelope(t *testing.T) {
	k := katKeyring(t)
	tests := []struct {
		name      string
		plaintext string
		ctx       Context
		want      string
	}{
		{"token with extra", "ya29.token", katPlaintextContext, katEnvelope},
		{"empty plaintext, empty context", "", Context{}, katEmpty},
		{"AAD longer than 128 bytes", "1//0refresh", Context{
			Tenant: "0192f0c1-7a3b-7c3d-8e4f-5a6b7c8d9e0f", Table: "user_oauth_tokens", Column: "refresh_token",
			RowID: "0192f0c1-7a3b-7c3d-8e4f-000000000001", Extra: []string{"strava", "athlete:42"},
		}, katLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := k.Encrypt([]byte(tt.plaintext), tt.ctx)
			require.NoError(t, err)
			assert.Equal(t, tt.want, hex.EncodeToString(got))
			plain, err := k.Decrypt(mustHex(t, tt.want), tt.ctx)
			require.NoError(t, err)
			assert.Equal(t, tt.plaintext, string(plain))
		})
	}
}

func TestKnownAnswerCredentialHash(t *testing.T) {
	k := katKeyring(t)
	assert.Equal(t, katCredential, k.HashCredential("api_key", []byte("pk_live_abc")))
	ok, err := k.VerifyCredential("api_key", []byte("pk_live_abc"), katCredential)
	require.NoError(t, err)
	assert.True(t, ok)
}
