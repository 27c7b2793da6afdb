package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The image's build command. validate.sh builds the binary it runs with the
// same flags, so what it checks is what the image would ship.
var buildFlags = []string{"CGO_ENABLED=0", "go build", "-trimpath", `-ldflags "-s -w"`, "./cmd/hookwise"}

// finalStage is what the image's last stage must say, as the last
// instruction of each kind there (a later USER root would win).
var finalStage = []struct{ keyword, args, why string }{
	{"FROM", "scratch", "nothing in the image but hookwise and CA certificates"},
	{"USER", "65532:65532", "hookwise does not run as root"},
	{"EXPOSE", "8080", "the webhook's port"},
	{"VOLUME", `["/data"]`, "the SQLite database outlives the container"},
	{"ENTRYPOINT", `["/hookwise"]`, "the image has no shell"},
	{"CMD", `["serve"]`, "docker run IMAGE serves"},
}

func dockerfileCommand(_ context.Context, args []string, stdout io.Writer) (problems, error) {
	fs := flag.NewFlagSet("dockerfile", flag.ContinueOnError)
	if err := parseFlags(fs, args, 1, 1); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return nil, err
	}
	found := checkDockerfile(filepath.Base(fs.Arg(0)), b)
	if len(found) == 0 {
		fmt.Fprintln(stdout, "Dockerfile: static build, scratch, uid 65532, port, volume, entry point")
	}
	return found, nil
}

// instruction is one Dockerfile instruction, its continuation lines joined.
type instruction struct {
	keyword string // upper case
	args    string // whitespace collapsed
}

// checkDockerfile checks the build command of ./cmd/hookwise and the final
// stage of the Dockerfile named name.
func checkDockerfile(name string, b []byte) problems {
	var found problems
	stages := dockerStages(parseDockerfile(b))
	if len(stages) == 0 {
		return problems{name + ": no FROM instruction"}
	}
	built := false
	for _, st := range stages {
		for _, in := range st {
			if in.keyword == "RUN" && containsAll(in.args, buildFlags) {
				built = true
			}
		}
	}
	if !built {
		found.add("%s: no RUN builds ./cmd/hookwise as %s (a static binary for scratch)", name, strings.Join(buildFlags, " … "))
	}
	last := stages[len(stages)-1]
	for _, want := range finalStage {
		got, ok := lastArgs(last, want.keyword)
		switch {
		case !ok:
			found.add("%s: the final stage has no %s; want %s %s (%s)", name, want.keyword, want.keyword, want.args, want.why)
		case got != want.args:
			found.add("%s: the final stage's %s is %s, want %s (%s)", name, want.keyword, got, want.args, want.why)
		}
	}
	if v, ok := envValue(last, "HOOKWISE_DATABASE_URL"); !ok || v != "/data/hookwise.db" {
		found.add("%s: the final stage must leave ENV HOOKWISE_DATABASE_URL=/data/hookwise.db (the database on the volume), got %q", name, v)
	}
	return found
}

// parseDockerfile splits b into instructions: comment lines dropped,
// continuation lines joined, whitespace collapsed.
func parseDockerfile(b []byte) []instruction {
	var out []instruction
	var cur strings.Builder
	flush := func() {
		if f := strings.Fields(cur.String()); len(f) > 0 {
			out = append(out, instruction{keyword: strings.ToUpper(f[0]), args: strings.Join(f[1:], " ")})
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if body, more := strings.CutSuffix(line, `\`); more {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return out
}

// dockerStages groups instructions by stage, each starting at its FROM;
// what comes before the first FROM (ARG) belongs to none.
func dockerStages(ins []instruction) [][]instruction {
	var stages [][]instruction
	for _, in := range ins {
		if in.keyword == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	return stages
}

// lastArgs returns the arguments of the stage's last instruction of that
// kind; for FROM, only the image (no --platform, no "AS name").
func lastArgs(stage []instruction, keyword string) (string, bool) {
	for i := len(stage) - 1; i >= 0; i-- {
		if stage[i].keyword != keyword {
			continue
		}
		if keyword != "FROM" {
			return stage[i].args, true
		}
		for _, f := range strings.Fields(stage[i].args) {
			if !strings.HasPrefix(f, "--") {
				return f, true
			}
		}
		return "", true
	}
	return "", false
}

// envValue returns what the stage's ENV instructions leave key set to: the
// last one wins. Both forms count: ENV K=V [K2=V2 ...] and ENV K V.
func envValue(stage []instruction, key string) (string, bool) {
	value, set := "", false
	for _, in := range stage {
		if in.keyword != "ENV" {
			continue
		}
		fields := strings.Fields(in.args)
		if len(fields) > 0 && !strings.Contains(fields[0], "=") {
			if fields[0] == key {
				value, set = strings.Join(fields[1:], " "), true
			}
			continue
		}
		for _, f := range fields {
			if k, v, ok := strings.Cut(f, "="); ok && k == key {
				value, set = strings.Trim(v, `"`), true
			}
		}
	}
	return value, set
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
