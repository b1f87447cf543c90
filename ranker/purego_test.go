//go:build purego

package ranker

// puregoBuild: the kernels run their generic Go code, which allocates.
const puregoBuild = true
