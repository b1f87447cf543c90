package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// seedEnvelopes returns valid encoded envelopes of every kind.
func seedEnvelopes(f *testing.F) [][]byte {
	r := rand.New(rand.NewPCG(11, 12))
	var seeds [][]byte
	for _, k := range allKinds() {
		for range 2 {
			buf, err := Encode(randEnvelope(r, k))
			if err != nil {
				f.Fatal(err)
			}
			seeds = append(seeds, buf)
		}
	}
	buf, err := Encode(recommendResponse20())
	if err != nil {
		f.Fatal(err)
	}
	return append(seeds, buf)
}

// FuzzDecode: whatever the bytes, Decode does not panic (nor reach its
// recover), and a message it accepts encodes and decodes to itself.
func FuzzDecode(f *testing.F) {
	for _, s := range seedEnvelopes(f) {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte("\x0c\x00\x00\x00RRW1\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, buf []byte) {
		var env Envelope
		err := Decode(buf, &env)
		if err != nil {
			if strings.Contains(err.Error(), "decoder fault") {
				t.Fatalf("the verifier let through a buffer the decoder panicked on: %v", err)
			}
			if env.Body != nil {
				t.Fatal("a failed Decode left a body")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownMessage) && Code(err) != BadRequest {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		again, err := Encode(&env)
		if err != nil {
			t.Fatalf("a decoded %v does not encode: %v", env.Body.Kind(), err)
		}
		var back Envelope
		if err := Decode(again, &back); err != nil {
			t.Fatalf("a re-encoded %v does not decode: %v", env.Body.Kind(), err)
		}
		if !equalEnvelopes(&env, &back) {
			t.Fatalf("%v changed on the way round:\n%+v\n%+v", env.Body.Kind(), env.Body, back.Body)
		}
		// Decoding into the envelope that already holds it gives the same.
		if err := Decode(buf, &back); err != nil || !equalEnvelopes(&env, &back) {
			t.Fatalf("decoding into a reused envelope: %v", err)
		}
	})
}

// FuzzReadFrame: ReadFrame over any stream returns exactly the frames a
// plain reading of the length prefixes gives, skips oversized and empty
// frames without losing step, and ends in io.EOF at a boundary or
// io.ErrUnexpectedEOF inside a frame.
func FuzzReadFrame(f *testing.F) {
	var stream []byte
	for _, s := range seedEnvelopes(f)[:6] {
		stream = binary.LittleEndian.AppendUint32(stream, uint32(len(s)))
		stream = append(stream, s...)
	}
	f.Add(stream, uint16(100))
	f.Add(stream, uint16(0))
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 0, 7}, uint16(4))
	f.Add([]byte{5, 0, 0}, uint16(10))
	f.Fuzz(func(t *testing.T, stream []byte, max16 uint16) {
		max := int(max16)
		if max == 0 {
			max = DefaultMaxFrame
		}
		br := bufio.NewReaderSize(bytes.NewReader(stream), 16)
		var buf []byte
		pos := 0
		for {
			p, err := ReadFrame(br, int(max16), buf)
			if len(stream)-pos == 0 {
				if err != io.EOF {
					t.Fatalf("at the end of the stream: %v, want io.EOF", err)
				}
				return
			}
			if len(stream)-pos < HeaderSize {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("header cut short: %v", err)
				}
				return
			}
			n := int(binary.LittleEndian.Uint32(stream[pos:]))
			body := stream[pos+HeaderSize:]
			switch {
			case n == 0:
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("empty frame at %d: %v", pos, err)
				}
			case n > len(body):
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("frame of %d bytes with %d left: %v", n, len(body), err)
				}
				return
			case n > max:
				if !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("frame of %d bytes over %d: %v", n, max, err)
				}
			default:
				if err != nil || !bytes.Equal(p, body[:n]) {
					t.Fatalf("frame of %d bytes at %d: %v", n, pos, err)
				}
				buf = p
			}
			pos += HeaderSize + n
		}
	})
}
