package client

import (
	"bufio"
	"context"
	"fmt"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// authenticate presents opt.Token as the connection's first frame and
// waits for the AuthResponse, within ctx. It uses request id 1; the
// connection's requests number on from 2.
func (c *conn) authenticate(ctx context.Context, br *bufio.Reader, opt *Options) error {
	deadline, _ := ctx.Deadline() // dialConn's ctx always has one
	if err := c.nc.SetDeadline(deadline); err != nil {
		return fmt.Errorf("client: %s: authenticate: %w", c.addr, err)
	}
	id := c.ids.Add(1)
	var enc wire.Encoder
	frame, err := enc.EncodeFrame(&wire.Envelope{RequestID: id, Timeout: min(time.Until(deadline), wire.MaxTimeout),
		Body: &wire.AuthRequest{Token: opt.Token}})
	if err != nil {
		return fmt.Errorf("client: %s: authenticate: %w", c.addr, err)
	}
	if _, err := c.nc.Write(frame); err != nil {
		return fmt.Errorf("client: %s: authenticate: %w", c.addr, err)
	}
	payload, err := wire.ReadFrame(br, opt.MaxFrame, nil)
	if err != nil {
		return fmt.Errorf("client: %s: authenticate: %w", c.addr, err)
	}
	var env wire.Envelope
	if err := wire.Decode(payload, &env); err != nil {
		return fmt.Errorf("client: %s: authenticate: %w: %w", c.addr, ErrBadResponse, err)
	}
	switch m := env.Body.(type) {
	case *wire.AuthResponse:
		if env.RequestID != id {
			return fmt.Errorf("client: %s: authenticate: answer to request %d, want %d: %w", c.addr, env.RequestID, id, ErrBadResponse)
		}
	case *wire.Error:
		return fmt.Errorf("client: %s: authenticate: %w", c.addr, m)
	default:
		return fmt.Errorf("client: %s: authenticate: answered by a %s: %w", c.addr, m.Kind(), ErrBadResponse)
	}
	if err := c.nc.SetDeadline(time.Time{}); err != nil {
		return fmt.Errorf("client: %s: authenticate: %w", c.addr, err)
	}
	return nil
}
