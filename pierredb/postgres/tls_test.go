package postgres

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

// fakeServer answers PostgreSQL's SSLRequest with answer and, when answer is 'S',
// runs a TLS handshake with cert. It returns host:port.
func fakeServer(t *testing.T, answer byte, cert *tls.Certificate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 8)
				if _, err := io.ReadFull(conn, buf); err != nil {
					return
				}
				if _, err := conn.Write([]byte{answer}); err != nil || answer != 'S' {
					return
				}
				srv := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{*cert}})
				_ = srv.Handshake()
			}()
		}
	}()
	return ln.Addr().String()
}

// selfSigned makes a certificate for "localhost" only and writes it as PEM.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

// TestTLSFailureIsReportedAsTLS: a certificate that does not verify is a TLS
// failure, not an unreachable server, and the message says what to change.
func TestTLSFailureIsReportedAsTLS(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	const secret = "s3cr3t-pw"
	cert, caFile := selfSigned(t)
	tlsAddr := fakeServer(t, 'S', &cert)
	plainAddr := fakeServer(t, 'N', nil)
	_, port, err := net.SplitHostPort(tlsAddr)
	require.NoError(t, err)

	for _, tc := range []struct {
		name, addr, params string
		mode, reason       string
	}{
		{name: "verify-full by IP", addr: tlsAddr, params: "sslmode=verify-full", mode: "verify-full", reason: "x509: cannot validate certificate for 127.0.0.1"},
		{name: "verify-full by name, unknown authority", addr: "localhost:" + port, params: "sslmode=verify-full", mode: "verify-full", reason: "x509: certificate signed by unknown authority"},
		{name: "verify-ca unknown authority", addr: tlsAddr, params: "sslmode=verify-ca", mode: "verify-ca", reason: "x509: certificate signed by unknown authority"},
		{name: "verify-full trusted CA, name mismatch", addr: tlsAddr, params: "sslmode=verify-full&sslrootcert=" + url.QueryEscape(caFile), mode: "verify-full", reason: "127.0.0.1"},
		{name: "sslrootcert=system verifies fully", addr: "localhost:" + port, params: "sslrootcert=system", mode: "verify-full", reason: "x509:"},
		{name: "server refuses TLS", addr: plainAddr, params: "sslmode=verify-full", mode: "verify-full", reason: "does not accept TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewConnector(Config{URL: fmt.Sprintf("postgres://pierre:%s@%s/pierre?%s", secret, tc.addr, tc.params), ConnectTimeout: 5 * time.Second})
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e, err := engine.Connect(ctx, "postgres", c)
			require.Error(t, err)
			require.Nil(t, e)
			assert.ErrorIs(t, err, engine.ErrTLS)
			assert.NotErrorIs(t, err, engine.ErrUnreachable)
			msg := err.Error()
			assert.Contains(t, msg, "sslmode="+tc.mode)
			assert.Contains(t, msg, tc.reason)
			assert.Contains(t, msg, tc.addr)
			assert.Contains(t, msg, "sslmode=disable")
			assert.NotContains(t, msg, secret)
			t.Log(msg)
		})
	}
}

// TestTLSSuccessIsNotATLSFailure: a handshake that verifies, followed by a server
// that hangs up, is not reported as a TLS failure.
func TestTLSSuccessIsNotATLSFailure(t *testing.T) {
	cert, caFile := selfSigned(t)
	addr := fakeServer(t, 'S', &cert)
	for _, mode := range []string{"verify-ca", "require"} {
		c, err := NewConnector(Config{URL: fmt.Sprintf("postgres://pierre:pw@%s/pierre?sslmode=%s&sslrootcert=%s", addr, mode, url.QueryEscape(caFile))})
		require.NoError(t, err)
		_, err = engine.Connect(context.Background(), "postgres", c)
		require.Error(t, err)
		assert.NotErrorIs(t, err, engine.ErrTLS, "%v", err)
		assert.ErrorIs(t, err, engine.ErrUnreachable)
	}
}

// TestUnreachableHidesPassword: network failures name host:port, never the password.
func TestUnreachableHidesPassword(t *testing.T) {
	const secret = "s3cr3t-pw"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := ln.Addr().String()
	require.NoError(t, ln.Close())
	for _, raw := range []string{
		"postgres://pierre:" + secret + "@" + closedAddr + "/pierre",
		"postgres://pierre:" + secret + "@no-such-host.invalid/pierre?sslmode=disable&connect_timeout=2",
		"postgres://pierre@" + closedAddr + "/pierre?password=" + secret,
	} {
		c, err := NewConnector(Config{URL: raw, ConnectTimeout: 2 * time.Second})
		require.NoError(t, err)
		_, err = engine.Connect(context.Background(), "postgres", c)
		require.Error(t, err)
		assert.ErrorIs(t, err, engine.ErrUnreachable)
		assert.NotContains(t, err.Error(), secret)
		assert.Contains(t, err.Error(), "not reachable")
		t.Log(err)
	}
	// A canceled open is the caller's, not the server's, fault.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := NewConnector(Config{URL: "postgres://pierre:" + secret + "@" + closedAddr + "/pierre"})
	require.NoError(t, err)
	_, err = engine.Connect(ctx, "postgres", c)
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
}
