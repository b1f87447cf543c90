package eventlog_test

import (
	"fmt"
	"io"
	"strings"

	"github.com/reelrank/reelrank/eventlog"
)

func Example() {
	log := `{"type":"impression","ts":1767571200123,"user":42,"reel":9001,"author":77,"session":123456,"pos":3,"prop":0.00012,"arm":"popularity"}
{"type":"watch","ts":1767571212000,"user":42,"reel":9001,"author":77,"session":123456,"pos":3,"secs":11.877,"frac":0.65}
{"type":"like","ts":1767571211000,"user":42,"reel":9001,"author":77,"session":123456,"pos":3}

{"type":"like","ts":1767571211500,"user":42.5,"reel":9001,"author":77,"session":123456,"pos":3}
{"type":"share","ts":1767571000000,"user":42,"reel":9001,"author":77,"session":123456,"pos":3}
`
	r := eventlog.NewReader(strings.NewReader(log), eventlog.Options{})
	for {
		evs, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, e := range evs {
			fmt.Printf("line %d: %s at %d by user %d\n", e.Line, e.Type, e.Time, e.User)
		}
	}
	rep := r.Report()
	fmt.Printf("%d lines: %d events, %d blank, %d bad\n", rep.Lines, rep.Events, rep.Blank, rep.Bad)
	for _, b := range rep.First {
		fmt.Printf("line %d: %s: %s\n", b.Line, b.Reason, b.Detail)
	}
	// Output:
	// line 1: impression at 1767571200123 by user 42
	// line 3: like at 1767571211000 by user 42
	// line 2: watch at 1767571212000 by user 42
	// 6 lines: 3 events, 1 blank, 2 bad
	// line 5: bad value: user: want an integer, got a number with a fraction or exponent
	// line 6: out of order: ts 1767571000000 is 212000 ms before the latest ts 1767571212000 (tolerance 60000 ms)
}
