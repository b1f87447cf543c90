//go:build !unix

package sim

import "os"

// mapFile reads the file at path into memory; there is nothing to release.
func mapFile(path string) (data []byte, release func() error, err error) {
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}

// syncDir is a no-op where folders cannot be synced.
func syncDir(string) error { return nil }
