package wal

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// TestGroupCommitConcurrent has many goroutines commit at once: every
// Commit returns nil, no more fsyncs are made than Commits (each Sync
// makes one at most), and every record is in the log once. With small
// segments the log also rolls while others sync; rolls fsync too, so
// there only the records are counted.
func TestGroupCommitConcurrent(t *testing.T) {
	for _, segBytes := range []int64{0, 512} {
		t.Run(fmt.Sprintf("segment=%d", segBytes), func(t *testing.T) {
			commitConcurrently(t, segBytes)
		})
	}
}

func commitConcurrently(t *testing.T, segBytes int64) {
	const writers, commits = 16, 25
	dir := t.TempDir()
	l := mustOpen(t, Options{Dir: dir, Name: "log", SegmentBytes: segBytes})
	base := l.Stats()
	errs := make(chan error, writers*commits)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range commits {
				_, _, err := l.Commit(batch(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)))
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := l.Stats()
	if syncs := st.Syncs - base.Syncs; segBytes == 0 && syncs > writers*commits {
		t.Fatalf("%d fsyncs for %d commits", syncs, writers*commits)
	}
	if st.SyncCalls > writers*commits || st.Records != writers*commits {
		t.Fatalf("stats %+v", st)
	}
	if segBytes > 0 && len(l.Segments()) < 2 {
		t.Fatalf("%d segments: the log never rolled", len(l.Segments()))
	}
	l.Close()
	l = mustOpen(t, Options{Dir: dir, Name: "log"})
	got := replayAll(t, l, 0)
	var lines []string
	for i, r := range got {
		if r.seq != uint64(i) {
			t.Fatalf("record %d has sequence number %d", i, r.seq)
		}
		lines = append(lines, r.line)
	}
	slices.Sort(lines)
	var wantLines []string
	for w := range writers {
		for i := range commits {
			wantLines = append(wantLines, fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))
		}
	}
	slices.Sort(wantLines)
	if !slices.Equal(lines, wantLines) {
		t.Fatalf("the log holds %d records, want each of %d once", len(lines), len(wantLines))
	}
}

// TestGroupCommitShares holds the leader's fsync on a gate and shows,
// step by step and without sleeping, that Appends go on while it runs,
// that the Syncs it covers wait for it and make no fsync of their own,
// and that the Syncs it does not cover share one more.
func TestGroupCommitShares(t *testing.T) {
	const covered, uncovered = 4, 4
	fs := newFaultFS()
	l := mustOpen(t, Options{Dir: t.TempDir(), Name: "log", FS: fs})
	waiting := make(chan struct{}, 1024)
	l.mu.Lock()
	l.waitHook = func() { waiting <- struct{}{} }
	l.mu.Unlock()

	_, next1, err := l.Append(batch("a", "b", "c"))
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{entered: make(chan struct{}, 1024), release: make(chan struct{})}
	fs.set(func(fs *faultFS) { fs.gate = g })
	base := l.Stats().Syncs

	leader := make(chan error, 1)
	go func() { leader <- l.Sync(next1) }()
	<-g.entered // the leader is in its fsync, without the lock

	// Appends go on meanwhile (this would hang if the leader held the lock).
	_, next2, err := l.Append(batch("d", "e"))
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan error, covered+uncovered)
	for i := range covered + uncovered {
		upto := next1 - uint64(i%2) // records the leader's fsync covers
		if i >= covered {
			upto = next2 // records written after it began
		}
		go func() { results <- l.Sync(upto) }()
	}
	for range covered + uncovered {
		<-waiting // each follower waits for the leader
	}

	g.release <- struct{}{} // the leader's fsync returns
	if err := <-leader; err != nil {
		t.Fatalf("the leader: %v", err)
	}
	for range covered {
		if err := <-results; err != nil {
			t.Fatalf("a covered follower: %v", err)
		}
	}
	if got := l.Stats().Syncs - base; got != 1 {
		t.Fatalf("%d fsyncs for the leader and the followers it covered, want 1", got)
	}

	// One of the others leads the next fsync, which covers them all. Let
	// every later fsync through, so that a wrong count fails rather than
	// hangs.
	<-g.entered
	close(g.release)
	for range uncovered {
		if err := <-results; err != nil {
			t.Fatalf("an uncovered follower: %v", err)
		}
	}
	if got := l.Stats().Syncs - base; got != 2 {
		t.Fatalf("%d fsyncs, want 2: the leader's and one shared by %d followers", got, uncovered)
	}
	if st := l.Stats(); st.SyncCalls != 1+covered+uncovered {
		t.Fatalf("stats %+v", st)
	}
}

// TestCloseCoversWaiters closes the log while a Sync waits on a held
// fsync: the waiter returns nil, whether the leader's successor or
// Close's final fsync covers it.
func TestCloseCoversWaiters(t *testing.T) {
	fs := newFaultFS()
	l := mustOpen(t, Options{Dir: t.TempDir(), Name: "log", FS: fs})
	waiting := make(chan struct{}, 1024)
	l.mu.Lock()
	l.waitHook = func() { waiting <- struct{}{} }
	l.mu.Unlock()
	_, next1, err := l.Append(batch("a"))
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{entered: make(chan struct{}, 1024), release: make(chan struct{})}
	fs.set(func(fs *faultFS) { fs.gate = g })
	leader := make(chan error, 1)
	go func() { leader <- l.Sync(next1) }()
	<-g.entered
	_, next2, err := l.Append(batch("b"))
	if err != nil {
		t.Fatal(err)
	}
	follower := make(chan error, 1)
	go func() { follower <- l.Sync(next2) }()
	<-waiting
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	close(g.release)
	for name, ch := range map[string]chan error{"leader": leader, "follower": follower, "Close": closed} {
		if err := <-ch; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	l2 := mustOpen(t, Options{Dir: l.dir, Name: "log"})
	if l2.Next() != 2 {
		t.Fatalf("reopened: next %d", l2.Next())
	}
}
