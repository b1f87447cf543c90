package wire_test

import (
	"bufio"
	"bytes"
	"fmt"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// A client pipelines two requests on one stream; the server answers them
// out of order, and the request ids match the answers.
func Example() {
	var conn bytes.Buffer // stands for a TCP connection
	var enc wire.Encoder
	for id, user := range []int64{42, 43} {
		frame, err := enc.EncodeFrame(&wire.Envelope{
			RequestID: uint64(id + 1),
			Timeout:   20 * time.Millisecond,
			Body:      &wire.RecommendRequest{User: user, N: 2, Context: wire.Context{Time: 1_700_000_000_000}},
		})
		if err != nil {
			panic(err)
		}
		conn.Write(frame)
	}

	// The server reads both requests.
	br := bufio.NewReader(&conn)
	var reqs []wire.Envelope
	var buf []byte
	for range 2 {
		payload, err := wire.ReadFrame(br, wire.DefaultMaxFrame, buf)
		if err != nil {
			panic(err)
		}
		var env wire.Envelope
		if err := wire.Decode(payload, &env); err != nil {
			panic(err)
		}
		reqs = append(reqs, env)
		buf = payload
	}
	// It answers the second first, and the first with an error.
	var replies bytes.Buffer
	second := reqs[1].Body.(*wire.RecommendRequest)
	frame, _ := enc.EncodeFrame(&wire.Envelope{RequestID: reqs[1].RequestID, Body: &wire.RecommendResponse{
		Heads: []string{"like"},
		Items: []wire.Item{{Reel: second.User * 100, Score: 0.9, Probs: []float32{0.3}, Propensity: 1}},
		Arm:   "control",
	}})
	replies.Write(frame)
	frame, _ = enc.EncodeFrame(&wire.Envelope{RequestID: reqs[0].RequestID,
		Body: &wire.Error{Code: wire.Overloaded, Message: "queue full"}})
	replies.Write(frame)

	// The client matches the answers by id.
	br = bufio.NewReader(&replies)
	for range 2 {
		payload, err := wire.ReadFrame(br, 0, nil)
		if err != nil {
			panic(err)
		}
		var env wire.Envelope
		if err := wire.Decode(payload, &env); err != nil {
			panic(err)
		}
		switch m := env.Body.(type) {
		case *wire.RecommendResponse:
			fmt.Printf("request %d: %d item(s), first reel %d, arm %s\n", env.RequestID, len(m.Items), m.Items[0].Reel, m.Arm)
		case *wire.Error:
			fmt.Printf("request %d: %v\n", env.RequestID, m)
		}
	}
	// Output:
	// request 2: 1 item(s), first reel 4300, arm control
	// request 1: overloaded: queue full
}

// Bytes that are not an envelope, and a request that breaks a rule, give
// errors that Code and AsError turn into the answer the server sends.
func ExampleDecode() {
	var env wire.Envelope
	err := wire.Decode([]byte("not a frame at all"), &env)
	fmt.Println(wire.Code(err), "|", err)

	_, err = wire.Encode(&wire.Envelope{RequestID: 5, Body: &wire.SearchRequest{K: 0, Vector: []float32{1}}})
	fmt.Println(wire.AsError(err).Code, "|", err)
	// Output:
	// bad request | wire: file identifier "a fr", want "RRW1": wire: malformed frame
	// bad request | bad request: search: k = 0 outside 1..10000
}

// A write with an idempotency key is applied once: the server records its
// answer under the key and answers a retry from the record, Replayed.
func ExampleEventRequest_key() {
	applied := map[string]*wire.EventResponse{} // the server's record of recent keys
	serve := func(payload []byte) *wire.EventResponse {
		var env wire.Envelope
		if err := wire.Decode(payload, &env); err != nil {
			panic(err)
		}
		req := env.Body.(*wire.EventRequest)
		if first, ok := applied[req.Key]; ok {
			replay := *first
			replay.Replayed = true
			return &replay
		}
		resp := &wire.EventResponse{Accepted: uint32(len(req.Events))} // apply the events
		if req.Key != "" {
			applied[req.Key] = resp
		}
		return resp
	}

	payload, err := wire.Encode(&wire.Envelope{RequestID: 1, Body: &wire.EventRequest{
		Key:    "3f7a9c0e5b2d4e61a8c9f0b1d2e3f405", // 128 random bits, hex
		Events: []wire.Event{{Type: wire.EventLike, User: 7, Reel: 42}, {Type: wire.EventShare, User: 7, Reel: 42}},
	}})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", *serve(payload))
	// The answer was lost with the connection: the client sends it again.
	fmt.Printf("%+v\n", *serve(payload))
	// Output:
	// {Accepted:2 Rejected:0 Reason: Replayed:false}
	// {Accepted:2 Rejected:0 Reason: Replayed:true}
}
