package modeldir

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/reelrank/reelrank/internal/fsutil"
)

// WriteIDs writes one decimal id per line to path, atomically.
func WriteIDs(path string, ids []int64) error {
	err := fsutil.WriteFile(path, 0o644, func(w io.Writer) error {
		var buf []byte
		for _, id := range ids {
			buf = strconv.AppendInt(buf[:0], id, 10)
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadIDs reads a file of one decimal id (a reel id: not negative) per
// line; want is the number of vectors the ids name, and any other count
// is an error.
func ReadIDs(path string, want int) ([]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read ids: %w", err)
	}
	defer f.Close()
	ids := make([]int64, 0, max(want, 0))
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		id, err := strconv.ParseInt(string(sc.Bytes()), 10, 64)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("read ids: %s line %d: %q is not a reel id", path, line, sc.Text())
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read ids: %s: %w", path, err)
	}
	if len(ids) != want {
		return nil, fmt.Errorf("read ids: %s holds %d ids for %d vectors", path, len(ids), want)
	}
	return ids, nil
}
