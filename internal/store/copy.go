package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// copyDeliveries is PersistDeliveries on PostgreSQL: the batch is one COPY,
// which the server writes several rows at a time (a multi-insert per page,
// its pages from a bulk-write ring) and which is atomic by itself. COPY
// cannot skip a row that is already stored: when the batch holds a
// redelivery, the unique key fails the whole COPY and the batch is stored
// again with INSERT … ON CONFLICT DO NOTHING, which can. Redeliveries are
// rare (GitHub redelivers what failed), so most batches take the fast way.
func (s *Store) copyDeliveries(ctx context.Context, ds []Delivery) ([]bool, error) {
	buf := copyBuffers.Get().(*bytes.Buffer)
	encodeDeliveries(buf, ds, s.millis())

	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("insert deliveries: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(driverConn any) error {
		pc := driverConn.(*stdlib.Conn).Conn().PgConn()
		_, err := pc.CopyFrom(ctx, bytes.NewReader(buf.Bytes()), copyDeliveriesSQL)
		return err
	})
	if err == nil {
		// Reused only after a COPY that succeeded: when the connection
		// breaks, pgconn returns before the goroutine that sends the
		// buffer has stopped reading it.
		if buf.Cap() <= maxPooledCopy {
			copyBuffers.Put(buf)
		}
		out := make([]bool, len(ds))
		for i := range out {
			out[i] = true
		}
		return out, nil
	}
	if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != "23505" /* unique_violation */ {
		return nil, fmt.Errorf("insert deliveries: %w", err)
	}
	ids, err := s.insertDeliveriesReturning(ctx, conn, ds)
	return inserted(ids), err
}

const copyDeliveriesSQL = `COPY hw_deliveries (hook_id, hook_target, guid, event, action, repo, installation_id, sender,
	payload, payload_codec, received_at, status, updated_at) FROM STDIN (FORMAT binary)`

// copyBuffers hold a batch encoded for COPY while it is sent: one copy of
// each payload, in a buffer that is reused rather than grown anew each time.
var copyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledCopy bounds the buffers kept for reuse: a batch of large pushes
// should not stay in memory after it is stored.
const maxPooledCopy = 4 << 20

// encodeDeliveries writes ds to buf as the rows of copyDeliveriesSQL, in
// PostgreSQL's binary COPY format: a signature, then per row the number of
// fields and each field as its length and its bytes (text as it is, bigint
// as 8 bytes big-endian), then -1.
func encodeDeliveries(buf *bytes.Buffer, ds []Delivery, now int64) {
	buf.Reset()
	buf.WriteString("PGCOPY\n\xff\r\n\x00")
	b := buf.AvailableBuffer()
	b = binary.BigEndian.AppendUint32(b, 0) // flags
	b = binary.BigEndian.AppendUint32(b, 0) // header extension length
	buf.Write(b)
	text := func(s string) {
		buf.Write(binary.BigEndian.AppendUint32(buf.AvailableBuffer(), uint32(len(s))))
		buf.WriteString(s)
	}
	bigint := func(v int64) {
		b := binary.BigEndian.AppendUint32(buf.AvailableBuffer(), 8)
		buf.Write(binary.BigEndian.AppendUint64(b, uint64(v)))
	}
	for i := range ds {
		d := &ds[i]
		buf.Write(binary.BigEndian.AppendUint16(buf.AvailableBuffer(), 13))
		text(d.HookID)
		text(d.HookTarget)
		text(d.GUID)
		text(d.Event)
		text(d.Action)
		text(d.Repo)
		bigint(d.InstallationID)
		text(d.Sender)
		payload := d.stored()
		buf.Write(binary.BigEndian.AppendUint32(buf.AvailableBuffer(), uint32(len(payload))))
		buf.Write(payload)
		text(payloadCodec)
		bigint(d.ReceivedAt.UnixMilli())
		text(StatusQueued)
		bigint(now)
	}
	buf.Write([]byte{0xff, 0xff}) // end of data
}
