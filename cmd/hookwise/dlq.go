package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/web"
)

// dlq runs `hookwise dlq list|show|retry|discard`: the dead-letter queue,
// the deliveries whose processing gave up. A running hookwise picks up
// what is retried.
func dlq(ctx context.Context, cfg config.Config, sub string, args []string, all bool, limit int, out io.Writer) error {
	st, q, err := openQueue(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	one := func(usage string) (int64, error) {
		if len(args) != 1 {
			return 0, errors.New("usage: hookwise dlq " + usage)
		}
		d, err := st.FindDelivery(ctx, args[0])
		return d.ID, err
	}
	switch sub {
	case "list", "":
		ds, err := q.DeadLetters(ctx, limit, 0)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tFAILED\tEVENT\tREPO\tGUID\tREASON")
		for _, d := range ds {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.UpdatedAt.Format(time.DateTime),
				d.EventName(), d.Repo, d.GUID, d.Reason)
		}
		return tw.Flush()
	case "show":
		if len(args) != 1 {
			return errors.New("usage: hookwise dlq show <id|guid>")
		}
		dl, err := q.DeadLetter(ctx, args[0])
		if err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(web.DeadLetterView(dl))
	case "retry":
		if all {
			if len(args) != 0 {
				return errors.New("usage: hookwise dlq retry --all (no delivery with --all)")
			}
			n, err := q.RetryAllDead(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%d dead letters queued again\n", n)
			return nil
		}
		id, err := one("retry <id|guid> | --all")
		if err != nil {
			return err
		}
		if err := q.RetryDead(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(out, "delivery %d queued again; a running hookwise will process it\n", id)
		return nil
	case "discard":
		id, err := one("discard <id|guid>")
		if err != nil {
			return err
		}
		if err := q.DiscardDead(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(out, "delivery %d discarded\n", id)
		return nil
	}
	return fmt.Errorf("unknown dlq command %q (want list, show, retry or discard)", sub)
}
