package web_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hookwise/hookwise/internal/web"
)

// request builds a request to f's handler as a server listening on listen
// ("" records no listener) would pass it on.
func request(t *testing.T, method, target, listen, remote, host string, header map[string]string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if listen != "" {
		addr, err := net.ResolveTCPAddr("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		r = r.WithContext(web.WithListenAddr(r.Context(), addr))
	}
	r.RemoteAddr, r.Host = remote, host
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

// Without a token, the admin API answers only on a loopback listener, to
// local clients, for a loopback host, and never through a proxy.
func TestAdminWithoutToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	const (
		local  = "127.0.0.1:8080"
		client = "127.0.0.1:50000"
	)
	tests := []struct {
		name                 string
		listen, remote, host string
		header               map[string]string
		want                 int
		wantErr              string // a substring of the error
	}{
		{name: "loopback listener, local client", listen: local, remote: client, host: local, want: 200},
		{name: "localhost", listen: local, remote: client, host: "localhost:8080", want: 200},
		{name: "localhost in capitals, no port", listen: local, remote: client, host: "LOCALHOST", want: 200},
		{name: "ipv6 loopback", listen: "[::1]:8080", remote: "[::1]:50000", host: "[::1]:8080", want: 200},
		{name: "ipv6 host without port", listen: "[::1]:8080", remote: "[::1]:50000", host: "[::1]", want: 200},
		{name: "other 127/8 client", listen: local, remote: "127.1.2.3:50000", host: local, want: 200},
		{name: "mapped loopback client", listen: local, remote: "[::ffff:127.0.0.1]:50000", host: local, want: 200},

		{name: "listener on every interface, loopback client (a proxy on the host)", listen: "0.0.0.0:8080",
			remote: client, host: local, want: 403, wantErr: "listener bound to loopback"},
		{name: "ipv6 listener on every interface", listen: "[::]:8080", remote: client, host: local,
			want: 403, wantErr: "listener bound to loopback"},
		{name: "listener on a public address", listen: "192.0.2.10:8080", remote: client, host: local,
			want: 403, wantErr: "listener bound to loopback"},
		{name: "no listener recorded", remote: client, host: local, want: 403, wantErr: "listener bound to loopback"},
		{name: "remote client", listen: local, remote: "192.0.2.1:50000", host: local,
			want: 403, wantErr: "listener bound to loopback"},
		{name: "mapped remote client", listen: local, remote: "[::ffff:192.0.2.1]:50000", host: local,
			want: 403, wantErr: "listener bound to loopback"},

		{name: "DNS rebinding", listen: local, remote: client, host: "attacker.example:8080", want: 403, wantErr: "requests for localhost"},
		{name: "DNS rebinding, loopback-looking name", listen: local, remote: client, host: "127.0.0.1.attacker.example",
			want: 403, wantErr: "requests for localhost"},
		{name: "DNS rebinding, localhost subdomain of a domain", listen: local, remote: client, host: "localhost.attacker.example:8080",
			want: 403, wantErr: "requests for localhost"},
		{name: "host 0.0.0.0", listen: local, remote: client, host: "0.0.0.0:8080", want: 403, wantErr: "requests for localhost"},
		{name: "no host", listen: local, remote: client, host: "", want: 403, wantErr: "requests for localhost"},

		{name: "proxied: X-Forwarded-For", listen: local, remote: client, host: local,
			header: map[string]string{"X-Forwarded-For": "127.0.0.1"}, want: 403, wantErr: "through a proxy"},
		{name: "proxied: X-Real-IP", listen: local, remote: client, host: local,
			header: map[string]string{"X-Real-IP": "127.0.0.1"}, want: 403, wantErr: "through a proxy"},
		{name: "proxied: Forwarded", listen: local, remote: client, host: local,
			header: map[string]string{"Forwarded": "for=127.0.0.1"}, want: 403, wantErr: "through a proxy"},
		{name: "proxied: Via", listen: local, remote: client, host: local,
			header: map[string]string{"Via": "1.1 nginx"}, want: 403, wantErr: "through a proxy"},
		{name: "proxied: empty X-Forwarded-Proto", listen: local, remote: client, host: local,
			header: map[string]string{"X-Forwarded-Proto": ""}, want: 403, wantErr: "through a proxy"},
	}
	for _, tt := range tests {
		for _, target := range []string{"/api/v1/stats", "/api/v1/deliveries", "/api/v1/deliveries/1"} {
			t.Run(tt.name+" "+target, func(t *testing.T) {
				w := httptest.NewRecorder()
				f.h.ServeHTTP(w, request(t, "GET", target, tt.listen, tt.remote, tt.host, tt.header))
				if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.wantErr) {
					t.Fatalf("GET %s (listener %q, client %s, Host %q) = %d %s, want %d %q",
						target, tt.listen, tt.remote, tt.host, w.Code, w.Body, tt.want, tt.wantErr)
				}
				if w.Code >= 400 {
					var body map[string]string
					decode(t, w, &body)
				}
			})
		}
	}
	if got := f.q.Replayed(); len(got) != 0 {
		t.Errorf("replays = %v, want none", got)
	}
}

// With a token, who presents it may use the admin API from anywhere,
// through a proxy too; nobody else may, loopback or not.
func TestAdminWithToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token)
	const local = "127.0.0.1:8080"
	tests := []struct {
		name           string
		listen, remote string
		header         map[string]string
		want           int
	}{
		{name: "missing", listen: "0.0.0.0:8080", remote: "192.0.2.1:1234", want: 401},
		{name: "missing on loopback", listen: local, remote: "127.0.0.1:1234", want: 401},
		{name: "wrong", remote: "192.0.2.1:1234", header: map[string]string{"Authorization": "Bearer nope"}, want: 401},
		{name: "prefix of right", remote: "192.0.2.1:1234", header: map[string]string{"Authorization": "Bearer " + token[:5]}, want: 401},
		{name: "right with a suffix", remote: "192.0.2.1:1234", header: map[string]string{"Authorization": "Bearer " + token + "x"}, want: 401},
		{name: "basic scheme", remote: "192.0.2.1:1234", header: map[string]string{"Authorization": "Basic " + token}, want: 401},
		{name: "empty bearer", remote: "192.0.2.1:1234", header: map[string]string{"Authorization": "Bearer "}, want: 401},
		{name: "right", listen: "0.0.0.0:8080", remote: "192.0.2.1:1234", header: map[string]string{"Authorization": "Bearer " + token}, want: 200},
		{name: "right, lower-case scheme", remote: "192.0.2.1:1234", header: map[string]string{"Authorization": "bearer " + token}, want: 200},
		{name: "right, through a proxy", remote: "10.0.0.5:1234", header: map[string]string{
			"Authorization": "Bearer " + token, "X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9", "Via": "1.1 nginx"}, want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			f.h.ServeHTTP(w, request(t, "GET", "/api/v1/stats", tt.listen, tt.remote, "hookwise.example", tt.header))
			if w.Code != tt.want {
				t.Fatalf("GET /api/v1/stats (%s) = %d %s, want %d", tt.name, w.Code, w.Body, tt.want)
			}
			if got := w.Header().Get("WWW-Authenticate"); (got == "Bearer") != (tt.want == 401) {
				t.Errorf("WWW-Authenticate = %q, want Bearer on 401 only", got)
			}
		})
	}
}

// A state-changing request is refused when a browser says it comes from
// another site, or when it carries neither an Authorization header nor a
// JSON content type (what a plain HTML form, or a script without a CORS
// preflight, can send), whether or not a token is set.
func TestAdminCrossSite(t *testing.T) {
	t.Parallel()
	guarded, open := newFixture(t, token), newFixture(t, "")
	const local = "127.0.0.1:8080"
	bearer := "Bearer " + token
	tests := []struct {
		name    string
		f       *fixture
		host    string
		header  map[string]string
		want    int
		wantErr string
	}{
		{name: "token: curl", f: guarded, header: map[string]string{"Authorization": bearer}, want: 202},
		{name: "token: same origin", f: guarded, header: map[string]string{"Authorization": bearer, "Sec-Fetch-Site": "same-origin"}, want: 202},
		{name: "token: typed in the address bar", f: guarded, header: map[string]string{"Authorization": bearer, "Sec-Fetch-Site": "none"}, want: 202},
		{name: "token: origin matching the host", f: guarded, header: map[string]string{"Authorization": bearer, "Origin": "https://hookwise.example"}, want: 202},
		{name: "token: cross-site", f: guarded, header: map[string]string{"Authorization": bearer, "Sec-Fetch-Site": "cross-site"},
			want: 403, wantErr: "cross-site"},
		{name: "token: same site, other origin", f: guarded, header: map[string]string{"Authorization": bearer, "Sec-Fetch-Site": "same-site"},
			want: 403, wantErr: "cross-site"},
		{name: "token: foreign origin, old browser", f: guarded, header: map[string]string{"Authorization": bearer, "Origin": "https://attacker.example"},
			want: 403, wantErr: "cross-site"},
		{name: "token: null origin", f: guarded, header: map[string]string{"Authorization": bearer, "Origin": "null"},
			want: 403, wantErr: "cross-site"},
		{name: "token missing, cross-site form", f: guarded,
			header: map[string]string{"Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded"}, want: 403, wantErr: "cross-site"},
		{name: "token missing, JSON", f: guarded, header: map[string]string{"Content-Type": "application/json"}, want: 401},

		{name: "no token: JSON", f: open, host: local, header: map[string]string{"Content-Type": "application/json"}, want: 202},
		{name: "no token: JSON with charset", f: open, host: local, header: map[string]string{"Content-Type": "application/json; charset=utf-8"}, want: 202},
		{name: "no token: any Authorization", f: open, host: local, header: map[string]string{"Authorization": "Bearer local"}, want: 202},
		{name: "no token: JSON, origin matching the host", f: open, host: local,
			header: map[string]string{"Content-Type": "application/json", "Origin": "http://" + local}, want: 202},
		{name: "no token: nothing to mark it", f: open, host: local, want: 403, wantErr: "Content-Type: application/json"},
		{name: "no token: form", f: open, host: local, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			want: 403, wantErr: "Content-Type: application/json"},
		{name: "no token: multipart form", f: open, host: local, header: map[string]string{"Content-Type": "multipart/form-data; boundary=x"},
			want: 403, wantErr: "Content-Type: application/json"},
		{name: "no token: text/plain posing as JSON", f: open, host: local, header: map[string]string{"Content-Type": "text/plain; x=application/json"},
			want: 403, wantErr: "Content-Type: application/json"},
		{name: "no token: cross-site JSON", f: open, host: local,
			header: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, want: 403, wantErr: "cross-site"},
		{name: "no token: page on another local port", f: open, host: local,
			header: map[string]string{"Content-Type": "application/json", "Origin": "http://127.0.0.1:3000"}, want: 403, wantErr: "cross-site"},
		{name: "no token: DNS rebinding with JSON", f: open, host: "attacker.example:8080",
			header: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"}, want: 403, wantErr: "requests for localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := tt.host
			if host == "" {
				host = "hookwise.example"
			}
			before := len(tt.f.q.Replayed())
			w := httptest.NewRecorder()
			target := "/api/v1/deliveries/" + tt.f.guids[2] + "/replay"
			tt.f.h.ServeHTTP(w, request(t, "POST", target, local, "127.0.0.1:50000", host, tt.header))
			if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.wantErr) {
				t.Fatalf("POST replay (%s) = %d %s, want %d %q", tt.name, w.Code, w.Body, tt.want, tt.wantErr)
			}
			queued := len(tt.f.q.Replayed()) - before
			if want := map[bool]int{true: 1, false: 0}[tt.want == 202]; queued != want {
				t.Errorf("POST replay (%s) queued %d, want %d", tt.name, queued, want)
			}
		})
	}
}

// Over a real connection: the CLI user's curl on the machine works without
// a token when hookwise listens on loopback, and nothing answers when it
// listens on every interface.
func TestAdminLoopbackServer(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	serve := func(t *testing.T, listen string) string {
		t.Helper()
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			t.Skipf("listen %s: %v", listen, err)
		}
		srv := &http.Server{Handler: f.h, BaseContext: web.BaseContext}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		return "http://127.0.0.1:" + port
	}
	get := func(t *testing.T, url string) int {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	post := func(t *testing.T, url, contentType string) int {
		t.Helper()
		resp, err := http.Post(url, contentType, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("loopback", func(t *testing.T) {
		base := serve(t, "127.0.0.1:0")
		if code := get(t, base+"/api/v1/stats"); code != 200 {
			t.Errorf("GET /api/v1/stats on a loopback listener = %d, want 200", code)
		}
		if code := post(t, base+"/api/v1/dlq/retry", "application/json"); code != 202 {
			t.Errorf("POST /api/v1/dlq/retry (JSON) on a loopback listener = %d, want 202", code)
		}
		if code := post(t, base+"/api/v1/dlq/retry", "application/x-www-form-urlencoded"); code != 403 {
			t.Errorf("POST /api/v1/dlq/retry (form) on a loopback listener = %d, want 403", code)
		}
	})
	t.Run("every interface", func(t *testing.T) {
		base := serve(t, ":0")
		if code := get(t, base+"/api/v1/stats"); code != 403 {
			t.Errorf("GET /api/v1/stats from loopback on a listener on every interface = %d, want 403", code)
		}
	})
}

// The public handler of a split layout has the webhook and /healthz only.
func TestPublicHandler(t *testing.T) {
	t.Parallel()
	h := web.NewHandler(web.Options{Webhook: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	})})
	for _, tt := range []struct {
		method, target string
		want           int
	}{
		{"POST", "/webhook", 202},
		{"POST", "/github-webhook", 202},
		{"GET", "/healthz", 200},
		{"GET", "/readyz", 404},
		{"GET", "/metrics", 404},
		{"GET", "/api/v1/stats", 404},
		{"POST", "/api/v1/dlq/retry", 404},
	} {
		w := httptest.NewRecorder()
		r := request(t, tt.method, tt.target, "127.0.0.1:8080", "127.0.0.1:1", "localhost", nil)
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%s %s on the public handler = %d, want %d", tt.method, tt.target, w.Code, tt.want)
		}
	}
}
