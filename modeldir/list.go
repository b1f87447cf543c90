package modeldir

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Info describes one version folder found by List.
type Info struct {
	Path    string    // the folder
	Version string    // the model version
	Created time.Time // when it was written
	// Err, when not nil, says why the folder's manifest could not be read;
	// Version and Created are then empty.
	Err error
}

// List returns the version folders directly under root, those that hold
// a manifest (hidden ones aside), newest first (then by path). A folder whose manifest is
// unreadable is listed with its Err set, after the others.
func List(root string) ([]Info, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range ents {
		if !e.IsDir() || e.Name()[0] == '.' { // hidden: a Write in progress or one a crash left
			continue
		}
		dir := filepath.Join(root, e.Name())
		m, ok, err := readManifest(dir)
		switch {
		case err != nil:
			out = append(out, Info{Path: dir, Err: err})
		case ok:
			out = append(out, Info{Path: dir, Version: m.ModelVersion, Created: m.Created})
		}
	}
	slices.SortStableFunc(out, func(a, b Info) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.Path, b.Path)
	})
	return out, nil
}
