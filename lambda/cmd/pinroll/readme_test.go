package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// README parts generated or checked from their source, so they cannot rot. With
// PINROLL_UPDATE_README=1 the generated block is rewritten instead of compared:
//
//	PINROLL_UPDATE_README=1 go test ./lambda/cmd/pinroll/ -run TestREADME
const (
	referenceBegin = "<!-- BEGIN pinroll reference: generated from the CLI's kong model by TestREADMECLIReference -->\n```text\n"
	referenceEnd   = "```\n<!-- END pinroll reference -->"
)

func readme(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// README "The CLI" lists every command and flag as `pinroll COMMAND --help` does.
func TestREADMECLIReference(t *testing.T) {
	var want bytes.Buffer
	if err := reference(&want); err != nil {
		t.Fatal(err)
	}
	doc := readme(t)
	before, rest, ok := strings.Cut(doc, referenceBegin)
	if !ok {
		t.Fatalf("README.md lacks %q", referenceBegin)
	}
	got, after, ok := strings.Cut(rest, referenceEnd)
	if !ok {
		t.Fatalf("README.md lacks %q", referenceEnd)
	}
	if got == want.String() {
		return
	}
	if os.Getenv("PINROLL_UPDATE_README") == "1" {
		if err := os.WriteFile(filepath.Join(root, "README.md"), []byte(before+referenceBegin+want.String()+referenceEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("README.md: CLI reference rewritten")
		return
	}
	t.Errorf("README's CLI reference differs from the CLI; run PINROLL_UPDATE_README=1 go test ./lambda/cmd/pinroll/ -run TestREADME\nREADME:\n%s\nCLI:\n%s", got, want.String())
}

// README "Performance" shows the tables `make bench` prints, column for column (the numbers
// are a recorded run; the headers come from the bench's own source).
func TestREADMEPerformanceTablesHaveTheBenchColumns(t *testing.T) {
	var headers []string
	src := filepath.Join(root, "lambda", "internal", "bench")
	for _, name := range []string{"bench_test.go", "hub_test.go", "startup_test.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(src, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		headers = append(headers, tableHeaders(f)...)
	}
	if len(headers) < 3 {
		t.Fatalf("found %d table headers in %s, want the fleet, hub and binary tables'", len(headers), src)
	}
	perf := section(t, readme(t), "## Performance")
	for _, h := range headers {
		if !strings.Contains(perf, "\n"+h+"\n") {
			t.Errorf("README Performance lacks make bench's table header:\n%s", h)
		}
	}
}

// tableHeaders are the Markdown table headers a bench source prints.
func tableHeaders(f *ast.File) []string {
	var headers []string
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		s, err := strconv.Unquote(lit.Value)
		if err == nil && strings.HasPrefix(strings.TrimLeft(s, "\n"), "| ") && !strings.Contains(s, "%") && !strings.HasPrefix(s, "|---") {
			headers = append(headers, strings.TrimSpace(s))
		}
		return true
	})
	return headers
}

// README "Tests" counts the malformed-event corpus as it is.
func TestREADMEMalformedCorpusCount(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root, "lambda", "internal", "trigger", "testdata", "malformed", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("malformed corpus: %d files (%v)", len(files), err)
	}
	skips := 0
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "skip-") {
			skips++
		}
	}
	want := fmt.Sprintf("%d malformed or irrelevant events (%d an error naming the field, %d skipped as irrelevant", len(files), len(files)-skips, skips)
	if tests := section(t, readme(t), "## Tests"); !strings.Contains(strings.Join(strings.Fields(tests), " "), want) {
		t.Errorf("README Tests should say %q", want)
	}
}

// README documents every make target the Makefile's help lists.
func TestREADMEDocumentsTheCLITargets(t *testing.T) {
	doc := readme(t)
	for _, want := range []string{"make invoke", "DEMO_ADDR", "make replay ENDPOINT=", "EVENTS=", "--fleet ''", "-v", "plan --json", "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 aws --endpoint-url"} {
		if !strings.Contains(doc, want) {
			t.Errorf("README.md does not mention %q", want)
		}
	}
	if regexp.MustCompile(`AWS_ENDPOINT_URL=[^ ]+ \./bootstrap`).MatchString(doc) {
		t.Error("README.md still says to run ./bootstrap by hand (make invoke does it)")
	}
}

// section returns README's text from heading to the next heading of the same level.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q", heading)
	}
	level := heading[:strings.Index(heading, " ")+1]
	if i := strings.Index(rest, "\n"+level); i >= 0 {
		rest = rest[:i]
	}
	return rest
}
