package pierredb

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Every value pierre stores as an identifier or a name passes through here before
// any query: invalid UTF-8 is refused (never rewritten to U+FFFD, which would make
// different inputs collide), control and format characters are refused (U+200B,
// U+FEFF, U+202E, soft hyphen, ZWJ, terminal escapes: each would let two names
// look alike or rewrite a log line), and what is kept is normalised to NFC so that
// the same text typed two ways is one value.

// maxIDLength bounds every id pierre accepts; its own ids are 36-byte UUIDs.
const maxIDLength = 128

// hiddenRune reports a rune that must not appear in a stored name: control,
// format (Cf), surrogate, private-use and unassigned code points, line or
// paragraph separators, and the default-ignorable letters and marks that
// render as nothing (U+034F combining grapheme joiner, the Hangul fillers
// U+115F, U+1160, U+3164 and U+FFA0, variation selectors): with them
// "alice\u034f@example.com" would look exactly like alice@example.com.
func hiddenRune(r rune) bool {
	return r == utf8.RuneError || !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs) ||
		unicode.In(r, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// cleanText checks that s is valid UTF-8 without hidden runes and returns its NFC
// form. what names the value in the error.
func cleanText(what, s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidArgument, what)
	}
	for i, r := range s {
		if hiddenRune(r) {
			return "", fmt.Errorf("%w: %s holds an invisible or control character (%U at byte %d); remove it",
				ErrInvalidArgument, what, r, i)
		}
	}
	return norm.NFC.String(s), nil
}

// requireID checks an id before it reaches a query: present, at most 128 bytes,
// printable UTF-8. Ids never need normalising: pierre makes them.
func requireID(kind, id string) error {
	if id == "" {
		return fmt.Errorf("%w: %s id is required", ErrInvalidArgument, kind)
	}
	if len(id) > maxIDLength {
		return fmt.Errorf("%w: %s id is longer than %d bytes", ErrInvalidArgument, kind, maxIDLength)
	}
	// pierre's own ids are ASCII: check those byte by byte, and only the rest
	// rune by rune against the Unicode tables (the hot paths check an id on
	// every call).
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= utf8.RuneSelf {
			return requireIDRunes(kind, id[i:])
		}
		if c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: %s id holds a space, control or invisible character", ErrInvalidArgument, kind)
		}
	}
	return nil
}

func requireIDRunes(kind, id string) error {
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: %s id is not valid UTF-8", ErrInvalidArgument, kind)
	}
	for _, r := range id {
		if hiddenRune(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%w: %s id holds a space, control or invisible character", ErrInvalidArgument, kind)
		}
	}
	return nil
}

// normalizeEmail trims, NFC-normalises and lower-cases an email and checks that it
// is one plain address (no display name, no list, nothing hidden).
func normalizeEmail(email string) (string, error) {
	e, err := cleanText("email", strings.TrimSpace(email))
	if err != nil {
		return "", err
	}
	e = strings.ToLower(e)
	if e == "" {
		return "", fmt.Errorf("%w: email is required", ErrInvalidArgument)
	}
	if len(e) > 254 {
		return "", fmt.Errorf("%w: email is longer than 254 bytes", ErrInvalidArgument)
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" || strings.ContainsFunc(e, unicode.IsSpace) {
		return "", fmt.Errorf("%w: %q is not an email address", ErrInvalidArgument, shorten(e))
	}
	return e, nil
}

// cleanName checks a display name, tenant name, description or service name: at
// most max bytes, nothing hidden; it returns the NFC form.
func cleanName(what, name string, max int) (string, error) {
	n, err := cleanText(what, name)
	if err != nil {
		return "", err
	}
	if len(n) > max {
		return "", fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalidArgument, what, max)
	}
	return n, nil
}

// cleanDisplayName checks a user's display name ("" is allowed).
func cleanDisplayName(name string) (string, error) { return cleanName("display name", name, 200) }

// cleanServiceName checks the name of a service that acts on the store (an admin
// token's service, a provisioning job).
func cleanServiceName(name string) (string, error) {
	n, err := cleanName("service name", strings.TrimSpace(name), 200)
	if err == nil && n == "" {
		err = fmt.Errorf("%w: service name is required", ErrInvalidArgument)
	}
	return n, err
}

// shorten keeps user-supplied fragments in messages short.
func shorten(s string) string {
	if len(s) > 32 {
		for i := 32; i > 28; i-- {
			if utf8.RuneStart(s[i]) {
				return s[:i] + "…"
			}
		}
		return s[:32] + "…"
	}
	return s
}
