package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// smallFrame is the largest payload WriteFrame copies behind its header to
// write both in one call.
const smallFrame = 64 << 10

// WriteFrame writes payload as one frame: its length as 4 bytes little
// endian, then the bytes. The frame goes out in one Write when w is not
// buffered (through a copy for payloads up to 64 KiB, writev through
// net.Buffers beyond), and in two buffered writes to a *bufio.Writer. On a
// hot path, Encoder.EncodeFrame builds the frame in place and needs no copy.
func WriteFrame(w io.Writer, payload []byte) error {
	if len(payload) == 0 {
		return fmt.Errorf("wire: write frame: empty payload: %w", ErrMalformed)
	}
	if len(payload) > MaxFrameLimit {
		return fmt.Errorf("wire: write frame of %d bytes, over %d: %w", len(payload), MaxFrameLimit, ErrFrameTooLarge)
	}
	var hdr [HeaderSize]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(payload)))
	var err error
	switch bw := w.(type) {
	case *bufio.Writer:
		if _, err = bw.Write(hdr[:]); err == nil {
			_, err = bw.Write(payload)
		}
	default:
		if len(payload) <= smallFrame {
			frame := make([]byte, 0, HeaderSize+len(payload))
			frame = append(append(frame, hdr[:]...), payload...)
			_, err = w.Write(frame)
		} else {
			bufs := net.Buffers{hdr[:], payload}
			_, err = bufs.WriteTo(w)
		}
	}
	if err != nil {
		return fmt.Errorf("wire: write frame: %w", err)
	}
	return nil
}

// frameChunk is the first allocation of a frame that does not fit the
// caller's buffer: a frame's buffer grows from it as its bytes arrive,
// doubling, so that a header claiming a large frame costs no more memory
// than the bytes that follow it (at most twice as much).
const frameChunk = 64 << 10

// ReadFrame reads one frame from r and returns its payload, in buf when it
// has the capacity (else in a new slice). max bounds the payload (0 or less
// means DefaultMaxFrame; it is capped at MaxFrameLimit).
//
// The payload is read into buf at once when it fits; otherwise into a
// buffer that starts at 64 KiB (or buf's capacity, when larger) and
// doubles as the bytes arrive, never beyond the frame's length. A peer
// that declares a large frame and sends a few bytes costs no more than the
// first chunk.
//
// It returns io.EOF only when r ends at a frame boundary, an error wrapping
// io.ErrUnexpectedEOF when it ends inside a frame, ErrMalformed for a
// zero-length frame, and ErrFrameTooLarge for a frame over max, after
// discarding its bytes: after either of these two the next ReadFrame reads
// the next frame. Any other error comes from r. Discarding a frame that
// claims gigabytes reads them all (at most 4 GiB, the largest length a
// header holds); a server bounds the time that takes with the connection's
// read deadline.
func ReadFrame(r *bufio.Reader, max int, buf []byte) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	max = min(max, MaxFrameLimit)
	// Peek rather than read into an array, which would escape through
	// io.Reader: a frame read into a buffer that fits allocates nothing.
	hdr, err := r.Peek(HeaderSize)
	if err != nil {
		if err == io.EOF && len(hdr) == 0 {
			return nil, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("wire: read frame header (%d of %d bytes): %w", len(hdr), HeaderSize, err)
	}
	size := int64(binary.LittleEndian.Uint32(hdr))
	r.Discard(HeaderSize)
	switch {
	case size == 0:
		return nil, fmt.Errorf("wire: frame of 0 bytes: %w", ErrMalformed)
	case size > int64(max):
		if err := discard(r, size); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("wire: frame of %d bytes, over the maximum of %d: %w", size, max, ErrFrameTooLarge)
	}
	n := int(size)
	if cap(buf) >= n {
		buf = buf[:n]
		if got, err := io.ReadFull(r, buf); err != nil {
			return nil, shortFrame(size, got, err)
		}
		return buf, nil
	}
	// The frame does not fit: grow a buffer as its bytes arrive.
	buf = buf[:cap(buf)]
	if len(buf) < frameChunk {
		buf = make([]byte, min(n, frameChunk))
	}
	got := 0
	for {
		m, err := io.ReadFull(r, buf[got:])
		got += m
		if err != nil {
			return nil, shortFrame(size, got, err)
		}
		if got == n {
			return buf, nil
		}
		// Grow only once the next byte has arrived.
		if _, err := r.Peek(1); err != nil {
			return nil, shortFrame(size, got, err)
		}
		next := make([]byte, min(n, 2*len(buf)))
		copy(next, buf[:got])
		buf = next
	}
}

// shortFrame is the error of a frame whose payload ended after got bytes.
func shortFrame(size int64, got int, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("wire: read frame of %d bytes (got %d): %w", size, got, err)
}

// discard skips size bytes of an oversized frame.
func discard(r *bufio.Reader, size int64) error {
	var done int64
	for done < size {
		n, err := r.Discard(int(min(size-done, 1<<30)))
		done += int64(n)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("wire: discard oversized frame of %d bytes (got %d): %w", size, done, err)
		}
	}
	return nil
}

// BufferPool recycles frame buffers. Buffers grown past MaxRetained bytes
// are dropped rather than kept. The zero value is ready and keeps buffers
// up to 64 KiB; it is safe for concurrent use.
type BufferPool struct {
	// MaxRetained is the largest capacity Put keeps; 0 means 64 KiB.
	MaxRetained int
	pool        sync.Pool
}

// Get returns a buffer of length 0 and capacity at least n.
func (p *BufferPool) Get(n int) *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		if cap(*b) >= n {
			*b = (*b)[:0]
			return b
		}
		p.pool.Put(b)
	}
	b := make([]byte, 0, max(n, 512))
	return &b
}

// Put returns b to the pool, unless it is larger than MaxRetained.
func (p *BufferPool) Put(b *[]byte) {
	limit := p.MaxRetained
	if limit <= 0 {
		limit = 64 << 10
	}
	if b == nil || cap(*b) > limit {
		return
	}
	p.pool.Put(b)
}
