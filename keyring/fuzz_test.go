package keyring

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// parseErrorShapes are the only messages ParseMasterKey may produce once
// numbers are masked: nothing else from the input can reach them.
var parseErrorShapes = map[string]bool{
	"keyring: invalid master encryption key: empty (N bytes)":                                           true,
	"keyring: invalid master encryption key: contains whitespace inside the encoded key (N characters)": true,
	"keyring: invalid master encryption key: bad hex encoding (N characters)":                           true,
	"keyring: invalid master encryption key: neither base64 nor hex (N characters)":                     true,
	"keyring: invalid master encryption key: decoded to N bytes, want N":                                true,
	"keyring: invalid master encryption key: all N bytes are zero":                                      true,
}

var digits = regexp.MustCompile(`\b[0-9]+\b`)

func FuzzParseMasterKey(f *testing.F) {
	key := sequentialKey(f, 0x10)
	for _, seed := range []string{
		key.EncodeBase64(), key.EncodeHex(), strings.TrimRight(key.EncodeBase64(), "="),
		"  " + key.EncodeBase64() + "\n", strings.Repeat("A", 43), strings.Repeat("0", 64),
		"", "=", "====", "-_-_", key.EncodeHex()[:63], key.EncodeBase64()[:40] + "\x00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		k, err := ParseMasterKey(input)
		if err != nil {
			if !errors.Is(err, ErrMasterKeyInvalid) {
				t.Fatalf("error %v is not ErrMasterKeyInvalid", err)
			}
			if shape := digits.ReplaceAllString(err.Error(), "N"); !parseErrorShapes[shape] {
				t.Fatalf("unexpected error text %q", err.Error())
			}
			if !k.IsZero() {
				t.Fatal("a key returned with an error")
			}
			return
		}
		if k.IsZero() || len(k.Fingerprint()) != 16 {
			t.Fatal("success without a key")
		}
		if n := len(strings.TrimSpace(input)); n != 43 && n != 44 && n != 64 {
			t.Fatalf("accepted %d characters", n)
		}
		for _, encoded := range []string{k.EncodeBase64(), k.EncodeHex()} {
			back, err := ParseMasterKey(encoded)
			if err != nil || !back.Equal(k) {
				t.Fatalf("re-encoding does not round-trip: %v", err)
			}
		}
	})
}

// keyFileErrorShape reports whether a parseKeyFile error, numbers masked,
// is one of the messages it may produce.
func keyFileErrorShape(msg string) bool {
	shape := digits.ReplaceAllString(msg, "N")
	if hinted, ok := strings.CutSuffix(shape, "; "+digits.ReplaceAllString(keyFileHint, "N")); ok {
		if parseErrorShapes[hinted] {
			return true
		}
		for _, extra := range []string{"", " (a trailing newline counts; raw bytes are never trimmed)"} {
			if hinted == "keyring: invalid master encryption key: the file holds N bytes that are not base64 or hex text, and a raw key must be exactly N bytes"+extra {
				return true
			}
		}
	}
	return shape == "keyring: invalid master encryption key: all N raw bytes are zero"
}

func FuzzParseKeyFile(f *testing.F) {
	key := sequentialKey(f, 0x10)
	for _, seed := range []string{
		key.EncodeBase64() + "\n", key.EncodeHex(), string(key.key()[:]), string(key.key()[:]) + "\n",
		string(key.key()[:31]), string(make([]byte, 32)), strings.Repeat("a", 32), "", "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		k, err := parseKeyFile(input)
		if err != nil {
			if !errors.Is(err, ErrMasterKeyInvalid) {
				t.Fatalf("error %v is not ErrMasterKeyInvalid", err)
			}
			if !keyFileErrorShape(err.Error()) {
				t.Fatalf("unexpected error text %q", err.Error())
			}
			if !k.IsZero() {
				t.Fatal("a key returned with an error")
			}
			return
		}
		if k.IsZero() {
			t.Fatal("success without a key")
		}
		if isKeyText(input) {
			text, err := ParseMasterKey(string(input))
			if err != nil || !text.Equal(k) {
				t.Fatal("a text key file must read as ParseMasterKey reads it")
			}
			return
		}
		if len(input) != MasterKeySize || !bytes.Equal(k.key()[:], input) {
			t.Fatalf("accepted %d non-text bytes as a different key", len(input))
		}
	})
}

func FuzzDecryptEnvelope(f *testing.F) {
	k := katKeyring(f)
	type seal struct {
		envelope    []byte
		tenant, row string
		plaintext   []byte
	}
	var seals []seal
	for _, s := range []struct{ tenant, row, plaintext string }{
		{"t1", "r1", "token"}, {"t1", "r2", ""}, {"", "", "x"}, {"ab", "c", strings.Repeat("p", 100)},
	} {
		env, err := k.Encrypt([]byte(s.plaintext), Context{Tenant: s.tenant, Table: "tbl", Column: "col", RowID: s.row})
		if err != nil {
			f.Fatal(err)
		}
		seals = append(seals, seal{env, s.tenant, s.row, []byte(s.plaintext)})
		f.Add(env, s.tenant, s.row)
		f.Add(env[:len(env)-1], s.tenant, s.row)
		f.Add(env, s.tenant+"x", s.row)
	}
	f.Add(mustHex(f, katEnvelope), "t1", "u1:strava")
	f.Add([]byte{}, "", "")
	f.Add([]byte{1, 1, 0, 0, 0, 2}, "t1", "r1")

	f.Fuzz(func(t *testing.T, envelope []byte, tenant, row string) {
		c := Context{Tenant: tenant, Table: "tbl", Column: "col", RowID: row}
		got, err := k.Decrypt(envelope, c)
		var want []byte
		legit := false
		for _, s := range seals {
			if bytes.Equal(s.envelope, envelope) && s.tenant == tenant && s.row == row {
				legit, want = true, s.plaintext
			}
		}
		switch {
		case err == nil && !legit:
			t.Fatalf("a mutated envelope decrypted to %q", got)
		case err == nil && !bytes.Equal(got, want):
			t.Fatalf("decrypted %q, want %q", got, want)
		case err != nil && legit:
			t.Fatalf("a genuine envelope failed: %v", err)
		case err != nil && (got != nil || !(errors.Is(err, ErrDecrypt) || errors.Is(err, ErrUnknownKeyVersion))):
			t.Fatalf("failure returned %q, %v", got, err)
		}

		dst := []byte("keep")
		out, appendErr := k.AppendDecrypt(dst, envelope, c)
		if (appendErr == nil) != (err == nil) {
			t.Fatalf("AppendDecrypt disagrees with Decrypt: %v vs %v", appendErr, err)
		}
		if appendErr != nil && string(out) != "keep" {
			t.Fatalf("AppendDecrypt changed dst on error: %q", out)
		}
		if _, versionErr := EnvelopeKeyVersion(envelope); versionErr != nil && err == nil {
			t.Fatal("decrypted an envelope whose header does not parse")
		}
		if re, changed, reErr := k.Reencrypt(envelope, c); reErr == nil && changed && !legit {
			t.Fatalf("Reencrypt re-sealed a forged envelope: %x", re)
		}
	})
}

func FuzzVerifyCredential(f *testing.F) {
	k := katKeyring(f)
	f.Add(katCredential, []byte("pk_live_abc"))
	f.Add(katCredential, []byte("pk_live_abd"))
	f.Add(k.HashCredential("api_key", nil), []byte{})
	f.Add("hmac-sha256$v2$"+strings.Repeat("A", 43), []byte("x"))
	f.Add("hmac-sha256$v01$"+strings.Repeat("A", 43), []byte("x"))
	f.Add("hmac-sha256$v4294967295$", []byte("x"))
	f.Add("", []byte(nil))
	f.Fuzz(func(t *testing.T, stored string, secret []byte) {
		ok, err := k.VerifyCredential("api_key", secret, stored)
		version, versionErr := CredentialHashVersion(stored)
		switch {
		case ok && err != nil:
			t.Fatalf("ok with error %v", err)
		case ok && stored != k.HashCredential("api_key", secret):
			t.Fatalf("verified %q, which HashCredential never produces for this secret", stored)
		case err != nil && !errors.Is(err, ErrMalformedCredentialHash) && !errors.Is(err, ErrUnknownKeyVersion):
			t.Fatalf("unexpected error %v", err)
		case errors.Is(err, ErrMalformedCredentialHash) != (versionErr != nil):
			t.Fatalf("Verify (%v) and CredentialHashVersion (%v) disagree on the shape", err, versionErr)
		case versionErr == nil && version == 0:
			t.Fatal("version 0 accepted")
		}
	})
}
