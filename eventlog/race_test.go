//go:build race

package eventlog

// raceEnabled: the race detector changes what allocates.
const raceEnabled = true
