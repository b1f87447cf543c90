//go:build !unix

package fsutil

import (
	"fmt"
	"os"
)

// Map reads the regular file at path into memory, where files cannot be
// mapped; release does nothing.
func Map(path string) (data []byte, release func() error, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file", path)
	}
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}

// SyncDir does nothing: these systems cannot sync a folder.
func SyncDir(string) error { return nil }
