package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookwise/hookwise/internal/app"
	"github.com/hookwise/hookwise/internal/config"
)

// redeliver runs `hookwise redeliver --since D [--dry-run]`: one sweep of
// the hooks' delivery logs now, asking GitHub again for every event of the
// last D that hookwise does not hold and no attempt delivered.
func redeliver(ctx context.Context, cfg config.Config, since time.Duration, dryRun bool, out io.Writer, log *slog.Logger) error {
	if since <= 0 {
		return errors.New("--since: want a positive duration such as 24h")
	}
	st, err := app.OpenStoreAsIs(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	results, err := app.Redeliver(ctx, cfg, st, time.Now().Add(-since), dryRun, log)
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return errors.New("no hooks to sweep: set sweep.hooks, or let deliveries that name their hook arrive first")
	}
	verb := "REDELIVERED"
	if dryRun {
		verb = "WOULD REDELIVER"
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "HOOK\tATTEMPTS\tEVENTS\tFAILED\tSTORED ANYWAY\tTOO RECENT\t%s\tERROR\n", verb)
	var errs []error
	for _, r := range results {
		msg := ""
		if r.Err != nil {
			msg = r.Err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", r.Hook, r.Err))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Hook, r.Scanned, r.GUIDs, r.Failed,
			r.AlreadyStored, r.Recent, len(r.Requested), msg)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if len(r.Requested) > 0 {
			fmt.Fprintf(out, "%s: %s\n", r.Hook, strings.Join(r.Requested, " "))
		}
	}
	return errors.Join(errs...)
}
