package plan

import "math"

// FleetOf is the Kubernetes fleet of a plan: its shards and replicas, each
// replica's cores, memory and GPUs, and volumes sized from its memory: the
// model folder holds the index file, the feature snapshot and the bundle,
// with room for three versions side by side (the served one, a canary and
// one being copied in), at least 10 GiB; the event logs and their archive
// get 50 GiB, about a week of a shard's events at 1,000 events a second.
func FleetOf(p *Plan, image, namespace, tokenSecret string) Fleet {
	state := float64(p.MemoryPerReplica)
	model := int64(math.Max(3*state, 10<<30))
	return Fleet{
		Namespace:        namespace,
		Image:            image,
		Shards:           p.Shards,
		Replicas:         p.ReplicasPerShard,
		CPU:              float64(p.CoresPerReplica),
		MemoryBytes:      p.MemoryPerReplica,
		GPUs:             p.GPUsPerReplica,
		ModelVolumeBytes: model,
		LogVolumeBytes:   50 << 30,
		TokenSecret:      tokenSecret,
	}
}
