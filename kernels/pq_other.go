//go:build !amd64 || !gc || purego || noasm

package kernels

func pqTable(dst, q, t []float32, m, ksub, dsub int, l2 bool) {
	pqTableGeneric(dst, q, t, m, ksub, dsub, l2)
}

func pqScan8(dst []float32, codes []uint8, m int, table []float32) {
	pqScan8Generic(dst, codes, m, table)
}

// pqScan8Gather has no effect without assembly.
var pqScan8Gather = false
