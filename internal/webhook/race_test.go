//go:build race

package webhook_test

// raceEnabled says the race detector is on: everything runs several times slower.
const raceEnabled = true
