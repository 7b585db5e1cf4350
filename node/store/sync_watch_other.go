//go:build !linux

package store

import "errors"

// logWatch is a watch on the store's directory for new files where the
// platform has one (sync_watch_linux.go); here there is none, and every
// sync lists the directory.
type logWatch struct{}

// newLogWatch fails: no watch here.
func newLogWatch(string) (*logWatch, error) {
	return nil, errors.New("store: no directory watch on this platform")
}

func (*logWatch) drain(func([]byte)) error { return errWatchOverflow }

func (*logWatch) close() error { return nil }
