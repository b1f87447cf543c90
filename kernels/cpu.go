package kernels

import (
	"fmt"
	"os"
	"strings"

	"github.com/klauspost/cpuid/v2"
)

// Level is a SIMD implementation level. Higher levels include the lower ones.
type Level uint8

const (
	// Generic is the portable Go code: the reference every other path is tested against.
	Generic Level = iota
	// AVX2 is the 256-bit path: AVX2, FMA3, F16C, BMI1 and BMI2.
	AVX2
	// AVX512 is the 512-bit path: AVX-512 F, BW, DQ and VL on top of AVX2.
	AVX512
)

// String returns the level's name as REELRANK_SIMD spells it.
func (l Level) String() string {
	switch l {
	case Generic:
		return "generic"
	case AVX2:
		return "avx2"
	case AVX512:
		return "avx512"
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// ParseLevel reads a level name: generic (or purego), avx2, avx512.
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "generic", "purego", "go":
		return Generic, nil
	case "avx2":
		return AVX2, nil
	case "avx512", "avx-512":
		return AVX512, nil
	}
	return Generic, fmt.Errorf("kernels: unknown SIMD level %q (want generic, avx2 or avx512)", s)
}

// EnvLevel is the environment variable that caps the SIMD level at start, for
// debugging and for benchmarks that compare paths: REELRANK_SIMD=generic|avx2|avx512.
const EnvLevel = "REELRANK_SIMD"

// features is the one-time CPU dispatch. It is filled once at start from
// cpuid and REELRANK_SIMD and not changed afterwards, except by this
// package's tests, which force each level in turn.
type features struct {
	hw     Level // the best level the CPU and this build support
	level  Level // the level in use: hw capped by REELRANK_SIMD
	hwBF16 bool  // AVX512_BF16 present (VDPBF16PS)
	bf16   bool  // hwBF16 and level == AVX512
	capErr error // a REELRANK_SIMD value that could not be read
	capped bool  // REELRANK_SIMD lowered the level
}

var cpu = detect(os.Getenv(EnvLevel))

func detect(env string) features {
	var f features
	if asmEnabled {
		c := &cpuid.CPU
		if c.Supports(cpuid.AVX, cpuid.AVX2, cpuid.FMA3, cpuid.F16C, cpuid.BMI1, cpuid.BMI2) {
			f.hw = AVX2
			if c.Supports(cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512DQ, cpuid.AVX512VL) {
				f.hw = AVX512
				f.hwBF16 = c.Supports(cpuid.AVX512BF16)
			}
		}
	}
	f.level = f.hw
	if env != "" {
		l, err := ParseLevel(env)
		if err != nil {
			f.capErr = err
		} else if l < f.level {
			f.level, f.capped = l, true
		}
	}
	f.bf16 = f.hwBF16 && f.level == AVX512
	return f
}

// SIMD reports the level the kernels use in this process.
func SIMD() Level { return cpu.level }

// HasBF16 reports whether the bf16 kernels run on AVX512_BF16 instructions
// (otherwise they round to bf16 and compute in f32 with the same results).
func HasBF16() bool { return cpu.bf16 }

// Describe is a one-line summary of the dispatch for logs and reports, for
// example "avx512 (cpu: avx512, bf16: yes)".
func Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (cpu: %s, bf16: %s", cpu.level, cpu.hw, yesNo(cpu.bf16))
	if cpu.capped {
		fmt.Fprintf(&b, ", capped by %s", EnvLevel)
	}
	if cpu.capErr != nil {
		fmt.Fprintf(&b, ", ignored %s: %v", EnvLevel, cpu.capErr)
	}
	if !asmEnabled {
		b.WriteString(", assembly not built")
	}
	b.WriteString(")")
	return b.String()
}

// CPUName is the processor's brand string and family, to name beside benchmark figures.
func CPUName() string {
	c := &cpuid.CPU
	return fmt.Sprintf("%s (family %d model %d)", strings.TrimSpace(c.BrandName), c.Family, c.Model)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
