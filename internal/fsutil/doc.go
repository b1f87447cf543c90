// Package fsutil holds the file-system steps that several reelrank
// packages share: mapping a file read-only, syncing a folder after a
// rename so that the rename survives a crash, and replacing a file or a
// folder atomically (WriteFile, CreateTemp, ReplaceDir), so that a crash
// leaves the old one or the new one, never part of either.
package fsutil
