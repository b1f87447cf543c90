package eventlog

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends e as one log line (without the newline) to dst. It
// writes the fields of e.Has, in the fixed order of the Field constants, so
// equal events give equal bytes. Arm is written as a JSON string: quotes,
// backslashes and control characters escaped, invalid UTF-8 as U+FFFD.
func AppendJSON(dst []byte, e *Event) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, e.Type.String()...)
	dst = append(dst, '"')
	has := e.Has
	if has&FTime != 0 {
		dst = append(dst, `,"ts":`...)
		dst = strconv.AppendInt(dst, e.Time, 10)
	}
	if has&FUser != 0 {
		dst = append(dst, `,"user":`...)
		dst = strconv.AppendInt(dst, e.User, 10)
	}
	if has&FReel != 0 {
		dst = append(dst, `,"reel":`...)
		dst = strconv.AppendInt(dst, e.Reel, 10)
	}
	if has&FAuthor != 0 {
		dst = append(dst, `,"author":`...)
		dst = strconv.AppendInt(dst, e.Author, 10)
	}
	if has&FSession != 0 {
		dst = append(dst, `,"session":`...)
		dst = strconv.AppendInt(dst, e.Session, 10)
	}
	if has&FPosition != 0 {
		dst = append(dst, `,"pos":`...)
		dst = strconv.AppendInt(dst, int64(e.Position), 10)
	}
	if has&FProp != 0 {
		dst = append(dst, `,"prop":`...)
		dst = strconv.AppendFloat(dst, e.Propensity, 'g', -1, 64)
	}
	if has&FArm != 0 {
		dst = append(dst, `,"arm":`...)
		dst = appendString(dst, e.Arm)
	}
	if has&FSeconds != 0 {
		dst = append(dst, `,"secs":`...)
		dst = strconv.AppendFloat(dst, float64(e.Seconds), 'g', -1, 32)
	}
	if has&FFraction != 0 {
		dst = append(dst, `,"frac":`...)
		dst = strconv.AppendFloat(dst, float64(e.Fraction), 'g', -1, 32)
	}
	return append(dst, '}')
}

// appendString appends s as a JSON string (RFC 8259), the way
// encoding/json writes it without HTML escaping.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+n]...)
			}
			i += n
			continue
		}
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		case c == '\t':
			dst = append(dst, `\t`...)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
		i++
	}
	return append(dst, '"')
}

// Writer writes events as newline-delimited JSON.
type Writer struct {
	w   *bufio.Writer
	buf []byte
	n   int64
}

// NewWriter returns a Writer that buffers into w. Call Flush at the end.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 1<<20), buf: make([]byte, 0, 256)}
}

// Write appends one event line. It does not validate e; callers that take
// events from outside should call e.Validate first.
func (w *Writer) Write(e *Event) error {
	w.buf = append(AppendJSON(w.buf[:0], e), '\n')
	if _, err := w.w.Write(w.buf); err != nil {
		return fmt.Errorf("eventlog: write: %w", err)
	}
	w.n++
	return nil
}

// Count returns the number of events written.
func (w *Writer) Count() int64 { return w.n }

// Flush writes any buffered data to the underlying writer.
func (w *Writer) Flush() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("eventlog: flush: %w", err)
	}
	return nil
}
