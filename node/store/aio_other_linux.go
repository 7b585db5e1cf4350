//go:build linux && !(amd64 || arm64)

package store

import "errors"

// Where the layout of struct iocb is not written down here (aio_linux.go),
// syncs are plain fdatasync calls.

type aioRing struct{}

func aioSync() *aioRing { return nil }

var errAIORefused = errors.New("store: asynchronous sync refused")

func (*aioRing) datasync(int) error { return errAIORefused }
