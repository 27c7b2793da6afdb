package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Who may use the admin API. With an admin token, whoever presents it. With
// none, only someone on this machine: the listener must be bound to
// loopback (a listener on every interface makes a proxy or sidecar on the
// host hand everyone a loopback address), the request must name a loopback
// host (a DNS-rebound name is a web page's way in), and it must not have
// come through a proxy. In both modes a state-changing request must be one
// that no web page can send (see notCrossSite).

var errUnauthorized = errors.New("missing or wrong admin token")

// forbiddenError is a refusal whose message the client may see.
type forbiddenError string

func (e forbiddenError) Error() string { return string(e) }

const (
	errNotLoopback forbiddenError = "without an admin token the admin API answers only on a listener bound to loopback, to local clients"
	errProxied     forbiddenError = "without an admin token the admin API answers no request that came through a proxy"
	errHost        forbiddenError = "without an admin token the admin API answers only requests for localhost, 127.0.0.1 or [::1]"
	errCrossSite   forbiddenError = "cross-site request refused"
	errSimplePost  forbiddenError = "a state-changing request needs an Authorization header or Content-Type: application/json"
)

// proxyHeaders mark a request a proxy passed on.
var proxyHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP", "Via"}

type listenAddrKey struct{}

// BaseContext is an http.Server's BaseContext for a server of this
// package's handler: it records the address the listener is bound to,
// which the admin API checks while no admin token is set. A request
// without it is taken as from a listener that is not on loopback.
func BaseContext(l net.Listener) context.Context {
	return WithListenAddr(context.Background(), l.Addr())
}

// WithListenAddr returns ctx recording addr as the address of the listener
// the request came in on (see BaseContext).
func WithListenAddr(ctx context.Context, addr net.Addr) context.Context {
	return context.WithValue(ctx, listenAddrKey{}, addr)
}

// authorize decides whether r may use the admin API.
func (s *server) authorize(r *http.Request) error {
	if s.tokenSum == nil {
		return localOnly(r)
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return errUnauthorized
	}
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], s.tokenSum) != 1 {
		return errUnauthorized
	}
	return nil
}

// localOnly admits r when it can only have come from this machine.
func localOnly(r *http.Request) error {
	addr, _ := r.Context().Value(listenAddrKey{}).(net.Addr)
	// Only the connection's own addresses count: X-Forwarded-For and the
	// like are set by whoever sends the request.
	if addr == nil || !isLoopback(addr.String()) || !isLoopback(r.RemoteAddr) {
		return errNotLoopback
	}
	for _, h := range proxyHeaders {
		if len(r.Header.Values(h)) > 0 {
			return errProxied
		}
	}
	if !loopbackHost(r.Host) {
		return errHost
	}
	return nil
}

// notCrossSite refuses a state-changing request that a web page could have
// made: one a browser marks as coming from another origin, and one without
// an Authorization header or a JSON content type. A page can send neither
// of those to another origin without the browser asking first (a CORS
// preflight), which hookwise never approves; a plain HTML form can send
// neither at all.
func (s *server) notCrossSite(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if err := s.crossOrigin.Check(r); err != nil {
		return errCrossSite
	}
	if r.Header.Get("Authorization") != "" {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "application/json" {
		return nil
	}
	return errSimplePost
}

// isLoopback reports whether addr (host:port, as net/http sets RemoteAddr,
// or a bare address) is in 127.0.0.0/8 or ::1, including IPv4-mapped IPv6
// forms.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.Unmap().IsLoopback()
}

// loopbackHost reports whether a Host header names this machine's loopback:
// localhost or a loopback address, with any port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.EqualFold(host, "localhost") || isLoopback(host)
}
