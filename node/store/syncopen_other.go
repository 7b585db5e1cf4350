//go:build !windows

package store

import "os"

// openSyncable opens a file or a directory to sync it: a read-only
// descriptor will do.
func openSyncable(path string) (*os.File, error) { return os.Open(path) }

// dirSyncs says whether a directory is synced to make the names created
// in it durable.
const dirSyncs = true
