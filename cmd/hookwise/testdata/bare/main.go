// Command bare is the reference the end-to-end benchmark measures hookwise
// against: an HTTP server that reads a webhook's body, checks its
// X-Hub-Signature-256 and answers 202, storing nothing. Whatever hookwise
// does beyond that (validate, persist, fsync, dispatch, process) is what
// the ratio between the two costs.
//
// Usage: GITHUB_WEBHOOK_SECRET=… bare ADDR (prints the address it
// listens on, then serves until killed).
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hookwise/hookwise/internal/webhook"
)

func main() {
	secret, _, _ := strings.Cut(os.Getenv("GITHUB_WEBHOOK_SECRET"), ",")
	if secret == "" || len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: GITHUB_WEBHOOK_SECRET=… bare ADDR")
		os.Exit(2)
	}
	secrets := [][]byte{[]byte(secret)}
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.MaxBody))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !webhook.Verify(secrets, body, r.Header.Get("X-Hub-Signature-256")) {
			http.Error(w, "signature does not match", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})}
	fmt.Fprintln(os.Stderr, "bare:", srv.Serve(ln))
	os.Exit(1)
}
