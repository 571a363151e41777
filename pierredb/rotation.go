package pierredb

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/keyring"
)

// column names one column of one table.
type column struct{ table, name string }

// encryptedColumns are the columns that hold keyring envelopes. Every one lives in
// a table with id and tenant_id columns, which bind the envelope to its row.
var encryptedColumns = []column{
	{"tenant_oauth_configs", "client_secret_encrypted"},
	{"user_oauth_tokens", "access_token_encrypted"},
	{"user_oauth_tokens", "refresh_token_encrypted"},
}

// hashedColumns are the columns that hold keyring credential hashes
// ("hmac-sha256$v<N>$..."). A hash cannot be recomputed without the secret, so
// these move to a new hashing key only as credentials are rotated or re-verified.
var hashedColumns = []column{
	{"api_keys", "key_hash"},
	{"a2a_clients", "client_secret_hash"},
}

// fieldContext binds an envelope to the tenant, table, column and row it is
// stored in: a ciphertext copied anywhere else fails to decrypt. Every store that
// encrypts a column uses it.
func fieldContext(tenantID string, col column, rowID string) keyring.Context {
	return keyring.Context{Tenant: tenantID, Table: col.table, Column: col.name, RowID: rowID}
}

// versionBytes is how a DEK version appears in an envelope header (bytes 3 to 6).
func versionBytes(version uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, version)
}

// CountInUse implements keyring.InUseCounter: the number of stored envelopes (for
// PurposeEncryption) or credential hashes (for PurposeHashing) made with version.
// It scans whole tables and is meant for rotation, not for hot paths.
func (db *Database) CountInUse(ctx context.Context, purpose keyring.Purpose, version uint32) (int64, error) {
	if err := db.checkOpen(); err != nil {
		return 0, err
	}
	var total int64
	switch purpose {
	case keyring.PurposeEncryption:
		for _, c := range encryptedColumns {
			n, err := db.eng.Reader.NewSelect().Table(c.table).
				Where("substr(?, 3, 4) = ?", bun.Ident(c.name), versionBytes(version)).Count(ctx)
			if err != nil {
				return 0, db.opError("count key usage", err)
			}
			total += int64(n)
		}
	case keyring.PurposeHashing:
		prefix := "hmac-sha256$v" + strconv.FormatUint(uint64(version), 10) + "$%"
		for _, c := range hashedColumns {
			n, err := db.eng.Reader.NewSelect().Table(c.table).Where("? LIKE ?", bun.Ident(c.name), prefix).Count(ctx)
			if err != nil {
				return 0, db.opError("count key usage", err)
			}
			total += int64(n)
		}
	default:
		return 0, fmt.Errorf("%w: unknown key purpose %q", ErrInvalidArgument, shorten(string(purpose)))
	}
	return total, nil
}

// RetireKey retires a key version once nothing stored uses it any more; while
// CountInUse reports rows, it fails with keyring.ErrKeyInUse. Run
// ReencryptBatch until nothing remains before retiring a data key.
func (db *Database) RetireKey(ctx context.Context, purpose keyring.Purpose, version uint32) error {
	if err := db.checkOpen(); err != nil {
		return err
	}
	if err := db.keys.Retire(ctx, purpose, version, db); err != nil {
		return fmt.Errorf("pierredb: retire key: %w", err)
	}
	return nil
}

// ReencryptResult reports one ReencryptBatch.
type ReencryptResult struct {
	// Rewritten is how many values this batch moved to the primary data key.
	Rewritten int
	// Remaining is how many values are still under another version afterwards.
	Remaining int64
}

// ReencryptBatch moves up to limit stored secrets, of every tenant, from older
// data key versions to the primary one (after keyring.Keyring.Rotate), and
// reports how many remain. It is a platform maintenance operation: each row is
// re-encrypted under its own tenant's context and written back by id and tenant.
// Each row is rewritten with a compare-and-swap on its old ciphertext, so it is
// safe beside live writes and on several instances; call it until Remaining is 0.
// It is resumable: each call starts from whatever is still under an old version.
func (db *Database) ReencryptBatch(ctx context.Context, limit int) (ReencryptResult, error) {
	if limit <= 0 || limit > 10_000 {
		return ReencryptResult{}, fmt.Errorf("%w: batch size %d is not between 1 and 10000", ErrInvalidArgument, limit)
	}
	if err := db.checkOpen(); err != nil {
		return ReencryptResult{}, err
	}
	// Another instance may have promoted a newer data key.
	if err := db.keys.Reload(ctx); err != nil {
		return ReencryptResult{}, fmt.Errorf("pierredb: reencrypt: %w", err)
	}
	primary := versionBytes(db.keys.PrimaryVersion(keyring.PurposeEncryption))
	var res ReencryptResult
	for _, c := range encryptedColumns {
		if res.Rewritten >= limit {
			break
		}
		var rows []struct {
			ID       string `bun:"id"`
			TenantID string `bun:"tenant_id"`
			Value    []byte `bun:"value"`
		}
		err := db.eng.Reader.NewSelect().Table(c.table).
			ColumnExpr("id, tenant_id, ? AS value", bun.Ident(c.name)).
			Where("? IS NOT NULL AND substr(?, 3, 4) <> ?", bun.Ident(c.name), bun.Ident(c.name), primary).
			OrderExpr("id").Limit(int64(limit-res.Rewritten)).Scan(ctx, &rows)
		if err != nil {
			return res, db.opError("reencrypt", err)
		}
		for _, r := range rows {
			out, changed, err := db.keys.Reencrypt(r.Value, fieldContext(r.TenantID, c, r.ID))
			if err != nil {
				return res, fmt.Errorf("pierredb: reencrypt %s.%s of row %s: %w", c.table, c.name, r.ID, err)
			}
			if !changed {
				continue
			}
			var n int64
			err = db.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
				result, err := tx.NewUpdate().Table(c.table).Set("? = ?", bun.Ident(c.name), out).
					Where("id = ? AND tenant_id = ? AND ? = ?", r.ID, r.TenantID, bun.Ident(c.name), r.Value).Exec(ctx)
				if err != nil {
					return err
				}
				n, err = result.RowsAffected()
				return err
			})
			if err != nil {
				return res, db.opError("reencrypt", err)
			}
			res.Rewritten += int(n) // 0 when a writer replaced the value meanwhile
		}
	}
	for _, c := range encryptedColumns {
		n, err := db.eng.Reader.NewSelect().Table(c.table).
			Where("? IS NOT NULL AND substr(?, 3, 4) <> ?", bun.Ident(c.name), bun.Ident(c.name), primary).Count(ctx)
		if err != nil {
			return res, db.opError("reencrypt", err)
		}
		res.Remaining += int64(n)
	}
	return res, nil
}
