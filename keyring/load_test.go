package keyring

import (
	"encoding/base64"
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
