package pierredb

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/keyring"
	"github.com/pierre-mcp/pierre/pierredb/internal/engine"
)

type keyringMetaRow struct {
	bun.BaseModel `bun:"table:keyring_meta"`

	ID         int    `bun:"id,pk"`
	DatabaseID string `bun:"database_id"`
	CreatedAt  dbTime `bun:"created_at"`
}

type keyringKeyRow struct {
	bun.BaseModel `bun:"table:keyring_keys"`

	Purpose        string `bun:"purpose,pk"`
	Version        int64  `bun:"version,pk"`
	State          string `bun:"state"`
	WrappedKey     []byte `bun:"wrapped_key"`
	MEKFingerprint string `bun:"mek_fingerprint"`
	CreatedAt      dbTime `bun:"created_at"`
	UpdatedAt      dbTime `bun:"updated_at"`
}

func keyRow(k keyring.WrappedKey) keyringKeyRow {
	return keyringKeyRow{
		Purpose:        string(k.Purpose),
		Version:        int64(k.Version),
		State:          string(k.State),
		WrappedKey:     k.Ciphertext,
		MEKFingerprint: k.Fingerprint,
		CreatedAt:      at(k.CreatedAt),
		UpdatedAt:      at(k.UpdatedAt),
	}
}

func (r keyringKeyRow) wrappedKey() keyring.WrappedKey {
	return keyring.WrappedKey{
		Purpose:     keyring.Purpose(r.Purpose),
		Version:     uint32(r.Version),
		State:       keyring.KeyState(r.State),
		Ciphertext:  r.WrappedKey,
		Fingerprint: r.MEKFingerprint,
		CreatedAt:   r.CreatedAt.Time,
		UpdatedAt:   r.UpdatedAt.Time,
	}
}

// keyringStore persists the keyring in keyring_meta and keyring_keys. It is the
// only code that writes those tables.
type keyringStore struct {
	eng *engine.Engine
	now func() time.Time
	db  *Database // to refuse writes inside its RunInTx; nil before Open returns it
}

// outsideTx refuses a keyring write inside RunInTx. The keyring commits its
// changes on its own (a host's rollback could not undo them, and its memory
// already holds the new keys); on SQLite it would also wait forever for the
// one writer connection that the host's transaction holds.
func (s *keyringStore) outsideTx(ctx context.Context) error {
	if s.db == nil {
		return nil
	}
	if _, inTx := s.db.txFrom(ctx); inTx {
		return fmt.Errorf("%w: the keyring cannot change inside RunInTx (it commits on its own); call it with a context from outside the transaction", ErrInvalidArgument)
	}
	return nil
}

var _ keyring.Store = (*keyringStore)(nil)

// Load implements keyring.Store.
func (s *keyringStore) Load(ctx context.Context) (keyring.Snapshot, error) {
	return s.load(ctx, s.eng.Reader, false)
}

func (s *keyringStore) load(ctx context.Context, db bun.IDB, lock bool) (keyring.Snapshot, error) {
	var meta []keyringMetaRow
	q := db.NewSelect().Model(&meta).Where("id = 1")
	if lock && s.eng.RowLock != "" {
		q = q.For(s.eng.RowLock)
	}
	if err := q.Scan(ctx); err != nil {
		return keyring.Snapshot{}, fmt.Errorf("load keyring: %w", s.eng.Classify(err))
	}
	if len(meta) == 0 {
		return keyring.Snapshot{}, nil
	}
	var rows []keyringKeyRow
	if err := db.NewSelect().Model(&rows).Order("purpose", "version").Scan(ctx); err != nil {
		return keyring.Snapshot{}, fmt.Errorf("load keyring keys: %w", s.eng.Classify(err))
	}
	snap := keyring.Snapshot{DatabaseID: meta[0].DatabaseID, Keys: make([]keyring.WrappedKey, 0, len(rows))}
	for _, r := range rows {
		snap.Keys = append(snap.Keys, r.wrappedKey())
	}
	return snap, nil
}

// Create implements keyring.Store: insert-if-absent of the keyring's identity,
// then its keys, in one transaction.
func (s *keyringStore) Create(ctx context.Context, snap keyring.Snapshot) (bool, error) {
	if err := s.outsideTx(ctx); err != nil {
		return false, err
	}
	created := false
	err := s.eng.Writer.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		meta := keyringMetaRow{ID: 1, DatabaseID: snap.DatabaseID, CreatedAt: at(s.now())}
		res, err := tx.NewInsert().Model(&meta).On("CONFLICT (id) DO NOTHING").Exec(ctx)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // another process created the keyring first
		}
		// The marker outlives a wipe of the keyring tables: see checkNeverInitialised.
		marker := settingRow{Key: settingKeyringID, Value: snap.DatabaseID, UpdatedAt: meta.CreatedAt}
		if _, err := tx.NewInsert().Model(&marker).On("CONFLICT (key) DO UPDATE").Set("value = EXCLUDED.value").Exec(ctx); err != nil {
			return err
		}
		if len(snap.Keys) > 0 {
			rows := make([]keyringKeyRow, 0, len(snap.Keys))
			for _, k := range snap.Keys {
				rows = append(rows, keyRow(k))
			}
			if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
				return err
			}
		}
		created = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("create keyring: %w", s.eng.Classify(err))
	}
	return created, nil
}

// Update implements keyring.Store: a locked read-modify-write in one transaction.
func (s *keyringStore) Update(ctx context.Context, fn func(keyring.Snapshot) ([]keyring.WrappedKey, error)) error {
	if err := s.outsideTx(ctx); err != nil {
		return err
	}
	var fnErr error
	err := s.eng.Writer.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		snap, err := s.load(ctx, tx, true)
		if err != nil {
			return err
		}
		keys, err := fn(snap)
		if err != nil {
			fnErr = err
			return err
		}
		// Demotions first: the partial unique index allows one primary per
		// purpose at every moment, not just at commit.
		keys = slices.Clone(keys)
		slices.SortStableFunc(keys, func(a, b keyring.WrappedKey) int {
			return boolInt(a.State == keyring.StatePrimary) - boolInt(b.State == keyring.StatePrimary)
		})
		for _, k := range keys {
			row := keyRow(k)
			_, err := tx.NewInsert().Model(&row).
				On("CONFLICT (purpose, version) DO UPDATE").
				Set("state = EXCLUDED.state").
				Set("wrapped_key = EXCLUDED.wrapped_key").
				Set("mek_fingerprint = EXCLUDED.mek_fingerprint").
				Set("updated_at = EXCLUDED.updated_at").
				Exec(ctx)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("update keyring: %w", s.eng.Classify(err))
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// settingKeyringID records, in system_settings, the id of the keyring created for
// this database, in the same transaction that stores the keyring.
const settingKeyringID = "keyring.database_id"

// checkNeverInitialised is called when the keyring tables are empty: on a new
// database that is normal (the keyring is created next), but a database that has
// held a keyring or any data must not get a new one, which would make every
// stored secret unreadable. It fails with keyring.ErrKeyringMissing, before any
// write, when the keyring's marker or any user or tenant is present.
func (s *keyringStore) checkNeverInitialised(ctx context.Context) error {
	var marker, rows int
	err := s.eng.Reader.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM system_settings WHERE key = ?),"+
		" (SELECT count(*) FROM (SELECT id FROM users LIMIT 1) u) + (SELECT count(*) FROM (SELECT id FROM tenants LIMIT 1) t)",
		settingKeyringID).Scan(&marker, &rows)
	if err != nil {
		return fmt.Errorf("check for a lost keyring: %w", s.eng.Classify(err))
	}
	if marker > 0 || rows > 0 {
		return fmt.Errorf("%w: the keyring tables (keyring_meta, keyring_keys) are empty, but this database has held a keyring or data;"+
			" restore them from a backup (pierre will not create a new keyring, which would make every stored secret unreadable)",
			keyring.ErrKeyringMissing)
	}
	return nil
}
