// Command deploycheck checks hookwise's deployment files in deploy/ without
// deploying them: the compose file as Docker Compose v2 loads it, the
// Kubernetes manifests decoded strictly into the API types, the Dockerfile,
// the Grafana dashboard, that every metric the alerts and the dashboard
// name is one hookwise exports, and (given running processes) the HTTP
// behaviour of nginx in front of hookwise.
//
// deploy/validate.sh builds it and runs each check next to the external
// tools (docker compose, promtool, nginx, kubectl). Each check prints what
// it found wrong, one problem a line, and exits 1 if there was any; 2 is a
// usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

const usage = `usage: deploycheck <check> [flags] ARG...

checks:
  compose -env-file FILE COMPOSE_FILE
      load the compose file as docker compose v2 does, with FILE as both
      --env-file and the hookwise containers' env_file; cross-check it with
      nginx.conf and prometheus.yml beside it
  k8s [-config-out FILE] [-env-out FILE] DIR
      decode every manifest in DIR strictly and cross-check them; write the
      ConfigMap's hookwise.yaml and the Secret's values (KEY=VALUE lines) for
      hookwise check-config
  dockerfile FILE
      the image's build flags, base, user, port, volume and entry point
  metrics -src DIR FILE...
      every hookwise_ metric a YAML or JSON FILE names is defined in the Go
      code under DIR/internal and DIR/cmd
  dashboard -datasources FILE [-rules-out FILE] DASHBOARD
      the Grafana dashboard's uid, datasources and queries; write its queries
      as recording rules for promtool to parse
  smoke -lb URL -replica URL -internal URL,... -dead HOST:PORT -access-log FILE [-metrics-out DIR]
      webhooks and admin requests through a running nginx in front of
      running hookwise instances; GITHUB_WEBHOOK_SECRET and
      HOOKWISE_ADMIN_TOKEN are theirs
`

// errUsage marks a mistake in the command line, as opposed to a problem in
// the files under check.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs one check and returns the exit status: 0 when it found nothing
// wrong, 1 when it did, 2 for a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	checks := map[string]func(context.Context, []string, io.Writer) (problems, error){
		"compose":    composeCommand,
		"k8s":        k8sCommand,
		"dockerfile": dockerfileCommand,
		"metrics":    metricsCommand,
		"dashboard":  dashboardCommand,
		"smoke":      smokeCommand,
	}
	check, ok := checks[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "deploycheck: unknown check %q\n%s", args[0], usage)
		return 2
	}
	found, err := check(ctx, args[1:], stdout)
	if errors.Is(err, errUsage) {
		fmt.Fprintf(stderr, "deploycheck %s: %v\n%s", args[0], err, usage)
		return 2
	}
	if err != nil {
		found.add("%v", err)
	}
	for _, p := range found {
		fmt.Fprintln(stdout, "problem:", p)
	}
	if len(found) > 0 {
		return 1
	}
	return 0
}

// problems collects what is wrong with the files under check, one sentence
// each, naming the file or object and what was expected.
type problems []string

func (p *problems) add(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

// parseFlags parses a check's flags, and reports a wrong number of arguments as a
// usage error.
func parseFlags(fs *flag.FlagSet, args []string, minArgs, maxArgs int) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if n := fs.NArg(); n < minArgs || (maxArgs >= 0 && n > maxArgs) {
		return fmt.Errorf("%w: %s takes %s, got %d arguments", errUsage, fs.Name(), argCount(minArgs, maxArgs), n)
	}
	return nil
}

func argCount(lo, hi int) string {
	switch {
	case lo == 1 && hi == 1:
		return "one argument"
	case lo == hi:
		return fmt.Sprintf("%d arguments", lo)
	case hi < 0:
		return fmt.Sprintf("at least %d arguments", lo)
	default:
		return fmt.Sprintf("%d to %d arguments", lo, hi)
	}
}

// requireFlags reports the named flags that were left empty.
func requireFlags(fs *flag.FlagSet, names ...string) error {
	var missing []string
	for _, n := range names {
		if f := fs.Lookup(n); f == nil || f.Value.String() == "" {
			missing = append(missing, "-"+n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s needs %s", errUsage, fs.Name(), strings.Join(missing, ", "))
	}
	return nil
}
