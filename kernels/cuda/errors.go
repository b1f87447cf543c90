package cuda

import "errors"

// The kinds of failure. Every error of the package wraps one of them,
// beside the operation and, from the driver, its error name.
var (
	// ErrNoDevice: no CUDA device, or no device of that ordinal.
	ErrNoDevice = errors.New("cuda: no device")
	// ErrOutOfMemory: device or pinned host memory ran out. The device
	// stays usable; a smaller batch may fit.
	ErrOutOfMemory = errors.New("cuda: out of memory")
	// ErrDeviceLost: the context is unusable (an illegal address, a
	// launch failure or timeout, an ECC error, a reset). Every later call
	// on the Device fails with it; open the device again to retry.
	ErrDeviceLost = errors.New("cuda: device lost")
	// ErrDriver: any other error of the driver (an invalid PTX, a missing
	// kernel, a bad value).
	ErrDriver = errors.New("cuda: driver error")
	// ErrBadInput: shapes that do not fit, values that are not finite.
	ErrBadInput = errors.New("cuda: bad input")
	// ErrClosed: the Device, MLP or Catalogue was closed.
	ErrClosed = errors.New("cuda: closed")
)
