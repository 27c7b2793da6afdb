package store

import (
	"context"
	"database/sql/driver"
	"time"
)

// SQLite copies its write-ahead log into the database file in a
// checkpoint, which by default the commit that fills the log past 1,000
// pages runs itself: then the webhook's group commit, with every sender
// of its batch waiting, also writes and fsyncs the database file. The
// store runs checkpoints in the background instead, on a connection of
// their own: a PASSIVE checkpoint needs no write lock, and commits go on
// while it copies. wal_autocheckpoint stays as a backstop, far above what
// the background keeps the log to.
const (
	checkpointEvery    = 250 * time.Millisecond
	backstopCheckpoint = 16384 // pages
)

// checkpointer runs PASSIVE checkpoints every checkpointEvery until ctx
// ends, then closes done.
func checkpointer(ctx context.Context, conn driver.Conn, done chan<- struct{}) {
	defer close(done)
	defer conn.Close()
	exec := conn.(driver.ExecerContext)
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			// A failed checkpoint is retried on the next tick, and the
			// backstop checkpoints on commit meanwhile.
			_, _ = exec.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)", nil)
		}
	}
}
