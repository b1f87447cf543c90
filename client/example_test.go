package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/client/clienttest"
	"github.com/reelrank/reelrank/wire"
)

// A Client asks a server (here an in-process fake) for recommendations;
// the server's errors come back typed.
func Example() {
	srv, err := clienttest.Start(clienttest.Static("demo-1"), clienttest.Config{Token: "s3cret"})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	ctx := context.Background()
	c, err := client.Dial(ctx, srv.Addr, client.Options{Token: "s3cret"})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := c.Recommend(rctx, &wire.RecommendRequest{User: 42, N: 3,
		Context: wire.Context{Time: 1_700_000_000_000, Session: 7, Recent: []int64{881}}})
	if err != nil {
		panic(err)
	}
	fmt.Println("model", resp.ModelVersion, "heads", resp.Heads)
	for _, it := range resp.Items {
		fmt.Printf("reel %d score %.2f\n", it.Reel, it.Score)
	}

	_, err = c.Search(rctx, &wire.SearchRequest{Vector: []float32{1, 0}, K: 0})
	var we *wire.Error
	fmt.Println(errors.As(err, &we), we.Code)
	// Output:
	// model demo-1 heads [like share]
	// reel 42001 score 1.00
	// reel 42002 score 0.50
	// reel 42003 score 0.33
	// true bad request
}

// A Sharded asks every shard and merges their lists by score.
func ExampleSharded() {
	var addrs [][]string
	for _, v := range []string{"shard-a", "shard-b"} {
		srv, err := clienttest.Start(func(_ context.Context, req *wire.Envelope) wire.Message {
			r := req.Body.(*wire.RecommendRequest)
			resp := clienttest.StaticAnswer(v, r).(*wire.RecommendResponse)
			if v == "shard-b" { // shard b's reels score a little higher
				for i := range resp.Items {
					resp.Items[i].Reel += 500
					resp.Items[i].Score += 0.1
				}
			}
			return resp
		}, clienttest.Config{})
		if err != nil {
			panic(err)
		}
		defer srv.Close()
		addrs = append(addrs, []string{srv.Addr})
	}
	s, err := client.DialSharded(context.Background(), addrs, client.Options{}, client.ShardedOptions{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	resp, err := s.Recommend(context.Background(), &wire.RecommendRequest{User: 1, N: 4})
	if err != nil {
		panic(err)
	}
	for _, it := range resp.Items {
		fmt.Printf("reel %d score %.2f\n", it.Reel, it.Score)
	}
	fmt.Println(resp.ModelVersion)
	// Output:
	// reel 1501 score 1.10
	// reel 1001 score 1.00
	// reel 1502 score 0.60
	// reel 1002 score 0.50
	// shard-a,shard-b
}

// A write gets an idempotency key, so that it can be sent again when its
// connection breaks: here the server (a fake that keeps a record of keys)
// drops the connection after applying the first sending, and the client's
// second sending is answered from the record.
func ExampleClient_Event() {
	var (
		srv     *clienttest.Server
		mu      sync.Mutex
		applied = map[string]*wire.EventResponse{} // the server's record, by key
	)
	srv, err := clienttest.Start(func(_ context.Context, req *wire.Envelope) wire.Message {
		m := req.Body.(*wire.EventRequest)
		mu.Lock()
		defer mu.Unlock()
		if first, ok := applied[m.Key]; ok {
			replay := *first
			replay.Replayed = true
			return &replay
		}
		applied[m.Key] = &wire.EventResponse{Accepted: uint32(len(m.Events))}
		srv.DropConns() // the answer is lost
		return nil
	}, clienttest.Config{})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	c, err := client.Dial(context.Background(), srv.Addr, client.Options{PoolSize: 1})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	resp, err := c.Event(context.Background(), &wire.EventRequest{Events: []wire.Event{
		{Type: wire.EventLike, User: 7, Reel: 42}, {Type: wire.EventShare, User: 7, Reel: 42}}})
	if err != nil {
		panic(err)
	}
	fmt.Println("accepted", resp.Accepted, "replayed", resp.Replayed)
	mu.Lock()
	defer mu.Unlock()
	fmt.Println("applied under", len(applied), "key, sent", srv.Requests(), "times")
	// Output:
	// accepted 2 replayed true
	// applied under 1 key, sent 2 times
}
