package keyring

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"testing"
)

// benchToken is the size of a typical OAuth access token.
var benchToken = bytes.Repeat([]byte("t"), 200)

func benchKeyring(b *testing.B) *Keyring {
	b.Helper()
	k, _ := openTest(b, sequentialKey(b, 1))
	return k
}

// bareAEAD is the baseline: one cached AES-256-GCM, as a hand-rolled field
// cipher would keep it.
func bareAEAD(b *testing.B) cipher.AEAD {
	b.Helper()
	block, err := aes.NewCipher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return aead
}

// BenchmarkRoundTrip200B compares an Encrypt+Decrypt round trip of a 200-byte
// token with a bare cached AES-GCM Seal+Open (crypto/rand nonce), like for
// like: allocating outputs against Seal(nil)/Open(nil), reused buffers
// against reused buffers. The "aad" baselines authenticate an AAD as long as
// the keyring's for tokenContext, isolating the cost of the framing itself.
func BenchmarkRoundTrip200B(b *testing.B) {
	c := tokenContext()
	aadLen := c.aadLen()

	b.Run("keyring/alloc", func(b *testing.B) {
		k := benchKeyring(b)
		b.ReportAllocs()
		b.SetBytes(int64(len(benchToken)))
		for b.Loop() {
			env, err := k.Encrypt(benchToken, c)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := k.Decrypt(env, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keyring/append", func(b *testing.B) {
		k := benchKeyring(b)
		var env, out []byte
		b.ReportAllocs()
		b.SetBytes(int64(len(benchToken)))
		for b.Loop() {
			var err error
			if env, err = k.AppendEncrypt(env[:0], benchToken, c); err != nil {
				b.Fatal(err)
			}
			if out, err = k.AppendDecrypt(out[:0], env, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, baseline := range []struct {
		name string
		aad  []byte
	}{{"bare", nil}, {"aad", make([]byte, aadLen)}} {
		b.Run("baseline-"+baseline.name+"/alloc", func(b *testing.B) {
			aead := bareAEAD(b)
			nonce := make([]byte, gcmNonceSize)
			b.ReportAllocs()
			b.SetBytes(int64(len(benchToken)))
			for b.Loop() {
				_, _ = rand.Read(nonce)
				ct := aead.Seal(nil, nonce, benchToken, baseline.aad)
				if _, err := aead.Open(nil, nonce, ct, baseline.aad); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("baseline-"+baseline.name+"/reuse", func(b *testing.B) {
			aead := bareAEAD(b)
			nonce := make([]byte, gcmNonceSize)
			var ct, pt []byte
			b.ReportAllocs()
			b.SetBytes(int64(len(benchToken)))
			for b.Loop() {
				_, _ = rand.Read(nonce)
				ct = aead.Seal(ct[:0], nonce, benchToken, baseline.aad)
				var err error
				if pt, err = aead.Open(pt[:0], nonce, ct, baseline.aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncrypt200B(b *testing.B) {
	k := benchKeyring(b)
	c := tokenContext()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Encrypt(benchToken, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt200B(b *testing.B) {
	k := benchKeyring(b)
	c := tokenContext()
	env, err := k.Encrypt(benchToken, c)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Decrypt(env, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCredential(b *testing.B) {
	k := benchKeyring(b)
	secret := []byte("pk_live_0123456789abcdefghijklmnopqrstuv")
	stored := k.HashCredential("api_key", secret)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := k.VerifyCredential("api_key", secret, stored); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
