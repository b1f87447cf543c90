//go:build !unix

package ann

import (
	"fmt"
	"io"
	"math"
	"os"
)

// mapFile reads the file at path into memory aligned to 64 bytes; there is
// nothing to release.
func mapFile(path string) (data []byte, release func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file", path)
	}
	if st.Size() > math.MaxInt-2*fileAlign {
		return nil, nil, fmt.Errorf("%s: %d bytes, too large to read", path, st.Size())
	}
	data = alignedBuf(int(st.Size()))
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, func() error { return nil }, nil
}
