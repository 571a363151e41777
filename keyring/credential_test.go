package keyring

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVerifyCredential(t *testing.T) {
	k, _ := openTest(t, sequentialKey(t, 1))
	stored := k.HashCredential("api_key", []byte("pk_live_secret"))
	require.True(t, strings.HasPrefix(stored, "hmac-sha256$v1$"))
	mac := strings.TrimPrefix(stored, "hmac-sha256$v1$")
	require.Len(t, mac, 43)

	tests := []struct {
		name    string
		domain  string
		secret  string
		stored  string
		want    bool
		wantErr error
	}{
		{name: "match", domain: "api_key", secret: "pk_live_secret", stored: stored, want: true},
		{name: "wrong secret", domain: "api_key", secret: "pk_live_secreT", stored: stored},
		{name: "empty secret", domain: "api_key", secret: "", stored: stored},
		{name: "other domain", domain: "a2a_client_secret", secret: "pk_live_secret", stored: stored},
		{name: "domain/secret boundary shifted", domain: "api_ke", secret: "ypk_live_secret", stored: stored},
		{name: "unknown version", domain: "api_key", secret: "pk_live_secret", stored: "hmac-sha256$v9$" + mac, wantErr: ErrUnknownKeyVersion},
		{name: "empty", stored: "", wantErr: ErrMalformedCredentialHash},
		{name: "other algorithm", stored: "hmac-sha512$v1$" + mac, wantErr: ErrMalformedCredentialHash},
		{name: "version 0", stored: "hmac-sha256$v0$" + mac, wantErr: ErrMalformedCredentialHash},
		{name: "leading zero", stored: "hmac-sha256$v01$" + mac, wantErr: ErrMalformedCredentialHash},
		{name: "signed version", stored: "hmac-sha256$v+1$" + mac, wantErr: ErrMalformedCredentialHash},
		{name: "version overflow", stored: "hmac-sha256$v4294967296$" + mac, wantErr: ErrMalformedCredentialHash},
		{name: "missing version", stored: "hmac-sha256$v$" + mac, wantErr: ErrMalformedCredentialHash},
		{name: "missing mac", stored: "hmac-sha256$v1", wantErr: ErrMalformedCredentialHash},
		{name: "short mac", stored: stored[:len(stored)-1], wantErr: ErrMalformedCredentialHash},
		{name: "long mac", stored: stored + "A", wantErr: ErrMalformedCredentialHash},
		{name: "padded mac", stored: stored[:len(stored)-1] + "=", wantErr: ErrMalformedCredentialHash},
		{name: "std alphabet", stored: "hmac-sha256$v1$" + strings.Repeat("+", 43), wantErr: ErrMalformedCredentialHash},
		{name: "non-canonical trailing bits", stored: "hmac-sha256$v1$" + strings.Repeat("A", 42) + "B", wantErr: ErrMalformedCredentialHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := k.VerifyCredential(tt.domain, []byte(tt.secret), tt.stored)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.False(t, ok)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, ok)
		})
	}
}

func TestHashCredentialIsDeterministicAndDomainSeparated(t *testing.T) {
	k, store := openTest(t, sequentialKey(t, 1))
	other, _ := openTest(t, sequentialKey(t, 1))
	a := k.HashCredential("api_key", []byte("s"))
	assert.Equal(t, a, k.HashCredential("api_key", []byte("s")))
	assert.NotEqual(t, a, k.HashCredential("a2a_client_secret", []byte("s")))
	assert.NotEqual(t, a, other.HashCredential("api_key", []byte("s")), "another database has another hashing key")

	// The hash is keyed: nothing in the store alone reproduces it.
	for _, w := range mustLoad(t, store).Keys {
		assert.NotContains(t, a, string(w.Ciphertext))
	}
}

func TestCredentialHashVersion(t *testing.T) {
	tests := []struct {
		stored  string
		want    uint32
		wantErr bool
	}{
		{"hmac-sha256$v1$" + strings.Repeat("A", 43), 1, false},
		{"hmac-sha256$v4294967295$" + strings.Repeat("A", 43), 4294967295, false},
		{"hmac-sha256$v1$short", 0, true},
		{"bcrypt$2a$10$abc", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.stored, func(t *testing.T) {
			got, err := CredentialHashVersion(tt.stored)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrMalformedCredentialHash)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
