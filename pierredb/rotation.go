package pierredb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/uptrace/bun"

	"github.com/pierre-mcp/pierre/keyring"
)

// sealedColumn declares a column that holds keyring envelopes: each domain
// declares its own beside its row type (registerSealed), and rotation reads the
// registry, so a new encrypted column is rotated without touching this file.
type sealedColumn struct {
	table, column string
	// keys are the columns whose values bind the envelope to its row (the
	// first must be the table's primary key, which orders the batches); context
	// builds the envelope's context from their values, in the same order. A
	// rewrite matches the row on every key column.
	keys    []string
	context func(keys []string) keyring.Context
}

// hashedColumn declares a column that holds keyring credential hashes
// ("hmac-sha256$v<N>$..."). A hash cannot be recomputed without the secret, so
// these move to a new hashing key only as credentials are rotated.
type hashedColumn struct{ table, column string }

var (
	sealedColumns []sealedColumn
	hashedColumns []hashedColumn
)

func registerSealed(c sealedColumn) sealedColumn {
	sealedColumns = append(sealedColumns, c)
	return c
}

func registerHashed(c hashedColumn) hashedColumn {
	hashedColumns = append(hashedColumns, c)
	return c
}

// rowContext binds an envelope to the tenant, table, column and row it is stored
// in: a ciphertext copied anywhere else fails to decrypt. Its keys are id and
// tenant_id.
func rowContext(table, column string) func(keys []string) keyring.Context {
	return func(keys []string) keyring.Context {
		return keyring.Context{Tenant: keys[1], Table: table, Column: column, RowID: keys[0]}
	}
}

// versionBytes is how a data key version appears in an envelope header (bytes 3
// to 6).
func versionBytes(version uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, version)
}

// Rotation is the handle on data key rotation, from Database.Rotation: it counts
// what each key version still protects, moves stored secrets to the primary
// data key, and retires versions nothing uses.
type Rotation struct{ db *Database }

// Rotation returns the handle on key rotation.
func (db *Database) Rotation() Rotation { return Rotation{db: db} }

var _ keyring.InUseCounter = Rotation{}

// CountInUse implements keyring.InUseCounter: the number of stored envelopes (for
// PurposeEncryption) or credential hashes (for PurposeHashing) made with version.
// It reads whole tables and is meant for rotation, not for hot paths.
func (r Rotation) CountInUse(ctx context.Context, purpose keyring.Purpose, version uint32) (_ int64, err error) {
	db := r.db
	defer db.wrap(&err, "count key usage")
	if err := db.checkOpen(); err != nil {
		return 0, err
	}
	var total int64
	switch purpose {
	case keyring.PurposeEncryption:
		for _, c := range sealedColumns {
			n, err := db.eng.Reader.NewSelect().Table(c.table).
				Where("substr(?, 3, 4) = ?", bun.Ident(c.column), versionBytes(version)).Count(ctx)
			if err != nil {
				return 0, err
			}
			total += int64(n)
		}
	case keyring.PurposeHashing:
		prefix := "hmac-sha256$v" + strconv.FormatUint(uint64(version), 10) + "$%"
		for _, c := range hashedColumns {
			n, err := db.eng.Reader.NewSelect().Table(c.table).Where("? LIKE ?", bun.Ident(c.column), prefix).Count(ctx)
			if err != nil {
				return 0, err
			}
			total += int64(n)
		}
	default:
		return 0, fmt.Errorf("%w: unknown key purpose %q", ErrInvalidArgument, shorten(string(purpose)))
	}
	return total, nil
}

// Retire retires a key version once nothing stored uses it any more: its key is
// destroyed, so anything still sealed under it could never be read again. While
// CountInUse reports rows it fails with keyring.ErrKeyInUse: run ReencryptBatch
// until nothing remains first.
func (r Rotation) Retire(ctx context.Context, purpose keyring.Purpose, version uint32) (err error) {
	defer r.db.wrap(&err, "retire key")
	if err := r.db.checkOpen(); err != nil {
		return err
	}
	return r.db.keys.Retire(ctx, purpose, version, r)
}

// SealedValue names one stored secret: its table, column and row.
type SealedValue struct {
	Table  string
	Column string
	RowID  string
}

// ReencryptResult reports one ReencryptBatch.
type ReencryptResult struct {
	// Rewritten is how many values this batch moved to the primary data key.
	Rewritten int
	// Remaining is how many values are still under another version afterwards,
	// Unreadable ones included.
	Remaining int64
	// Unreadable lists the values under an old version that did not decrypt
	// (corrupt, or moved between rows by hand). They are skipped, not fatal; while
	// they remain, the old version cannot be retired: restore or delete them.
	Unreadable []SealedValue
}

// ReencryptBatch moves up to limit stored secrets, of every tenant, from older
// data key versions to the primary one (after keyring.Keyring.Rotate), and
// reports how many remain. It is a platform maintenance operation: each value is
// re-encrypted under its own row's context and written back with a
// compare-and-swap on its old ciphertext, so it is safe beside live writes and on
// several instances; call it until Remaining equals len(Unreadable). It is
// resumable: each call starts from whatever is still under an old version.
func (r Rotation) ReencryptBatch(ctx context.Context, limit int) (_ ReencryptResult, err error) {
	db := r.db
	defer db.wrap(&err, "reencrypt")
	if limit <= 0 || limit > 10_000 {
		return ReencryptResult{}, fmt.Errorf("%w: batch size %d is not between 1 and 10000", ErrInvalidArgument, limit)
	}
	if err := db.checkWritable(); err != nil {
		return ReencryptResult{}, err
	}
	// Another instance may have promoted a newer data key.
	if err := db.keys.Reload(ctx); err != nil {
		return ReencryptResult{}, err
	}
	primary := versionBytes(db.keys.PrimaryVersion(keyring.PurposeEncryption))
	var res ReencryptResult
	for _, c := range sealedColumns {
		after := ""
		for res.Rewritten < limit {
			want := limit - res.Rewritten
			rows, err := r.oldValues(ctx, c, primary, after, want)
			if err != nil {
				return res, err
			}
			for _, v := range rows {
				after = v.keys[0]
				n, err := r.reencryptOne(ctx, c, v)
				switch {
				case errors.Is(err, keyring.ErrDecrypt), errors.Is(err, keyring.ErrUnknownKeyVersion):
					res.Unreadable = append(res.Unreadable, SealedValue{Table: c.table, Column: c.column, RowID: v.keys[0]})
				case err != nil:
					return res, err
				}
				res.Rewritten += n
			}
			if len(rows) < want { // this column has nothing more under an old version
				break
			}
		}
	}
	for _, c := range sealedColumns {
		n, err := db.eng.Reader.NewSelect().Table(c.table).
			Where("? IS NOT NULL AND substr(?, 3, 4) <> ?", bun.Ident(c.column), bun.Ident(c.column), primary).Count(ctx)
		if err != nil {
			return res, err
		}
		res.Remaining += int64(n)
	}
	return res, nil
}

type sealedRow struct {
	keys  []string
	value []byte
}

// oldValues reads up to n values of c not under the primary version, in primary
// key order after the key after ("" for the start).
func (r Rotation) oldValues(ctx context.Context, c sealedColumn, primary []byte, after string, n int) ([]sealedRow, error) {
	q := r.db.eng.Writer.NewSelect().Table(c.table).ColumnExpr("?", bun.Ident(c.column))
	for _, k := range c.keys {
		q = q.ColumnExpr("?", bun.Ident(k))
	}
	q = q.Where("? IS NOT NULL AND substr(?, 3, 4) <> ?", bun.Ident(c.column), bun.Ident(c.column), primary)
	if after != "" {
		q = q.Where("? > ?", bun.Ident(c.keys[0]), after)
	}
	rows, err := q.OrderExpr("?", bun.Ident(c.keys[0])).Limit(int64(n)).Rows(ctx)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sealedRow
	for rows.Next() {
		v := sealedRow{keys: make([]string, len(c.keys))}
		dest := []any{&v.value}
		for i := range v.keys {
			dest = append(dest, &v.keys[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// reencryptOne rewrites one value under the primary key unless a writer replaced
// it meanwhile; it returns how many rows it changed (0 or 1).
func (r Rotation) reencryptOne(ctx context.Context, c sealedColumn, v sealedRow) (int, error) {
	out, changed, err := r.db.keys.Reencrypt(v.value, c.context(v.keys))
	if err != nil || !changed {
		return 0, err
	}
	q := r.db.eng.Writer.NewUpdate().Table(c.table).Set("? = ?", bun.Ident(c.column), out).
		Where("? = ?", bun.Ident(c.column), v.value)
	for i, k := range c.keys {
		q = q.Where("? = ?", bun.Ident(k), v.keys[i])
	}
	n, err := rowsAffected(q.Exec(ctx))
	return int(n), err
}

// The secrets that tenant OAuth configurations and users' OAuth tokens keep.
var (
	_ = registerSealed(sealedColumn{table: "tenant_oauth_configs", column: "client_secret_encrypted",
		keys: []string{"id", "tenant_id"}, context: rowContext("tenant_oauth_configs", "client_secret_encrypted")})
	_ = registerSealed(sealedColumn{table: "user_oauth_tokens", column: "access_token_encrypted",
		keys: []string{"id", "tenant_id"}, context: rowContext("user_oauth_tokens", "access_token_encrypted")})
	_ = registerSealed(sealedColumn{table: "user_oauth_tokens", column: "refresh_token_encrypted",
		keys: []string{"id", "tenant_id"}, context: rowContext("user_oauth_tokens", "refresh_token_encrypted")})
	_ = registerHashed(hashedColumn{table: "api_keys", column: "key_hash"})
	_ = registerHashed(hashedColumn{table: "a2a_clients", column: "client_secret_hash"})
)
