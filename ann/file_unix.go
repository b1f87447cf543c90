//go:build unix

package ann

import "github.com/reelrank/reelrank/internal/fsutil"

// mapFile maps the file at path read-only (pages are 4096-byte aligned,
// more than the 64 the scans want); release unmaps it.
func mapFile(path string) (data []byte, release func() error, err error) {
	return fsutil.Map(path)
}
