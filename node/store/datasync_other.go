//go:build !linux

package store

import "os"

// datasync is fsync where fdatasync is not at hand.
func datasync(f *os.File) error { return f.Sync() }

// uncache does nothing where posix_fadvise is not at hand.
func uncache(string) error { return nil }

// uncacheRange does nothing where posix_fadvise is not at hand.
func uncacheRange(*os.File, int64, int64) error { return nil }
