//go:build !unix

package keyring

import "errors"

func mkfifo(string) error { return errors.New("mkfifo is unix-only") }
