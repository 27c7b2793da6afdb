package main

import (
	"context"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// metricName finds hookwise's metric names in PromQL and prose alike.
var metricName = regexp.MustCompile(`\bhookwise_[a-zA-Z0-9_]*[a-zA-Z0-9]`)

// The series a histogram or summary exports beside its own name.
var seriesSuffixes = []string{"_bucket", "_sum", "_count"}

func metricsCommand(_ context.Context, args []string, stdout io.Writer) (problems, error) {
	fs := flag.NewFlagSet("metrics", flag.ContinueOnError)
	src := fs.String("src", "", "the hookwise source tree whose internal/ and cmd/ define the metrics")
	if err := parseFlags(fs, args, 1, -1); err != nil {
		return nil, err
	}
	if err := requireFlags(fs, "src"); err != nil {
		return nil, err
	}
	defined, err := definedMetrics(*src)
	if err != nil {
		return nil, err
	}
	var found problems
	for _, file := range fs.Args() {
		named, err := namedMetrics(file)
		if err != nil {
			found.add("%v", err)
			continue
		}
		missing := undefinedMetrics(filepath.Base(file), named, defined)
		if len(missing) == 0 {
			fmt.Fprintf(stdout, "%s names %d hookwise metrics, all defined (%d defined in all)\n", filepath.Base(file), len(named), len(defined))
		}
		found = append(found, missing...)
	}
	return found, nil
}

// undefinedMetrics reports each name in named that defined lacks, where a
// histogram's or summary's series count as its own name.
func undefinedMetrics(file string, named []string, defined map[string]string) problems {
	var found problems
	for _, name := range named {
		if isDefined(name, defined) {
			continue
		}
		found.add("%s names %s, which hookwise does not export (no prometheus.…Opts{Name: %q} or prometheus.NewDesc(%q, …) in the Go code)",
			file, name, name, name)
	}
	return found
}

func isDefined(name string, defined map[string]string) bool {
	if _, ok := defined[name]; ok {
		return true
	}
	for _, s := range seriesSuffixes {
		if base, ok := strings.CutSuffix(name, s); ok {
			if _, ok := defined[base]; ok {
				return true
			}
		}
	}
	return false
}

// namedMetrics returns, sorted, every hookwise metric a YAML or JSON file
// names in any string (comments aside: they are not parsed).
func namedMetrics(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Base(file), err)
	}
	names := map[string]bool{}
	walkStrings(doc, func(s string) {
		for _, m := range metricName.FindAllString(s, -1) {
			names[m] = true
		}
	})
	return slices.Sorted(maps.Keys(names)), nil
}

// walkStrings calls f with every string in a decoded YAML or JSON value,
// keys included.
func walkStrings(v any, f func(string)) {
	switch v := v.(type) {
	case string:
		f(v)
	case []any:
		for _, e := range v {
			walkStrings(e, f)
		}
	case map[string]any:
		for k, e := range v {
			f(k)
			walkStrings(e, f)
		}
	}
}

// definedMetrics returns the hookwise metrics the Go code under
// src/internal and src/cmd defines, each with where: the Name of a
// prometheus …Opts literal, or the first argument of prometheus.NewDesc.
// Test files do not count: a metric only a test defines is not exported.
func definedMetrics(src string) (map[string]string, error) {
	defined := map[string]string{}
	fset := token.NewFileSet()
	for _, dir := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join(src, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			for name, pos := range metricDefinitions(f) {
				defined[name] = fset.Position(pos).String()
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read the metrics the Go code defines: %w", err)
		}
	}
	return defined, nil
}

// metricDefinitions finds the hookwise metric names one file gives to
// client_golang.
func metricDefinitions(f *ast.File) map[string]token.Pos {
	found := map[string]token.Pos{}
	record := func(e ast.Expr) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return
		}
		if s, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(s, "hookwise_") {
			found[s] = lit.Pos()
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			if sel, ok := n.Type.(*ast.SelectorExpr); ok && strings.HasSuffix(sel.Sel.Name, "Opts") {
				for _, el := range n.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "Name") {
						record(kv.Value)
					}
				}
			}
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "NewDesc" && len(n.Args) > 0 {
				record(n.Args[0])
			}
		}
		return true
	})
	return found
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}
