package postgres

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseConfigTLS pins the sslmode policy: a remote server is verified unless
// the URL explicitly asks for less, and libpq's meaning of each mode is kept.
func TestParseConfigTLS(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	for _, tc := range []struct {
		url        string
		wantTLS    bool
		wantVerify bool // certificate chain and host name checked
		wantPlain  bool // a plain-text fallback exists
	}{
		{url: "postgres://u@db.example.com/pierre", wantTLS: true, wantVerify: true},
		{url: "postgres://u@10.0.0.7:6432/pierre", wantTLS: true, wantVerify: true},
		{url: "postgres://u@127.0.0.1/pierre", wantTLS: false},
		{url: "postgres://u@localhost/pierre", wantTLS: false},
		{url: "postgres://u@[::1]/pierre", wantTLS: false},
		{url: "postgres://u@db.example.com/pierre?sslmode=verify-full", wantTLS: true, wantVerify: true},
		{url: "postgres://u@db.example.com/pierre?sslmode=require", wantTLS: true, wantVerify: false},
		{url: "postgres://u@db.example.com/pierre?sslmode=prefer", wantTLS: true, wantVerify: false, wantPlain: true},
		{url: "postgres://u@db.example.com/pierre?sslmode=disable", wantTLS: false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			cfg, _, err := parseConfig(Config{URL: tc.url})
			require.NoError(t, err)
			if !tc.wantTLS {
				assert.Nil(t, cfg.TLSConfig)
				return
			}
			require.NotNil(t, cfg.TLSConfig)
			if tc.wantVerify {
				assert.False(t, cfg.TLSConfig.InsecureSkipVerify)
				assert.Equal(t, cfg.Host, cfg.TLSConfig.ServerName)
			} else {
				// libpq's require/prefer encrypt without checking the certificate.
				assert.True(t, cfg.TLSConfig.InsecureSkipVerify || cfg.TLSConfig.VerifyPeerCertificate != nil)
			}
			hasPlain := false
			for _, fb := range cfg.Fallbacks {
				if fb.TLSConfig == nil {
					hasPlain = true
				}
			}
			assert.Equal(t, tc.wantPlain, hasPlain, "plain-text fallback")
		})
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, schema, err := parseConfig(Config{URL: "postgres://u:pw@127.0.0.1:5432/pierre?search_path=tenant_data,public"})
	require.NoError(t, err)
	assert.Equal(t, "tenant_data", schema)
	assert.Equal(t, DefaultApplicationName, cfg.RuntimeParams["application_name"])
	assert.Equal(t, "UTC", cfg.RuntimeParams["timezone"])
	assert.Equal(t, DefaultConnectTimeout, cfg.ConnectTimeout)

	cfg, schema, err = parseConfig(Config{URL: "postgresql://u@127.0.0.1/pierre?application_name=mine&connect_timeout=2"})
	require.NoError(t, err)
	assert.Equal(t, "public", schema)
	assert.Equal(t, "mine", cfg.RuntimeParams["application_name"])
	assert.Equal(t, "2s", cfg.ConnectTimeout.String())

	_, _, err = parseConfig(Config{URL: "postgres://u@127.0.0.1/pierre?search_path=$user"})
	assert.Error(t, err)
}
