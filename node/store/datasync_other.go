//go:build !linux

package store

import "os"

// datasync is fsync where fdatasync is not at hand.
func datasync(f *os.File) error { return f.Sync() }

// haveSyncfs is false: Blobs.Sync syncs each file and directory it wrote.
const haveSyncfs = false

func syncfs(*os.File) error { panic("store: no syncfs") }

// rename is os.Rename.
func rename(from, to string) error { return os.Rename(from, to) }

// uncache does nothing where posix_fadvise is not at hand.
func uncache(string) error { return nil }

// uncacheRange does nothing where posix_fadvise is not at hand.
func uncacheRange(*os.File, int64, int64) error { return nil }
