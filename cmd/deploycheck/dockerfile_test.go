package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readDockerfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDockerfileAcceptsTheRepositorysDockerfile(t *testing.T) {
	wantNoProblems(t, checkDockerfile("Dockerfile", []byte(readDockerfile(t))))
}

func TestDockerfileFindsBrokenImages(t *testing.T) {
	tests := []struct {
		name  string
		edits [][2]string // old, new
		want  string
	}{
		{"root, set after the non-root user", [][2]string{{`ENTRYPOINT ["/hookwise"]`, "USER root\n" + `ENTRYPOINT ["/hookwise"]`}},
			"Dockerfile: the final stage's USER is root, want 65532:65532"},
		{"a cgo build", [][2]string{{"CGO_ENABLED=0 go build", "go build"}}, "Dockerfile: no RUN builds ./cmd/hookwise as CGO_ENABLED=0"},
		{"a build without -trimpath", [][2]string{{"-trimpath ", ""}}, "no RUN builds ./cmd/hookwise"},
		{"a base with a shell", [][2]string{{"FROM scratch", "FROM alpine:3.22"}}, "the final stage's FROM is alpine:3.22, want scratch"},
		{"no volume", [][2]string{{`VOLUME ["/data"]`, ""}}, "the final stage has no VOLUME"},
		{"the database off the volume", [][2]string{{"ENV HOOKWISE_DATABASE_URL=/data/hookwise.db", "ENV HOOKWISE_DATABASE_URL=/tmp/hookwise.db"}},
			`must leave ENV HOOKWISE_DATABASE_URL=/data/hookwise.db (the database on the volume), got "/tmp/hookwise.db"`},
		{"the database moved by a later ENV", [][2]string{{`VOLUME ["/data"]`, `VOLUME ["/data"]` + "\nENV HOOKWISE_DATABASE_URL /tmp/x.db"}},
			`got "/tmp/x.db"`},
		{"another command", [][2]string{{`CMD ["serve"]`, `CMD ["demo"]`}}, `the final stage's CMD is ["demo"], want ["serve"]`},
		// Only the last stage is the image: the right line in the build
		// stage does not count.
		{"the user in the build stage only", [][2]string{{"USER 65532:65532\n", ""}, {"WORKDIR /src\n", "WORKDIR /src\nUSER 65532:65532\n"}},
			"the final stage has no USER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			df := readDockerfile(t)
			for _, e := range tt.edits {
				if n := strings.Count(df, e[0]); n != 1 {
					t.Fatalf("Dockerfile holds %q %d times, want once", e[0], n)
				}
				df = strings.Replace(df, e[0], e[1], 1)
			}
			wantProblem(t, checkDockerfile("Dockerfile", []byte(df)), tt.want)
		})
	}
}

func TestDockerfileOddInput(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"empty", "", "Dockerfile: no FROM instruction"},
		{"only comments", "# FROM scratch\n", "Dockerfile: no FROM instruction"},
		{"FROM without an image", "FROM\n", "the final stage's FROM is , want scratch"},
		{"a continuation at the end of the file", "FROM scratch\nUSER \\", "the final stage's USER is , want 65532:65532"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, checkDockerfile("Dockerfile", []byte(tt.in)), tt.want)
		})
	}
}

func TestParseDockerfileJoinsContinuationsAndDropsComments(t *testing.T) {
	got := parseDockerfile([]byte("FROM golang:1.26 AS build\nRUN --mount=type=cache \\\n    # a comment inside\n    go   build \\\n  ./cmd/hookwise\n"))
	want := []instruction{{"FROM", "golang:1.26 AS build"}, {"RUN", "--mount=type=cache go build ./cmd/hookwise"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("parseDockerfile = %q, want %q", got, want)
	}
}
