//go:build cuda

package cuda

/*
#cgo LDFLAGS: -lcuda
#include <cuda.h>

static CUresult pinnedAlloc(void **p, size_t n) { return cuMemHostAlloc(p, n, 0); }
static CUresult pinnedFree(void *p) { return cuMemFreeHost(p); }
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"
)

// pinned is page-locked host memory, which the copy engines read and
// write without a staging copy. gorgonia.org/cu has no call for it; these
// two are the driver's cuMemHostAlloc and cuMemFreeHost. The context must
// be current.
type pinned struct {
	p    unsafe.Pointer
	size int
}

// ensure makes p hold at least n bytes.
func (p *pinned) ensure(n int) error {
	if n <= p.size {
		return nil
	}
	if err := p.free(); err != nil {
		return err
	}
	n = int(class(int64(n)))
	var ptr unsafe.Pointer
	if r := C.pinnedAlloc(&ptr, C.size_t(n)); r != C.CUDA_SUCCESS {
		return wrap(fmt.Sprintf("pinned alloc of %d bytes", n), cuResult(r))
	}
	p.p, p.size = ptr, n
	return nil
}

func (p *pinned) free() error {
	if p.p == nil {
		return nil
	}
	r := C.pinnedFree(p.p)
	p.p, p.size = nil, 0
	if r != C.CUDA_SUCCESS {
		return wrap("pinned free", cuResult(r))
	}
	return nil
}

// f32 and i32 view the pinned memory from byte offset off.
func (p *pinned) f32(off, n int) []float32 {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Add(p.p, off)), n)
}

func (p *pinned) i32(off, n int) []int32 {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*int32)(unsafe.Add(p.p, off)), n)
}

func (p *pinned) ptr(off int) unsafe.Pointer { return unsafe.Add(p.p, off) }

// cuResult turns a raw CUresult into cu's error value, so that wrap can
// classify it.
func cuResult(r C.CUresult) error {
	switch r {
	case C.CUDA_ERROR_OUT_OF_MEMORY:
		return cu.OutOfMemory
	case C.CUDA_ERROR_ILLEGAL_ADDRESS:
		return cu.IllegalAddress
	case C.CUDA_ERROR_LAUNCH_FAILED:
		return cu.LaunchFailed
	case C.CUDA_ERROR_DEINITIALIZED:
		return cu.Deinitialized
	case C.CUDA_ERROR_INVALID_CONTEXT:
		return cu.InvalidContext
	case C.CUDA_ERROR_INVALID_VALUE:
		return cu.InvalidValue
	}
	return fmt.Errorf("CUresult %d", int(r))
}
