package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"sync"

	"modernc.org/sqlite"
)

// SQLite lets one connection write at a time. Rather than give the whole
// database one connection (every read then waits for every write, and the
// webhook's commit queues behind River's fetches, completions and the
// dispatcher), the store opens a few connections and passes every write
// through one gate: a transaction holds it from BEGIN to COMMIT, a write
// outside a transaction for its statement. Reads outside a transaction
// run beside the writer, as WAL allows. Writes never meet SQLITE_BUSY,
// since only the gate's holder writes.
//
// The gate serves urgent writers first: the webhook's group commit, which
// has senders waiting on it, goes before any waiting background write.
// Background work then runs in the gaps between commits, and the longest a
// commit waits is one background transaction.

// urgentKey marks a context whose writes go first through the gate.
type urgentKey struct{}

// urgent returns ctx marked so that its writes go first.
func urgent(ctx context.Context) context.Context { return context.WithValue(ctx, urgentKey{}, true) }

func isUrgent(ctx context.Context) bool { v, _ := ctx.Value(urgentKey{}).(bool); return v }

// writeGate is a lock with two queues: urgent waiters are served before
// the others, each queue in order of arrival.
type writeGate struct {
	mu             sync.Mutex
	held           bool
	urgent, others []chan struct{}
}

// acquire waits for the gate until ctx ends.
func (g *writeGate) acquire(ctx context.Context, first bool) error {
	g.mu.Lock()
	if !g.held {
		g.held = true
		g.mu.Unlock()
		return nil
	}
	ready := make(chan struct{})
	if first {
		g.urgent = append(g.urgent, ready)
	} else {
		g.others = append(g.others, ready)
	}
	g.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		select {
		case <-ready: // handed over meanwhile: pass it on
			g.handOff()
		default:
			g.urgent = remove(g.urgent, ready)
			g.others = remove(g.others, ready)
		}
		return ctx.Err()
	}
}

// release gives the gate to the next waiter.
func (g *writeGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.handOff()
}

// handOff passes the held gate on, urgent waiters first; g.mu is held.
func (g *writeGate) handOff() {
	var next chan struct{}
	switch {
	case len(g.urgent) > 0:
		next, g.urgent = g.urgent[0], g.urgent[1:]
	case len(g.others) > 0:
		next, g.others = g.others[0], g.others[1:]
	default:
		g.held = false
		return
	}
	close(next)
}

func remove(q []chan struct{}, c chan struct{}) []chan struct{} {
	for i, w := range q {
		if w == c {
			return append(q[:i], q[i+1:]...)
		}
	}
	return q
}

// writes reports whether a statement may write: anything but a SELECT
// (after leading blanks and comments).
func writes(query string) bool {
	q := query
	for {
		q = strings.TrimLeft(q, " \t\r\n")
		switch {
		case strings.HasPrefix(q, "--"):
			_, rest, ok := strings.Cut(q, "\n")
			if !ok {
				return false
			}
			q = rest
			continue
		case strings.HasPrefix(q, "/*"):
			_, rest, ok := strings.Cut(q[2:], "*/")
			if !ok {
				return false
			}
			q = rest
			continue
		}
		return len(q) < 6 || !strings.EqualFold(q[:6], "select")
	}
}

// gatedConnector opens SQLite connections whose writes pass through gate.
type gatedConnector struct {
	dsn  string
	gate *writeGate
	drv  *sqlite.Driver
}

func (c *gatedConnector) Connect(context.Context) (driver.Conn, error) {
	inner, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &gatedConn{inner: inner, gate: c.gate, stmts: map[string]*cachedStmt{}}, nil
}

func (c *gatedConnector) Driver() driver.Driver { return c.drv }

// sqliteConn is what the SQLite driver's connections offer.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// gatedConn is one SQLite connection. It also keeps its statements
// prepared: River's SQLite driver runs its per-row queries (completions,
// inserts) as plain queries, and parsing them again each time cost a fifth
// of the service's CPU under load.
type gatedConn struct {
	inner driver.Conn
	gate  *writeGate
	inTx  bool
	stmts map[string]*cachedStmt
}

// maxCachedStmts bounds the statements a connection keeps prepared.
const maxCachedStmts = 256

type cachedStmt struct {
	driver.Stmt
	busy bool // its rows are being read
}

func (c *gatedConn) sq() sqliteConn { return c.inner.(sqliteConn) }

func (c *gatedConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *gatedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.sq().PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &gatedStmt{Stmt: s, c: c, write: writes(query)}, nil
}

func (c *gatedConn) Close() error {
	for q, s := range c.stmts {
		s.Close()
		delete(c.stmts, q)
	}
	return c.inner.Close()
}

func (c *gatedConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *gatedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.gate.acquire(ctx, isUrgent(ctx)); err != nil {
		return nil, err
	}
	tx, err := c.sq().BeginTx(ctx, opts)
	if err != nil {
		c.gate.release()
		return nil, err
	}
	c.inTx = true
	return &gatedTx{Tx: tx, c: c}, nil
}

func (c *gatedConn) Ping(ctx context.Context) error         { return c.sq().Ping(ctx) }
func (c *gatedConn) ResetSession(ctx context.Context) error { return c.sq().ResetSession(ctx) }
func (c *gatedConn) IsValid() bool                          { return c.sq().IsValid() }

// lock takes the gate for a statement that writes outside a transaction,
// and returns what gives it back.
func (c *gatedConn) lock(ctx context.Context, write bool) (func(), error) {
	if c.inTx || !write {
		return func() {}, nil
	}
	if err := c.gate.acquire(ctx, isUrgent(ctx)); err != nil {
		return nil, err
	}
	return c.gate.release, nil
}

// stmt returns query prepared, from the cache when it is there and not in
// use; done gives it back.
func (c *gatedConn) stmt(ctx context.Context, query string) (s driver.Stmt, done func(), err error) {
	if cs, ok := c.stmts[query]; ok && !cs.busy {
		cs.busy = true
		return cs.Stmt, func() { cs.busy = false }, nil
	}
	s, err = c.sq().PrepareContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := c.stmts[query]; ok || len(c.stmts) >= maxCachedStmts {
		return s, func() { s.Close() }, nil
	}
	cs := &cachedStmt{Stmt: s, busy: true}
	c.stmts[query] = cs
	return s, func() { cs.busy = false }, nil
}

func (c *gatedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	unlock, err := c.lock(ctx, writes(query))
	if err != nil {
		return nil, err
	}
	defer unlock()
	s, done, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	defer done()
	return s.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *gatedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	unlock, err := c.lock(ctx, writes(query))
	if err != nil {
		return nil, err
	}
	s, done, err := c.stmt(ctx, query)
	if err != nil {
		unlock()
		return nil, err
	}
	rows, err := s.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		done()
		unlock()
		return nil, err
	}
	return &gatedRows{Rows: rows, done: func() { done(); unlock() }}, nil
}

type gatedTx struct {
	driver.Tx
	c *gatedConn
}

func (t *gatedTx) Commit() error   { return t.end(t.Tx.Commit()) }
func (t *gatedTx) Rollback() error { return t.end(t.Tx.Rollback()) }

func (t *gatedTx) end(err error) error {
	if t.c.inTx {
		t.c.inTx = false
		t.c.gate.release()
	}
	return err
}

// gatedStmt is a statement the caller prepared: it takes the gate as its
// connection's plain queries do.
type gatedStmt struct {
	driver.Stmt
	c     *gatedConn
	write bool
}

func (s *gatedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	unlock, err := s.c.lock(ctx, s.write)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *gatedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	unlock, err := s.c.lock(ctx, s.write)
	if err != nil {
		return nil, err
	}
	rows, err := s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		unlock()
		return nil, err
	}
	return &gatedRows{Rows: rows, done: unlock}, nil
}

func (s *gatedStmt) Exec(args []driver.Value) (driver.Result, error) {
	return nil, errors.New("sqlite: Exec without a context is not supported")
}

func (s *gatedStmt) Query(args []driver.Value) (driver.Rows, error) {
	return nil, errors.New("sqlite: Query without a context is not supported")
}

// gatedRows gives back the statement and the gate when closed.
type gatedRows struct {
	driver.Rows
	done   func()
	closed bool
}

func (r *gatedRows) Close() error {
	err := r.Rows.Close()
	if !r.closed {
		r.closed = true
		r.done()
	}
	return err
}
