//go:build race

package password

// raceEnabled reports whether the tests run under the race detector, which
// slows bcrypt about twelvefold and argon2 about eightfold.
const raceEnabled = true
