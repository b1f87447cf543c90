//go:build cuda

package cuda

import (
	"embed"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"gorgonia.org/cu"
)

//go:embed ptx/*.ptx
var ptxFS embed.FS

// Launch geometry shared with the .cu files.
const (
	gemmTile      = 64   // F_BM, F_BN, W_BM, W_BN
	gemmF32Block  = 256  // gemm_f32's threads
	gemmBF16Block = 128  // gemm_bf16's threads: 4 warps
	rowBlock      = 256  // heads' and rescore's threads
	topkThreads   = 1024 // TOPK_THREADS
)

// Count returns the number of CUDA devices.
func Count() (int, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return 0, wrap("count devices", err)
	}
	return n, nil
}

// Device is one GPU: its primary context, the kernels' modules, a stream,
// a pool of device memory. Its methods are safe for concurrent use; the
// work is serialised.
type Device struct {
	ordinal int
	name    string
	dev     cu.Device
	ctx     cu.CUContext
	sm      [2]int // compute capability

	mu     sync.Mutex
	closed bool
	lost   atomic.Bool
	mods   []cu.Module
	fn     map[string]cu.Function
	stream cu.Stream
	pool   pool
}

// Open opens device ordinal: it retains the primary context, loads the
// embedded PTX (the driver compiles it for the device) and makes a
// stream. A machine without the device gives ErrNoDevice.
func Open(ordinal int) (*Device, error) {
	n, err := Count()
	if err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("%w: device %d of %d", ErrNoDevice, ordinal, n)
	}
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return nil, wrap("get device", err)
	}
	d := &Device{ordinal: ordinal, dev: dev, fn: map[string]cu.Function{}}
	if d.name, err = dev.Name(); err != nil {
		return nil, wrap("device name", err)
	}
	if d.sm[0], err = dev.Attribute(cu.ComputeCapabilityMajor); err != nil {
		return nil, wrap("compute capability", err)
	}
	if d.sm[1], err = dev.Attribute(cu.ComputeCapabilityMinor); err != nil {
		return nil, wrap("compute capability", err)
	}
	if d.sm[0] < 8 {
		return nil, fmt.Errorf("%w: %s is sm_%d%d; the kernels need sm_80 or newer (bf16 tensor cores)", ErrNoDevice, d.name, d.sm[0], d.sm[1])
	}
	if d.ctx, err = dev.RetainPrimaryCtx(); err != nil {
		return nil, wrap("retain primary context", err)
	}
	err = d.do("load kernels", func() error {
		for file, entries := range kernelEntries {
			src, err := ptxFS.ReadFile("ptx/" + file)
			if err != nil {
				return fmt.Errorf("%w: embedded %s: %v", ErrDriver, file, err)
			}
			mod, err := cu.LoadData(string(src))
			if err != nil {
				return wrap("load "+file, err)
			}
			d.mods = append(d.mods, mod)
			for _, e := range entries {
				f, err := mod.Function(e)
				if err != nil {
					return wrap("kernel "+e, err)
				}
				d.fn[e] = f
			}
		}
		s, err := cu.MakeStream(cu.NonBlocking)
		if err != nil {
			return wrap("make stream", err)
		}
		d.stream = s
		return nil
	})
	if err != nil {
		d.release()
		return nil, err
	}
	return d, nil
}

// Name describes the device: "cuda:0 (NVIDIA H100 80GB HBM3, sm_90)".
func (d *Device) Name() string {
	return fmt.Sprintf("cuda:%d (%s, sm_%d%d)", d.ordinal, d.name, d.sm[0], d.sm[1])
}

// MemInfo returns the device's free and total memory in bytes.
func (d *Device) MemInfo() (free, total int64, err error) {
	err = d.do("memory info", func() error {
		var err error
		free, total, err = cu.MemInfo()
		return wrap("memory info", err)
	})
	return free, total, err
}

// Close frees the pool, the stream and the modules and releases the
// primary context. Buffers of MLPs and Catalogues still open are freed by
// the context's release; using them afterwards fails with ErrClosed.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.mu.Unlock()
	err := d.do("close", func() error {
		var errs []error
		if err := d.stream.Synchronize(); err != nil {
			errs = append(errs, wrap("synchronize", err))
		}
		errs = append(errs, d.pool.drain())
		return errors.Join(errs...)
	})
	d.release()
	return err
}

// release destroys what Open made, ignoring errors (the context may be
// lost), and marks the device closed.
func (d *Device) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if cu.SetCurrentContext(d.ctx) == nil {
		if d.stream != (cu.Stream{}) {
			_ = d.stream.Destroy()
		}
		for _, m := range d.mods {
			_ = m.Unload()
		}
	}
	_ = d.dev.ReleasePrimaryCtx()
}

// do runs f with the device's lock held and its context current on the
// calling OS thread. A lost device fails fast; an error of f that says the
// device is lost marks it so.
func (d *Device) do(op string, f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("cuda: %s: %w", op, ErrClosed)
	}
	if d.lost.Load() {
		return fmt.Errorf("cuda: %s: %w (open the device again)", op, ErrDeviceLost)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		err = wrap(op+": set context", err)
		if errors.Is(err, ErrDeviceLost) {
			d.lost.Store(true)
		}
		return err
	}
	err := f()
	if errors.Is(err, ErrDeviceLost) {
		d.lost.Store(true)
	}
	return err
}

// sync waits for the stream's work, turning an asynchronous fault into
// its error.
func (d *Device) sync(op string) error {
	return wrap(op+": synchronize", d.stream.Synchronize())
}

// launch runs kernel name on the stream. Every argument must be 8 bytes
// (a cu.DevicePtr or an int64): cu copies each as a uint64.
func (d *Device) launch(name string, grid [3]int, block, shared int, args ...any) error {
	f, ok := d.fn[name]
	if !ok {
		return fmt.Errorf("%w: no kernel %s", ErrDriver, name)
	}
	ptrs := make([]unsafe.Pointer, len(args))
	vals := make([]uint64, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case cu.DevicePtr:
			vals[i] = uint64(v)
		case int64:
			vals[i] = uint64(v)
		case int:
			vals[i] = uint64(int64(v))
		default:
			return fmt.Errorf("%w: kernel %s: argument %d is %T", ErrDriver, name, i, a)
		}
		ptrs[i] = unsafe.Pointer(&vals[i])
	}
	for _, g := range grid {
		if g <= 0 || g > 1<<31-1 {
			return fmt.Errorf("%w: kernel %s: grid %v", ErrBadInput, name, grid)
		}
	}
	return wrap("launch "+name, f.Launch(grid[0], grid[1], grid[2], block, 1, 1, shared, d.stream, ptrs))
}

// wrap maps a driver error to the package's kinds: "cuda: op: kind:
// DriverErrorName".
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	kind := ErrDriver
	switch err {
	case cu.OutOfMemory:
		kind = ErrOutOfMemory
	case cu.NoDevice, cu.InvalidDevice:
		kind = ErrNoDevice
	case cu.IllegalAddress, cu.LaunchFailed, cu.LaunchTimeout, cu.EccUncorrectable,
		cu.HardwareStackError, cu.IllegalInstruction, cu.MisalignedAddress,
		cu.InvalidAddressSpace, cu.InvalidPc, cu.Deinitialized, cu.ContextIsDestroyed,
		cu.InvalidContext, cu.Assert, cu.NvlinkUncorrectable, cu.SystemNotReady:
		kind = ErrDeviceLost
	}
	return fmt.Errorf("cuda: %s: %w: %w", op, kind, err)
}
