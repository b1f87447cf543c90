package eventlog

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Part is one file of a log that is read in several files, such as the
// segments a server writes.
type Part struct {
	Path string
	// CutTorn leaves out what follows the file's last newline: a line a
	// running writer has not finished (the newest segment of a live log).
	CutTorn bool
}

// OpenParts returns a reader of the files one after the other, as one
// log. A file that does not end in a newline is given one, so that no line
// runs across two files. The files are opened one at a time, as the read
// reaches them; a file that cannot be opened fails the read there. Line
// numbers in a Report count through the files as through one.
func OpenParts(parts []Part) io.ReadCloser {
	return &partsReader{parts: parts}
}

type partsReader struct {
	parts []Part
	f     *os.File
	r     io.Reader
	last  byte // the last byte the current file gave
	nl    bool // a newline is owed between two files
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if p.nl {
			if len(b) == 0 {
				return 0, nil
			}
			p.nl = false
			b[0] = '\n'
			return 1, nil
		}
		if p.r == nil {
			if len(p.parts) == 0 {
				return 0, io.EOF
			}
			if err := p.open(p.parts[0]); err != nil {
				return 0, err
			}
			p.parts = p.parts[1:]
		}
		n, err := p.r.Read(b)
		if n > 0 {
			p.last = b[n-1]
			return n, nil
		}
		if err == io.EOF {
			p.f.Close()
			p.f, p.r = nil, nil
			p.nl = p.last != 0 && p.last != '\n'
			p.last = 0
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("eventlog: %w", err)
		}
	}
}

// open opens part, cut after its last newline when CutTorn says so.
func (p *partsReader) open(part Part) error {
	f, err := os.Open(part.Path)
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	p.f, p.r = f, f
	if !part.CutTorn {
		return nil
	}
	end, err := lastNewline(f)
	if err != nil {
		f.Close()
		p.f, p.r = nil, nil
		return fmt.Errorf("eventlog: %s: %w", part.Path, err)
	}
	p.r = io.LimitReader(f, end)
	return nil
}

// lastNewline returns the offset just past f's last '\n' (0 when none),
// reading backwards from its end.
func lastNewline(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 64<<10)
	for end := st.Size(); end > 0; {
		lo := max(end-int64(len(buf)), 0)
		n, err := f.ReadAt(buf[:end-lo], lo)
		if err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return lo + int64(i) + 1, nil
		}
		end = lo
	}
	return 0, nil
}

// Close closes the file being read.
func (p *partsReader) Close() error {
	p.parts = nil
	if p.f != nil {
		err := p.f.Close()
		p.f, p.r = nil, nil
		return err
	}
	return nil
}
