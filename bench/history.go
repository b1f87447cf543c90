package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HistoryVersion is the version of a Run line in a history file.
const HistoryVersion = 1

// Better says which way a metric improves.
const (
	HigherIsBetter = "higher"
	LowerIsBetter  = "lower"
)

// Metric is one named figure of a run: its unit, which way is better, its
// value (the median of Samples when there are samples) and the samples,
// one a repetition, that significance is computed from.
type Metric struct {
	Name    string    `json:"name"`
	Unit    string    `json:"unit"`
	Better  string    `json:"better"`
	Value   float64   `json:"value"`
	Samples []float64 `json:"samples,omitempty"`
}

// Run is one line of a benchmark history: what ran, where, at which
// commit, with which settings, and its metrics.
type Run struct {
	Version  int               `json:"v"`
	Command  string            `json:"command"`          // kernels, ann, load, ops, gpu, check
	Engine   string            `json:"engine,omitempty"` // empty: reelrank; a peer's name for imported peer runs
	Time     time.Time         `json:"time"`
	Commit   string            `json:"commit"`
	Modified bool              `json:"modified,omitempty"` // the tree had uncommitted changes
	CPU      string            `json:"cpu"`
	Cores    int               `json:"cores"`
	SIMD     string            `json:"simd"`
	Go       string            `json:"go,omitempty"`
	Settings map[string]string `json:"settings,omitempty"`
	Metrics  []Metric          `json:"metrics"`

	// Index is the run's 0-based position among the lines read; set by
	// ReadHistory, not stored.
	Index int `json:"-"`
}

// NewRun starts a Run of command on this machine at the current commit.
func NewRun(command string) Run {
	m := ThisMachine()
	commit, modified := Commit()
	return Run{Version: HistoryVersion, Command: command, Time: time.Now().UTC().Truncate(time.Millisecond),
		Commit: commit, Modified: modified, CPU: m.CPU, Cores: m.Cores, SIMD: m.SIMD, Go: m.Go,
		Settings: map[string]string{}}
}

// Add appends a metric; with samples, its value is their median.
func (r *Run) Add(name, unit string, value float64, samples ...float64) {
	if len(samples) > 0 {
		value = median(samples)
	}
	r.Metrics = append(r.Metrics, Metric{Name: name, Unit: unit, Better: BetterFor(name, unit), Value: value,
		Samples: slices.Clone(samples)})
}

// Metric returns the named metric, or false.
func (r *Run) Metric(name string) (Metric, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// BetterFor guesses which way a metric improves from its unit and name:
// times and latencies are better lower, everything else (rates,
// throughput, recall) higher.
func BetterFor(name, unit string) string {
	u := strings.ToLower(unit)
	switch u {
	case "ns", "us", "µs", "ms", "s", "ns/op", "bytes", "b", "b/op", "allocs/op", "errors":
		return LowerIsBetter
	}
	n := strings.ToLower(name)
	if i := strings.LastIndexByte(n, '/'); i >= 0 {
		n = n[i+1:]
	}
	for _, p := range []string{"p50", "p90", "p99", "p999", "max", "mean", "latency", "err", "build_s", "load_s", "bytes"} {
		if strings.HasPrefix(n, p) {
			return LowerIsBetter
		}
	}
	return HigherIsBetter
}

// Commit names the source the binary was built from: the VCS revision
// stamped into the build, else `git rev-parse HEAD` in the working
// directory's checkout, else "unknown"; modified says the tree had
// uncommitted changes.
func Commit() (commit string, modified bool) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if commit != "" {
		return commit, modified
	}
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown", false
	}
	commit = strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
		modified = len(bytes.TrimSpace(st)) > 0
	}
	return commit, modified
}

// RepoRoot returns the root of the reelrank checkout that holds dir (the
// folder with go.mod naming the module), or "".
func RepoRoot(dir string) string {
	for d := dir; ; {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
			bytes.Contains(b, []byte("module github.com/reelrank/reelrank\n")) {
			return d
		}
		up := filepath.Dir(d)
		if up == d {
			return ""
		}
		d = up
	}
}

// DefaultHistoryPath is where runs are recorded without --history:
// bench/history.jsonl in the checkout the working directory is in, else
// $XDG_STATE_HOME/reelrank/bench-history.jsonl (~/.local/state when unset),
// else "" (no history).
func DefaultHistoryPath() string {
	if wd, err := os.Getwd(); err == nil {
		if root := RepoRoot(wd); root != "" {
			return filepath.Join(root, "bench", "history.jsonl")
		}
	}
	state := os.Getenv("XDG_STATE_HOME")
	if state == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		state = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(state, "reelrank", "bench-history.jsonl")
}

// AppendRun appends r as one line to the history at path, creating the
// file and its folder: one write of the whole line to a file opened
// O_APPEND (so concurrent writers do not interleave lines), then fsync.
func AppendRun(path string, r Run) error {
	if r.Version == 0 {
		r.Version = HistoryVersion
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("bench: history: %w", err)
	}
	line = append(line, '\n')
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("bench: history: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("bench: history: %w", err)
	}
	// A previous writer that died mid-line left no newline: start a line of
	// our own so that only its line is lost.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		if last, err := lastByte(path); err == nil && last != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("bench: history: append to %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("bench: history: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: history: %w", err)
	}
	return nil
}

func lastByte(path string) (byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var b [1]byte
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if _, err := f.ReadAt(b[:], st.Size()-1); err != nil {
		return 0, err
	}
	return b[0], nil
}

// ReadHistory reads the runs of a history file. A line that is not a run
// (corrupt, truncated by a crash, or of a newer version) is skipped and
// named in a warning to warn, when not nil. A missing file is an error
// that errors.Is(err, fs.ErrNotExist) reports.
func ReadHistory(path string, warn io.Writer) ([]Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bench: history: %w", err)
	}
	defer f.Close()
	runs, err := ParseHistory(f, path, warn)
	if err != nil {
		return runs, fmt.Errorf("bench: history: %s: %w", path, err)
	}
	return runs, nil
}

// ParseHistory reads runs from r, one JSON line each; name labels warnings.
func ParseHistory(r io.Reader, name string, warn io.Writer) ([]Run, error) {
	var runs []Run
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var run Run
			if e := json.Unmarshal(line, &run); e != nil || run.Version < 1 || run.Version > HistoryVersion || run.Command == "" {
				if warn != nil {
					why := "not a run"
					if e != nil {
						why = e.Error()
					} else if run.Version > HistoryVersion {
						why = fmt.Sprintf("version %d, this binary reads %d", run.Version, HistoryVersion)
					}
					fmt.Fprintf(warn, "warning: %s:%d: skipped: %s\n", name, n, why)
				}
			} else {
				run.Index = len(runs)
				runs = append(runs, run)
			}
		}
		if errors.Is(err, io.EOF) {
			return runs, nil
		}
		if err != nil {
			return runs, err
		}
	}
}

// SelectRuns picks the runs a selector names, among runs of command (all
// commands when empty): "last" (the newest), "prev" (the one before it),
// "last~N" (N before the newest), a run index ("12", as ReadHistory
// numbers them, under 7 digits; negative counts from the end) or a commit
// prefix of at least 4 hex digits (every run at that commit, oldest first).
func SelectRuns(runs []Run, command, sel string) ([]Run, error) {
	var of []Run
	for _, r := range runs {
		if command == "" || r.Command == command {
			of = append(of, r)
		}
	}
	if len(of) == 0 {
		if command == "" {
			return nil, errors.New("bench: the history has no runs")
		}
		return nil, fmt.Errorf("bench: the history has no %q runs", command)
	}
	back := -1
	switch {
	case sel == "last":
		back = 0
	case sel == "prev":
		back = 1
	case strings.HasPrefix(sel, "last~"):
		n, err := strconv.Atoi(sel[len("last~"):])
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bench: selector %q: want last~N with N >= 0", sel)
		}
		back = n
	}
	if back >= 0 {
		if back >= len(of) {
			return nil, fmt.Errorf("bench: selector %q: only %d runs", sel, len(of))
		}
		return []Run{of[len(of)-1-back]}, nil
	}
	if i, err := strconv.Atoi(sel); err == nil && (len(sel) < 7 || strings.HasPrefix(sel, "-")) {
		if i < 0 {
			i += len(runs)
		}
		for _, r := range of {
			if r.Index == i {
				return []Run{r}, nil
			}
		}
		return nil, fmt.Errorf("bench: selector %q: no run %d%s", sel, i, ofCommand(command))
	}
	if len(sel) >= 4 && isHex(sel) {
		var out []Run
		for _, r := range of {
			if strings.HasPrefix(r.Commit, strings.ToLower(sel)) {
				out = append(out, r)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("bench: selector %q: no run at a commit with that prefix%s", sel, ofCommand(command))
		}
		return out, nil
	}
	return nil, fmt.Errorf("bench: selector %q: want last, prev, last~N, a run index or a commit prefix", sel)
}

func ofCommand(c string) string {
	if c == "" {
		return ""
	}
	return " of " + c
}

func isHex(s string) bool {
	for _, c := range strings.ToLower(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// SanitizeName makes a CPU model into a file name: letters, digits, '.'
// and '-', the rest '_', runs of '_' squeezed.
func SanitizeName(s string) string {
	var b strings.Builder
	under := false
	for _, c := range strings.TrimSpace(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-'
		if ok {
			b.WriteRune(c)
			under = false
		} else if !under {
			b.WriteByte('_')
			under = true
		}
	}
	out := strings.Trim(b.String(), "_")
	if out == "" {
		return "unknown"
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
