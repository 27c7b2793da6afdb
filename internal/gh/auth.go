package gh

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/hookwise/hookwise/internal/pace"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-github/v84/github"
)

// appAuth authenticates as a GitHub App: a short-lived JWT signed with the
// App's key buys installation tokens, which are cached per installation
// until a minute before they expire.
type appAuth struct {
	id  int64
	key *rsa.PrivateKey
	now func() time.Time

	jwtClient *github.Client // authenticated with a fresh JWT per request
	newClient func(key string, token func(context.Context) (string, error)) *github.Client

	mu       sync.Mutex
	installs map[int64]*installation
}

// installation holds one installation's token and the go-github client that
// uses it. Its own mutex makes concurrent callers share one token request.
type installation struct {
	mu      sync.Mutex
	token   string
	expires time.Time
	client  *github.Client
}

// tokenSlack is how long before expiry an installation token is replaced,
// so that a request never starts with a token about to die.
const tokenSlack = time.Minute

// jwt builds the App JWT GitHub expects: RS256, issued a minute in the past
// to absorb clock drift, valid for nine minutes (GitHub allows ten).
func (a *appAuth) jwt() (string, error) {
	now := a.now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Issuer:    strconv.FormatInt(a.id, 10),
		IssuedAt:  jwt.NewNumericDate(now.Add(-60 * time.Second)),
		ExpiresAt: jwt.NewNumericDate(now.Add(9 * time.Minute)),
	}).SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("sign app jwt: %w", err)
	}
	return tok, nil
}

// client returns the go-github client of installation id, creating it on
// first use. Tokens are fetched lazily by its transport.
func (a *appAuth) client(id int64) *github.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	in := a.installs[id]
	if in == nil {
		in = &installation{}
		in.client = a.newClient(installationKey(id), func(ctx context.Context) (string, error) {
			return a.installationToken(ctx, id, in)
		})
		a.installs[id] = in
	}
	return in.client
}

// installationToken returns a valid token for installation id, asking
// GitHub for a new one when the cached one is missing or about to expire.
func (a *appAuth) installationToken(ctx context.Context, id int64, in *installation) (string, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.token != "" && a.now().Before(in.expires.Add(-tokenSlack)) {
		return in.token, nil
	}
	tok, resp, err := a.jwtClient.Apps.CreateInstallationToken(ctx, id, nil)
	if err != nil {
		e := toError(err, resp, "")
		var ge *Error
		if errors.As(e, &ge) {
			ge.Message = fmt.Sprintf("installation %d token: %s", id, ge.Message)
		}
		return "", e
	}
	in.token = tok.GetToken()
	in.expires = tok.GetExpiresAt().Time
	if in.expires.IsZero() {
		in.expires = a.now().Add(time.Hour) // GitHub's documented lifetime
	}
	return in.token, nil
}

// authTransport sets the Authorization header from token on every request,
// and names the credential for pacing (limits are per token or installation).
type authTransport struct {
	base  http.RoundTripper
	key   string
	token func(context.Context) (string, error)
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.token(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // RoundTrip must close the body, even on error
		}
		return nil, err
	}
	req = req.Clone(pace.WithKey(req.Context(), t.key))
	req.Header.Set("Authorization", "Bearer "+tok)
	return t.base.RoundTrip(req)
}

// parsePrivateKey reads an App private key: PKCS#1 ("RSA PRIVATE KEY", what
// GitHub hands out) or PKCS#8. A key pasted into an environment variable
// with literal "\n" sequences is accepted too. Errors never quote the key.
func parsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil && bytes.Contains(data, []byte(`\n`)) {
		block, _ = pem.Decode(bytes.ReplaceAll(data, []byte(`\n`), []byte("\n")))
	}
	if block == nil {
		return nil, errors.New("gh: private key is not PEM encoded")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("gh: private key: not a valid PKCS#1 RSA key")
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("gh: private key: not a valid PKCS#8 key")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("gh: private key: GitHub App keys are RSA, this one is not")
		}
		return rk, nil
	default:
		return nil, fmt.Errorf("gh: private key: unexpected PEM block %q, want RSA PRIVATE KEY", block.Type)
	}
}

// secretPattern matches GitHub tokens (classic and fine-grained PATs,
// installation, OAuth and refresh tokens) and JWTs.
var secretPattern = regexp.MustCompile(`\b(gh[pousr]_[A-Za-z0-9_]+|github_pat_[A-Za-z0-9_]+|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)`)

// redact removes credentials from text that will end up in an error, in
// case a server or proxy echoes them back.
func redact(s, token string) string {
	if token != "" {
		s = strings.ReplaceAll(s, token, "[REDACTED]")
	}
	return secretPattern.ReplaceAllString(s, "[REDACTED]")
}
