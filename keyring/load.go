package keyring

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Environment variables read by LoadMasterKey and LoadPreviousMasterKey.
const (
	// EnvMasterKey holds the master key itself, base64 or hex encoded.
	EnvMasterKey = "PIERRE_MASTER_ENCRYPTION_KEY"
	// EnvMasterKeyPath names a file holding the master key.
	EnvMasterKeyPath = "DATABASE_ENCRYPTION_KEY_PATH"
	// EnvPreviousMasterKey holds the master key being rotated away from,
	// accepted during a rollover window (see WithPreviousMasterKey).
	EnvPreviousMasterKey = "PIERRE_PREVIOUS_MASTER_ENCRYPTION_KEY"
)

// maxKeyFileSize bounds the key file: a key is at most 64 characters plus
// whitespace, so anything larger is not a key file.
const maxKeyFileSize = 4 << 10

// LoadOptions tunes master key loading. The zero value reads the process
// environment and applies the strict file rules.
type LoadOptions struct {
	// Getenv looks up environment variables; nil means os.Getenv. Tests and
	// hosts with their own configuration source set it.
	Getenv func(string) string
	// AllowReadableByOthers accepts a key file that other users may read
	// (mode o+r). Group- or world-writable files are refused regardless.
	AllowReadableByOthers bool
}

func (o LoadOptions) getenv(name string) string {
	if o.Getenv == nil {
		return os.Getenv(name)
	}
	return o.Getenv(name)
}

// LoadMasterKey loads the master key from exactly one of two sources:
// PIERRE_MASTER_ENCRYPTION_KEY (the encoded key, see ParseMasterKey) or the file
// named by DATABASE_ENCRYPTION_KEY_PATH (see LoadMasterKeyFile). An empty
// variable counts as unset. Both set is ErrMasterKeyConflict, neither is
// ErrMasterKeyMissing.
func LoadMasterKey(opts LoadOptions) (MasterKey, error) {
	value := opts.getenv(EnvMasterKey)
	path := opts.getenv(EnvMasterKeyPath)
	switch {
	case value != "" && path != "":
		return MasterKey{}, fmt.Errorf("%w: set either %s or %s, not both", ErrMasterKeyConflict, EnvMasterKey, EnvMasterKeyPath)
	case value != "":
		k, err := ParseMasterKey(value)
		if err != nil {
			return MasterKey{}, fmt.Errorf("%s: %w", EnvMasterKey, err)
		}
		return k, nil
	case path != "":
		return LoadMasterKeyFile(path, opts)
	default:
		return MasterKey{}, fmt.Errorf("%w: set %s or %s", ErrMasterKeyMissing, EnvMasterKey, EnvMasterKeyPath)
	}
}

// LoadMasterKeyFile reads a master key file in any encoding ParseMasterKey
// accepts; surrounding whitespace such as a trailing newline is ignored.
// Symbolic links are followed. The file is refused with
// ErrMasterKeyFileInsecure when, after following links, it is not a regular
// file, is writable by group or others, is larger than 4 KiB, or is readable
// by others and opts.AllowReadableByOthers is false. Of opts only
// AllowReadableByOthers matters here.
func LoadMasterKeyFile(path string, opts LoadOptions) (MasterKey, error) {
	// Check the path before opening it: opening a FIFO would block.
	info, err := os.Stat(path)
	if err != nil {
		return MasterKey{}, fmt.Errorf("keyring: master key file: %w", err)
	}
	if err := checkKeyFile(path, info, opts); err != nil {
		return MasterKey{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return MasterKey{}, fmt.Errorf("keyring: open master key file: %w", err)
	}
	defer func() { _ = f.Close() }()

	// Check the open descriptor again, so the rules hold for the very file
	// that is read even if the path was swapped after the first check.
	opened, err := f.Stat()
	if err != nil {
		return MasterKey{}, fmt.Errorf("keyring: stat master key file %q: %w", path, err)
	}
	if !os.SameFile(info, opened) {
		return MasterKey{}, fmt.Errorf("%w: %q changed while it was being opened", ErrMasterKeyFileInsecure, path)
	}
	if err := checkKeyFile(path, opened, opts); err != nil {
		return MasterKey{}, err
	}

	// Read one byte past the limit: the file may have grown since Stat.
	buf := make([]byte, maxKeyFileSize+1)
	defer clear(buf)
	n, err := io.ReadFull(f, buf)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
	case err != nil:
		return MasterKey{}, fmt.Errorf("keyring: read master key file %q: %w", path, err)
	}
	if n > maxKeyFileSize {
		return MasterKey{}, fmt.Errorf("%w: %q holds more than the %d bytes a key file may hold", ErrMasterKeyFileInsecure, path, maxKeyFileSize)
	}
	k, err := parseMasterKey(buf[:n])
	if err != nil {
		return MasterKey{}, fmt.Errorf("master key file %q: %w", path, err)
	}
	return k, nil
}

// checkKeyFile applies the key file rules to info.
func checkKeyFile(path string, info os.FileInfo, opts LoadOptions) error {
	mode := info.Mode()
	switch perm := mode.Perm(); {
	case !mode.IsRegular():
		return fmt.Errorf("%w: %q is not a regular file (%s)", ErrMasterKeyFileInsecure, path, mode.Type())
	case perm&0o022 != 0:
		return fmt.Errorf("%w: %q is writable by group or others (mode %04o); chmod 600 it", ErrMasterKeyFileInsecure, path, perm)
	case perm&0o004 != 0 && !opts.AllowReadableByOthers:
		return fmt.Errorf("%w: %q is readable by others (mode %04o); chmod 600 it or allow it explicitly", ErrMasterKeyFileInsecure, path, perm)
	case info.Size() > maxKeyFileSize:
		return fmt.Errorf("%w: %q is %d bytes, more than the %d a key file may hold", ErrMasterKeyFileInsecure, path, info.Size(), maxKeyFileSize)
	}
	return nil
}

// LoadPreviousMasterKey loads PIERRE_PREVIOUS_MASTER_ENCRYPTION_KEY for a
// master key rollover (see WithPreviousMasterKey). When the variable is unset
// or empty it returns the zero MasterKey and a nil error.
func LoadPreviousMasterKey(opts LoadOptions) (MasterKey, error) {
	value := opts.getenv(EnvPreviousMasterKey)
	if value == "" {
		return MasterKey{}, nil
	}
	k, err := ParseMasterKey(value)
	if err != nil {
		return MasterKey{}, fmt.Errorf("%s: %w", EnvPreviousMasterKey, err)
	}
	return k, nil
}
