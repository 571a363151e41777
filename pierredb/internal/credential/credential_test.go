package credential

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewParsesBack(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok, lookup := New("pk_live")
		require.Len(t, tok, len("pk_live_")+BodyLength+ChecksumLength)
		assert.True(t, strings.HasPrefix(tok, lookup))
		assert.Len(t, lookup, len("pk_live_")+LookupLength)
		kind, got, err := Parse(tok, "pk_trial", "pk_live")
		require.NoError(t, err)
		assert.Equal(t, "pk_live", kind)
		assert.Equal(t, lookup, got)
		assert.False(t, seen[lookup], "lookup prefixes do not repeat")
		seen[lookup] = true
	}
}

func TestParseRefuses(t *testing.T) {
	good, _ := New("pk_live")
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for name, tok := range map[string]string{
		"empty":             "",
		"other kind":        strings.Replace(good, "pk_live", "pk_test", 1),
		"kind only":         "pk_live_",
		"truncated":         good[:len(good)-1],
		"one more":          good + "a",
		"typo in body":      flip(len("pk_live_") + 3),
		"typo in checksum":  flip(len(good) - 1),
		"outside alphabet":  good[:10] + "-" + good[11:],
		"NUL":               good[:10] + "\x00" + good[11:],
		"invalid UTF-8":     good[:10] + "\xff" + good[11:],
		"huge":              strings.Repeat("a", 10000),
		"kind without sep":  "pk_live" + good[len("pk_live_"):] + "x",
		"trial key as live": strings.Replace(good, "pk_live_", "pk_trial", 1),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := Parse(tok, "pk_live", "pk_trial")
			assert.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestNewIsUniform(t *testing.T) {
	// Every character of the alphabet appears in the bodies, at about the
	// same rate: rejection sampling leaves no bias towards the first characters.
	counts := map[byte]int{}
	for range 2000 {
		tok, _ := New("k")
		for i := 2; i < 2+BodyLength; i++ {
			counts[tok[i]]++
		}
	}
	require.Len(t, counts, 62)
	want := 2000 * BodyLength / 62
	for c, n := range counts {
		assert.InDelta(t, want, n, float64(want)/4, "character %q", c)
	}
}

func TestRandom(t *testing.T) {
	a, b := Random(20), Random(20)
	assert.Len(t, a, 20)
	assert.NotEqual(t, a, b)
	for _, c := range a {
		assert.Contains(t, alphabet, string(c))
	}
}

func TestNewPanicsWithoutRandomness(t *testing.T) {
	assert.Panics(t, func() { newWith("k", func([]byte) (int, error) { return 0, errors.New("no entropy") }) })
}

// FuzzParse: any input is refused with ErrMalformed or parses into a kind and a
// lookup prefix that the token starts with; nothing panics.
func FuzzParse(f *testing.F) {
	tok, _ := New("pk_live")
	f.Add(tok)
	f.Add("pk_trial_0000000000000000000000000000")
	f.Add("")
	f.Add("pk_live_\x00")
	f.Fuzz(func(t *testing.T, s string) {
		kind, lookup, err := Parse(s, "pk_live", "pk_trial")
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error is not ErrMalformed: %v", err)
			}
			return
		}
		if !strings.HasPrefix(s, lookup) || !strings.HasPrefix(lookup, kind+"_") {
			t.Fatalf("%q parsed into kind %q lookup %q", s, kind, lookup)
		}
	})
}
