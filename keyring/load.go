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
	// EnvMasterKeyPath names a file holding the master key, base64 or hex
	// encoded, or as exactly 32 raw bytes (see LoadMasterKeyFile).
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

// LoadMasterKeyFile reads a master key file. The file holds either the key
// as text, in any encoding ParseMasterKey accepts (surrounding whitespace such
// as a trailing newline is ignored), as made by
//
//	openssl rand -base64 32 > master.key
//
// or the key itself as exactly 32 raw bytes, as made by
//
//	head -c 32 /dev/urandom > master.key
//
// The two cannot be confused: a key encoded as text takes at least 43
// characters, so a 32-byte file can only be raw bytes or a mistake. A file
// is read as raw bytes when it holds a byte that is neither printable ASCII
// nor whitespace; raw bytes are taken exactly as they are, never trimmed, so
// 32 raw bytes followed by a newline (33 bytes) are refused rather than
// silently read as some other key. A 32-byte file of printable text (a
// 16-byte key in hex, a password) is refused too; random bytes are all
// printable with odds below 1e-13, so a real raw key practically never is.
//
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
	k, err := parseKeyFile(buf[:n])
	if err != nil {
		return MasterKey{}, fmt.Errorf("master key file %q: %w", path, err)
	}
	return k, nil
}

// keyFileHint says what a key file must hold and how to make one.
const keyFileHint = "a key file holds the key as base64 or hex text (openssl rand -base64 32 > master.key) " +
	"or as exactly 32 raw bytes (head -c 32 /dev/urandom > master.key)"

// parseKeyFile parses a key file's contents: exactly MasterKeySize raw bytes
// when b is not text, else text as parseMasterKey reads it. Errors name only
// lengths, never the contents.
func parseKeyFile(b []byte) (MasterKey, error) {
	if isKeyText(b) {
		k, err := parseMasterKey(b)
		if err != nil {
			return MasterKey{}, fmt.Errorf("%w; %s", err, keyFileHint)
		}
		return k, nil
	}
	switch {
	case len(b) != MasterKeySize:
		extra := ""
		if n := len(b); n > 0 && (b[n-1] == '\n' || b[n-1] == '\r') {
			extra = " (a trailing newline counts; raw bytes are never trimmed)"
		}
		return MasterKey{}, fmt.Errorf("%w: the file holds %d bytes that are not base64 or hex text, and a raw key must be exactly %d bytes%s; %s",
			ErrMasterKeyInvalid, len(b), MasterKeySize, extra, keyFileHint)
	case isAllZero(b):
		return MasterKey{}, fmt.Errorf("%w: all %d raw bytes are zero", ErrMasterKeyInvalid, len(b))
	}
	return newMasterKey(b), nil
}

// isKeyText reports whether every byte of b is printable ASCII or whitespace,
// the only bytes an encoded key file holds.
func isKeyText(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c > 0x7e) && !isSpace(c) {
			return false
		}
	}
	return true
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
