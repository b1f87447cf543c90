package kernels

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	fmt.Printf("kernels: SIMD %s on %s\n", Describe(), CPUName())
	os.Exit(m.Run())
}

// levels lists every level, best first.
var levels = []Level{AVX512, AVX2, Generic}

// setLevel forces the dispatch to l for the rest of the test and restores it after.
// Tests that call it must not run in parallel with other tests of this package.
func setLevel(tb testing.TB, l Level) {
	tb.Helper()
	saved := cpu
	cpu.level = l
	cpu.bf16 = cpu.hwBF16 && l == AVX512
	tb.Cleanup(func() { cpu = saved })
}

// forEachLevel runs f once per level this machine and build can run, as
// subtests named after the level. Levels above the hardware are skipped.
func forEachLevel(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, l := range levels {
		t.Run(l.String(), func(t *testing.T) {
			if l > cpu.hw {
				t.Skipf("%s not available here (best: %s)", l, cpu.hw)
			}
			setLevel(t, l)
			f(t)
		})
	}
}

// benchLevels runs f once per available level as sub-benchmarks named impl=LEVEL.
func benchLevels(b *testing.B, f func(b *testing.B)) {
	b.Helper()
	for _, l := range levels {
		if l > cpu.hw {
			continue
		}
		b.Run("impl="+l.String(), func(b *testing.B) {
			setLevel(b, l)
			f(b)
		})
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]Level{"generic": Generic, "purego": Generic, "AVX2": AVX2, "avx512": AVX512, " avx-512 ": AVX512} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseLevel("sse9"); err == nil {
		t.Error("ParseLevel(sse9) gave no error")
	}
}

func TestDetectCap(t *testing.T) {
	f := detect("generic")
	if f.level != Generic || f.bf16 {
		t.Errorf("detect(generic) = %+v; want generic without bf16", f)
	}
	if f.hw != cpu.hw {
		t.Errorf("detect(generic).hw = %v; want the hardware level %v", f.hw, cpu.hw)
	}
	f = detect("avx2")
	if f.level > AVX2 || f.bf16 {
		t.Errorf("detect(avx2) = %+v; want at most avx2 and no bf16", f)
	}
	f = detect("bogus")
	if f.capErr == nil || f.level != f.hw {
		t.Errorf("detect(bogus) = %+v; want an error and the hardware level", f)
	}
	// A cap above the hardware never raises the level.
	f = detect("avx512")
	if f.level != f.hw {
		t.Errorf("detect(avx512) = %v; want hardware level %v", f.level, f.hw)
	}
}

// eachLevel calls f once per level this machine can run, with the dispatch
// forced to it, and restores the dispatch after. Fuzz targets use it to
// check every path on every input.
func eachLevel(f func(l Level)) {
	saved := cpu
	defer func() { cpu = saved }()
	for _, l := range levels {
		if l > saved.hw {
			continue
		}
		cpu.level = l
		cpu.bf16 = saved.hwBF16 && l == AVX512
		f(l)
	}
}

// mustPanic checks that f panics with a message containing want.
func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil || !strings.Contains(fmt.Sprint(r), want) {
			t.Fatalf("panic %v; want one containing %q", r, want)
		}
	}()
	f()
}
