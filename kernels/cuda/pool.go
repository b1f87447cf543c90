//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"math/bits"

	"gorgonia.org/cu"
)

// buf is device memory: a pointer and the size of its allocation.
type buf struct {
	ptr  cu.DevicePtr
	size int64
}

// pool keeps freed device buffers by power-of-two size class for reuse,
// up to maxCached bytes; a failed allocation empties it and tries once
// more. It is used under the Device's lock.
type pool struct {
	free   map[int64][]buf
	cached int64
	inUse  int64
}

const (
	minClass  = 256
	maxCached = 4 << 30
)

func class(n int64) int64 {
	if n <= minClass {
		return minClass
	}
	return 1 << (64 - bits.LeadingZeros64(uint64(n-1)))
}

// get returns a buffer of at least n bytes. The context must be current.
func (p *pool) get(n int64) (buf, error) {
	if n <= 0 || n > 1<<40 {
		return buf{}, fmt.Errorf("%w: device buffer of %d bytes", ErrBadInput, n)
	}
	c := class(n)
	if l := p.free[c]; len(l) > 0 {
		b := l[len(l)-1]
		p.free[c] = l[:len(l)-1]
		p.cached -= c
		p.inUse += c
		return b, nil
	}
	ptr, err := cu.MemAlloc(c)
	if errors.Is(err, cu.OutOfMemory) && p.cached > 0 {
		if derr := p.drain(); derr != nil {
			return buf{}, derr
		}
		ptr, err = cu.MemAlloc(c)
	}
	if err != nil {
		return buf{}, wrap(fmt.Sprintf("allocate %d bytes (%d in use)", c, p.inUse), err)
	}
	p.inUse += c
	return buf{ptr: ptr, size: c}, nil
}

// put returns b to the pool, or frees it when the pool is full.
func (p *pool) put(b buf) error {
	if b.ptr == 0 {
		return nil
	}
	p.inUse -= b.size
	if p.cached+b.size > maxCached {
		return wrap("free", cu.MemFree(b.ptr))
	}
	if p.free == nil {
		p.free = map[int64][]buf{}
	}
	p.free[b.size] = append(p.free[b.size], b)
	p.cached += b.size
	return nil
}

// drain frees every cached buffer.
func (p *pool) drain() error {
	var errs []error
	for c, l := range p.free {
		for _, b := range l {
			if err := cu.MemFree(b.ptr); err != nil {
				errs = append(errs, wrap("free", err))
			}
		}
		delete(p.free, c)
	}
	p.cached = 0
	return errors.Join(errs...)
}

// ensure makes *b hold at least n bytes, swapping it for a bigger buffer
// from the pool when it is short.
func (p *pool) ensure(b *buf, n int64) error {
	if b.ptr != 0 && b.size >= n {
		return nil
	}
	nb, err := p.get(n)
	if err != nil {
		return err
	}
	if err := p.put(*b); err != nil {
		_ = p.put(nb)
		return err
	}
	*b = nb
	return nil
}
