package keyring

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// envMap makes a LoadOptions.Getenv from a map.
func envMap(m map[string]string) func(string) string {
	return func(name string) string { return m[name] }
}

// writeKeyFile writes content to a new file with the given mode.
func writeKeyFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "master.key")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	require.NoError(t, os.Chmod(path, mode)) // WriteFile's mode is masked by umask
	return path
}

func TestLoadMasterKeyFromEnv(t *testing.T) {
	key := sequentialKey(t, 7)
	raw := key.key()[:]
	tests := []struct {
		name    string
		env     map[string]string
		wantErr error
		errText string
	}{
		{name: "base64 std", env: map[string]string{EnvMasterKey: base64.StdEncoding.EncodeToString(raw)}},
		{name: "base64 url", env: map[string]string{EnvMasterKey: base64.URLEncoding.EncodeToString(raw)}},
		{name: "base64 raw url", env: map[string]string{EnvMasterKey: base64.RawURLEncoding.EncodeToString(raw)}},
		{name: "base64 raw std", env: map[string]string{EnvMasterKey: base64.RawStdEncoding.EncodeToString(raw)}},
		{name: "hex", env: map[string]string{EnvMasterKey: key.EncodeHex()}},
		{name: "both set", env: map[string]string{EnvMasterKey: key.EncodeHex(), EnvMasterKeyPath: "/etc/pierre.key"}, wantErr: ErrMasterKeyConflict},
		{name: "none set", env: map[string]string{}, wantErr: ErrMasterKeyMissing, errText: EnvMasterKeyPath},
		{name: "31 bytes", env: map[string]string{EnvMasterKey: base64.StdEncoding.EncodeToString(raw[:31])}, wantErr: ErrMasterKeyInvalid, errText: "31 bytes"},
		{name: "33 bytes", env: map[string]string{EnvMasterKey: base64.StdEncoding.EncodeToString(append(raw[:32:32], 9))}, wantErr: ErrMasterKeyInvalid, errText: "33 bytes"},
		{name: "all zero", env: map[string]string{EnvMasterKey: base64.StdEncoding.EncodeToString(make([]byte, 32))}, wantErr: ErrMasterKeyInvalid, errText: "zero"},
		{name: "bad encoding", env: map[string]string{EnvMasterKey: "not a key at all"}, wantErr: ErrMasterKeyInvalid, errText: EnvMasterKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadMasterKey(LoadOptions{Getenv: envMap(tt.env)})
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.True(t, got.Equal(key))
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			assert.Contains(t, err.Error(), tt.errText)
			assert.True(t, got.IsZero())
			if v := tt.env[EnvMasterKey]; v != "" {
				assert.NotContains(t, err.Error(), v)
			}
		})
	}
}

func TestLoadMasterKeyFile(t *testing.T) {
	key := sequentialKey(t, 11)
	good := key.EncodeBase64() + "\n"
	tests := []struct {
		name    string
		path    func(t *testing.T) string
		opts    LoadOptions
		wantErr error
		errText string
	}{
		{name: "0600 with trailing newline", path: func(t *testing.T) string { return writeKeyFile(t, good, 0o600) }},
		{name: "0400 hex with CRLF", path: func(t *testing.T) string { return writeKeyFile(t, key.EncodeHex()+"\r\n", 0o400) }},
		{name: "0640 group readable", path: func(t *testing.T) string { return writeKeyFile(t, good, 0o640) }},
		{name: "0620 group writable", path: func(t *testing.T) string { return writeKeyFile(t, good, 0o620) }, wantErr: ErrMasterKeyFileInsecure, errText: "0620"},
		{name: "0602 others writable", path: func(t *testing.T) string { return writeKeyFile(t, good, 0o602) }, wantErr: ErrMasterKeyFileInsecure, errText: "writable"},
		{name: "0604 others readable", path: func(t *testing.T) string { return writeKeyFile(t, good, 0o604) }, wantErr: ErrMasterKeyFileInsecure, errText: "readable by others"},
		{name: "0604 others readable allowed", path: func(t *testing.T) string { return writeKeyFile(t, good, 0o604) }, opts: LoadOptions{AllowReadableByOthers: true}},
		{name: "0606 allowed readable still not writable", path: func(t *testing.T) string { return writeKeyFile(t, good, 0o606) }, opts: LoadOptions{AllowReadableByOthers: true}, wantErr: ErrMasterKeyFileInsecure},
		{name: "directory", path: func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), "keydir")
			require.NoError(t, os.Mkdir(dir, 0o700))
			return dir
		}, wantErr: ErrMasterKeyFileInsecure, errText: "not a regular file"},
		{name: "symlink to a good file", path: func(t *testing.T) string {
			target := writeKeyFile(t, good, 0o600)
			link := filepath.Join(t.TempDir(), "link.key")
			require.NoError(t, os.Symlink(target, link))
			return link
		}},
		{name: "symlink to a directory", path: func(t *testing.T) string {
			link := filepath.Join(t.TempDir(), "link.key")
			require.NoError(t, os.Symlink(t.TempDir(), link))
			return link
		}, wantErr: ErrMasterKeyFileInsecure, errText: "not a regular file"},
		{name: "larger than 4 KiB", path: func(t *testing.T) string {
			return writeKeyFile(t, good+strings.Repeat(" ", 4097-len(good)), 0o600)
		}, wantErr: ErrMasterKeyFileInsecure, errText: "4096"},
		{name: "exactly 4 KiB", path: func(t *testing.T) string {
			return writeKeyFile(t, good+strings.Repeat(" ", 4096-len(good)), 0o600)
		}},
		{name: "missing file", path: func(t *testing.T) string { return filepath.Join(t.TempDir(), "absent") }, wantErr: os.ErrNotExist},
		{name: "31-byte key", path: func(t *testing.T) string {
			return writeKeyFile(t, base64.StdEncoding.EncodeToString(key.key()[:31])+"\n", 0o600)
		}, wantErr: ErrMasterKeyInvalid, errText: "31 bytes"},
		{name: "empty file", path: func(t *testing.T) string { return writeKeyFile(t, "", 0o600) }, wantErr: ErrMasterKeyInvalid, errText: "0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path(t)
			for via, load := range map[string]func() (MasterKey, error){
				"LoadMasterKeyFile": func() (MasterKey, error) { return LoadMasterKeyFile(path, tt.opts) },
				"LoadMasterKey": func() (MasterKey, error) {
					opts := tt.opts
					opts.Getenv = envMap(map[string]string{EnvMasterKeyPath: path})
					return LoadMasterKey(opts)
				},
			} {
				got, err := load()
				if tt.wantErr == nil {
					require.NoError(t, err, via)
					assert.True(t, got.Equal(key), via)
					continue
				}
				require.ErrorIs(t, err, tt.wantErr, via)
				assert.Contains(t, err.Error(), tt.errText, via)
				assert.NotContains(t, err.Error(), key.EncodeBase64(), via)
				assert.True(t, got.IsZero(), via)
			}
		})
	}
}

func TestLoadMasterKeyFileRefusesFIFOWithoutBlocking(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := mkfifo(path); err != nil {
		t.Skipf("no FIFO support: %v", err)
	}
	_, err := LoadMasterKeyFile(path, LoadOptions{})
	require.ErrorIs(t, err, ErrMasterKeyFileInsecure)
}

func TestLoadPreviousMasterKey(t *testing.T) {
	prev := sequentialKey(t, 3)
	tests := []struct {
		name     string
		env      map[string]string
		wantZero bool
		wantErr  error
	}{
		{name: "unset", env: map[string]string{}, wantZero: true},
		{name: "set", env: map[string]string{EnvPreviousMasterKey: prev.EncodeBase64()}},
		{name: "invalid", env: map[string]string{EnvPreviousMasterKey: base64.StdEncoding.EncodeToString(prev.key()[:31])}, wantErr: ErrMasterKeyInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadPreviousMasterKey(LoadOptions{Getenv: envMap(tt.env)})
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Contains(t, err.Error(), EnvPreviousMasterKey)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantZero, got.IsZero())
			if !tt.wantZero {
				assert.True(t, got.Equal(prev))
			}
		})
	}
}

func TestLoadMasterKeyDefaultsToProcessEnvironment(t *testing.T) {
	key := sequentialKey(t, 21)
	t.Setenv(EnvMasterKey, key.EncodeBase64())
	t.Setenv(EnvMasterKeyPath, "")
	got, err := LoadMasterKey(LoadOptions{})
	require.NoError(t, err)
	assert.True(t, got.Equal(key))
}

// randomRawKey returns 32 bytes as head -c 32 /dev/urandom would: not text
// (the fixed 0x00 and 0xff make sure of it) and not all zero.
func randomRawKey(t *testing.T) []byte {
	t.Helper()
	k, err := Generate()
	require.NoError(t, err)
	raw := append([]byte(nil), k.key()[:]...)
	raw[0], raw[31] = 0x00, 0xff
	return raw
}

func TestLoadMasterKeyFileRawBytes(t *testing.T) {
	raw := randomRawKey(t)
	want, err := ParseMasterKey(base64.StdEncoding.EncodeToString(raw))
	require.NoError(t, err)

	load := func(t *testing.T, content []byte, mode os.FileMode) (MasterKey, error) {
		path := writeKeyFile(t, string(content), mode)
		got, err := LoadMasterKeyFile(path, LoadOptions{})
		viaEnv, envErr := LoadMasterKey(LoadOptions{Getenv: envMap(map[string]string{EnvMasterKeyPath: path})})
		if err == nil {
			require.NoError(t, envErr)
			assert.True(t, viaEnv.Equal(got), "LoadMasterKey reads the file the same way")
		} else {
			require.Error(t, envErr)
		}
		return got, err
	}

	t.Run("exactly 32 raw bytes", func(t *testing.T) {
		got, err := load(t, raw, 0o600)
		require.NoError(t, err)
		assert.True(t, got.Equal(want), "the same key as its base64")
		assert.Equal(t, want.Fingerprint(), got.Fingerprint())
	})
	t.Run("raw bytes that begin and end with whitespace are not trimmed", func(t *testing.T) {
		spaced := append([]byte(nil), raw...)
		spaced[0], spaced[1], spaced[30], spaced[31] = ' ', 0x80, 0x01, '\n'
		got, err := load(t, spaced, 0o600)
		require.NoError(t, err)
		wantSpaced, err := ParseMasterKey(base64.StdEncoding.EncodeToString(spaced))
		require.NoError(t, err)
		assert.True(t, got.Equal(wantSpaced))
	})

	refused := []struct {
		name    string
		content []byte
		errText []string
	}{
		{"31 raw bytes", raw[:31], []string{"31 bytes", "not base64 or hex text", "exactly 32", "openssl rand -base64 32"}},
		{"33 raw bytes", append(append([]byte(nil), raw...), 0x42), []string{"33 bytes", "not base64 or hex text", "exactly 32"}},
		{"32 raw bytes and a newline", append(append([]byte(nil), raw...), '\n'), []string{"33 bytes", "newline"}},
		{"32 raw zero bytes", make([]byte, 32), []string{"zero"}},
		{"32 hex characters are a 16-byte key, not raw bytes", []byte(strings.Repeat("ab", 16)), []string{"decoded to 16 bytes", "openssl rand -base64 32"}},
		{"32 characters of text are not raw bytes", []byte("correct-horse-battery-staple!123"), []string{"neither base64 nor hex", "head -c 32 /dev/urandom"}},
		{"text with inner spaces", []byte("correct horse battery staple 123"), []string{"whitespace", "openssl rand -base64 32"}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			got, err := load(t, tt.content, 0o600)
			require.ErrorIs(t, err, ErrMasterKeyInvalid)
			assert.True(t, got.IsZero())
			for _, s := range tt.errText {
				assert.Contains(t, err.Error(), s)
			}
			assertNoKeyBytes(t, err.Error(), tt.content)
		})
	}

	t.Run("permission checks are unchanged", func(t *testing.T) {
		for _, mode := range []os.FileMode{0o620, 0o602, 0o604} {
			_, err := load(t, raw, mode)
			require.ErrorIs(t, err, ErrMasterKeyFileInsecure, "mode %04o", mode)
			assertNoKeyBytes(t, err.Error(), raw)
		}
		got, err := LoadMasterKeyFile(writeKeyFile(t, string(raw), 0o604), LoadOptions{AllowReadableByOthers: true})
		require.NoError(t, err)
		assert.True(t, got.Equal(want))
	})

	t.Run("the environment variable stays text", func(t *testing.T) {
		_, err := LoadMasterKey(LoadOptions{Getenv: envMap(map[string]string{EnvMasterKey: string(raw)})})
		require.ErrorIs(t, err, ErrMasterKeyInvalid)
		assertNoKeyBytes(t, err.Error(), raw)
		_, err = ParseMasterKey(string(raw))
		require.ErrorIs(t, err, ErrMasterKeyInvalid)
	})
}

// assertNoKeyBytes fails when msg contains any 4-byte run of key, or any
// 8-character run of its base64 or hex form.
func assertNoKeyBytes(t *testing.T, msg string, key []byte) {
	t.Helper()
	for enc, n := range map[string]int{
		string(key):                            4,
		base64.StdEncoding.EncodeToString(key): 8,
		hex.EncodeToString(key):                8,
	} {
		for i := 0; i+n <= len(enc); i++ {
			require.NotContains(t, msg, enc[i:i+n], "the message repeats key material")
		}
	}
}
