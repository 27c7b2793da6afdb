package sweep_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/gh"
	"github.com/hookwise/hookwise/internal/store"
	"github.com/hookwise/hookwise/internal/sweep"
)

var _ sweep.Store = (*store.Store)(nil)

const token = "ghp_sweeptesttoken"

var (
	repoHook = gh.Hook{Kind: "repo", Owner: "octo", Repo: "hello", ID: 12}
	orgHook  = gh.Hook{Kind: "org", Owner: "octo", ID: 7}
	appHook  = gh.Hook{Kind: "app"}
)

// env is a fake GitHub served over HTTP, a *gh.Client talking to it, and a
// hookwise store on a temporary SQLite file.
type env struct {
	g  *fake.GitHub
	c  *gh.Client
	st *store.Store
}

func newEnv(t *testing.T, app bool) *env {
	t.Helper()
	opts := fake.GitHubOptions{Tokens: []string{token}}
	copts := gh.Options{Token: token}
	if app {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		opts = fake.GitHubOptions{AppID: 55, AppPublicKey: &key.PublicKey}
		copts = gh.Options{AppID: 55, PrivateKey: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})}
	}
	g := fake.NewGitHub(opts)
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	copts.BaseURL = srv.URL
	c, err := gh.New(copts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "hookwise.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return &env{g: g, c: c, st: st}
}

// add records an attempt of guid on h, age ago, answered with code.
func (e *env) add(h gh.Hook, guid string, age time.Duration, code int, redelivery bool) int64 {
	return e.g.AddHookDelivery(h.String(), fake.HookDeliveryRecord{
		GUID: guid, DeliveredAt: time.Now().Add(-age), StatusCode: code, Redelivery: redelivery,
		Event: "issues", Action: "opened", InstallationID: 1, RepositoryID: 2,
	})
}

// store saves guid as received through hook id hookID.
func (e *env) store(t *testing.T, hookID, guid string) {
	t.Helper()
	err := e.st.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := e.st.InsertDeliveries(context.Background(), tx, []store.Delivery{
			{HookID: hookID, GUID: guid, Event: "issues", Payload: []byte(`{}`), ReceivedAt: time.Now()},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) sweeper(hooks ...gh.Hook) *sweep.Sweeper {
	return &sweep.Sweeper{GitHub: e.c, Store: e.st, Hooks: hooks}
}

// counts is a Result's numbers, to compare them at once.
type counts struct{ Scanned, GUIDs, Failed, AlreadyStored, Recent, Duplicate, Redelivered int }

func countsOf(r sweep.Result) counts {
	return counts{r.Scanned, r.GUIDs, r.Failed, r.AlreadyStored, r.Recent, r.Duplicate, r.Redelivered}
}

func sorted(ids []int64) []int64 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

// seeded is what seed put in a hook's log.
type seeded struct {
	want      []int64  // attempt ids a sweep must redeliver
	wantGUIDs []string // their GUIDs, oldest event first
	scanned   int      // attempts since the sweep's since
	guids     int      // distinct GUIDs among them
	failed    int      // GUIDs without a 2xx attempt
}

// seed fills h's log with 254 attempts within the last 47 hours (three
// pages of 100) and some older ones, over every case the sweeper tells
// apart. Event i happened about i*10 minutes ago.
func seed(t *testing.T, e *env, h gh.Hook) seeded {
	t.Helper()
	var s seeded
	age := func(i int) time.Duration { return time.Duration(i)*10*time.Minute + time.Hour }
	i := 0
	next := func() (string, time.Duration) {
		i++
		return fmt.Sprintf("%s-%03d", strings.ReplaceAll(h.String(), "#", "-"), i), age(i)
	}
	var wantByAge []struct {
		age  time.Duration
		id   int64
		guid string
	}
	for n := range 255 {
		guid, a := next()
		switch {
		case n < 120: // delivered fine
			e.add(h, guid, a, 200, false)
			s.scanned++
			s.guids++
		case n < 180: // failed once, alternately with a 5xx and with no answer at all
			id := e.add(h, guid, a, []int{500, 0}[n%2], false)
			wantByAge = append(wantByAge, struct {
				age  time.Duration
				id   int64
				guid string
			}{a, id, guid})
			s.scanned++
			s.guids++
			s.failed++
		case n < 200: // failed, then redelivered successfully
			e.add(h, guid, a, 503, false)
			e.add(h, guid, a/2, 202, true)
			s.scanned += 2
			s.guids++
		case n < 215: // failed, and the redelivery failed too: redeliver the newest
			e.add(h, guid, a, 504, false)
			id := e.add(h, guid, a/2, 502, true)
			wantByAge = append(wantByAge, struct {
				age  time.Duration
				id   int64
				guid string
			}{a, id, guid})
			s.scanned += 2
			s.guids++
			s.failed++
		case n < 216: // failed here, but hookwise holds it (it came through another hook)
			e.add(h, guid, a, 500, false)
			e.store(t, "999", guid)
			s.scanned++
			s.guids++
			s.failed++
		case n < 219: // failed seconds ago: GitHub may be retrying right now
			e.add(h, guid, 10*time.Second, 500, false)
			s.scanned++
			s.guids++
			s.failed++
		case n < 229: // failed before since (48 hours ago): not ours to sweep
			e.add(h, guid, 49*time.Hour+time.Duration(n)*time.Minute, 500, false)
		default: // failed beyond GitHub's three days: gone from the log
			e.add(h, guid, 73*time.Hour+time.Duration(n)*time.Minute, 500, false)
		}
	}
	slices.SortFunc(wantByAge, func(a, b struct {
		age  time.Duration
		id   int64
		guid string
	}) int {
		return int(b.age - a.age)
	})
	for _, w := range wantByAge {
		s.want = append(s.want, w.id)
		s.wantGUIDs = append(s.wantGUIDs, w.guid)
	}
	if s.scanned <= 200 {
		t.Fatalf("seeded %d attempts in the window, want over 200 (three pages)", s.scanned)
	}
	return s
}

func TestSweepRedeliversExactlyTheMissing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	s := seed(t, e, repoHook)
	ctx := context.Background()
	since := time.Now().Add(-48 * time.Hour)
	var logs bytes.Buffer
	sw := e.sweeper(repoHook)
	sw.Logger = slog.New(slog.NewTextHandler(&logs, nil))

	check := func(name string, r sweep.Result, redelivered int) {
		t.Helper()
		want := counts{Scanned: s.scanned, GUIDs: s.guids, Failed: s.failed, AlreadyStored: 1, Recent: 3, Redelivered: redelivered}
		if got := countsOf(r); r.Hook != repoHook || r.Err != nil || got != want {
			t.Errorf("%s: result for %s = %+v, %v; want %+v", name, r.Hook, got, r.Err, want)
		}
	}

	// A dry run reports what it would do and asks for nothing.
	rs, err := sw.Sweep(ctx, since, true)
	if err != nil || len(rs) != 1 {
		t.Fatalf("dry Sweep = %v, %v; want one result", rs, err)
	}
	check("dry run", rs[0], len(s.want))
	if !slices.Equal(rs[0].Requested, s.wantGUIDs) {
		t.Errorf("dry run Requested = %v, want %v (oldest first)", rs[0].Requested, s.wantGUIDs)
	}
	if got := e.g.RedeliveryRequests(repoHook.String()); len(got) != 0 {
		t.Fatalf("dry run requested %d redeliveries, want none", len(got))
	}

	rs, err = sw.Sweep(ctx, since, false)
	if err != nil || len(rs) != 1 {
		t.Fatalf("Sweep = %v, %v; want one result", rs, err)
	}
	check("sweep", rs[0], len(s.want))
	if !slices.Equal(rs[0].Requested, s.wantGUIDs) {
		t.Errorf("Requested = %v, want %v", rs[0].Requested, s.wantGUIDs)
	}
	got := e.g.RedeliveryRequests(repoHook.String())
	if !slices.Equal(sorted(got), sorted(s.want)) {
		t.Errorf("redelivered ids = %v, want exactly %v", sorted(got), sorted(s.want))
	}
	if !strings.Contains(logs.String(), "redelivered=75") {
		t.Errorf("log = %q, want a summary with redelivered=75", logs.String())
	}

	// The redeliveries succeeded (2xx attempts now exist): nothing more to ask.
	rs, err = sw.Sweep(ctx, since, false)
	if err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("second Sweep = %+v, %v", rs, err)
	}
	if rs[0].Redelivered != 0 || rs[0].Failed != 4 {
		t.Errorf("second sweep = %+v, want 0 redelivered and 4 failed (stored one, three recent)", rs[0])
	}
	if n := len(e.g.RedeliveryRequests(repoHook.String())); n != len(s.want) {
		t.Errorf("after second sweep %d redeliveries, want still %d", n, len(s.want))
	}
}

func TestSweepRetriesFailedRedeliveryAfterGrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	e.g.SetRedeliveryStatus(503) // hookwise is still down
	first := e.add(orgHook, "g1", time.Hour, 500, false)
	e.add(orgHook, "g2", 2*time.Hour, 200, false)

	sw := e.sweeper(orgHook)
	rs, err := sw.Sweep(ctx, time.Time{}, false)
	if err != nil || rs[0].Redelivered != 1 || !slices.Equal(e.g.RedeliveryRequests(orgHook.String()), []int64{first}) {
		t.Fatalf("Sweep = %+v, %v; requests %v; want g1 (%d) redelivered", rs, err, e.g.RedeliveryRequests(orgHook.String()), first)
	}

	// Right after, the failed redelivery is too young to judge.
	rs, _ = sw.Sweep(ctx, time.Time{}, false)
	if rs[0].Recent != 1 || rs[0].Redelivered != 0 {
		t.Errorf("sweep within grace = %+v, want g1 recent, nothing redelivered", rs[0])
	}

	// Once the grace period has passed, it is asked for again: the newest attempt.
	sw.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	rs, _ = sw.Sweep(ctx, time.Time{}, false)
	reqs := e.g.RedeliveryRequests(orgHook.String())
	if rs[0].Redelivered != 1 || len(reqs) != 2 || reqs[1] == first {
		t.Errorf("sweep after grace = %+v, requests %v; want g1 again, by its redelivery's id", rs[0], reqs)
	}
}

func TestSweepAppHook(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	s := seed(t, e, appHook)
	rs, err := e.sweeper(appHook).Sweep(context.Background(), time.Now().Add(-48*time.Hour), false)
	if err != nil || len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("Sweep(app) = %+v, %v", rs, err)
	}
	if got := e.g.RedeliveryRequests("app"); !slices.Equal(sorted(got), sorted(s.want)) {
		t.Errorf("app hook redelivered %v, want %v", sorted(got), sorted(s.want))
	}
}

func TestSweepSeveralHooks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	missing := gh.Hook{Kind: "repo", Owner: "octo", Repo: "gone", ID: 99}
	r1 := e.add(repoHook, "r1", time.Hour, 500, false)
	o1 := e.add(orgHook, "o1", time.Hour, 0, false)
	// One event, failed on both hooks: asked for once, on the first.
	shared := e.add(repoHook, "shared", 2*time.Hour, 500, false)
	e.add(orgHook, "shared", 2*time.Hour, 500, false)

	sw := e.sweeper(missing, gh.Hook{Kind: "app"}, repoHook, orgHook)
	rs, err := sw.Sweep(ctx, time.Time{}, false)
	if err != nil || len(rs) != 4 {
		t.Fatalf("Sweep = %+v, %v; want four results", rs, err)
	}
	var ge *gh.Error
	if !errors.As(rs[0].Err, &ge) || ge.Status != 404 || rs[0].Hook != missing {
		t.Errorf("result for the missing hook = %+v, want a 404 *gh.Error", rs[0])
	}
	if rs[1].Err == nil || !strings.Contains(rs[1].Err.Error(), "App") {
		t.Errorf("result for the app hook with a token = %+v, want an error asking for App authentication", rs[1])
	}
	if rs[2].Err != nil || !slices.Equal(rs[2].Requested, []string{"shared", "r1"}) {
		t.Errorf("repo hook result = %+v, want shared then r1 requested", rs[2])
	}
	if rs[3].Err != nil || rs[3].Duplicate != 1 || !slices.Equal(rs[3].Requested, []string{"o1"}) {
		t.Errorf("org hook result = %+v, want o1 requested and shared a duplicate", rs[3])
	}
	if got := e.g.RedeliveryRequests(repoHook.String()); !slices.Equal(sorted(got), sorted([]int64{r1, shared})) {
		t.Errorf("repo hook redeliveries = %v, want %v", got, []int64{shared, r1})
	}
	if got := e.g.RedeliveryRequests(orgHook.String()); !slices.Equal(got, []int64{o1}) {
		t.Errorf("org hook redeliveries = %v, want [%d]", got, o1)
	}
}

func TestSweepWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	e.add(repoHook, "new", time.Hour, 500, false)
	e.add(repoHook, "old", 30*time.Hour, 500, false)
	tests := []struct {
		name   string
		window time.Duration
		since  time.Time
		want   []string
	}{
		{"default window, zero since", 0, time.Time{}, []string{"old", "new"}},
		{"window over the maximum is clamped", 200 * time.Hour, time.Time{}, []string{"old", "new"}},
		{"since later than the window start", 0, time.Now().Add(-2 * time.Hour), []string{"new"}},
		{"window shorter than since", 24 * time.Hour, time.Now().Add(-48 * time.Hour), []string{"new"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sw := e.sweeper(repoHook)
			sw.Window = tc.window
			rs, err := sw.Sweep(ctx, tc.since, true)
			if err != nil || !slices.Equal(rs[0].Requested, tc.want) {
				t.Errorf("Sweep(window %v) = %+v, %v; want %v requested", tc.window, rs, err, tc.want)
			}
		})
	}
}

func TestSweepMisconfigured(t *testing.T) {
	t.Parallel()
	if _, err := (&sweep.Sweeper{}).Sweep(context.Background(), time.Time{}, true); err == nil {
		t.Error("Sweep without GitHub and Store = nil error, want one")
	}
}

func TestSweepRedeliveryRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		want   []string // requested on the repo hook
		// limited: the token is rate limited, so the org hook (same token)
		// fails too, without a request, until the limit lifts.
		limited bool
	}{
		// GitHub refuses one delivery: the others are still asked for.
		{"one delivery refused", 422, []string{"b", "c"}, false},
		// GitHub is down or limiting us: stop asking on this hook.
		{"server error", 502, nil, false},
		{"secondary rate limit", 429, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, false)
			for i, guid := range []string{"a", "b", "c"} {
				e.add(repoHook, guid, time.Duration(3-i)*time.Hour, 500, false)
			}
			o := e.add(orgHook, "o", time.Hour, 500, false)
			e.g.FailNext("POST", "/repos/octo/hello/hooks/12/deliveries/", tc.status, 1)

			rs, err := e.sweeper(repoHook, orgHook).Sweep(context.Background(), time.Time{}, false)
			if err != nil || len(rs) != 2 {
				t.Fatalf("Sweep = %+v, %v; want two results", rs, err)
			}
			var ge *gh.Error
			if !errors.As(rs[0].Err, &ge) || ge.Status != tc.status || !strings.Contains(rs[0].Err.Error(), "guid a") {
				t.Errorf("repo hook error = %v, want a %d *gh.Error naming guid a", rs[0].Err, tc.status)
			}
			if !slices.Equal(rs[0].Requested, tc.want) || rs[0].Redelivered != len(tc.want) {
				t.Errorf("repo hook requested %v (%d), want %v", rs[0].Requested, rs[0].Redelivered, tc.want)
			}
			if tc.limited {
				if !errors.As(rs[1].Err, &ge) || !ge.RateLimited || len(e.g.RedeliveryRequests(orgHook.String())) != 0 {
					t.Errorf("org hook = %+v, want a rate-limit error and no request", rs[1])
				}
				return
			}
			if rs[1].Err != nil || !slices.Equal(e.g.RedeliveryRequests(orgHook.String()), []int64{o}) {
				t.Errorf("org hook = %+v, requests %v; want o redelivered", rs[1], e.g.RedeliveryRequests(orgHook.String()))
			}
		})
	}
}
