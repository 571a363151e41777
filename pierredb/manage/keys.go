package manage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb"
)

func runKeygen(_ context.Context, env Env, args []string) error {
	fs := newFlags("keygen")
	out := fs.String("out", "", "write the key to FILE (mode 0600, never overwritten) instead of printing it")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	_, err := Keygen(env, *out)
	return err
}

// Keygen makes a new master key. With out == "" it writes the key, base64
// encoded, to env.Stdout (alone on a line); otherwise it writes it to the file
// out, created with mode 0600 and never over an existing file, and prints
// only its fingerprint and how to use it.
func Keygen(env Env, out string) (keyring.MasterKey, error) {
	k, err := keyring.Generate()
	if err != nil {
		return keyring.MasterKey{}, err
	}
	if out == "" {
		env.say("keygen: new master key (fingerprint %s) below; keep it secret and safe: without it the database's secrets are lost", k.Fingerprint())
		env.say("keygen: use it as %s=<key>, or put it in a file (mode 0600) named by %s", keyring.EnvMasterKey, keyring.EnvMasterKeyPath)
		fmt.Fprintln(env.stdout(), k.EncodeBase64())
		return k, nil
	}
	if err := writeKeyFile(out, k); err != nil {
		return keyring.MasterKey{}, fmt.Errorf("keygen: %w", err)
	}
	env.say("keygen: wrote a new master key to %s (mode 0600, fingerprint %s)", out, k.Fingerprint())
	env.say("keygen: use it with %s=%s; keep a copy somewhere safe: without it the database's secrets are lost", keyring.EnvMasterKeyPath, out)
	return k, nil
}

// writeKeyFile writes k to a new file at path (0600, O_EXCL), fsynced, and
// checks that keyring.LoadMasterKeyFile reads the same key back.
func writeKeyFile(path string, k keyring.MasterKey) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists already; it is never overwritten (it may hold the key of a database): choose another name", path)
	}
	if err != nil {
		return err
	}
	_, err = io.WriteString(f, k.EncodeBase64()+"\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return err
	}
	back, err := keyring.LoadMasterKeyFile(path, keyring.LoadOptions{})
	if err != nil || !back.Equal(k) {
		_ = os.Remove(path)
		return fmt.Errorf("the key written to %s does not read back (%v)", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// RotateMasterKeyOptions says where the new master key comes from: exactly
// one of NewKey, NewKeyFile and Generate, or none of them to finish a rollover
// (see RotateMasterKey).
type RotateMasterKeyOptions struct {
	NewKey keyring.MasterKey
	// NewKeyFile is a key file (read as DATABASE_ENCRYPTION_KEY_PATH is).
	NewKeyFile string
	// Generate makes a new key and writes it to this file (mode 0600, never
	// over an existing file) before rotating.
	Generate string
}

func runRotateMasterKey(ctx context.Context, env Env, args []string) error {
	fs := newFlags("rotate-master-key")
	var o RotateMasterKeyOptions
	fs.StringVar(&o.NewKeyFile, "new-key-file", "", "read the new key from FILE")
	stdin := fs.Bool("new-key-stdin", false, "read the new key from the first line of stdin")
	fs.StringVar(&o.Generate, "generate", "", "make a new key and write it to FILE (0600)")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	n := 0
	for _, set := range []bool{o.NewKeyFile != "", *stdin, o.Generate != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return usageErr("rotate-master-key", "give one of --new-key-file, --new-key-stdin and --generate")
	}
	if *stdin {
		line, err := bufio.NewReader(io.LimitReader(env.stdin(), 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the new key: %w", err)
		}
		k, err := keyring.ParseMasterKey(line)
		if err != nil {
			return explain(fmt.Errorf("the new key read from stdin: %w", err))
		}
		o.NewKey = k
	}
	_, err := RotateMasterKey(ctx, env, o)
	return err
}

// RotateMasterKey rewraps the database's data keys under a new master key
// (O(1): no stored secret is re-encrypted) and prints the new key's
// fingerprint and what to change next. The database opens with the key of the
// environment (or, during a rollover, PIERRE_PREVIOUS_MASTER_ENCRYPTION_KEY).
// With no new key given and PIERRE_PREVIOUS_MASTER_ENCRYPTION_KEY set, it
// finishes a rollover: every key wrapped under the previous key is rewrapped
// under the environment's current key. Nothing is written when the key of the
// environment does not open the database.
func RotateMasterKey(ctx context.Context, env Env, o RotateMasterKeyOptions) (keyring.MasterKey, error) {
	newKey := o.NewKey
	given := 0
	for _, set := range []bool{!o.NewKey.IsZero(), o.NewKeyFile != "", o.Generate != ""} {
		if set {
			given++
		}
	}
	switch {
	case given > 1:
		return keyring.MasterKey{}, usageErr("rotate-master-key", "give one new key: a key, --new-key-file or --generate")
	case o.NewKeyFile != "":
		k, err := keyring.LoadMasterKeyFile(o.NewKeyFile, keyring.LoadOptions{})
		if err != nil {
			return keyring.MasterKey{}, explain(fmt.Errorf("rotate-master-key: the new key: %w", err))
		}
		newKey = k
	case given == 0:
		prev, err := keyring.LoadPreviousMasterKey(env.loadOptions())
		if err != nil {
			return keyring.MasterKey{}, explain(err)
		}
		if prev.IsZero() {
			return keyring.MasterKey{}, usageErr("rotate-master-key", "rotate-master-key needs the new key: --new-key-file FILE, --new-key-stdin or --generate FILE")
		}
		cur, err := env.masterKey()
		if err != nil {
			return keyring.MasterKey{}, err
		}
		newKey = cur
		env.say("rotate-master-key: %s is set: finishing a rollover to the current key (fingerprint %s)", keyring.EnvPreviousMasterKey, cur.Fingerprint())
	}
	// Open before making a key file: a wrong current key must leave nothing
	// behind.
	db, err := env.openExisting(ctx)
	if err != nil {
		return keyring.MasterKey{}, fmt.Errorf("rotate-master-key: %w", err)
	}
	defer func() { _ = db.Close() }()
	if o.Generate != "" {
		k, err := keyring.Generate()
		if err != nil {
			return keyring.MasterKey{}, err
		}
		if err := writeKeyFile(o.Generate, k); err != nil {
			return keyring.MasterKey{}, fmt.Errorf("rotate-master-key: %w", err)
		}
		env.say("rotate-master-key: wrote the new key to %s (mode 0600, fingerprint %s)", o.Generate, k.Fingerprint())
		newKey = k
	}
	oldFP := db.Keyring().MasterKeyFingerprint()
	if err := env.rotateMasterKey(ctx, db.Keyring(), newKey); err != nil {
		if err := afterFailedRotation(ctx, env, o.Generate, err, oldFP, newKey.Fingerprint()); err != nil {
			return keyring.MasterKey{}, err
		}
	}
	newFP := newKey.Fingerprint()
	if oldFP == newFP {
		env.say("rotate-master-key: every key was already wrapped under the key with fingerprint %s; nothing changed", newFP)
	} else {
		env.say("rotate-master-key: the data keys are now wrapped under the master key with fingerprint %s (was %s)", newFP, oldFP)
	}
	where := "the new key"
	if o.Generate != "" {
		where = o.Generate
	} else if o.NewKeyFile != "" {
		where = o.NewKeyFile
	}
	env.say("next:")
	env.say("  1. give every instance the new key: %s=<new key>, or %s=<file holding it> (%s), and restart it;", keyring.EnvMasterKey, keyring.EnvMasterKeyPath, where)
	env.say("     running instances keep working until they restart; one restarted with only the old key fails with \"wrong master key\".")
	env.say("  2. for a rolling change next time, give instances the new key with %s=<old key> beside it first, then rotate, then remove it.", keyring.EnvPreviousMasterKey)
	env.say("  3. keep the old key (fingerprint %s) with the backups taken before now: they need it.", oldFP)
	return newKey, nil
}

// ErrRotationUncertain is returned by RotateMasterKey when the rotation failed
// in a way that may have reached the database (the connection dropped around
// COMMIT, say) and reading the keyring back failed too: the database uses
// either the old master key or the new one. The new key is kept.
var ErrRotationUncertain = errors.New("the master key rotation may or may not have taken effect")

// rotateMasterKey is Keyring.RotateMasterKey, or the test's stand-in.
func (e Env) rotateMasterKey(ctx context.Context, kr *keyring.Keyring, k keyring.MasterKey) error {
	if e.hooks != nil && e.hooks.rotateMasterKey != nil {
		return e.hooks.rotateMasterKey(ctx, kr, k)
	}
	return kr.RotateMasterKey(ctx, k)
}

// refusedBeforeWrite reports whether err from Keyring.RotateMasterKey
// provably came before anything was written: only the keyring itself (its
// change function, or the read before it, inside the transaction that is then
// rolled back) fails with the keyring's own errors; a failure of the write or
// of COMMIT is a database error, after which the change may have been
// committed.
func refusedBeforeWrite(err error) bool {
	return errors.Is(err, keyring.ErrWrongMasterKey) || errors.Is(err, keyring.ErrKeyringCorrupt) ||
		errors.Is(err, keyring.ErrKeyringMissing) || errors.Is(err, keyring.ErrMasterKeyMissing) ||
		errors.Is(err, keyring.ErrMasterKeyInvalid)
}

// afterFailedRotation handles a failed master key rotation. The generated key
// file (generated != "") is deleted only when nothing was written; otherwise
// the keyring is read back through a new connection to tell which key the
// database uses. It returns nil when the rotation did take effect (the error
// came after COMMIT reached the database), and an error saying what to do
// otherwise.
func afterFailedRotation(ctx context.Context, env Env, generated string, cause error, oldFP, newFP string) error {
	if refusedBeforeWrite(cause) {
		if generated != "" {
			// Nothing was written: the new key wraps nothing.
			_ = os.Remove(generated)
			env.say("rotate-master-key: removed %s: nothing was written, so the new key is unused", generated)
		}
		return fmt.Errorf("rotate-master-key: %w", explain(cause))
	}
	kept := "the new key"
	if generated != "" {
		kept = "the new key file " + generated
	}
	// A fresh context: ctx may be what was cancelled.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	fps, rerr := env.storedFingerprints(rctx)
	switch {
	case rerr == nil && len(fps) == 1 && fps[0] == newFP:
		env.say("rotate-master-key: warning: the rotation reported an error (%v), but the keyring read back just now "+
			"is wrapped under the new master key (fingerprint %s): the rotation took effect; keep %s", cause, newFP, kept)
		return nil
	case rerr == nil && !slices.Contains(fps, newFP):
		// The change is one transaction: none of it is in the database.
		return &advice{err: fmt.Errorf("rotate-master-key: %w", cause),
			what: fmt.Sprintf("read back just now, the database still uses the master key with fingerprint %s, not the new one (%s): "+
				"nothing was rotated: retry. Kept %s in case the interrupted transaction still completes; "+
				"once `status` with the current key shows fingerprint %s, it is unused", strings.Join(fps, " and "), newFP, kept, oldFP)}
	default:
		why := "it holds keys under both"
		if rerr != nil {
			why = rerr.Error()
		}
		return &advice{err: fmt.Errorf("rotate-master-key: %w: %w", ErrRotationUncertain, cause),
			what: fmt.Sprintf("the database now uses either the old master key (fingerprint %s) or the new one (fingerprint %s), "+
				"and reading it back failed (%s). Kept %s: do NOT delete it. `status` shows which: it opens with the key "+
				"the database uses and prints its fingerprint; with the other key it fails with \"wrong master key\"", oldFP, newFP, why, kept)}
	}
}

// storedFingerprints reads, through a new connection and without any key,
// the fingerprints of the master keys the database's keyring is wrapped
// under (not secret: they identify a key, they do not reveal it).
func (e Env) storedFingerprints(ctx context.Context) ([]string, error) {
	if e.hooks != nil && e.hooks.storedFingerprints != nil {
		return e.hooks.storedFingerprints(ctx)
	}
	t, err := e.resolveTarget()
	if err != nil {
		return nil, err
	}
	if t.backend == pierredb.SQLite {
		fps, ok, err := fingerprints(ctx, t.path)
		if err == nil && !ok {
			err = fmt.Errorf("%s holds no keyring", t.path)
		}
		return fps, err
	}
	db, err := t.pg.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = db.Close() }()
	rows, err := db.QueryContext(ctx, "SELECT DISTINCT mek_fingerprint FROM "+t.pg.quotedSchema()+
		".keyring_keys WHERE state <> 'retired' AND mek_fingerprint <> '' ORDER BY 1")
	if err != nil {
		return nil, errors.New(redact(err.Error(), t.pg.password))
	}
	defer func() { _ = rows.Close() }()
	var fps []string
	for rows.Next() {
		var fp string
		if err := rows.Scan(&fp); err != nil {
			return nil, err
		}
		fps = append(fps, fp)
	}
	return fps, rows.Err()
}

// RotateDataKeyOptions tunes RotateDataKey.
type RotateDataKeyOptions struct {
	// Resume re-encrypts and retires without making a new data key first: to
	// finish a rotation that was interrupted or ran while servers wrote.
	Resume bool
	// Retire retires the old versions even when pierre cannot check that
	// no instance still runs with them (PostgreSQL, or a SQLite database in
	// use): say so only when every instance has restarted since the rotation.
	Retire bool
	// KeepOld never retires.
	KeepOld bool
	// BatchSize and Pause are pierredb.ReencryptOptions'.
	BatchSize int
	Pause     time.Duration
}

func runRotateDataKey(ctx context.Context, env Env, args []string) error {
	fs := newFlags("rotate-data-key")
	var o RotateDataKeyOptions
	var pause durationFlag
	fs.BoolVar(&o.Resume, "resume", false, "re-encrypt and retire without making a new key first")
	fs.BoolVar(&o.Retire, "retire", false, "retire old versions even when pierre cannot check that every instance has restarted")
	fs.BoolVar(&o.KeepOld, "keep-old", false, "never retire old versions")
	fs.IntVar(&o.BatchSize, "batch", 0, "values per batch (default 500)")
	fs.Var(&pause, "pause", "pause between batches, to leave room for live traffic (e.g. 50ms)")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	if o.Retire && o.KeepOld {
		return usageErr("rotate-data-key", "give --retire or --keep-old, not both")
	}
	o.Pause = pause.d
	_, err := RotateDataKey(ctx, env, o)
	return err
}

// RotateDataKey makes a new data key (keyring.PurposeEncryption) the primary
// one, re-encrypts every stored secret under it with pierredb's
// Rotation.Reencrypt (batches, progress on stderr, safe beside live writes,
// resumable), and retires the old versions once nothing is left under them.
//
// A running server keeps the keyring it loaded: until it restarts it cannot
// read secrets under the new key and still seals new ones under the old key.
// So old versions are retired (destroyed) only when that cannot happen: on
// SQLite when no other connection had the database open after the new key was
// made, and otherwise only with o.Retire. Otherwise it says to restart every
// instance and run again with Resume (and Retire).
func RotateDataKey(ctx context.Context, env Env, o RotateDataKeyOptions) (pierredb.RotationProgress, error) {
	var prog pierredb.RotationProgress
	t, err := env.resolveTarget()
	if err != nil {
		return prog, err
	}
	if !o.Resume {
		err := env.withDB(ctx, func(db *pierredb.Database) error {
			old := db.Keyring().PrimaryVersion(keyring.PurposeEncryption)
			v, err := db.Keyring().Rotate(ctx, keyring.PurposeEncryption)
			if err != nil {
				return err
			}
			env.say("rotate-data-key: data key version %d is now primary (was %d); new secrets are sealed with it", v, old)
			return nil
		})
		if err != nil {
			return prog, fmt.Errorf("rotate-data-key: %w", err)
		}
	}
	// Whether an instance that loaded the keyring before the rotation may
	// still run: checked after the rotation, with this process's own
	// connections closed.
	stale := "PostgreSQL: pierre cannot see whether other instances run"
	if t.backend == pierredb.SQLite {
		switch err := checkNotInUse(ctx, t.path); {
		case err == nil:
			stale = ""
		case errors.Is(err, ErrInUse):
			stale = "the database is in use by another process (a running server?)"
		default:
			return prog, fmt.Errorf("rotate-data-key: %w", err)
		}
	}
	if stale != "" {
		env.say("rotate-data-key: note: %s; a server that started before the rotation cannot read secrets under the new key until it restarts: restart every instance", stale)
	}
	err = env.withDB(ctx, func(db *pierredb.Database) error {
		last := time.Time{}
		prog, err = db.Rotation().Reencrypt(ctx, pierredb.ReencryptOptions{BatchSize: o.BatchSize, Pause: o.Pause,
			Progress: func(p pierredb.RotationProgress) {
				if time.Since(last) < time.Second {
					return
				}
				last = time.Now()
				env.say("rotate-data-key: re-encrypted %d, %d left under older versions", p.Rewritten, p.Remaining())
			}})
		if err != nil {
			return err
		}
		env.say("rotate-data-key: re-encrypted %d secrets; every readable one is under version %d", prog.Rewritten, prog.Primary)
		for _, u := range prog.Unreadable {
			env.say("rotate-data-key: warning: %s.%s of row %s does not decrypt (damaged, or copied from another row): restore or delete it", u.Table, u.Column, u.RowID)
		}
		retire := !o.KeepOld && (stale == "" || o.Retire)
		var kept []string
		for _, k := range db.Keyring().Keys() {
			if k.Purpose != keyring.PurposeEncryption || k.State == keyring.StateRetired || k.Version == prog.Primary {
				continue
			}
			if !retire {
				kept = append(kept, fmt.Sprint(k.Version))
				continue
			}
			err := db.Rotation().Retire(ctx, keyring.PurposeEncryption, k.Version)
			switch {
			case err == nil:
				env.say("rotate-data-key: retired data key version %d (destroyed: nothing is sealed under it)", k.Version)
			case errors.Is(err, keyring.ErrKeyInUse):
				env.say("rotate-data-key: kept version %d: %v", k.Version, err)
				kept = append(kept, fmt.Sprint(k.Version))
			default:
				return err
			}
		}
		if len(kept) > 0 && !o.KeepOld {
			env.say("rotate-data-key: old versions %s are kept; once every instance has restarted, run `rotate-data-key --resume --retire` to re-encrypt what they wrote meanwhile and retire them",
				strings.Join(kept, ", "))
		}
		return nil
	})
	if err != nil {
		return prog, fmt.Errorf("rotate-data-key: %w (re-encryption is resumable: run `rotate-data-key --resume`)", err)
	}
	return prog, nil
}
