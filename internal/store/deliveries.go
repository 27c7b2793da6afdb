package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
)

// Delivery statuses.
const (
	StatusQueued  = "queued"  // stored, its job not finished yet
	StatusDone    = "done"    // handled: the model was asked and GitHub updated
	StatusSkipped = "skipped" // deliberately not handled; Reason says why
	StatusFailed  = "failed"  // gave up (a dead letter); Reason holds the last error
	// StatusDiscarded is a dead letter an operator took out of the queue.
	StatusDiscarded = "discarded"
	// StatusBatched is a delivery whose request waits for the Message
	// Batches API (see batches.go); it is queued again once its result is
	// in.
	StatusBatched = "batched"
	// StatusWaiting is a delivery whose job waits, without failing, for
	// an upstream's allowance (GitHub's write window, a rate limit, an
	// open circuit); Reason says what for and until when.
	StatusWaiting = "waiting"
)

// Statuses lists every delivery status, in the order a delivery meets them.
func Statuses() []string {
	return []string{StatusQueued, StatusWaiting, StatusDeferred, StatusBatched, StatusDone, StatusSkipped, StatusFailed, StatusDiscarded}
}

// Delivery is one webhook delivery as GitHub sent it.
type Delivery struct {
	ID             int64
	HookID         string
	HookTarget     string // repository, organization or integration (a GitHub App's hook)
	GUID           string
	Event          string
	Action         string
	Repo           string
	InstallationID int64
	Sender         string
	Payload        []byte // the JSON payload, as received
	ReceivedAt     time.Time
	Status         string
	Reason         string
	UpdatedAt      time.Time
	// Thread is the thread the delivery was planned for ("" before
	// planning, or when it deserves no analysis).
	Thread string

	packed []byte // Payload as stored (see Pack)
}

// payloadCodec is how the store keeps payloads (migration 007): an S2 block.
// Webhook JSON shrinks to 20–45% of its size, and S2 compresses at over a
// gigabyte a second. Rows stored before it have codec "" (as received).
const payloadCodec = "s2"

// Pack compresses the payload as the store will keep it. The webhook calls
// it in each request's goroutine, so that a batch's commit does not
// compress its deliveries one after another; InsertDeliveries compresses
// what is not packed. Call it once Payload is final.
func (d *Delivery) Pack() { d.packed = pack(d.Payload) }

// stored returns the payload as the store keeps it.
func (d *Delivery) stored() []byte {
	if d.packed == nil {
		return pack(d.Payload)
	}
	return d.packed
}

// pack compresses a payload. S2 needs room for its worst case, about 117%
// of the payload, where the block is usually under half: it encodes into a
// reused scratch buffer, and pack keeps an exact copy.
func pack(payload []byte) []byte {
	scratch := packBuffers.Get().(*[]byte)
	if n := s2.MaxEncodedLen(len(payload)); cap(*scratch) < n {
		*scratch = make([]byte, n)
	}
	out := bytes.Clone(s2.Encode((*scratch)[:cap(*scratch)], payload))
	if cap(*scratch) <= maxPooledPack {
		packBuffers.Put(scratch)
	}
	return out
}

var packBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledPack bounds the scratch buffers kept for reuse: one large push
// should not keep its room in memory.
const maxPooledPack = 1 << 20

// unpack returns a payload stored with codec as JSON.
func unpack(codec string, b []byte) ([]byte, error) {
	switch codec {
	case "":
		return b, nil
	case payloadCodec:
		out, err := s2.Decode(nil, b)
		if err != nil {
			return nil, fmt.Errorf("decompress payload: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("payload stored with unknown codec %q", codec)
}

// EventName is "event.action", or the event alone when it has no action.
func (d Delivery) EventName() string {
	if d.Action == "" {
		return d.Event
	}
	return d.Event + "." + d.Action
}

// InsertDeliveries stores ds in tx and returns each one's new id, or 0 where
// (hook id, GUID) is already stored — a redelivery or a concurrent copy,
// including a copy earlier in the same batch.
func (s *Store) InsertDeliveries(ctx context.Context, tx *sql.Tx, ds []Delivery) ([]int64, error) {
	const insert = `INSERT INTO hw_deliveries
		(hook_id, hook_target, guid, event, action, repo, installation_id, sender, payload, payload_codec, received_at, status, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (hook_id, guid) DO NOTHING`
	if s.Dialect == Postgres {
		return s.insertDeliveriesReturning(ctx, tx, ds)
	}
	stmt, err := tx.PrepareContext(ctx, insert)
	if err != nil {
		return nil, fmt.Errorf("insert deliveries: %w", err)
	}
	defer stmt.Close()
	ids := make([]int64, len(ds))
	now := s.millis()
	for i := range ds {
		d := &ds[i]
		// Exec and LastInsertId cost SQLite less than RETURNING and a row
		// scan, on the hottest path hookwise has.
		res, err := stmt.ExecContext(ctx, d.HookID, d.HookTarget, d.GUID, d.Event, d.Action, d.Repo, d.InstallationID,
			d.Sender, d.stored(), payloadCodec, d.ReceivedAt.UnixMilli(), StatusQueued, now)
		if err != nil {
			return nil, fmt.Errorf("insert delivery %s: %w", d.GUID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			ids[i], _ = res.LastInsertId()
		}
	}
	return ids, nil
}

// PersistDeliveries stores a batch of deliveries atomically and reports
// which of them were new (not stored before, nor earlier in the batch).
func (s *Store) PersistDeliveries(ctx context.Context, ds []Delivery) ([]bool, error) {
	s.ingestAt.Store(time.Now().UnixNano())
	if s.Dialect == Postgres {
		return s.copyDeliveries(ctx, ds)
	}
	var ids []int64
	// Senders wait on this commit: it goes before background writes.
	ctx = urgent(ctx)
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		ids, err = s.InsertDeliveries(ctx, tx, ds)
		return err
	})
	return inserted(ids), err
}

// Ingesting reports whether deliveries were persisted within the last d:
// background writers (the dispatcher) then leave the database to the
// webhook part of the time.
func (s *Store) Ingesting(d time.Duration) bool {
	at := s.ingestAt.Load()
	return at != 0 && time.Since(time.Unix(0, at)) < d
}

// CommitProfile is how PersistDeliveries is best driven: how many batches
// may commit at once, and whether a batch is durable when it returns or
// needs Sync. On PostgreSQL each batch is one COPY, durable when it
// returns, and two in flight hide the round trips to the server; SQLite
// writes one transaction at a time and syncs its log after the commit.
func (s *Store) CommitProfile() (committers int, durable bool) {
	if s.Dialect == Postgres {
		return 2, true
	}
	return 1, false
}

// inserted reports which ids are of new rows.
func inserted(ids []int64) []bool {
	out := make([]bool, len(ids))
	for i, id := range ids {
		out[i] = id != 0
	}
	return out
}

// insertDeliveriesReturning is InsertDeliveries for PostgreSQL, whose
// driver has no LastInsertId: one INSERT … SELECT FROM unnest(arrays) …
// RETURNING per batch. The statement is the same whatever the batch size,
// so the driver prepares it once per connection; and the batch is one
// round trip.
func (s *Store) insertDeliveriesReturning(ctx context.Context, tx dbtx, ds []Delivery) ([]int64, error) {
	n := len(ds)
	hook, target, guid, event, action, repo, sender := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	inst, received := make([]int64, n), make([]int64, n)
	payload := make([][]byte, n)
	for i := range ds {
		d := &ds[i]
		hook[i], target[i], guid[i], event[i], action[i], repo[i], sender[i] = d.HookID, d.HookTarget, d.GUID, d.Event, d.Action, d.Repo, d.Sender
		inst[i], received[i], payload[i] = d.InstallationID, d.ReceivedAt.UnixMilli(), d.stored()
	}
	rows, err := tx.QueryContext(ctx, `INSERT INTO hw_deliveries
		(hook_id, hook_target, guid, event, action, repo, installation_id, sender, payload, payload_codec, received_at, status, updated_at)
		SELECT h, ht, g, e, a, r, i, sn, p, $11, rc, $12, $13
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::bytea[], $10::bigint[])
			AS t(h, ht, g, e, a, r, i, sn, p, rc)
		ON CONFLICT (hook_id, guid) DO NOTHING
		RETURNING id, hook_id, guid`,
		hook, target, guid, event, action, repo, inst, sender, payload, received, payloadCodec, StatusQueued, s.millis())
	if err != nil {
		return nil, fmt.Errorf("insert deliveries: %w", err)
	}
	defer rows.Close()
	// A copy repeated inside the batch conflicts with the first: only the
	// first of equal keys gets the id.
	byKey := map[[2]string]int64{}
	for rows.Next() {
		var id int64
		var hook, guid string
		if err := rows.Scan(&id, &hook, &guid); err != nil {
			return nil, fmt.Errorf("insert deliveries: %w", err)
		}
		byKey[[2]string{hook, guid}] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert deliveries: %w", err)
	}
	ids := make([]int64, len(ds))
	for i, d := range ds {
		k := [2]string{d.HookID, d.GUID}
		ids[i] = byKey[k]
		delete(byKey, k)
	}
	return ids, nil
}

const deliveryColumns = `id, hook_id, hook_target, guid, event, action, repo, installation_id, sender, received_at, status, reason, updated_at, thread`

// scanDelivery reads deliveryColumns, and when withPayload the payload and
// payload_codec after them.
func scanDelivery(row interface{ Scan(...any) error }, withPayload bool) (Delivery, error) {
	var d Delivery
	var received, updated int64
	var codec string
	dest := []any{&d.ID, &d.HookID, &d.HookTarget, &d.GUID, &d.Event, &d.Action, &d.Repo, &d.InstallationID,
		&d.Sender, &received, &d.Status, &d.Reason, &updated, &d.Thread}
	if withPayload {
		dest = append(dest, &d.Payload, &codec)
	}
	if err := row.Scan(dest...); err != nil {
		return Delivery{}, err
	}
	if withPayload {
		var err error
		if d.Payload, err = unpack(codec, d.Payload); err != nil {
			return Delivery{}, err
		}
	}
	d.ReceivedAt = time.UnixMilli(received).UTC()
	d.UpdatedAt = time.UnixMilli(updated).UTC()
	return d, nil
}

// Delivery returns the delivery with its payload.
func (s *Store) Delivery(ctx context.Context, id int64) (Delivery, error) {
	row := s.DB.QueryRowContext(ctx, s.q(`SELECT `+deliveryColumns+`, payload, payload_codec FROM hw_deliveries WHERE id = ?`), id)
	d, err := scanDelivery(row, true)
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("delivery %d: %w", id, err)
	}
	return d, nil
}

// FindDelivery looks a delivery up by its database id or its GUID (the
// newest row with that GUID when several hooks share it).
func (s *Store) FindDelivery(ctx context.Context, ref string) (Delivery, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return s.Delivery(ctx, id)
	}
	var id int64
	err := s.DB.QueryRowContext(ctx, s.q(`SELECT id FROM hw_deliveries WHERE guid = ? ORDER BY id DESC LIMIT 1`), ref).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, fmt.Errorf("delivery %q: %w", ref, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("delivery %q: %w", ref, err)
	}
	return s.Delivery(ctx, id)
}

// DeliveryFilter selects deliveries for ListDeliveries.
type DeliveryFilter struct {
	Status string // "" for all
	Repo   string // "" for all
	Before int64  // only ids below this; 0 for no bound (paging)
	Limit  int    // default 50
}

// ListDeliveries returns deliveries newest first, without payloads.
func (s *Store) ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	query := `SELECT ` + deliveryColumns + ` FROM hw_deliveries WHERE 1=1`
	var args []any
	if f.Status != "" {
		query += ` AND status = ?`
		args = append(args, f.Status)
	}
	if f.Repo != "" {
		query += ` AND repo = ?`
		args = append(args, f.Repo)
	}
	if f.Before > 0 {
		query += ` AND id < ?`
		args = append(args, f.Before)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.DB.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows, false)
		if err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// SetDeliveryStatus records how a delivery ended (or that it is queued again).
func (s *Store) SetDeliveryStatus(ctx context.Context, id int64, status, reason string) error {
	return s.setDeliveryStatus(ctx, s.DB, id, status, reason)
}

// SetDeliveryStatusTx is SetDeliveryStatus inside tx.
func (s *Store) SetDeliveryStatusTx(ctx context.Context, tx *sql.Tx, id int64, status, reason string) error {
	return s.setDeliveryStatus(ctx, tx, id, status, reason)
}

// DeliveryStatusTx reads a delivery's status and reason in tx.
func (s *Store) DeliveryStatusTx(ctx context.Context, tx *sql.Tx, id int64) (Delivery, error) {
	d := Delivery{ID: id}
	err := tx.QueryRowContext(ctx, s.q(`SELECT status, reason FROM hw_deliveries WHERE id = ?`), id).Scan(&d.Status, &d.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("delivery %d: %w", id, err)
	}
	return d, nil
}

func (s *Store) setDeliveryStatus(ctx context.Context, db dbtx, id int64, status, reason string) error {
	_, err := db.ExecContext(ctx, s.q(`UPDATE hw_deliveries SET status = ?, reason = ?, updated_at = ? WHERE id = ?`),
		status, reason, s.millis(), id)
	if err != nil {
		return fmt.Errorf("set delivery %d status: %w", id, err)
	}
	return nil
}

// Claim is a delivery the dispatcher claimed: what its job needs, and
// what a job's priority can be told from without reading the payload.
type Claim struct {
	ID         int64
	Event      string
	Action     string
	Repo       string
	ReceivedAt time.Time
}

// ClaimUndispatchedTx marks up to limit deliveries whose processing job is
// not enqueued yet as dispatched and returns them, oldest first. The
// caller enqueues their jobs in the same transaction.
func (s *Store) ClaimUndispatchedTx(ctx context.Context, tx *sql.Tx, limit int) ([]Claim, error) {
	// The outer condition is checked again: on PostgreSQL a claim that
	// waited for another's rows sees them claimed once that one commits.
	rows, err := tx.QueryContext(ctx, s.q(`UPDATE hw_deliveries SET dispatched = 1
		WHERE id IN (SELECT id FROM hw_deliveries WHERE dispatched = 0 ORDER BY id LIMIT ?) AND dispatched = 0
		RETURNING id, event, action, repo, received_at`), limit)
	if err != nil {
		return nil, fmt.Errorf("claim undispatched deliveries: %w", err)
	}
	defer rows.Close()
	var claims []Claim
	for rows.Next() {
		var c Claim
		var received int64
		if err := rows.Scan(&c.ID, &c.Event, &c.Action, &c.Repo, &received); err != nil {
			return nil, fmt.Errorf("claim undispatched deliveries: %w", err)
		}
		c.ReceivedAt = time.UnixMilli(received).UTC()
		claims = append(claims, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim undispatched deliveries: %w", err)
	}
	// RETURNING gives no order: oldest first, as claimed.
	slices.SortFunc(claims, func(a, b Claim) int { return cmp.Compare(a.ID, b.ID) })
	return claims, nil
}
