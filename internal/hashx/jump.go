package hashx

// Jump returns the bucket, of n, that owns an id: jump consistent hashing
// (Lamping and Veach, 2014) of the id mixed by Mix64. Growing n to n+1
// moves only a 1/(n+1) share of the ids, all to the new bucket. n <= 1
// gives 0. It is the shard placement of client.ShardOf and of a sharded
// engine, which must agree.
func Jump(id int64, n int) int {
	if n <= 1 {
		return 0
	}
	z := Mix64(uint64(id))
	var b, j int64 = -1, 0
	for j < int64(n) {
		b = j
		z = z*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((z>>33)+1)))
	}
	return int(b)
}
