package wal

import (
	"errors"
	"fmt"
	"syscall"
)

// The errors of the log. The errors returned wrap these (test with
// errors.Is) and carry the file paths and the operating system's reason
// besides: they are for the operator's log. Cause gives the short,
// path-free text that may go to a client.
var (
	// ErrLocked: Open found the log open in another process or handle.
	ErrLocked = errors.New("wal: the log is open in another process or handle")
	// ErrFailed: a write or an fsync failed, and the log stopped (fail-stop);
	// Err returns the first failure.
	ErrFailed = errors.New("wal: the log failed and takes no more writes")
	// ErrNoSpace: the failure was ENOSPC (errors.Is(err, syscall.ENOSPC)
	// holds too). It comes with ErrFailed.
	ErrNoSpace = errors.New("wal: no space left on the device")
	// ErrCorrupt: Open found a damaged record, or segments that do not
	// follow on from each other.
	ErrCorrupt = errors.New("wal: damaged record")
	// ErrClosed: the Log was closed.
	ErrClosed = errors.New("wal: closed")
	// ErrBadRecord: Append was given something other than whole records:
	// non-empty lines, each ending in '\n', holding no NUL byte, and passing
	// Options.Check. Nothing was written and the log goes on.
	ErrBadRecord = errors.New("wal: not whole records")
)

// earlierError is what Append and Sync return once the log has failed
// in an earlier call. It is ErrFailed, and it quotes the first failure
// without wrapping it, so that Cause tells the two apart.
type earlierError struct{ first error }

func (e *earlierError) Error() string {
	return "wal: the log failed earlier and takes no more writes: " + e.first.Error()
}

func (e *earlierError) Is(target error) bool { return target == ErrFailed }

// failure makes the fail-stop error for cause: ErrFailed, with ErrNoSpace
// when the device is full.
func failure(cause error) error {
	if errors.Is(cause, syscall.ENOSPC) {
		return fmt.Errorf("%w: %w: %w", ErrFailed, ErrNoSpace, cause)
	}
	return fmt.Errorf("%w: %w", ErrFailed, cause)
}

// Cause returns a short description of an error from Append, Sync or
// Commit that holds no file path, for the engine to send to clients in
// place of the error itself:
//
//	"no space left on the device"                      the write failed: the device is full
//	"the log failed earlier and takes no more writes"  an earlier write or fsync failed
//	"closed"                                           the Log was closed
//	"bad record"                                       Append refused its argument (ErrBadRecord)
//	"write failed"                                     any other failure
//
// It returns "" for nil.
func Cause(err error) string {
	var earlier *earlierError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.As(err, &earlier):
		return "the log failed earlier and takes no more writes"
	case errors.Is(err, ErrNoSpace):
		return "no space left on the device"
	case errors.Is(err, ErrBadRecord):
		return "bad record"
	default:
		return "write failed"
	}
}
