package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hookwise/hookwise/internal/loadtest"
)

const loadtestUsage = `usage: hookwise loadtest --url URL (--duration D | --requests N) [flags]

Sends signed synthetic deliveries to URL and reports the answers: a latency
histogram, p50/p90/p99/max, requests a second and a count per status code.
Exits non-zero when any request was not answered 2xx.

The deliveries are issues.labeled events on a repository of the reserved
owner hookwise-loadtest (hookwise-loadtest/run-<id>, new each run): hookwise
stores and dispatches each and skips it as bookkeeping, with no model call
and no GitHub request. The secret comes from --secret or
GITHUB_WEBHOOK_SECRET (the first of a comma-separated list).

flags:
`

// runLoadtest is `hookwise loadtest`: its own flags, no configuration file
// (it drives a hookwise, wherever that runs).
func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.SetOutput(stdout) // asked for: the usage is the output
		}
	}
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), loadtestUsage)
		fs.PrintDefaults()
	}
	var o loadtest.Options
	var secret string
	fs.StringVar(&o.URL, "url", "", "webhook URL, e.g. https://hookwise.example.com/webhook")
	fs.StringVar(&secret, "secret", "", "webhook secret (default: $GITHUB_WEBHOOK_SECRET); never printed")
	fs.Float64Var(&o.Rate, "rate", 0, "deliveries a second, sent on schedule whatever the answers (default: closed loop)")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "senders, each waiting for its answer; with --rate, the most in flight")
	fs.DurationVar(&o.Duration, "duration", 0, "how long to send (e.g. 30s)")
	fs.IntVar(&o.Requests, "requests", 0, "how many deliveries to send")
	fs.IntVar(&o.Size, "size", loadtest.DefaultSize, "payload size in bytes")
	fs.IntVar(&o.OpenedEvery, "opened-every", 0, "make every Nth delivery an issues.opened the service analyses "+
		"(model call, GitHub comment): only against test deployments with fake upstreams")
	fs.StringVar(&o.Repo, "repo", "", "repository the deliveries are about (default: hookwise-loadtest/run-<id>)")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "per-request timeout (GitHub's is 10s)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	quiet := fs.Bool("quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadtest: unexpected argument %q", fs.Arg(0))
	}
	if secret == "" {
		secret, _, _ = strings.Cut(getenv("GITHUB_WEBHOOK_SECRET"), ",")
	}
	o.Secret = []byte(strings.TrimSpace(secret))
	if err := o.Check(); err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	if !*quiet {
		o.Progress, o.ProgressEvery = progressPrinter(stderr)
	}
	res, err := loadtest.Run(ctx, o)
	if o.Progress != nil && isTerminal(stderr) {
		fmt.Fprintln(stderr) // end the line rewritten in place
	}
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	if *asJSON {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	return nil
}

// progressPrinter returns how progress is shown on w: on a terminal one
// line rewritten every second; otherwise (a log, a CI job) a line every
// five seconds.
func progressPrinter(w io.Writer) (func(loadtest.Snapshot), time.Duration) {
	if isTerminal(w) {
		return func(s loadtest.Snapshot) { fmt.Fprintf(w, "\r%s\x1b[K", s.Line()) }, time.Second
	}
	return func(s loadtest.Snapshot) { fmt.Fprintln(w, s.Line()) }, 5 * time.Second
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
