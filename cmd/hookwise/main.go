// Command hookwise turns GitHub webhooks into Claude-powered triage and
// review. See the README for the subcommands.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hookwise/hookwise/internal/app"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/queue"
	"github.com/hookwise/hookwise/internal/store"
	"github.com/hookwise/hookwise/internal/web"
)

const usage = `usage: hookwise <command> [flags]

commands:
  serve                      run the service (webhook, workers, API, metrics)
  demo [--keep]              run the whole pipeline against built-in fakes and print what happened
  migrate                    apply database migrations, print the schema state and exit
  check-config               print the effective configuration, secrets redacted
  version                    print the version, the commit it was built from and the Go version
  healthcheck                exit 0 when the hookwise on this host is ready (GET /readyz on
                             metrics_listen when set, else on listen), for container
                             health checks without a shell
  deliveries list [flags]    list stored deliveries (--status, --repo, --limit)
  deliveries show <id|guid>  show one delivery and its analysis
  replay <id|guid>           process a stored delivery again from the start
  dlq list [--limit N]       list the dead letters: deliveries whose processing gave up
  dlq show <id|guid>         why it failed: the final error and every attempt's
  dlq retry <id|guid>|--all  process dead letters again from the start
  dlq discard <id|guid>      take a dead letter out of the queue (it stays stored)
  redeliver --since 24h [--dry-run]
                             ask GitHub to redeliver what its hooks failed to deliver
  loadtest --url URL (--duration D | --requests N) [flags]
                             send signed synthetic deliveries and report latency,
                             req/s and status codes (hookwise loadtest -h)
  costs [--by day|repo|model|event|kind] [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--repo owner/name]
                             what model calls used and cost (UTC days, both included;
                             default: by day, the last 30 days; --since also takes a duration)

Every command that reads the configuration takes --config FILE (or
HOOKWISE_CONFIG); each has its own flags: hookwise <command> -h.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hookwise:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) (err error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	name, args := args[0], args[1:]
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", name)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{name: name, stdout: stdout, stderr: stderr}
	defer func() {
		if errors.Is(err, flag.ErrHelp) {
			err = nil // the usage is printed: asking for it is no failure
			return
		}
		// No configured secret leaves the process in the error it exits
		// with, whatever a library put in an error message.
		if err != nil && c.redact != nil {
			err = redactedError{err: err, redact: c.redact}
		}
	}()
	return cmd(ctx, c, args)
}

// cli is one run of a subcommand: where it writes, and the configuration
// once loaded.
type cli struct {
	name           string
	stdout, stderr io.Writer
	configPath     *string
	usageLine      string
	redact         func(string) string
	log            *slog.Logger
}

// flags returns the flag set of the subcommand, with --config, and its
// usage line after "hookwise ".
func (c *cli) flags(usageLine string) *flag.FlagSet {
	fs := c.flagSet(usageLine)
	c.configPath = fs.String("config", os.Getenv("HOOKWISE_CONFIG"), "YAML configuration file")
	return fs
}

// flagSet is flags without --config, for the commands that read no
// configuration.
func (c *cli) flagSet(usageLine string) *flag.FlagSet {
	c.usageLine = usageLine
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: hookwise %s\n", usageLine)
		fs.PrintDefaults()
	}
	return fs
}

// parse reads args into fs; positional arguments beyond most are an
// error that shows the usage.
func (c *cli) parse(fs *flag.FlagSet, args []string, most int) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > most {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q; usage: hookwise %s", fs.Arg(most), c.usageLine)
	}
	return nil
}

// load reads the configuration and sets up the redacting logger.
func (c *cli) load() (config.Config, error) {
	cfg, err := config.Load(*c.configPath, config.ParseEnviron(os.Environ()))
	if err != nil {
		return cfg, err
	}
	c.redact = cfg.Redactor()
	c.log = newLogger(cfg.LogFormat, c.stderr, c.redact)
	return cfg, nil
}

// commands are the subcommands, each with its own flags (see usage).
var commands = map[string]func(ctx context.Context, c *cli, args []string) error{
	"serve":        cmdServe,
	"demo":         cmdDemo,
	"version":      cmdVersion,
	"migrate":      cmdMigrate,
	"healthcheck":  cmdHealthcheck,
	"check-config": cmdCheckConfig,
	"deliveries":   cmdDeliveries,
	"dlq":          cmdDLQ,
	"redeliver":    cmdRedeliver,
	"costs":        cmdCosts,
	"replay":       cmdReplay,
	"loadtest": func(ctx context.Context, c *cli, args []string) error {
		return runLoadtest(ctx, args, c.stdout, c.stderr, os.Getenv)
	},
}

func cmdServe(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("serve [--config FILE]")
	if err := c.parse(fs, args, 0); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	c.log.Info("starting", "version", version(), "database", config.RedactURL(cfg.DatabaseURL),
		"listen", cfg.Listen, "metrics_listen", cfg.MetricsListen)
	c.log.Info(cfg.BudgetSummary())
	return serve(ctx, cfg, c.log)
}

func cmdDemo(ctx context.Context, c *cli, args []string) error {
	fs := c.flagSet("demo [--keep]")
	keep := fs.Bool("keep", false, "leave the server running after the run")
	if err := c.parse(fs, args, 0); err != nil {
		return err
	}
	return runDemo(ctx, c.stdout, c.stderr, *keep)
}

func cmdVersion(_ context.Context, c *cli, args []string) error {
	if err := c.parse(c.flagSet("version"), args, 0); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, version())
	return nil
}

func cmdMigrate(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("migrate [--config FILE]")
	if err := c.parse(fs, args, 0); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	st, err := app.OpenStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	// Which older hookwises may still run on it: what a rolling upgrade
	// needs to know.
	state, err := st.Schema(ctx)
	if err != nil {
		st.Close()
		return err
	}
	fmt.Fprintf(c.stdout, "migrations applied: %s\n", state)
	return st.Close()
}

func cmdHealthcheck(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("healthcheck [--config FILE]")
	if err := c.parse(fs, args, 0); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	// With metrics_listen set, /readyz is served there only.
	listen := cfg.Listen
	if cfg.MetricsListen != "" {
		listen = cfg.MetricsListen
	}
	return healthcheck(ctx, listen, c.stdout)
}

func cmdCheckConfig(_ context.Context, c *cli, args []string) error {
	fs := c.flags("check-config [--config FILE]")
	if err := c.parse(fs, args, 0); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	fmt.Fprint(c.stdout, cfg.Redacted())
	// A YAML comment, so the output stays a configuration file.
	fmt.Fprintf(c.stdout, "# %s\n", cfg.BudgetSummary())
	if err := cfg.ValidateForServe(); err != nil {
		return fmt.Errorf("not ready to serve:\n%w", err)
	}
	return nil
}

func cmdDeliveries(ctx context.Context, c *cli, args []string) error {
	sub, args := subcommand(args, "list")
	var f store.DeliveryFilter
	fs := c.flags("deliveries list [--status S] [--repo owner/name] [--limit N] | deliveries show <id|guid>")
	most := 0
	switch sub {
	case "list":
		fs.StringVar(&f.Status, "status", "", "only this status ("+strings.Join(store.Statuses(), ", ")+")")
		fs.StringVar(&f.Repo, "repo", "", "only this repository (owner/name)")
		fs.IntVar(&f.Limit, "limit", 50, "how many")
	case "show":
		most = 1
	}
	if err := c.parse(fs, args, most); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	return deliveries(ctx, cfg, sub, fs.Args(), f, c.stdout)
}

func cmdDLQ(ctx context.Context, c *cli, args []string) error {
	sub, args := subcommand(args, "list")
	fs := c.flags("dlq list [--limit N] | dlq show <id|guid> | dlq retry <id|guid>|--all | dlq discard <id|guid>")
	limit, all, most := 50, false, 1
	switch sub {
	case "list":
		fs.IntVar(&limit, "limit", 50, "how many")
		most = 0
	case "retry":
		fs.BoolVar(&all, "all", false, "every dead letter")
	}
	if err := c.parse(fs, args, most); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	return dlq(ctx, cfg, sub, fs.Args(), all, limit, c.stdout)
}

func cmdRedeliver(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("redeliver [--since 24h] [--dry-run]")
	var since sinceFlag
	fs.Var(&since, "since", "how far back to look (default 24h, at most 72h)")
	dryRun := fs.Bool("dry-run", false, "report what would be redelivered, request nothing")
	if err := c.parse(fs, args, 0); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	return redeliver(ctx, cfg, since.duration(time.Now(), 24*time.Hour), *dryRun, c.stdout, c.log)
}

func cmdCosts(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("costs [--by day|repo|model|event|kind] [--since DATE] [--until DATE] [--repo owner/name]")
	var since sinceFlag
	fs.Var(&since, "since", "the first UTC day, YYYY-MM-DD, or a duration (default 30 days ago)")
	until := fs.String("until", "", "the last UTC day included, YYYY-MM-DD (default: no bound)")
	by := fs.String("by", "day", "group by day, repo, model, event or kind")
	repo := fs.String("repo", "", "only this repository (owner/name)")
	if err := c.parse(fs, args, 0); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	return costs(ctx, cfg, *by, since, *until, *repo, c.stdout)
}

func cmdReplay(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("replay <id|guid>")
	if err := c.parse(fs, args, 1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("usage: hookwise replay <id|guid>")
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	return replay(ctx, cfg, fs.Arg(0), c.stdout)
}

// subcommand splits "list --limit 5" into "list" and its flags; with no
// subcommand named, def.
func subcommand(args []string, def string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return def, args
}

// healthcheck asks the local hookwise whether it is ready. It reads no
// database itself: it checks the running process.
func healthcheck(ctx context.Context, listen string, out io.Writer) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(out, "ready")
	return nil
}

// newLogger logs to w in format, every message and string or error
// attribute passed through redact.
func newLogger(format string, w io.Writer, redact func(string) string) *slog.Logger {
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		switch v := a.Value; {
		case v.Kind() == slog.KindString:
			a.Value = slog.StringValue(redact(v.String()))
		case v.Kind() == slog.KindAny:
			if err, ok := v.Any().(error); ok {
				a.Value = slog.StringValue(redact(err.Error()))
			}
		}
		return a
	}}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// redactedError is an error whose message went through redact.
type redactedError struct {
	err    error
	redact func(string) string
}

func (e redactedError) Error() string { return e.redact(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := cfg.ValidateForServe(); err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return a.Run(ctx, ln)
}

func deliveries(ctx context.Context, cfg config.Config, sub string, args []string, f store.DeliveryFilter, out io.Writer) error {
	st, err := app.OpenStoreAsIs(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()
	switch sub {
	case "list", "":
		ds, err := st.ListDeliveries(ctx, f)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tRECEIVED\tEVENT\tREPO\tGUID\tSTATUS\tREASON")
		for _, d := range ds {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.ReceivedAt.Format(time.DateTime),
				d.EventName(), d.Repo, d.GUID, d.Status, d.Reason)
		}
		return tw.Flush()
	case "show":
		if len(args) != 1 {
			return errors.New("usage: hookwise deliveries show <id|guid>")
		}
		d, err := st.FindDelivery(ctx, args[0])
		if err != nil {
			return err
		}
		var analysis *store.Analysis
		a, err := st.Analysis(ctx, d.ID)
		switch {
		case err == nil:
			analysis = &a
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		calls, err := st.UsageOf(ctx, d.ID)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(web.DeliveryView(d, analysis, calls))
	}
	return fmt.Errorf("unknown deliveries command %q (want list or show)", sub)
}

// openQueue opens the store and an insert-only queue on it, for the
// commands that queue work a running hookwise then picks up.
func openQueue(ctx context.Context, cfg config.Config) (*store.Store, *queue.Queue, error) {
	st, err := app.OpenStoreAsIs(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, nil, err
	}
	q, err := queue.New(st, queue.Options{})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, q, nil
}

func replay(ctx context.Context, cfg config.Config, ref string, out io.Writer) error {
	st, q, err := openQueue(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	d, err := st.FindDelivery(ctx, ref)
	if err != nil {
		return err
	}
	if err := q.Replay(ctx, d.ID); err != nil {
		return err
	}
	fmt.Fprintf(out, "delivery %d (%s) queued again; a running hookwise will process it\n", d.ID, d.GUID)
	return nil
}
