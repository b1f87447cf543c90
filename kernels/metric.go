package kernels

import "fmt"

// Metric says how two vectors are compared.
type Metric uint8

const (
	// InnerProduct: larger is better (cosine when the vectors are normalised).
	InnerProduct Metric = iota
	// L2: squared Euclidean distance, smaller is better.
	L2
)

// String names the metric as the command line spells it: "ip" or "l2".
func (m Metric) String() string {
	switch m {
	case InnerProduct:
		return "ip"
	case L2:
		return "l2"
	}
	return fmt.Sprintf("Metric(%d)", uint8(m))
}

// ParseMetric reads "ip" (or "dot", "inner_product") and "l2".
func ParseMetric(s string) (Metric, error) {
	switch s {
	case "ip", "dot", "inner_product", "innerproduct":
		return InnerProduct, nil
	case "l2", "L2", "euclidean":
		return L2, nil
	}
	return 0, fmt.Errorf("kernels: unknown metric %q (want ip or l2)", s)
}

// Largest reports whether larger scores are better under m.
func (m Metric) Largest() bool { return m == InnerProduct }
