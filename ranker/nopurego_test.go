//go:build !purego

package ranker

const puregoBuild = false
