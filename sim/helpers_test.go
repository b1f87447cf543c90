package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// testConfig is a small world that generates in well under a second.
func testConfig() Config {
	c := DefaultConfig()
	c.Users, c.Reels, c.Days, c.Seed = 3000, 8000, 4, 7
	c.SessionsPerDay = 0.5
	return c
}

var shared struct {
	once    sync.Once
	dir     string
	sum     Summary
	err     error
	logOnce sync.Once
	log     []logLine
}

// sharedLog reads the shared world's log once for the whole test binary.
func sharedLog(t testing.TB) []logLine {
	t.Helper()
	dir, _ := sharedWorld(t)
	shared.logOnce.Do(func() { shared.log = readLog(t, dir) })
	if shared.log == nil {
		t.Fatal("the shared log could not be read")
	}
	return shared.log
}

// sharedWorld generates testConfig once for the whole test binary.
func sharedWorld(t testing.TB) (string, Summary) {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "simtest")
		if shared.err == nil {
			shared.sum, shared.err = Generate(context.Background(), testConfig(), shared.dir, GenerateOptions{})
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.dir, shared.sum
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// logLine is an event line with its raw keys.
type logLine struct {
	keys map[string]bool
	Type string  `json:"type"`
	TS   int64   `json:"ts"`
	User int64   `json:"user"`
	Reel int64   `json:"reel"`
	Auth int64   `json:"author"`
	Sess int64   `json:"session"`
	Pos  int     `json:"pos"`
	Prop float64 `json:"prop"`
	Arm  string  `json:"arm"`
	Secs float64 `json:"secs"`
	Frac float64 `json:"frac"`
}

func readLog(t testing.TB, dir string) []logLine {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, FileEvents))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		var l logLine
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("line %d: %v", len(out)+1, err)
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d: %v", len(out)+1, err)
		}
		l.keys = map[string]bool{}
		for k := range raw {
			l.keys[k] = true
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
