package server_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/reelrank/reelrank/server"
	"github.com/reelrank/reelrank/wire"
)

// popular is a Handler that recommends the same few reels to everyone.
type popular struct{ reels []int64 }

func (p *popular) Recommend(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
	r := &wire.RecommendResponse{Heads: []string{"watch"}, ModelVersion: "popular-1", Arm: "holdout"}
	for i, reel := range p.reels[:min(req.N, len(p.reels))] {
		r.Items = append(r.Items, wire.Item{Reel: reel, Score: float32(len(p.reels) - i), Probs: []float32{0.5}, Propensity: 1})
	}
	return r, nil
}

func (p *popular) Score(ctx context.Context, req *wire.ScoreRequest) (*wire.ScoreResponse, error) {
	return nil, &wire.Error{Code: wire.Unavailable, Message: "no ranker in this example"}
}

func (p *popular) Search(ctx context.Context, req *wire.SearchRequest) (*wire.SearchResponse, error) {
	return nil, &wire.Error{Code: wire.Unavailable, Message: "no index in this example"}
}

func (p *popular) Upsert(ctx context.Context, req *wire.UpsertRequest) (*wire.UpsertResponse, error) {
	p.reels = append(p.reels, req.Reel.ID) // not safe for concurrent use: an example only
	return &wire.UpsertResponse{}, nil
}

func (p *popular) Delete(ctx context.Context, req *wire.DeleteRequest) (*wire.DeleteResponse, error) {
	return nil, &wire.Error{Code: wire.NotFound, Message: fmt.Sprintf("reel %d", req.ID)}
}

func (p *popular) Event(ctx context.Context, req *wire.EventRequest) (*wire.EventResponse, error) {
	return &wire.EventResponse{Accepted: uint32(len(req.Events))}, nil
}

func (p *popular) Health(ctx context.Context, req *wire.HealthRequest) (*wire.HealthResponse, error) {
	return &wire.HealthResponse{OK: true, Status: "serving"}, nil
}

func (p *popular) Info(ctx context.Context) server.Info {
	return server.Info{IndexSize: uint64(len(p.reels)), ModelVersion: "popular-1"}
}

// A server with a token: the client authenticates, pipelines three
// requests and reads the answers by id; then the server shuts down.
func Example() {
	srv, err := server.New(server.Config{Token: "let-me-in", MaxInFlight: 64,
		Logger: slog.New(slog.DiscardHandler)}, &popular{reels: []int64{11, 12, 13}})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	var enc wire.Encoder
	send := func(id uint64, body wire.Message) {
		frame, err := enc.EncodeFrame(&wire.Envelope{RequestID: id, Timeout: 50 * time.Millisecond, Body: body})
		if err != nil {
			panic(err)
		}
		conn.Write(frame)
	}
	br := bufio.NewReader(conn)
	recv := func() *wire.Envelope {
		payload, err := wire.ReadFrame(br, 0, nil)
		if err != nil {
			panic(err)
		}
		env := new(wire.Envelope)
		if err := wire.Decode(payload, env); err != nil {
			panic(err)
		}
		return env
	}

	send(1, &wire.AuthRequest{Token: "let-me-in"})
	fmt.Println("auth:", recv().Body.Kind())

	// Two requests pipelined; the answers may come in either order.
	send(2, &wire.RecommendRequest{User: 42, N: 2})
	send(3, &wire.DeleteRequest{ID: 99})
	answers := map[uint64]wire.Message{}
	for range 2 {
		env := recv()
		answers[env.RequestID] = env.Body
	}
	rec := answers[2].(*wire.RecommendResponse)
	fmt.Println("recommend:", rec.Items[0].Reel, rec.Items[1].Reel, rec.ModelVersion)
	fmt.Println("delete:", answers[3])

	send(4, &wire.StatsRequest{})
	stats := recv().Body.(*wire.StatsResponse)
	fmt.Println("stats: index", stats.IndexSize, "requests", stats.Requests, "not found", stats.Errors[wire.NotFound])
	conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	fmt.Println("shutdown:", srv.Shutdown(ctx))
	// Output:
	// auth: AuthResponse
	// recommend: 11 12 popular-1
	// delete: not found: reel 99
	// stats: index 3 requests 3 not found 1
	// shutdown: <nil>
}
