// Package store owns hookwise's database: opening SQLite or PostgreSQL,
// applying migrations, and the queries over our own tables. River keeps its
// tables in the same database (see package queue) so that a delivery row and
// its job commit together.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
)

// Dialect names the SQL engine behind a Store.
type Dialect string

// The supported engines.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Store is the database. It is safe for concurrent use.
type Store struct {
	DB      *sql.DB
	Dialect Dialect
	now     func() time.Time
	// path is the SQLite file, and wal its write-ahead log that Sync flushes.
	path, wal string
	// migrationFiles are the migrations this hookwise knows, NNN_name.sql
	// files at the root (see migrate.go).
	migrationFiles fs.FS
	// floorColumn is set once hw_schema_migrations is known to record
	// floors (see hasFloorColumn).
	floorColumn atomic.Bool
	// ingestAt is when PersistDeliveries last ran (Unix nanoseconds).
	ingestAt atomic.Int64
	// stopCheckpoints ends the background checkpoints (SQLite).
	stopCheckpoints func()
}

// sqliteConns is how many connections a SQLite store opens: one writes at
// a time, the others read meanwhile.
const sqliteConns = 4

// IsPostgres reports whether url selects PostgreSQL rather than a SQLite file.
func IsPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// Open opens the database named by url: a postgres:// URL or a SQLite file
// path (its directory is created). It does not migrate.
func Open(ctx context.Context, url string) (*Store, error) {
	if IsPostgres(url) {
		return openPostgres(ctx, url)
	}
	path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite://"), "sqlite:")
	if path == "" {
		return nil, errors.New("open database: empty SQLite path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
	}
	// WAL lets readers proceed during a write. synchronous(NORMAL) commits
	// without an fsync: whatever must survive a power cut before it is
	// acknowledged (a delivery before its 202) calls Sync after its commit,
	// so the webhook's next batch is written while the last one is flushed.
	// A checkpoint syncs the WAL before copying it into the database.
	//
	// Reads go through a memory map of the file and a larger page cache
	// (8 MiB per connection rather than 2): under load, reading pages back
	// with a system call each cost more than a tenth of the service's CPU.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
		"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=mmap_size(268435456)" +
		"&_pragma=cache_size(-8192)&_pragma=wal_autocheckpoint(" + strconv.Itoa(backstopCheckpoint) + ")&_txlock=immediate"
	// SQLite allows one writer: every write passes one gate (gate.go), so
	// that none meets SQLITE_BUSY (which River's SQLite driver avoids
	// otherwise with a single connection), while reads run beside it.
	drv := &sqlite.Driver{}
	db := sql.OpenDB(&gatedConnector{dsn: dsn, gate: &writeGate{}, drv: drv})
	db.SetMaxOpenConns(sqliteConns)
	db.SetMaxIdleConns(sqliteConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	st := &Store{DB: db, Dialect: SQLite, now: time.Now, path: path, wal: path + "-wal", migrationFiles: builtinMigrations(SQLite)}
	// The first read creates the log; make its name durable too.
	if _, err := db.ExecContext(ctx, `SELECT count(*) FROM sqlite_master`); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	ckpt, err := drv.Open(dsn)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	bg, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go checkpointer(bg, ckpt, done)
	st.stopCheckpoints = func() { stop(); <-done }
	return st, nil
}

// openPostgres opens a pool on a PostgreSQL server. Errors never echo the
// URL, which may hold a password.
func openPostgres(ctx context.Context, url string) (*Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, errors.New("open database: not a valid PostgreSQL URL")
	}
	// Every instance of a fleet holds its own pool: the service sets its
	// size from database_max_connections.
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	return &Store{DB: db, Dialect: Postgres, now: time.Now, migrationFiles: builtinMigrations(Postgres)}, nil
}

// MigrationLock runs fn while holding a lock that keeps other instances
// from migrating at the same time: on PostgreSQL, a session advisory lock;
// SQLite has one serving process and its own file lock.
func (s *Store) MigrationLock(ctx context.Context, fn func() error) error {
	if s.Dialect != Postgres {
		return fn()
	}
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer conn.Close()
	// An arbitrary constant: the same for every hookwise, unlike anything
	// else is likely to use.
	const key = 0x686f6f6b77697365 // "hookwise"
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(key)); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(key)) //nolint:errcheck // the session ends with the connection anyway
	return fn()
}

// insertReturningID runs an INSERT and returns the new row's id: SQLite
// reports it without a result set, PostgreSQL needs RETURNING.
func (s *Store) insertReturningID(ctx context.Context, tx *sql.Tx, query string, args ...any) (int64, error) {
	if s.Dialect == Postgres {
		var id int64
		err := tx.QueryRowContext(ctx, s.q(query+` RETURNING id`), args...).Scan(&id)
		return id, err
	}
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// Sync returns once every transaction committed so far is on disk: for
// SQLite it fsyncs the write-ahead log (fsync flushes the file, whichever
// descriptor asks); PostgreSQL commits are durable already.
func (s *Store) Sync(ctx context.Context) error {
	if s.wal == "" {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(s.wal)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no log: every commit is in the database file, synced
	}
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	defer f.Close()
	if err := syscall.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("sync %s: %w", filepath.Base(s.wal), err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close closes the database.
func (s *Store) Close() error {
	if s.stopCheckpoints != nil {
		s.stopCheckpoints()
	}
	return s.DB.Close()
}

// Rebind rewrites a query written with ? placeholders for the store's
// dialect ($1, $2, … on PostgreSQL), for callers that run their own SQL.
func (s *Store) Rebind(query string) string { return s.q(query) }

// q rewrites a query written with ? placeholders for the store's dialect.
func (s *Store) q(query string) string {
	if s.Dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *Store) millis() int64 { return s.now().UnixMilli() }

// Ready reports whether the database answers, every migration this
// hookwise knows is applied, and this hookwise may run on it.
func (s *Store) Ready(ctx context.Context) error {
	files, err := s.migrations()
	if err != nil {
		return err
	}
	applied, err := s.appliedMigrations(ctx)
	if err != nil {
		return err
	}
	missing := 0
	for _, f := range files {
		if _, ok := applied[f.version]; !ok {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("database: %d of %d migrations applied", len(files)-missing, len(files))
	}
	if err := checkReadable(files, applied); err != nil {
		return err
	}
	// Reading is not enough: a full disk or a read-only file still answers
	// queries. Only a synced commit shows that a 202 could be given.
	_, err = s.DB.ExecContext(ctx, s.q(`INSERT INTO hw_health (id, checked_at) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at`), s.millis())
	if err == nil {
		err = s.Sync(ctx)
	}
	if err != nil {
		return fmt.Errorf("database does not take writes: %w", err)
	}
	return nil
}

// LockServing makes sure only one process serves from a SQLite file: River
// on SQLite has one worker process, which is what lets a restart take back
// the jobs its predecessor left running at once (see queue.RescueOrphans).
// The lock dies with the process. PostgreSQL needs no lock.
func (s *Store) LockServing() (unlock func(), err error) {
	if s.Dialect != SQLite {
		return func() {}, nil
	}
	f, err := os.OpenFile(s.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", s.path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another hookwise is already serving from %s (SQLite has one serving process; move to PostgreSQL to run several)", s.path)
		}
		return nil, fmt.Errorf("lock %s: %w", s.path, err)
	}
	return func() { f.Close() }, nil
}

// dbtx is the database or one of its transactions: the queries that run
// either way take one.
type dbtx interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// Tx runs fn in a transaction and commits it when fn returns nil.
func (s *Store) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		// With one connection, a transaction left open would stall the
		// whole database.
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
