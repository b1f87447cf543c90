package kernels

import (
	"testing"
	"unsafe"
)

func TestAligned(t *testing.T) {
	for n := 0; n < 300; n += 7 {
		f := AlignedFloat32(n)
		if len(f) != n || cap(f) != n {
			t.Fatalf("AlignedFloat32(%d): len %d cap %d", n, len(f), cap(f))
		}
		if n > 0 && uintptr(unsafe.Pointer(&f[0]))%Align != 0 {
			t.Fatalf("AlignedFloat32(%d) not aligned", n)
		}
		b := AlignedBytes(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("AlignedBytes(%d): len %d cap %d", n, len(b), cap(b))
		}
		if n > 0 && uintptr(unsafe.Pointer(&b[0]))%Align != 0 {
			t.Fatalf("AlignedBytes(%d) not aligned", n)
		}
	}
}

func TestMetric(t *testing.T) {
	for _, m := range []Metric{InnerProduct, L2} {
		got, err := ParseMetric(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMetric(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMetric("cosine?"); err == nil {
		t.Error("ParseMetric accepted a bad name")
	}
	if !InnerProduct.Largest() || L2.Largest() {
		t.Error("Largest is wrong")
	}
}
