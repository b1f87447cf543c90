//go:build purego

package eventlog

// simdBuild is false in the purego build, which parses with the standard
// library only.
const simdBuild = false
