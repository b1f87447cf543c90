package eventlog

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// AppendJSON appends e as one log line (without the newline) to dst. It
// writes the fields of e.Has, in the fixed order of the Field constants, so
// equal events give equal bytes. Arm must be plain: characters that JSON
// would escape are written escaped.
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
		dst = strconv.AppendQuote(dst, e.Arm)
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
