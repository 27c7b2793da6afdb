package app_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
)

// privatePostgres is a PostgreSQL server of the test's own, so that the
// test can stop and start it without disturbing other tests.
type privatePostgres struct {
	bin, data, port string
	runAs           []string // the command prefix that runs as the postgres user
}

// startPrivatePostgres initialises and starts a server in a temporary
// directory, or skips the test when the machine has no PostgreSQL binaries
// or cannot run them (initdb refuses root, so root runs them as postgres).
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	if os.Getenv("HOOKWISE_TEST_DATABASE_URL") == "" {
		t.Skip("HOOKWISE_TEST_DATABASE_URL is not set: PostgreSQL tests are off")
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		t.Skip("no PostgreSQL server binaries (pg_ctl) on this machine")
	}
	p := &privatePostgres{bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "hookwise-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root without a postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		p.runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	p.data = filepath.Join(dir, "data")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	p.run(t, "initdb", "-D", p.data, "--auth=trust", "--username=postgres", "--no-sync")
	p.ctl(t, "start")
	t.Cleanup(func() { _ = p.command("pg_ctl", "-D", p.data, "stop", "-m", "immediate").Run() })
	return p
}

func (p *privatePostgres) command(name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, p.runAs...), filepath.Join(p.bin, name)), args...)
	return exec.Command(argv[0], argv[1:]...)
}

func (p *privatePostgres) run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := p.command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

// ctl starts or stops the server (a fast shutdown, as a restart does).
func (p *privatePostgres) ctl(t *testing.T, action string) {
	t.Helper()
	args := []string{"-D", p.data, "-w", "-l", filepath.Join(filepath.Dir(p.data), "server.log")}
	if action == "start" {
		args = append(args, "-o", "-p "+p.port+" -c listen_addresses=127.0.0.1 -k "+filepath.Dir(p.data))
	} else {
		args = append(args, "-m", "fast")
	}
	p.run(t, "pg_ctl", append(args, action)...)
}

func (p *privatePostgres) url() string {
	return "postgres://postgres@127.0.0.1:" + p.port + "/postgres?sslmode=disable"
}

// PostgreSQL restarts in the middle of
// ingest. While it is down hookwise answers 503, never a false 2xx: every
// delivery answered 2xx is in the database afterwards. It recovers by
// itself, and the deliveries it took are all handled (jobs whose end the
// outage swallowed after queue.rescue_after, shortened here).
func TestPostgresRestartDuringIngest(t *testing.T) {
	pg := startPrivatePostgres(t)
	h := start(t, 0, func(c *config.Config) {
		c.DatabaseURL = pg.url()
		c.GitHub.WritesPerMinute, c.GitHub.WritesPerHour, c.GitHub.MaxConcurrency = 100_000, 1_000_000, 32
		// A job whose end the outage kept River from recording stays
		// "running" until River's rescuer takes it back, after rescue_after.
		c.Queue.JobTimeout, c.Queue.RescueAfter = config.Duration(10*time.Second), config.Duration(15*time.Second)
	})

	var (
		seq      atomic.Int64
		mu       sync.Mutex
		accepted = map[string]bool{}
		codes    = map[int]int{}
		down     atomic.Bool  // set once the server has stopped, cleared before it starts
		downOK   atomic.Int64 // 2xx for requests sent and answered while it was down
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 15 * time.Second}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(seq.Add(1))
				d := fake.Delivery{Event: "issues", GUID: fmt.Sprintf("restart-%06d", i), HookID: "42",
					Payload: fake.IssueEvent("opened", "acme/app", i, fmt.Sprintf("Planner bug %d", i), "The planner skips a run when two jobs share a schedule.", "alice")}
				sentDown := down.Load()
				code, err := fake.Send(client, h.endpoint, secret, d)
				if err != nil {
					code = 0
				}
				mu.Lock()
				codes[code]++
				if code/100 == 2 {
					accepted[d.GUID] = true
					if sentDown && down.Load() {
						downOK.Add(1)
					}
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second)
	pg.ctl(t, "stop")
	down.Store(true)
	stopped := time.Now()
	time.Sleep(3 * time.Second)
	if resp, err := http.Get(h.endpoint[:len(h.endpoint)-len("/webhook")] + "/readyz"); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Errorf("/readyz = 200 while PostgreSQL is down, want a failure")
		}
		resp.Body.Close()
	}
	down.Store(false)
	pg.ctl(t, "start")
	restarted := time.Now()
	// Recovered: deliveries are acknowledged again.
	mu.Lock()
	before := len(accepted)
	mu.Unlock()
	for {
		mu.Lock()
		n := len(accepted)
		mu.Unlock()
		if n > before+50 {
			break
		}
		if time.Since(restarted) > 30*time.Second {
			t.Fatalf("no delivery acknowledged within 30s of PostgreSQL coming back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	recovered := time.Since(restarted)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("answers: %v; down %s; acknowledging again %s after the restart", codes, restarted.Sub(stopped).Round(time.Millisecond), recovered.Round(time.Millisecond))
	if codes[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no 503 while PostgreSQL was down: the test did not catch the outage")
	}
	if n := downOK.Load(); n > 0 {
		t.Errorf("%d deliveries sent and answered while PostgreSQL was down got a 2xx", n)
	}
	for code, n := range codes {
		if code != http.StatusAccepted && code != http.StatusServiceUnavailable {
			t.Errorf("%d answers with status %d, want only 202 and 503", n, code)
		}
	}
	// Every 2xx is stored and handled.
	ds := h.settle(t, len(accepted), 2*time.Minute)
	stored := map[string]bool{}
	for _, d := range ds {
		stored[d.GUID] = true
		if d.Status != store.StatusDone {
			t.Errorf("delivery %s: %s %q, want done", d.GUID, d.Status, d.Reason)
		}
	}
	for guid := range accepted {
		if !stored[guid] {
			t.Errorf("delivery %s was answered 2xx but is not stored", guid)
		}
	}
}
