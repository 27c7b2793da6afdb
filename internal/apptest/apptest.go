// Package apptest runs a whole hookwise in this process against the fakes
// of GitHub and Anthropic, on a temporary SQLite file: the harness of the
// end-to-end tests of several packages. It is for tests only.
package apptest

import (
	"context"
	"net"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/hookwise/hookwise/internal/app"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
)

// The credentials the running hookwise uses: the fakes given to Start must
// accept GitHubToken and ModelKey, and deliveries are signed with Secret.
const (
	Secret      = "test-secret"
	GitHubToken = "gh-token"
	ModelKey    = "model-key"
)

// Running is a hookwise started by Start; it stops when the test ends.
type Running struct {
	App      *app.App
	Config   config.Config
	Endpoint string // the webhook URL
}

// Start serves the fakes, runs hookwise against them with the default
// configuration changed by mutate (if not nil), and stops it all when the
// test ends.
func Start(t testing.TB, github *fake.GitHub, model *fake.Anthropic, mutate func(*config.Config)) *Running {
	t.Helper()
	ghSrv := httptest.NewServer(github)
	t.Cleanup(ghSrv.Close)
	modelSrv := httptest.NewServer(model)
	t.Cleanup(modelSrv.Close)

	cfg := config.Default()
	cfg.DatabaseURL = filepath.Join(t.TempDir(), "hookwise.db")
	cfg.GitHub.WebhookSecrets = []config.Secret{Secret}
	cfg.GitHub.Token = GitHubToken
	cfg.GitHub.APIURL = ghSrv.URL + "/"
	cfg.Anthropic.APIKey = ModelKey
	cfg.Anthropic.BaseURL = modelSrv.URL
	// Most tests send one event per thread: no quiet period to wait out.
	// Coalescing tests set their own.
	cfg.Defaults.QuietPeriod = new(config.Duration)
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.ValidateForServe(); err != nil {
		t.Fatal(err)
	}
	a, err := app.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
		a.Close()
	})
	return &Running{App: a, Config: cfg, Endpoint: "http://" + ln.Addr().String() + "/webhook"}
}
