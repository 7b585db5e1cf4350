package osstat

import (
	"io/fs"
	"path/filepath"
)

// DirAllocated sums the disk space (Allocated) the files under dir take,
// and separately that of the files whose name part reports (none when part
// is nil). Files that cannot be read meanwhile (a store deleting a log)
// are skipped.
func DirAllocated(dir string, part func(name string) bool) (total, inPart int64) {
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		n := Allocated(fi)
		total += n
		if part != nil && part(d.Name()) {
			inPart += n
		}
		return nil
	})
	return total, inPart
}
