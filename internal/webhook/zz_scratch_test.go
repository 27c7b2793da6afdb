package webhook_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/hookwise/hookwise/internal/queue"
	"github.com/hookwise/hookwise/internal/store"
)

func BenchmarkScratchJSON(b *testing.B) {
	payload := issuesOpenedPayload(b, benchPayloadSize)
	var head struct {
		Action     string `json:"action"`
		Repository struct{ FullName string `json:"full_name"` } `json:"repository"`
	}
	for b.Loop() {
		if err := json.Unmarshal(payload, &head); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScratchRiver(b *testing.B) {
	for _, fast := range []bool{false, true} {
		b.Run(fmt.Sprint("fast=", fast), func(b *testing.B) {
			ctx := context.Background()
			st, _ := store.Open(ctx, filepath.Join(b.TempDir(), "x.db"))
			defer st.Close()
			st.Migrate(ctx)
			queue.Migrate(ctx, st)
			c, err := river.NewClient(riversqlite.New(st.DB), &river.Config{})
			if err != nil {
				b.Fatal(err)
			}
			k := int64(0)
			for b.Loop() {
				params := make([]river.InsertManyParams, 32)
				for i := range params {
					k++
					params[i] = river.InsertManyParams{Args: queue.ProcessArgs{DeliveryID: k}}
				}
				err := st.Tx(ctx, func(tx *sql.Tx) error {
					var err error
					if fast {
						_, err = c.InsertManyFastTx(ctx, tx, params)
					} else {
						_, err = c.InsertManyTx(ctx, tx, params)
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
