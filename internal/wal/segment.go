package wal

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// segment is one file of the log.
type segment struct {
	path    string
	base    uint64 // the sequence number of its first record
	records uint64 // whole records in it
	bytes   int64  // bytes of those records (the file may hold a torn tail beyond, until Open cuts it)
}

// end is the sequence number after the segment's last record.
func (s *segment) end() uint64 { return s.base + s.records }

// baseDigits is the width of the base sequence number in a segment's
// name: 20 digits hold any uint64.
const baseDigits = 20

// segmentName is the file name of name's segment whose first record is
// base.
func segmentName(name string, base uint64) string {
	return fmt.Sprintf("%s-%0*d.jsonl", name, baseDigits, base)
}

// parseSegmentName returns the base of file if it is one of name's
// segments. ok is false for the other files in the folder.
func parseSegmentName(name, file string) (base uint64, ok bool, err error) {
	rest, found := strings.CutPrefix(file, name+"-")
	if !found {
		return 0, false, nil
	}
	digits, found := strings.CutSuffix(rest, ".jsonl")
	if !found || len(digits) != baseDigits || strings.Trim(digits, "0123456789") != "" {
		return 0, false, nil
	}
	base, err = strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%w: segment %s: base out of range", ErrCorrupt, file)
	}
	return base, true, nil
}

// listSegments returns the segments of the log name in dir, ordered by
// base, with only their paths and bases filled in. A missing folder has
// none.
func listSegments(fsys FS, dir, name string) ([]segment, error) {
	entries, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	var segs []segment
	for _, e := range entries {
		base, ok, err := parseSegmentName(name, e.Name())
		if err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, dir)
		}
		if ok {
			segs = append(segs, segment{path: filepath.Join(dir, e.Name()), base: base})
		}
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.base < b.base:
			return -1
		case a.base > b.base:
			return 1
		}
		return 0
	})
	return segs, nil
}
