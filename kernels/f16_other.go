//go:build !amd64 || !gc || purego || noasm

package kernels

func dotF16(q []float32, x []F16) float32        { return dotF16Generic(q, x) }
func l2SqF16(q []float32, x []F16) float32       { return l2SqF16Generic(q, x) }
func dotF16Many(dst, q []float32, rows [][]F16)  { dotF16ManyGeneric(dst, q, rows) }
func l2SqF16Many(dst, q []float32, rows [][]F16) { l2SqF16ManyGeneric(dst, q, rows) }
