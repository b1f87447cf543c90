// Package wal is reelrank's durable append-only log: the engine keeps its
// served events and its catalogue journal in one each. Its promise is the
// one PostgreSQL's WAL, Kafka's log segments and Redis's AOF make: a
// record whose Sync (or Commit) returned nil survives a crash of the
// process or the machine, once, in its place in the order.
//
// # Records and sequence numbers
//
// A record is one line of text: non-empty, ending in '\n', holding no
// other '\n' and no NUL byte (the engine's records are JSON objects). The
// log numbers records from 0 for its whole life; the numbers never
// restart, also after old segments are removed.
//
//	log, err := wal.Open(wal.Options{Dir: "data/events", Name: "served-events"})
//	if err != nil { ... }
//	defer log.Close()
//	err = log.Replay(0, func(seq uint64, line []byte) error {
//		return apply(line) // what the log held when the process stopped
//	})
//
//	first, next, err := log.Append([]byte("{\"a\":1}\n{\"a\":2}\n")) // records first and first+1
//	err = log.Sync(next)                                          // durable now
//
// # Group commit
//
// Append writes a batch of records in one write and does not sync: it
// is fast, and it fixes the records' order. Sync(upto) returns once the
// records before upto are on disk. Callers of Sync at the same time share
// fsyncs: one leads and fsyncs everything written so far, without holding
// the log's lock (so Appends go on), and the others wait for it. So the
// engine appends and applies under its own lock (the order in memory is
// the order in the log), then drops its lock and calls Sync before it
// acknowledges:
//
//	mu.Lock()
//	_, next, err := log.Append(batch)
//	if err == nil { apply(batch) }
//	mu.Unlock()
//	if err == nil { err = log.Sync(next) } // shared with the requests around it
//	if err != nil { reply(wal.Cause(err)); return }
//	reply("ok")
//
// Stats counts the fsyncs against the Sync calls, to show the sharing.
//
// # Failure stops the log
//
// When a write fails, or writes less than the batch, Append cuts the file
// back to where it was, so that nothing of the batch stays, and the log
// stops: that call and every later Append and Sync return an error
// wrapping ErrFailed (and ErrNoSpace, and syscall.ENOSPC, when the device
// was full). When an fsync fails the log stops too: after a failed fsync
// nothing is known of what reached the disk (PostgreSQL's lesson), so the
// records since the last good fsync may or may not survive a crash, and
// no later fsync could say. Err returns the failure; a new Open, once
// the operator has made room or mended the disk, recovers the log.
//
// An error from Sync means "unknown", not "lost": records that a client
// was told failed can be there after a restart, as with any write-ahead
// log. A client that retries needs an idempotency key for exactly once.
//
// A caller that applies records before their Sync, as above, holds in
// memory records that a failed Sync leaves in doubt; since the log then
// takes no more writes, the way back is a restart, which replays what the
// disk holds.
//
// The errors name files and are for the operator's log only: the engine
// must not forward them to clients verbatim. Cause turns one into a short
// phrase without paths for the client.
//
// # Files
//
// A log lives in one folder, Options.Dir, which Open creates with mode
// 0700. It is a sequence of segment files named
//
//	<Name>-<base>.jsonl   base: the sequence number of its first record, 20 digits
//
// created with mode 0600, and fsynced with the folder when created.
// Append writes to the last, active segment; the first Append that finds
// it holding Options.SegmentBytes (64 MiB by default) first rolls to a
// new one, after fsyncing it, and Roll rolls at once. RemoveBefore
// deletes old segments whose records all lie before a sequence number,
// oldest first, syncing the folder after each; First moves up.
//
// Open takes an exclusive flock on <Dir>/<Name>.lock: a second Open of the
// same log, in this process or another, fails with ErrLocked until the
// first is closed. (Where flock is missing the lock does nothing.)
//
// Options.Legacy names an older single-file log (the engine's
// served-events.jsonl beside the folder). When that file exists and the
// log has no segments yet, Open checks it as it checks a segment, then
// renames it into the folder as segment 0 and syncs both folders.
//
// # Recovery
//
// Open reads every segment before it writes. What it finds, and does:
//
//   - The segments, ordered by base, must follow on: each begins at the
//     sequence number after the previous one's last record. A gap or an
//     overlap is ErrCorrupt, naming both files.
//   - Each segment is read line by line to count its records, and each
//     record is checked: not empty, no NUL byte, and Options.Check when
//     set (Append runs the same checks, so the log never acknowledges a
//     record Open would refuse).
//   - Torn tail: bytes after the last '\n' of the last segment are a
//     write that a crash interrupted, never acknowledged. Open cuts them
//     off (truncate and fsync) and reports them in Recovered. A last
//     record of the last segment that fails the checks is taken for the
//     same, and cut with what follows it.
//   - A damaged record anywhere else, or a segment other than the last
//     that does not end in '\n', is an error wrapping ErrCorrupt that
//     names the file, the line and the byte offset. Open then fails and
//     changes nothing: skipping the record would silently lose an
//     acknowledged write, and keeping it would hand the engine garbage.
//
// Open then fsyncs the last segment, so that records a crashed process
// wrote but never synced are durable before the log counts them synced.
//
// Nothing is repaired automatically after ErrCorrupt: only the operator
// can say what the damaged record was. To get going again, stop the
// server and copy the folder somewhere safe; then either restore the
// named line by hand, or give up the records from it on: cut the file at
// the byte offset named and move every later segment out of the folder
// (Open refuses a gap). Damage in the oldest segment can also be given up
// by moving that one segment out; First then moves up.
package wal
