//go:build race

package app_test

// raceEnabled says the race detector is on: everything runs several times slower.
const raceEnabled = true
