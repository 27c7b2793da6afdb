//go:build !race

package webhook_test

// raceEnabled says the race detector is on: timings mean nothing then.
const raceEnabled = false
