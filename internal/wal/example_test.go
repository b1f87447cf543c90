package wal_test

import (
	"fmt"
	"log"
	"os"

	"github.com/reelrank/reelrank/internal/wal"
)

func Example() {
	dir, err := os.MkdirTemp("", "wal-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	opt := wal.Options{Dir: dir, Name: "served-events"}

	l, err := wal.Open(opt)
	if err != nil {
		log.Fatal(err)
	}
	// Commit appends and fsyncs; Append and Sync do it in two steps, so
	// that concurrent requests share one fsync.
	first, next, err := l.Commit([]byte("{\"user\":1,\"reel\":7}\n{\"user\":2,\"reel\":9}\n"))
	fmt.Println("committed", first, "to", next, err)
	_, next, _ = l.Append([]byte("{\"user\":1,\"reel\":8}\n"))
	fmt.Println("synced:", l.Sync(next))
	l.Close()

	// After a restart, Replay hands back what the log holds, in order.
	l, err = wal.Open(opt)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	l.Replay(0, func(seq uint64, line []byte) error {
		fmt.Println(seq, string(line))
		return nil
	})
	fmt.Println("next:", l.Next())

	// Errors name files; clients get the short cause.
	l.Close()
	_, _, err = l.Append([]byte("{}\n"))
	fmt.Println("after Close:", wal.Cause(err))
	// Output:
	// committed 0 to 2 <nil>
	// synced: <nil>
	// 0 {"user":1,"reel":7}
	// 1 {"user":2,"reel":9}
	// 2 {"user":1,"reel":8}
	// next: 3
	// after Close: closed
}
