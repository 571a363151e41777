package pierredb

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Page is one page of a listing in a stable order. Each listing documents its
// order; most are oldest first.
type Page[T any] struct {
	Items []T
	// Next is the cursor of the following page, or "" on the last page.
	Next string
}

// ListOptions pages through a listing.
type ListOptions struct {
	// Limit is the page size: default 50, at most 1000.
	Limit int
	// Cursor continues a listing where the previous page ended (Page.Next).
	Cursor string
}

const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

func pageSize(limit int) (int, error) {
	switch {
	case limit == 0:
		return defaultPageSize, nil
	case limit < 0 || limit > maxPageSize:
		return 0, fmt.Errorf("%w: page size %d is not between 1 and %d", ErrInvalidArgument, limit, maxPageSize)
	default:
		return limit, nil
	}
}

// fetchSizes are the LIMITs a listing query is prepared with: a page of n rows
// asks for the smallest of these that is at least n+1 (the extra row says whether
// a next page exists). The page size is written into the SQL text because a bound
// LIMIT made SQLite re-prepare the statement on every run and PostgreSQL plan it
// anew each time; rounding it up to one of a few sizes keeps the number of
// prepared statements per listing bounded whatever sizes callers ask for.
var fetchSizes = []int{2, 6, 11, 21, 26, 51, 101, 201, 251, 501, maxPageSize + 1}

// fetchSize is the LIMIT for a page of n rows.
func fetchSize(n int) int {
	i, _ := slices.BinarySearch(fetchSizes, n+1)
	return fetchSizes[min(i, len(fetchSizes)-1)]
}

// cursor is a position in a listing ordered by (a timestamp, an id).
type cursor struct {
	at dbTime
	id string
}

// Cursors hold microseconds since the Unix epoch; both engines store years 1 to
// 9999, and a forged cursor outside them is refused before it reaches a query.
var (
	minCursorMicros = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	maxCursorMicros = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()
)

// encodeCursor makes an opaque, URL-safe cursor.
func encodeCursor(at time.Time, id string) string {
	raw := "v1|" + strconv.FormatInt(at.UnixMicro(), 10) + "|" + id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(s string) (cursor, bool, error) {
	if s == "" {
		return cursor{}, false, nil
	}
	bad := fmt.Errorf("%w: malformed page cursor; pass Page.Next unchanged", ErrInvalidArgument)
	if len(s) > 256 {
		return cursor{}, false, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, false, bad
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 || parts[0] != "v1" || requireID("cursor", parts[2]) != nil {
		return cursor{}, false, bad
	}
	micros, err := strconv.ParseInt(parts[1], 10, 64)
	// The first instant of year 1 is Go's zero time, which pierre stores as NULL:
	// no row can sit there.
	if err != nil || micros <= minCursorMicros || micros > maxCursorMicros {
		return cursor{}, false, bad
	}
	return cursor{at: at(time.UnixMicro(micros)), id: parts[2]}, true, nil
}

// listing is a keyset-paged query: SELECT … FROM … WHERE conds ORDER BY the two
// keyset columns. readPage adds the cursor condition, the order and the limit.
type listing struct {
	selectFrom string   // "SELECT <columns> FROM <tables>"
	conds      []string // ANDed; each uses '?' placeholders
	args       []any
	keyset     [2]string // (timestamp column, id column)
	descending bool      // newest first instead of oldest first
}

// sql returns the statement for a page of n rows after the cursor (if any).
func (l listing) sql(c cursor, hasCursor bool, n int) (string, []any) {
	conds, args := l.conds, l.args
	cmp, order := ">", ""
	if l.descending {
		cmp, order = "<", " DESC"
	}
	if hasCursor {
		conds = append(slices.Clip(conds), "("+l.keyset[0]+", "+l.keyset[1]+") "+cmp+" (?, ?)")
		args = append(slices.Clip(args), c.at, c.id)
	}
	var b strings.Builder
	b.WriteString(l.selectFrom)
	if len(conds) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(conds, " AND "))
	}
	b.WriteString(" ORDER BY " + l.keyset[0] + order + ", " + l.keyset[1] + order)
	b.WriteString(" LIMIT " + strconv.Itoa(fetchSize(n)))
	return b.String(), args
}

// readPage runs a listing as a prepared statement on the reader pool, scans its
// rows with scan, and turns the row after the page, if any, into the next cursor.
// position returns an item's keyset values.
func readPage[T any](ctx context.Context, db *Database, l listing, o ListOptions,
	scan func(rowScanner) (T, error), position func(T) (time.Time, string)) (Page[T], error) {
	n, err := pageSize(o.Limit)
	if err != nil {
		return Page[T]{}, err
	}
	c, hasCursor, err := decodeCursor(o.Cursor)
	if err != nil {
		return Page[T]{}, err
	}
	query, args := l.sql(c, hasCursor, n)
	rows, err := db.queryRows(ctx, query, args...)
	if err != nil {
		return Page[T]{}, err
	}
	defer rows.Close()
	items := make([]T, 0, min(n+1, 64))
	for len(items) <= n && rows.Next() {
		item, err := scan(rows)
		if err != nil {
			return Page[T]{}, err
		}
		items = append(items, item)
	}
	if err := rows.Err(); err != nil {
		return Page[T]{}, err
	}
	page := Page[T]{Items: items}
	if len(items) > n {
		page.Items = items[:n:n]
		page.Next = encodeCursor(position(items[n-1]))
	}
	return page, nil
}

// readOne runs a single-row query as a prepared statement on the reader pool and
// scans it; no row is ErrNotFound saying that no what has that id.
func readOne[T any](ctx context.Context, db *Database, what, query string, args []any, scan func(rowScanner) (T, error)) (T, error) {
	var zero T
	row, err := db.queryRow(ctx, query, args...)
	if err != nil {
		return zero, err
	}
	v, err := scan(row)
	if isNoRows(err) {
		return zero, notFound(what)
	}
	return v, err
}
