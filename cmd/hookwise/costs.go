package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookwise/hookwise/internal/app"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/store"
)

// defaultCostDays is how far back `hookwise costs` looks without --since.
const defaultCostDays = 30

// sinceFlag is --since, which two commands read differently: redeliver
// looks back a duration ("24h"), costs starts at a UTC date ("2026-11-01").
// Both forms are taken for both commands, so neither breaks the other.
type sinceFlag struct {
	set  bool
	d    time.Duration // when a duration was given
	date time.Time     // when a date was given
}

func (f *sinceFlag) String() string {
	switch {
	case !f.set:
		return ""
	case !f.date.IsZero():
		return f.date.Format(time.DateOnly)
	}
	return f.d.String()
}

func (f *sinceFlag) Set(s string) error {
	if d, err := time.ParseDuration(s); err == nil {
		*f = sinceFlag{set: true, d: d}
		return nil
	}
	date, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return errors.New("want a duration such as 24h or a UTC date such as 2026-11-01")
	}
	*f = sinceFlag{set: true, date: date}
	return nil
}

// duration is how far back from now the flag reaches, def when it is unset.
func (f *sinceFlag) duration(now time.Time, def time.Duration) time.Duration {
	switch {
	case !f.set:
		return def
	case !f.date.IsZero():
		return now.Sub(f.date)
	}
	return f.d
}

// costs runs `hookwise costs`: what the settled model calls of the usage
// ledger used and cost, by group, over UTC days from since to until, both
// included (until "" is no bound).
func costs(ctx context.Context, cfg config.Config, by string, since sinceFlag, until, repo string, out io.Writer) error {
	if err := store.CheckCostGroup(by); err != nil {
		return fmt.Errorf("--by: %w", err)
	}
	now := time.Now().UTC()
	q := store.CostQuery{By: by, Repo: repo,
		Since: time.Date(now.Year(), now.Month(), now.Day()-defaultCostDays, 0, 0, 0, 0, time.UTC)}
	switch {
	case !since.set:
	case !since.date.IsZero():
		q.Since = since.date
	case since.d <= 0:
		return errors.New("--since: want a UTC date such as 2026-11-01 or a positive duration such as 168h")
	default:
		q.Since = now.Add(-since.d)
	}
	if until != "" {
		last, err := time.Parse(time.DateOnly, until)
		if err != nil {
			return fmt.Errorf("--until: want a UTC date such as 2026-11-30, got %q", until)
		}
		q.Until = last.AddDate(0, 0, 1) // the whole of the last day
		if !q.Until.After(q.Since) {
			return errors.New("--until: want a date no earlier than --since")
		}
	}
	st, err := app.OpenStoreAsIs(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	rows, total, err := st.Costs(ctx, q)
	if err != nil {
		return err
	}
	return printCosts(out, by, rows, total)
}

func printCosts(out io.Writer, by string, rows []store.CostRow, total store.CostRow) error {
	key := strings.ToUpper(by)
	if by == "" {
		key, rows = "KEY", nil // the TOTAL line says it all
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tCALLS\tINPUT\tOUTPUT\tCACHE WRITE\tCACHE READ\tCOST\n", key)
	line := func(key string, r store.CostRow) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t$%.4f\n", key, r.Calls, r.InputTokens, r.OutputTokens,
			r.CacheWriteTokens, r.CacheReadTokens, float64(r.CostMicros)/1e6)
	}
	for _, r := range rows {
		line(r.Key, r)
	}
	line("TOTAL", total)
	if err := tw.Flush(); err != nil {
		return err
	}
	// Every input token is read fresh, written to the cache or read from
	// it; the share read from it is what prompt caching saves.
	in := total.InputTokens + total.CacheWriteTokens + total.CacheReadTokens
	if in == 0 {
		_, err := fmt.Fprintln(out, "cache reads: no input tokens")
		return err
	}
	_, err := fmt.Fprintf(out, "cache reads: %.1f%% of input tokens (%d of %d)\n",
		100*float64(total.CacheReadTokens)/float64(in), total.CacheReadTokens, in)
	return err
}
