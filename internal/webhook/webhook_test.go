package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/hookwise/hookwise/internal/logtest"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/queue"
	"github.com/hookwise/hookwise/internal/store"
	"github.com/hookwise/hookwise/internal/store/storetest"
	"github.com/hookwise/hookwise/internal/webhook"
)

var testSecret = []byte("test-secret")

// env is a webhook handler served over loopback, persisting to a real
// SQLite store through River.
type env struct {
	st  *store.Store
	h   *webhook.Handler
	srv *httptest.Server
}

// newHandler opens and migrates a store on a temp file, builds the River
// insert-only client and the handler, and serves it. Everything is closed
// when the test ends, server first so no request meets a closed handler.
func newHandler(t testing.TB) *env {
	t.Helper()
	return newHandlerWith(t, nil)
}

// newHandlerWith is newHandler with the persister wrapped by wrap, if not nil.
func newHandlerWith(t testing.TB, wrap func(webhook.Persister) webhook.Persister) *env {
	t.Helper()
	return newHandlerOn(t, filepath.Join(t.TempDir(), "hookwise.db"), wrap)
}

// newHandlerOn is newHandlerWith on the database at url.
func newHandlerOn(t testing.TB, url string, wrap func(webhook.Persister) webhook.Persister) *env {
	t.Helper()
	return newHandlerTuned(t, url, wrap, nil)
}

// newHandlerTuned is newHandlerOn with the handler's options changed by
// tune, if not nil.
func newHandlerTuned(t testing.TB, url string, wrap func(webhook.Persister) webhook.Persister, tune func(*webhook.Options)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	// The store-down test closes the DB itself; a second Close is harmless.
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("store.Migrate: %v", err)
	}
	if err := queue.Migrate(ctx, st); err != nil {
		t.Fatalf("queue.Migrate: %v", err)
	}
	q, err := queue.New(st, queue.Options{})
	if err != nil {
		t.Fatalf("queue.New: %v", err)
	}
	var p webhook.Persister = q
	if wrap != nil {
		p = wrap(q)
	}
	opts := webhook.Options{Secrets: [][]byte{testSecret}, Persister: p}
	opts.Committers, opts.DurableCommits = st.CommitProfile() // as the app runs it
	if tune != nil {
		tune(&opts)
	}
	h := webhook.New(opts)
	t.Cleanup(h.Close)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{st: st, h: h, srv: srv}
}

// count runs a SELECT COUNT(*) query.
func (e *env) count(t testing.TB, query string) int {
	t.Helper()
	var n int
	if err := e.st.DB.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// signedRequest builds a delivery GitHub would send: signed with testSecret,
// with event, GUID and hook id headers.
func signedRequest(t *testing.T, target, event, guid, hookID, contentType string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Hub-Signature-256", webhook.Sign(testSecret, body))
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", guid)
	req.Header.Set("X-GitHub-Hook-ID", hookID)
	req.Header.Set("User-Agent", "GitHub-Hookshot/test")
	return req
}

// do sends req and returns the status, draining the body so the connection
// is reused.
func do(t *testing.T, c *http.Client, req *http.Request) int {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", req.Header.Get("X-GitHub-Delivery"), err)
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	// GitHub's documented example for validating webhook deliveries.
	secret := []byte("It's a Secret to Everybody")
	body := []byte("Hello, World!")
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := webhook.Sign(secret, body); got != want {
		t.Errorf("Sign(%q, %q) = %s, want %s", secret, body, got, want)
	}

	old := []byte("old secret")
	tests := []struct {
		name    string
		secrets [][]byte
		body    string
		header  string
		want    bool
	}{
		{"github vector", [][]byte{secret}, "Hello, World!", want, true},
		{"rotation: new secret second", [][]byte{old, secret}, "Hello, World!", want, true},
		{"rotation: new secret first", [][]byte{secret, old}, "Hello, World!", want, true},
		{"wrong secret", [][]byte{old}, "Hello, World!", want, false},
		{"no secrets", nil, "Hello, World!", want, false},
		{"body changed", [][]byte{secret}, "Hello, World?", want, false},
		{"missing prefix", [][]byte{secret}, "Hello, World!", strings.TrimPrefix(want, "sha256="), false},
		{"sha1 prefix", [][]byte{secret}, "Hello, World!", "sha1=" + strings.TrimPrefix(want, "sha256="), false},
		{"truncated", [][]byte{secret}, "Hello, World!", want[:len(want)-2], false},
		{"not hex", [][]byte{secret}, "Hello, World!", "sha256=" + strings.Repeat("zz", 32), false},
		{"empty", [][]byte{secret}, "Hello, World!", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := webhook.Verify(tt.secrets, []byte(tt.body), tt.header); got != tt.want {
				t.Errorf("Verify(%q, %q, %q) = %v, want %v", tt.secrets, tt.body, tt.header, got, tt.want)
			}
		})
	}
}

// corpusDir finds ../shared/corpus/github-webhooks next to the repository
// root, walking up from the package directory to the go.mod.
func corpusDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("Getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root (go.mod) not found")
		}
		dir = parent
	}
	corpus := filepath.Join(dir, "..", "shared", "corpus", "github-webhooks")
	if fi, err := os.Stat(corpus); err != nil || !fi.IsDir() {
		t.Skipf("webhook corpus not present at %s", corpus)
	}
	return corpus
}

func TestCorpus(t *testing.T) {
	t.Parallel()
	dir := corpusDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("Glob(%s) = %d files, %v; want payloads", dir, len(files), err)
	}
	e := newHandler(t)

	type post struct {
		name, event, contentType string
		body                     []byte
	}
	var posts []post
	for _, f := range files {
		payload, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("ReadFile: %v", err)
		}
		event := filepath.Base(filepath.Dir(f))
		name := event + "/" + filepath.Base(f)
		posts = append(posts,
			post{name + " json", event, "application/json", payload},
			post{name + " form", event, "application/x-www-form-urlencoded",
				[]byte(url.Values{"payload": {string(payload)}}.Encode())})
	}

	// A few senders at once, as GitHub would, so batches form.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	nonPing := 0
	for i, p := range posts {
		if p.event != "ping" {
			nonPing++
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			guid := fmt.Sprintf("corpus-%04d", i)
			req := signedRequest(t, e.srv.URL+"/webhook", p.event, guid, "123456", p.contentType, p.body)
			want := http.StatusAccepted
			if p.event == "ping" {
				want = http.StatusOK
			}
			if got := do(t, e.srv.Client(), req); got != want {
				t.Errorf("POST %s = %d, want %d", p.name, got, want)
			}
		})
	}
	wg.Wait()

	if got := e.count(t, `SELECT COUNT(*) FROM hw_deliveries`); got != nonPing {
		t.Errorf("rows in hw_deliveries = %d, want %d (one per non-ping delivery of %d posts)", got, nonPing, len(posts))
	}
	if got := e.count(t, enqueued); got != nonPing {
		t.Errorf("deliveries enqueued = %d, want %d", got, nonPing)
	}
}

// enqueued counts the stored deliveries waiting for the dispatcher to
// enqueue their processing (the outbox).
const enqueued = `SELECT COUNT(*) FROM hw_deliveries WHERE dispatched = 0`

func TestRejections(t *testing.T) {
	t.Parallel()
	e := newHandler(t)
	target := e.srv.URL + "/webhook"
	valid := []byte(`{"action":"opened","repository":{"full_name":"o/r"},"sender":{"login":"u"}}`)
	huge := bytes.Repeat([]byte("a"), 26<<20)

	tests := []struct {
		name string
		req  func(t *testing.T) *http.Request
		want int
	}{
		{"no signature", func(t *testing.T) *http.Request {
			r := signedRequest(t, target, "issues", "no-sig", "1", "application/json", valid)
			r.Header.Del("X-Hub-Signature-256")
			return r
		}, http.StatusUnauthorized},
		{"wrong signature", func(t *testing.T) *http.Request {
			r := signedRequest(t, target, "issues", "wrong-sig", "1", "application/json", valid)
			r.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte("other"), valid))
			return r
		}, http.StatusUnauthorized},
		{"sha1 signature only", func(t *testing.T) *http.Request {
			r := signedRequest(t, target, "issues", "sha1-only", "1", "application/json", valid)
			r.Header.Del("X-Hub-Signature-256")
			r.Header.Set("X-Hub-Signature", "sha1=0123456789abcdef0123456789abcdef01234567")
			return r
		}, http.StatusUnauthorized},
		{"malformed JSON", func(t *testing.T) *http.Request {
			return signedRequest(t, target, "issues", "bad-json", "1", "application/json", []byte(`{"action":`))
		}, http.StatusBadRequest},
		{"malformed JSON in form", func(t *testing.T) *http.Request {
			body := []byte(url.Values{"payload": {"{not json"}}.Encode())
			return signedRequest(t, target, "issues", "bad-form-json", "1", "application/x-www-form-urlencoded", body)
		}, http.StatusBadRequest},
		{"missing event", func(t *testing.T) *http.Request {
			r := signedRequest(t, target, "issues", "no-event", "1", "application/json", valid)
			r.Header.Del("X-GitHub-Event")
			return r
		}, http.StatusBadRequest},
		{"missing delivery", func(t *testing.T) *http.Request {
			r := signedRequest(t, target, "issues", "", "1", "application/json", valid)
			r.Header.Del("X-GitHub-Delivery")
			return r
		}, http.StatusBadRequest},
		{"delivery id not UTF-8", func(t *testing.T) *http.Request {
			return signedRequest(t, target, "issues", "guid-\xff\xfe", "1", "application/json", valid)
		}, http.StatusBadRequest},
		{"hook id too long", func(t *testing.T) *http.Request {
			return signedRequest(t, target, "issues", "long-hook", strings.Repeat("9", 101), "application/json", valid)
		}, http.StatusBadRequest},
		{"NUL in sender login", func(t *testing.T) *http.Request {
			body := []byte(`{"action":"opened","repository":{"full_name":"o/r"},"sender":{"login":"u\u0000v"}}`)
			return signedRequest(t, target, "issues", "nul-login", "1", "application/json", body)
		}, http.StatusBadRequest},
		{"text/plain", func(t *testing.T) *http.Request {
			return signedRequest(t, target, "issues", "text", "1", "text/plain", valid)
		}, http.StatusUnsupportedMediaType},
		{"no content type", func(t *testing.T) *http.Request {
			r := signedRequest(t, target, "issues", "no-ctype", "1", "application/json", valid)
			r.Header.Del("Content-Type")
			return r
		}, http.StatusUnsupportedMediaType},
		{"26 MB with Content-Length", func(t *testing.T) *http.Request {
			r := signedRequest(t, target, "issues", "huge-cl", "1", "application/json", huge)
			if r.ContentLength != int64(len(huge)) {
				t.Fatalf("ContentLength = %d, want %d", r.ContentLength, len(huge))
			}
			return r
		}, http.StatusRequestEntityTooLarge},
		{"26 MB chunked", func(t *testing.T) *http.Request {
			r := signedRequest(t, target, "issues", "huge-chunked", "1", "application/json", huge)
			// Hide the length: the body is sent chunked.
			r.Body = io.NopCloser(bytes.NewReader(huge))
			r.ContentLength = -1
			r.GetBody = nil
			return r
		}, http.StatusRequestEntityTooLarge},
		{"form without payload", func(t *testing.T) *http.Request {
			body := []byte(url.Values{"other": {string(valid)}}.Encode())
			return signedRequest(t, target, "issues", "form-no-payload", "1", "application/x-www-form-urlencoded", body)
		}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh client: a 413 may close the connection mid-upload.
			c := &http.Client{}
			defer c.CloseIdleConnections()
			req := tt.req(t)
			if got := do(t, c, req); got != tt.want {
				t.Errorf("POST %s = %d, want %d", tt.name, got, tt.want)
			}
		})
	}
	if got := e.count(t, `SELECT COUNT(*) FROM hw_deliveries`); got != 0 {
		t.Errorf("rows in hw_deliveries after rejections = %d, want 0", got)
	}
	if got := e.count(t, enqueued); got != 0 {
		t.Errorf("deliveries enqueued after rejections = %d, want 0", got)
	}
}

func TestDuplicates(t *testing.T) {
	t.Parallel()
	body := []byte(`{"action":"opened","issue":{"number":1},"repository":{"full_name":"o/r"},"sender":{"login":"u"}}`)

	t.Run("same hook and GUID", func(t *testing.T) {
		t.Parallel()
		e := newHandler(t)
		post := func() int {
			req := signedRequest(t, e.srv.URL+"/webhook", "issues", "dup-guid", "42", "application/json", body)
			return do(t, e.srv.Client(), req)
		}
		var wg sync.WaitGroup
		codes := make([]int, 20)
		for i := range codes {
			wg.Go(func() { codes[i] = post() })
		}
		wg.Wait()
		for range 5 {
			codes = append(codes, post())
		}
		for i, got := range codes {
			if got != http.StatusAccepted {
				t.Errorf("POST #%d of the same delivery = %d, want %d", i, got, http.StatusAccepted)
			}
		}
		if got := e.count(t, `SELECT COUNT(*) FROM hw_deliveries`); got != 1 {
			t.Errorf("rows in hw_deliveries = %d, want 1", got)
		}
		if got := e.count(t, enqueued); got != 1 {
			t.Errorf("deliveries enqueued = %d, want 1", got)
		}
	})

	t.Run("same GUID, other hook", func(t *testing.T) {
		t.Parallel()
		e := newHandler(t)
		for _, hook := range []string{"42", "43", "42", "43"} {
			req := signedRequest(t, e.srv.URL+"/webhook", "issues", "shared-guid", hook, "application/json", body)
			if got := do(t, e.srv.Client(), req); got != http.StatusAccepted {
				t.Errorf("POST hook %s = %d, want %d", hook, got, http.StatusAccepted)
			}
		}
		if got := e.count(t, `SELECT COUNT(*) FROM hw_deliveries`); got != 2 {
			t.Errorf("rows in hw_deliveries = %d, want 2", got)
		}
		if got := e.count(t, enqueued); got != 2 {
			t.Errorf("deliveries enqueued = %d, want 2", got)
		}
	})
}

func TestStoreDown(t *testing.T) {
	t.Parallel()
	e := newHandler(t)
	if err := e.st.DB.Close(); err != nil {
		t.Fatalf("DB.Close: %v", err)
	}
	body := []byte(`{"action":"opened","repository":{"full_name":"o/r"}}`)
	for i := range 3 {
		req := signedRequest(t, e.srv.URL+"/webhook", "issues", fmt.Sprintf("down-%d", i), "1", "application/json", body)
		if got := do(t, e.srv.Client(), req); got != http.StatusServiceUnavailable {
			t.Errorf("POST with the store closed = %d, want %d", got, http.StatusServiceUnavailable)
		}
	}
}

// gatedSync holds every Sync until release is closed, then fails it with err.
type gatedSync struct {
	webhook.Persister
	syncing chan struct{}
	release chan struct{}
	err     error
}

func (g *gatedSync) Sync(ctx context.Context) error {
	select {
	case g.syncing <- struct{}{}:
	default:
	}
	<-g.release
	if g.err != nil {
		return g.err
	}
	return g.Persister.Sync(ctx)
}

// A delivery is answered only once its commit is on disk: not while the
// sync runs, and 503 (never 202) when the sync fails.
func TestAnswerWaitsForSync(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		syncErr error
		want    int
	}{
		{"synced", nil, http.StatusAccepted},
		{"sync fails", errors.New("fsync: input/output error"), http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := &gatedSync{syncing: make(chan struct{}, 1), release: make(chan struct{}), err: tc.syncErr}
			e := newHandlerWith(t, func(p webhook.Persister) webhook.Persister {
				g.Persister = p
				return g
			})
			body := []byte(`{"action":"opened","repository":{"full_name":"o/r"}}`)
			answered := make(chan int, 1)
			go func() {
				req := signedRequest(t, e.srv.URL+"/webhook", "issues", "sync-1", "1", "application/json", body)
				answered <- do(t, e.srv.Client(), req)
			}()
			<-g.syncing
			select {
			case code := <-answered:
				t.Fatalf("answered %d before the commit was synced", code)
			case <-time.After(100 * time.Millisecond):
			}
			close(g.release)
			if got := <-answered; got != tc.want {
				t.Errorf("answer = %d, want %d", got, tc.want)
			}
		})
	}
}

// On PostgreSQL a batch is durable when its COPY returns: the answer does
// not wait for a Sync, which has nothing to do there.
func TestDurableCommitsAnswerWithoutSync(t *testing.T) {
	t.Parallel()
	g := &gatedSync{syncing: make(chan struct{}, 1), release: make(chan struct{})}
	e := newHandlerOn(t, storetest.PostgresURL(t), func(p webhook.Persister) webhook.Persister {
		g.Persister = p
		return g
	})
	t.Cleanup(func() { close(g.release) })
	body := []byte(`{"action":"opened","repository":{"full_name":"o/r"}}`)
	answered := make(chan int, 1)
	go func() {
		answered <- do(t, e.srv.Client(), signedRequest(t, e.srv.URL+"/webhook", "issues", "durable-1", "1", "application/json", body))
	}()
	select {
	case code := <-answered:
		if code != http.StatusAccepted {
			t.Errorf("answer = %d, want %d", code, http.StatusAccepted)
		}
	case <-g.syncing:
		t.Fatal("the answer waits for a Sync")
	case <-time.After(10 * time.Second):
		t.Fatal("no answer in 10s")
	}
	if n := e.count(t, `SELECT COUNT(*) FROM hw_deliveries WHERE guid = 'durable-1'`); n != 1 {
		t.Errorf("%d rows stored for the answered delivery, want 1", n)
	}
}

// memoryEnv is a handler with a small body-memory budget and no per-client
// share (the sender and the deliveries share an address here), and a
// sender with a well-formed but wrong signature that has announced a body
// of announced bytes and sent only its first sent.
func memoryEnv(t *testing.T, budget int64, announced, sent int) (*env, net.Conn) {
	t.Helper()
	e := newHandlerTuned(t, filepath.Join(t.TempDir(), "hookwise.db"), nil, func(o *webhook.Options) {
		o.BodyMemory, o.QueueWait, o.ClientBodyShare = budget, 200*time.Millisecond, 1
	})
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
		"X-GitHub-Event: issues\r\nX-GitHub-Delivery: slow\r\nX-Hub-Signature-256: sha256=%064d\r\n\r\n", announced, 0)
	if _, err := conn.Write(bytes.Repeat([]byte(" "), sent)); err != nil {
		t.Fatal(err)
	}
	return e, conn
}

// postPadded posts a signed issues delivery padded with spaces (still the
// same JSON) by pad bytes, and returns the status.
func (e *env) postPadded(t *testing.T, guid string, pad int) int {
	t.Helper()
	b := append([]byte(`{"action":"opened","repository":{"full_name":"o/r"},"sender":{"login":"u"}`), bytes.Repeat([]byte(" "), pad)...)
	return do(t, &http.Client{}, signedRequest(t, e.srv.URL+"/webhook", "issues", guid, "1", "application/json", append(b, '}')))
}

// Bodies are counted against BodyMemory as they arrive: a sender that has
// sent 900 KB of a body and stalls holds that room, others are answered
// 429 once QueueWait passes, and the room comes back when it is done.
func TestBodyMemory(t *testing.T) {
	t.Parallel()
	e, conn := memoryEnv(t, 1<<20, 950_000, 900_000)
	// Once the slow request holds its room, a 200 KB delivery finds none
	// (the same GUID each time: one that got in first is stored once).
	eventually(t, "a 200 KB delivery while 900 KB of a 1 MiB budget are held is answered 429", func() bool {
		return e.postPadded(t, "large", 200_000) == http.StatusTooManyRequests
	})
	if got := e.postPadded(t, "small", 0); got != http.StatusAccepted {
		t.Errorf("a small delivery beside the held 900 KB = %d, want 202", got)
	}
	conn.Close() // the slow sender gives up, and its room comes back
	eventually(t, "the 200 KB delivery is accepted once the slow sender is gone", func() bool {
		return e.postPadded(t, "large", 200_000) == http.StatusAccepted
	})
	if n := e.count(t, `SELECT COUNT(*) FROM hw_deliveries`); n != 2 {
		t.Errorf("%d deliveries stored, want 2 (small, large)", n)
	}
}

// Room is reserved as a body arrives, not as it is announced: a sender
// that announces 20 MB and sends 10 bytes holds one 64 KiB chunk of a
// 2 MiB budget, and a 1.9 MB delivery still finds room.
func TestBodyMemoryFollowsWhatArrives(t *testing.T) {
	t.Parallel()
	e, _ := memoryEnv(t, 2<<20, 20<<20, 10)
	// Once the slow sender holds its chunk, the whole budget is no longer
	// free.
	eventually(t, "a delivery needing all 2 MiB beside the slow sender is answered 429", func() bool {
		return e.postPadded(t, "whole", 2<<20-40<<10) == http.StatusTooManyRequests
	})
	if got := e.postPadded(t, "most", 1_900_000); got != http.StatusAccepted {
		t.Errorf("a 1.9 MB delivery beside a sender that announced 20 MB and sent 10 bytes = %d, want 202", got)
	}
}

// eventually fails the test unless cond holds within 10 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
	}
}

// A rejection is logged with the peer and, behind a proxy, the client the
// proxy names, so that an operator can tell who sends bad deliveries.
func TestRejectionLogNamesForwardedClient(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	e := newHandlerTuned(t, filepath.Join(t.TempDir(), "hookwise.db"), nil, func(o *webhook.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	req := signedRequest(t, e.srv.URL+"/webhook", "issues", "fwd-1", "1", "application/json", []byte(`{"action":"opened"}`))
	req.Header.Set("X-Hub-Signature-256", "sha256=00")
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	if got := do(t, e.srv.Client(), req); got != http.StatusUnauthorized {
		t.Fatalf("bad signature = %d, want 401", got)
	}
	if out := logs.String(); !strings.Contains(out, `"forwarded_for":"203.0.113.7"`) || !strings.Contains(out, `"remote":"127.0.0.1:`) {
		t.Errorf("log = %s, want the peer and forwarded_for 203.0.113.7", out)
	}
}
