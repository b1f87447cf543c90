// Package fsutil holds the file-system steps that several reelrank
// packages share: mapping a file read-only, and syncing a folder after a
// rename so that the rename survives a crash.
package fsutil
