package store

import (
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

// openSyncable opens a file to sync it. FlushFileBuffers needs a handle
// with write access (os.Open's fails with "Access denied"), and the handle
// shares delete as well as read and write: the syncer keeps the newest
// memtable log open from one sync to the next, and badger must still be
// able to delete that log once its memtable is written to a table
// (os.Open does not share delete, so the deletion would fail).
func openSyncable(path string) (*os.File, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}

// dirSyncs is false: Windows has no sync of a directory (a directory
// handle opened for reading cannot be flushed), and NTFS needs none: it
// journals the creation of a name, and flushing the new file, which the
// syncs do, writes its metadata.
const dirSyncs = false
