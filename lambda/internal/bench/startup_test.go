package bench

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pinroll/pinroll/lambda/contract"
	"github.com/pinroll/pinroll/lambda/internal/awstest"
)

// starts is how many times each binary is started: an odd number, so the median is a run.
// Nine could not tell 1.3× from 1.5×: between runs on an idle machine the SDK hello world's
// own median moved from 7.3 to 9.7 ms. startupHeader says the same number.
const starts = 25

// A binary is one function of the start-up table: its package, its linux/arm64 size and zip,
// and the times from the invocation that started it to its answer, one per start.
type binary struct {
	name, pkg    string
	env          []string // beside the Lambda-like environment every binary gets
	size, zipped int64
	starts       []time.Duration
	initAllocs   int64 // what its packages' initialisation allocated: counted, not timed
	initBytes    int64
}

func (b binary) median() time.Duration { return median(b.starts) }

// paired is the median over the rounds of b's start-up divided by base's in the same round,
// with the lowest and highest of those ratios. Both were started moments apart, so a slow
// stretch of the machine slows both and mostly cancels out, which a ratio of the two medians,
// each taken over the whole run, does not.
func (b binary) paired(base binary) (median, lo, hi float64) {
	ratios := make([]float64, len(b.starts))
	for i := range b.starts {
		ratios[i] = b.starts[i].Seconds() / base.starts[i].Seconds()
	}
	slices.Sort(ratios)
	return ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1]
}

// spread is the fastest and the slowest of the starts.
func (b binary) spread() (lo, hi time.Duration) { return slices.Min(b.starts), slices.Max(b.starts) }

// The binaries compared, pinroll first and the baseline it is held to second: the SDK hello
// world is what any Go function that calls ECS and ECR pays; the bare aws-lambda-go hello world
// is the runtime loop alone. All run with the collector setting the CDK app gives the function
// (contract.GOGC); the last row is pinroll with Go's default, to show what the setting saves.
var binaries = []binary{
	{name: "pinroll bootstrap", pkg: "./lambda", env: []string{deployedGOGC}},
	{name: "SDK hello world (aws-lambda-go, LoadDefaultConfig, ECS and ECR clients)", pkg: "./lambda/internal/bench/testdata/sdkhello", env: []string{deployedGOGC}},
	{name: "hello-world aws-lambda-go", pkg: "./lambda/internal/bench/testdata/hello", env: []string{deployedGOGC}},
	{name: "pinroll bootstrap, GOGC unset (Go's default: 100)", pkg: "./lambda"},
}

var deployedGOGC = contract.EnvGOGC + "=" + contract.GOGC

// BenchmarkStartup prints `make bench`'s start-up table alone:
//
//	go test -run '^$' -bench '^BenchmarkStartup$' -benchtime 1x ./lambda/internal/bench/
func BenchmarkStartup(b *testing.B) { startupTable(os.Stdout, startup(b)) }

// startupHeader is the start-up table's header, a literal so that README's test can find it
// in this source (TestREADMEPerformanceTablesHaveTheBenchColumns); it names starts.
const startupHeader = "| binary (linux/arm64, -trimpath -ldflags \"-s -w\" -tags lambda.norpc; GOGC=200) | size | zip | start-up to first answer under the RIE (host arch, median of 25) | fastest–slowest of 25 | start-up / the SDK hello world's in the same round (median of 25 ratios) | package initialisation: allocations, bytes |"

func startupTable(out io.Writer, bs []binary) {
	fmt.Fprintf(out, "\nstart-up: each binary started %d times under the Runtime Interface Emulator, in %d rounds of one start each, in one run\n", starts, starts)
	fmt.Fprintln(out, "\n"+startupHeader)
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|")
	p, base := bs[0], bs[1]
	for _, b := range bs {
		lo, hi := b.spread()
		ratio, _, _ := b.paired(base)
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s–%s | %.2f× | %d, %s |\n", b.name, mib(b.size), mib(b.zipped), ms(b.median()), ms(lo), ms(hi), ratio, b.initAllocs, mib(b.initBytes))
	}
	ratio, lo, hi := p.paired(base)
	fmt.Fprintf(out, "| pinroll / SDK hello world | %.2f× | %.2f× | %.2f× (of the medians) | | %.2f× (rounds: %.2f×–%.2f×) | %.2f×, %.2f× |\n",
		float64(p.size)/float64(base.size), float64(p.zipped)/float64(base.zipped), p.median().Seconds()/base.median().Seconds(),
		ratio, lo, hi, float64(p.initAllocs)/float64(base.initAllocs), float64(p.initBytes)/float64(base.initBytes))
}

// startup builds the functions with the Lambda flags — for linux/arm64 to size them, for this
// machine to run them under the Runtime Interface Emulator — and times each one's first
// answer from a fresh process, in rounds that start each binary once, in turn, so that a busy
// moment of the machine falls on all of them alike and each round's ratios can be compared.
func startup(tb testing.TB) []binary {
	root, err := filepath.Abs("../../..")
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	build := func(out, pkg, goarch string, lambdaFlags bool) {
		args := []string{"build", "-o", out}
		if lambdaFlags {
			args = append(args, "-trimpath", "-ldflags", "-s -w", "-tags", "lambda.norpc")
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
		if msg, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("go build %s: %v\n%s", pkg, err, msg)
		}
	}
	bs := slices.Clone(binaries)
	for i := range bs {
		arm := filepath.Join(dir, strconv.Itoa(i)+"-arm64")
		build(arm, bs[i].pkg, "arm64", true)
		bs[i].size, bs[i].zipped = sizes(tb, arm)
		build(filepath.Join(dir, strconv.Itoa(i)), bs[i].pkg, runtime.GOARCH, true)
		bs[i].initAllocs, bs[i].initBytes = initCost(tb, filepath.Join(dir, strconv.Itoa(i)))
	}
	rie := filepath.Join(dir, "aws-lambda-rie")
	build(rie, "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie", runtime.GOARCH, false)

	// An untagged push: pinroll decodes, validates and skips it without an AWS call, so the
	// time is start-up plus the smallest real answer.
	event := []byte(`{"version":"0","id":"e","detail-type":"ECR Image Action","source":"aws.ecr","account":"123456789012","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{"result":"SUCCESS","repository-name":"app","image-digest":"sha256:` + strings.Repeat("a", 64) + `","action-type":"PUSH","image-tag":""}}`)
	env := []string{"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_ENDPOINT_URL=http://127.0.0.1:9"}
	for range starts {
		for i := range bs {
			bs[i].starts = append(bs[i].starts, firstAnswer(tb, rie, filepath.Join(dir, strconv.Itoa(i)), event, append(env, bs[i].env...)))
		}
	}
	return bs
}

// initCost is what the initialisation of bin's packages allocated (see awstest.InitAllocations).
func initCost(tb testing.TB, bin string) (allocs, bytes int64) {
	allocs, bytes, _, err := awstest.InitAllocations(bin)
	if err != nil {
		tb.Fatal(err)
	}
	return allocs, bytes
}

// firstAnswer starts bootstrap under the RIE and returns how long the first invocation took:
// the RIE starts the process when the first event arrives, so this is process start to the
// first request served (plus the RIE's own hop, the same for every binary).
func firstAnswer(tb testing.TB, rie, bootstrap string, event []byte, env []string) time.Duration {
	api, runtimeAPI := freePort(tb), freePort(tb)
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(api),
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(runtimeAPI), bootstrap)
	// Lambda's environment, not this shell's: a machine's AWS_CA_BUNDLE, say, makes every
	// LoadDefaultConfig parse a certificate bundle (~5 ms) that no Lambda function pays.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/2015-03-31/functions/function/invocations", api)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", api)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("the Runtime Interface Emulator did not listen within 20 s")
		}
	}
	start := time.Now()
	resp, err := http.Post(url, "application/json", bytes.NewReader(event))
	if err != nil {
		tb.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusOK || bytes.Contains(body, []byte("errorType")) {
		tb.Fatalf("%s: first invocation answered %d: %s", filepath.Base(bootstrap), resp.StatusCode, body)
	}
	return took
}

// The header README's test reads says how many times the bench starts each binary.
func TestStartupHeaderNamesTheStarts(t *testing.T) {
	for _, col := range []string{fmt.Sprintf("median of %d)", starts), fmt.Sprintf("fastest–slowest of %d |", starts), fmt.Sprintf("median of %d ratios", starts)} {
		if !strings.Contains(startupHeader, col) {
			t.Errorf("startupHeader lacks %q: it must name starts (%d)", col, starts)
		}
	}
}

// The paired ratio compares each round's starts, so a slow round counts once, as one ratio,
// instead of slowing one binary's median and not the other's.
func TestPairedRatioComparesStartsOfTheSameRound(t *testing.T) {
	p := binary{starts: []time.Duration{10 * time.Millisecond, 40 * time.Millisecond, 12 * time.Millisecond}}
	base := binary{starts: []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 8 * time.Millisecond}}
	median, lo, hi := p.paired(base)
	if median != 2 || lo != 1.5 || hi != 2 {
		t.Errorf("paired = %v (%v–%v), want 2 (1.5–2): the rounds' ratios are 2, 2 and 1.5", median, lo, hi)
	}
	if of := p.median().Seconds() / base.median().Seconds(); of == median {
		t.Errorf("the ratio of the medians is %v too: the case does not tell the two apart", of)
	}
}
