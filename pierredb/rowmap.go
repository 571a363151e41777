package pierredb

import (
	"reflect"
	"strings"
)

// rowMap is the one column mapping of a row type: the same bun tags that bun's
// builder writes with also drive the hand-written prepared reads, so a table's
// columns are listed once, on its row struct.
type rowMap[R any] struct {
	names []string // column names in field order
	index [][]int  // field index of each column
}

// mapRow reads R's `bun:"name,..."` tags, leaving out the columns in omit.
func mapRow[R any](omit ...string) rowMap[R] {
	var m rowMap[R]
	t := reflect.TypeFor[R]()
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("bun")
		if !ok || f.Anonymous || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" || strings.HasPrefix(tag, "table:") {
			continue
		}
		skip := false
		for _, o := range omit {
			skip = skip || o == name
		}
		if !skip {
			m.names = append(m.names, name)
			m.index = append(m.index, f.Index)
		}
	}
	return m
}

// columns lists the columns, each prefixed with alias and a dot when alias is set.
func (m rowMap[R]) columns(alias string) string {
	prefix := ""
	if alias != "" {
		prefix = alias + "."
	}
	var b strings.Builder
	for i, n := range m.names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(prefix)
		b.WriteString(n)
	}
	return b.String()
}

// dest returns scan destinations pointing into r, in column order, followed by
// extra.
func (m rowMap[R]) dest(r *R, extra ...any) []any {
	v := reflect.ValueOf(r).Elem()
	out := make([]any, 0, len(m.index)+len(extra))
	for _, idx := range m.index {
		out = append(out, v.FieldByIndex(idx).Addr().Interface())
	}
	return append(out, extra...)
}

// rowScanner is what *sql.Row and *sql.Rows have in common.
type rowScanner interface{ Scan(dest ...any) error }
