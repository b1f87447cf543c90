package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// header returns a frame header declaring size bytes.
func header(size uint32) []byte { return binary.LittleEndian.AppendUint32(nil, size) }

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A header that declares 64 MiB followed by 10 bytes and the end of the
// stream costs the first chunk, not the declared length.
func TestReadFrameTruncatedDoesNotPreallocate(t *testing.T) {
	const declared = 64 << 20
	stream := append(header(declared), make([]byte, 10)...)
	var err error
	n := allocated(func() {
		_, err = ReadFrame(bufio.NewReader(bytes.NewReader(stream)), MaxFrameLimit, nil)
	})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a truncated frame: %v, want io.ErrUnexpectedEOF", err)
	}
	if n > 4*frameChunk {
		t.Errorf("a 64 MiB header with 10 bytes behind it allocated %d bytes, want at most %d", n, 4*frameChunk)
	}
	t.Logf("allocated %d bytes", n)

	// Half of the declared bytes: the buffer grows to about what arrived,
	// at most twice it, never to the declared length up front.
	stream = append(header(declared), make([]byte, declared/4)...)
	n = allocated(func() {
		_, err = ReadFrame(bufio.NewReader(bytes.NewReader(stream)), MaxFrameLimit, nil)
	})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a truncated frame: %v", err)
	}
	// Doubling from 64 KiB to 16 MiB allocates under 32 MiB in all, plus
	// the reader's own buffer.
	if n >= declared/2+frameChunk {
		t.Errorf("16 MiB of a 64 MiB frame allocated %d bytes", n)
	}
}

// Frames of every size around the chunk edges read back exactly, from
// streams that deliver a byte or half a buffer at a time, into no buffer,
// a small one, and one that fits.
func TestReadFrameGrows(t *testing.T) {
	sizes := []int{1, 100, frameChunk - 1, frameChunk, frameChunk + 1, 2*frameChunk + 7, 5*frameChunk + 3}
	if !testing.Short() {
		sizes = append(sizes, 1<<20+13)
	}
	for _, size := range sizes {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(i*7 + i>>8)
		}
		stream := append(header(uint32(size)), payload...)
		stream = append(stream, header(3)...)
		stream = append(stream, 1, 2, 3)
		readers := map[string]func(io.Reader) io.Reader{
			"whole": func(r io.Reader) io.Reader { return r },
			"half":  iotest.HalfReader,
		}
		if size < 3*frameChunk {
			readers["byte"] = iotest.OneByteReader
		}
		for name, wrap := range readers {
			for _, bufCap := range []int{0, 16, frameChunk + 5, size} {
				buf := make([]byte, 0, bufCap)
				br := bufio.NewReader(wrap(bytes.NewReader(stream)))
				p, err := ReadFrame(br, MaxFrameLimit, buf)
				if err != nil {
					t.Fatalf("size %d, %s reader, buffer %d: %v", size, name, bufCap, err)
				}
				if !bytes.Equal(p, payload) {
					t.Fatalf("size %d, %s reader, buffer %d: the payload differs", size, name, bufCap)
				}
				if bufCap >= size && &p[0] != &buf[:1][0] {
					t.Errorf("size %d, buffer %d: the payload was not read into the caller's buffer", size, bufCap)
				}
				if cap(p) > max(bufCap, 2*size) {
					t.Errorf("size %d, buffer %d: a buffer of capacity %d", size, bufCap, cap(p))
				}
				if p, err := ReadFrame(br, MaxFrameLimit, nil); err != nil || !bytes.Equal(p, []byte{1, 2, 3}) {
					t.Fatalf("size %d, %s reader: the next frame read %v, %v", size, name, p, err)
				}
			}
		}
	}
}

// Into a buffer that fits, reading a frame does not allocate, large or
// small.
func TestReadFrameAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector or coverage")
	}
	for _, size := range []int{100, 3 * frameChunk} {
		stream := append(header(uint32(size)), make([]byte, size)...)
		rd := bytes.NewReader(stream)
		br := bufio.NewReader(rd)
		buf := make([]byte, 0, size)
		allocs := testing.AllocsPerRun(50, func() {
			rd.Reset(stream)
			br.Reset(rd)
			if _, err := ReadFrame(br, MaxFrameLimit, buf); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("a %d-byte frame into a buffer that fits: %v allocations", size, allocs)
		}
	}
}
