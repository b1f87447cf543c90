// Package hashx holds the one integer hash the project shares: splitmix64's
// step, for user-to-arm buckets, HyperLogLog registers, shard placement
// and deterministic samples.
package hashx

// Mix64 is splitmix64's step: a well-mixed 64-bit hash of v.
func Mix64(v uint64) uint64 {
	z := v + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
