//go:build !amd64 || !gc || purego || noasm

package kernels

func dot(a, b []float32) float32       { return dotGeneric(a, b) }
func l2Sq(a, b []float32) float32      { return l2SqGeneric(a, b) }
func dotBatch(dst, q, rows []float32)  { dotBatchGeneric(dst, q, rows) }
func l2SqBatch(dst, q, rows []float32) { l2SqBatchGeneric(dst, q, rows) }
