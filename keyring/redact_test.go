package keyring

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// forbiddenForms lists every way a key's bytes could leak into text.
func forbiddenForms(raw []byte) []string {
	return []string{
		base64.StdEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		hex.EncodeToString(raw),
		strings.ToUpper(hex.EncodeToString(raw)),
		string(raw),
		fmt.Sprint(raw), // "[1 2 3 ...]"
		fmt.Sprintf("%#v", raw),
		// Prefixes catch a partial leak (e.g. a truncated quote of the input).
		base64.StdEncoding.EncodeToString(raw)[:12],
		hex.EncodeToString(raw)[:16],
	}
}

func assertNoLeak(t *testing.T, raw []byte, where, text string) {
	t.Helper()
	for _, form := range forbiddenForms(raw) {
		if strings.Contains(text, form) {
			t.Errorf("%s leaks the key (%q) in %q", where, form[:min(len(form), 8)]+"…", text)
		}
	}
}

func TestMasterKeyNeverPrintsItself(t *testing.T) {
	key := sequentialKey(t, 0x41) // printable bytes: a raw leak would be readable
	raw := bytes.Clone(key.key()[:])
	k, _ := openTest(t, key, WithPreviousMasterKey(sequentialKey(t, 0x61)))

	type exported struct{ Key MasterKey }
	type unexported struct{ key MasterKey }
	values := map[string]any{
		"value":                       key,
		"pointer":                     &key,
		"exported field":              exported{key},
		"unexported field":            unexported{key},
		"slice":                       []MasterKey{key},
		"map":                         map[string]MasterKey{"k": key},
		"keyring":                     k,
		"keyring in exported field":   struct{ K *Keyring }{k},
		"keyring in unexported field": struct{ k *Keyring }{k},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%10.3v"}
	for name, v := range values {
		for _, verb := range verbs {
			assertNoLeak(t, raw, name+" "+verb, fmt.Sprintf(verb, v))
		}
		assertNoLeak(t, raw, name+" Sprint", fmt.Sprint(v))
		assertNoLeak(t, raw, name+" Sprintln", fmt.Sprintln(v))

		var textBuf, jsonBuf bytes.Buffer
		slog.New(slog.NewTextHandler(&textBuf, nil)).Info("msg", "v", v, slog.Any("any", v), slog.Group("g", "v", v))
		slog.New(slog.NewJSONHandler(&jsonBuf, nil)).Info("msg", "v", v, slog.Any("any", v), slog.Group("g", "v", v))
		assertNoLeak(t, raw, name+" slog text", textBuf.String())
		assertNoLeak(t, raw, name+" slog JSON", jsonBuf.String())

		if out, err := json.Marshal(v); err == nil {
			assertNoLeak(t, raw, name+" json", string(out))
		}
	}

	assert.Equal(t, `"`+key.String()+`"`, fmt.Sprintf("%q", key))
	assert.Contains(t, fmt.Sprintf("%v", key), key.Fingerprint(), "the fingerprint is shown")
	out, err := json.Marshal(exported{key})
	require.NoError(t, err)
	assert.JSONEq(t, `{"Key":"`+key.String()+`"}`, string(out))
	text, err := key.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, key.String(), string(text))
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("loaded", "mek", key)
	assert.Contains(t, logged.String(), "REDACTED")
}

func TestErrorsNeverContainKeys(t *testing.T) {
	key := sequentialKey(t, 0x30)
	raw := bytes.Clone(key.key()[:])
	b64 := key.EncodeBase64()
	var errs []error
	collect := func(_ any, err error) { require.Error(t, err); errs = append(errs, err) }

	// Inputs that are nearly the key: one byte short, one extra, a bad
	// character, surrounding junk.
	for _, input := range []string{
		base64.StdEncoding.EncodeToString(raw[:31]),
		base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 0)),
		"!" + b64[1:],
		b64 + " extra",
		key.EncodeHex() + "0",
		key.EncodeHex()[:62] + "zz",
		string(raw),
	} {
		collect(ParseMasterKey(input))
		collect(LoadMasterKey(LoadOptions{Getenv: envMap(map[string]string{EnvMasterKey: input})}))
		collect(LoadPreviousMasterKey(LoadOptions{Getenv: envMap(map[string]string{EnvPreviousMasterKey: input})}))
		path := filepath.Join(t.TempDir(), "key")
		require.NoError(t, os.WriteFile(path, []byte(input), 0o600))
		collect(LoadMasterKeyFile(path, LoadOptions{}))
	}
	collect(LoadMasterKey(LoadOptions{Getenv: envMap(map[string]string{EnvMasterKey: b64, EnvMasterKeyPath: "/x"})}))
	insecure := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(insecure, []byte(b64), 0o600))
	require.NoError(t, os.Chmod(insecure, 0o666))
	collect(LoadMasterKeyFile(insecure, LoadOptions{}))

	// Keyring errors: wrong key, corruption, decryption failures.
	k, store := openTest(t, key)
	collect(Open(context.Background(), store, sequentialKey(t, 0x50)))
	collect(Open(context.Background(), store, sequentialKey(t, 0x50), WithPreviousMasterKey(sequentialKey(t, 0x51))))
	snap := mustLoad(t, store)
	snap.Keys[0].Ciphertext[20] ^= 1
	collect(Open(context.Background(), storeWith(t, snap), key))
	env, err := k.Encrypt([]byte("plaintext"), tokenContext())
	require.NoError(t, err)
	collect(k.Decrypt(env, Context{}))
	collect(k.Decrypt(env[:5], tokenContext()))

	for _, err := range errs {
		assertNoLeak(t, raw, "error", err.Error())
		assertNoLeak(t, raw, "error %+v", fmt.Sprintf("%+v", err))
	}
}
