package manage

import (
	"context"
	"time"

	"github.com/pierre-mcp/pierre/keyring"
)

// WithRotateMasterKeyFunc returns env with Keyring.RotateMasterKey replaced by
// fn, so that a test can make the rotation fail before or after its write.
func WithRotateMasterKeyFunc(env Env, fn func(ctx context.Context, kr *keyring.Keyring, k keyring.MasterKey) error) Env {
	h := hooksOf(env)
	h.rotateMasterKey = fn
	env.hooks = h
	return env
}

// WithStoredFingerprintsFunc returns env with the read-back of the keyring's
// fingerprints replaced by fn.
func WithStoredFingerprintsFunc(env Env, fn func(ctx context.Context) ([]string, error)) Env {
	h := hooksOf(env)
	h.storedFingerprints = fn
	env.hooks = h
	return env
}

func hooksOf(env Env) *hooks {
	if env.hooks == nil {
		return &hooks{}
	}
	c := *env.hooks
	return &c
}

// BackupName is backupName.
func BackupName(dest, base, ext string, now time.Time) (string, error) {
	return backupName(dest, base, ext, now)
}
