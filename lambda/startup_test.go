package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pinroll/pinroll/lambda/contract"
	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/pattern"
)

// compiledAtInit is how many patterns the packages the function links compiled while they
// were initialised: this file's package is initialised after all of them, before any test.
var compiledAtInit = pattern.Compiled()

// A cold start compiles none of pinroll's patterns before its first event: each is compiled
// the first time something matches with it.
func TestPackageInitialisationCompilesNoPattern(t *testing.T) {
	if compiledAtInit != 0 {
		t.Errorf("package initialisation compiled %d patterns; declare them with pattern.Must and match nothing at init", compiledAtInit)
	}
}

// No package of pinroll's that the function links compiles a regular expression at package
// level, where every cold start would pay for it whether or not its event needs it (a dozen
// cost ~2,400 allocations and ~0.4 ms): package pattern compiles on first use.
func TestNoPackageLevelRegexpOnTheLambdaPath(t *testing.T) {
	packages := 0
	for _, f := range linked(t) {
		if !strings.HasPrefix(f[0], "github.com/pinroll/pinroll/") || f[0] == "github.com/pinroll/pinroll/lambda/internal/pattern" {
			continue
		}
		packages++
		for name := range strings.SplitSeq(f[2], ",") {
			path := filepath.Join(f[1], name)
			file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, decl := range file.Decls {
				if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
					if call := regexpCall(g, file); call != "" {
						t.Errorf("%s/%s: package-level %s runs at every cold start; use pattern.Must", f[0], name, call)
					}
				}
			}
		}
	}
	if packages < 5 {
		t.Fatalf("go list found %d of pinroll's packages in the function, want its whole pipeline", packages)
	}
}

// The function does not link distribution/reference or go-digest, whose package-level
// expressions cost ~0.9 ms and 4,400 allocations at every start: imageref implements the
// grammar (and its tests hold it to distribution/reference).
func TestFunctionDoesNotLinkTheReferencePackages(t *testing.T) {
	for _, f := range linked(t) {
		if f[0] == "github.com/distribution/reference" || f[0] == "github.com/opencontainers/go-digest" {
			t.Errorf("the function links %s again: its package initialisation runs at every cold start", f[0])
		}
	}
}

// The function does not link Masterminds/semver, whose package-level expressions cost
// ~0.4 ms and 1,266 allocations at every start (GODEBUG=inittrace=1, 2026-12-02) for the
// few services with a semver policy: package semver implements the part the policy needs,
// and its tests hold it to Masterminds/semver, which stays a test-only dependency.
func TestFunctionDoesNotLinkMastermindsSemver(t *testing.T) {
	for _, f := range linked(t) {
		if strings.HasPrefix(f[0], "github.com/Masterminds/semver") {
			t.Errorf("the function links %s again: its package initialisation runs at every cold start; use lambda/internal/semver", f[0])
		}
	}
}

// The function does not link the SSM client's schemas again. From v1.80.0 the SDK's SSM
// client (de)serialises through generated schemas, and initialising that package cost every
// cold start 2.6 ms and 7,885 allocations (GODEBUG=inittrace=1, linux/amd64, 2026-12-02), the
// largest part of pinroll's start-up beyond an SDK hello world, for two calls that only
// write-back makes. go.mod holds service/ssm at v1.79.x for this.
func TestFunctionDoesNotLinkTheSSMSchemas(t *testing.T) {
	const schemas = "github.com/aws/aws-sdk-go-v2/service/ssm/schemas"
	ssm := false
	for _, f := range linked(t) {
		ssm = ssm || f[0] == "github.com/aws/aws-sdk-go-v2/service/ssm"
		if f[0] == schemas {
			t.Errorf("the function links %s again: initialising it costs every cold start ~2.6 ms and ~7,900 allocations, "+
				"for write-back's GetParameter and PutParameter. Either accept the cost (and change README's start-up target and "+
				"numbers, and go.mod's comment), or replace those two calls with a small SSM client of pinroll's own and drop service/ssm", schemas)
		}
	}
	if !ssm {
		t.Error("the function no longer links service/ssm: this test and go.mod's hold on its version can go")
	}
}

// linked lists the packages the function links: import path, directory, Go files.
func linked(t *testing.T) [][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Dir}} {{join .GoFiles \",\"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var pkgs [][]string
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) == 3 {
			pkgs = append(pkgs, f)
		}
	}
	if len(pkgs) < 50 {
		t.Fatalf("go list -deps found %d packages in the function", len(pkgs))
	}
	return pkgs
}

// With the collector setting the CDK app deploys (contract.GOGC), a cold start runs no
// collection before its first event: package initialisation allocates less than the 70 % of
// the first goal (4 MiB × GOGC/100) where Go's pacer may start one at the earliest. A
// collection there cost a third of pinroll's start-up beyond an SDK hello world. Counted in
// bytes, not collections: whether one that started finishes before the process ends is timing.
func TestInitialisationStaysUnderTheFirstCollection(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	_, bytes, _, err := awstest.InitAllocations(bin, contract.EnvGOGC+"="+contract.GOGC)
	if err != nil {
		t.Fatal(err)
	}
	gogc, err := strconv.Atoi(contract.GOGC)
	if err != nil {
		t.Fatalf("contract.GOGC %q is not a number", contract.GOGC)
	}
	if limit := int64(4<<20) * int64(gogc) / 100 * 7 / 10; bytes >= limit {
		t.Errorf("package initialisation allocates %.2f MiB, past %.2f MiB where a collection may start at GOGC=%d: link less, or raise contract.GOGC",
			float64(bytes)/(1<<20), float64(limit)/(1<<20), gogc)
	}
}

// regexpCall is the first regexp.Compile…, MustCompile… or Match… call that decl runs when its package is
// initialised (function literals run later, so their bodies do not count), or "".
func regexpCall(decl *ast.GenDecl, file *ast.File) string {
	local := "regexp"
	for _, imp := range file.Imports {
		if imp.Path.Value == `"regexp"` && imp.Name != nil {
			local = imp.Name.Name
		}
	}
	found := ""
	ast.Inspect(decl, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.SelectorExpr:
			compiles := strings.HasPrefix(n.Sel.Name, "Compile") || strings.HasPrefix(n.Sel.Name, "MustCompile") || strings.HasPrefix(n.Sel.Name, "Match")
			if id, ok := n.X.(*ast.Ident); ok && id.Name == local && compiles && found == "" {
				found = local + "." + n.Sel.Name
			}
		}
		return true
	})
	return found
}
