package bench

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/imageref"
	"github.com/pinroll/pinroll/lambda/internal/plan"
)

// BenchmarkPerformance is `make bench`: it prints issue 7's table — API calls against the
// lower bound, wall time with 20 ms latency, time under ECS's throttle buckets, cold and warm,
// beside the naive reference — then start-up, sizes and peak heap. It runs once (-benchtime 1x).
func BenchmarkPerformance(b *testing.B) {
	began := time.Now()
	out := os.Stdout
	shapes := []Shape{Small, Medium, Large}
	// Heap first, while the process holds nothing else (the emulators' worlds come later).
	peak, live, base := planHeap(b, 10000)

	// The naive reference is latency-bound (one call at a time, each waiting 20 ms): its three
	// fleets run side by side, on their own emulators, to save minutes; pinroll's runs, which
	// use the CPU, run alone.
	naiveLatency := make([]result, len(shapes))
	var fs []func()
	for i, s := range shapes {
		fs = append(fs, func() { naiveLatency[i] = naive(b, s, latency) })
	}
	parallel(fs...)

	type row struct {
		s                                  Shape
		latCold, latWarm, thrCold, thrWarm result
		latIdx, thrIdx                     result // cold, index: the table warm, the process new
		naiveLat, naiveThr                 result
	}
	var rows []row
	for i, s := range shapes {
		r := row{s: s, naiveLat: naiveLatency[i]}
		r.latCold, r.latWarm = pinroll(b, s, latency)
		r.thrCold, r.thrWarm = pinroll(b, s, throttle)
		r.latIdx, r.thrIdx = pinrollIndexed(b, s, latency), pinrollIndexed(b, s, throttle)
		r.naiveThr = naive(b, s, throttle)
		rows = append(rows, r)
	}

	fmt.Fprintf(out, "\npinroll performance — one push, K = 5 services to update (F = 5 task definitions to register)\n")
	fmt.Fprintf(out, "latency: %v per call, unthrottled, pinroll's pacer off; throttled: ECS's buckets, scaled clock %d× (times are emulated seconds), pacer on\n\n", Latency, Scale)
	fmt.Fprintln(out, "| fleet | run | calls | lower bound | calls/bound | 20 ms latency | naive, 20 ms | speed-up | throttled | floor | time/floor | naive, throttled | throttle errors |")
	fmt.Fprintln(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		label := fmt.Sprintf("%s (%d TDs)", r.s, r.s.Distinct)
		for _, run := range []struct {
			name     string
			lat, thr result
		}{{"cold", r.latCold, r.thrCold}, {"warm", r.latWarm, r.thrWarm}, {"cold, index", r.latIdx, r.thrIdx}} {
			if run.lat.total() != run.thr.total()-run.thr.throttled {
				b.Errorf("%s %s: %d calls with latency, %d throttled (less %d retries): the runs should make the same calls", r.s, run.name, run.lat.total(), run.thr.total(), run.thr.throttled)
			}
			fmt.Fprintf(out, "| %s | %s | %d | %d | %.3f | %s | %s | %.1f× | %s | %s | %s | %s | %d |\n",
				label, run.name, run.lat.total(), run.lat.bound.Total(), run.lat.ratio(),
				secs(run.lat.elapsed), secs(r.naiveLat.elapsed), r.naiveLat.elapsed.Seconds()/run.lat.elapsed.Seconds(),
				secs(run.thr.elapsed), secs(run.thr.floor()), ratio(run.thr.elapsed, run.thr.floor()),
				secs(r.naiveThr.elapsed), run.thr.throttled)
		}
	}
	fmt.Fprintln(out, "\ncalls per operation (pinroll, cold / warm; bound in brackets; naive):")
	for _, r := range rows {
		var parts []string
		for _, op := range Ops {
			parts = append(parts, fmt.Sprintf("%s %d/%d [%d/%d] %d", op, r.latCold.calls[op], r.latWarm.calls[op], r.latCold.bound.Of(op), r.latWarm.bound.Of(op), r.naiveLat.calls[op]))
		}
		fmt.Fprintf(out, "  %s: %s\n", r.s, strings.Join(parts, ", "))
		parts = nil
		for _, op := range append(Ops, IndexOps...) {
			parts = append(parts, fmt.Sprintf("%s %d [%d]", op, r.latIdx.calls[op], r.latIdx.bound.Of(op)))
		}
		fmt.Fprintf(out, "  %s cold, index (the table warm, the process new) [bound]: %s\n", r.s, strings.Join(parts, ", "))
	}

	hubTable(b, out)

	su := startup(b)
	fmt.Fprintln(out, "\n| binary (linux/arm64, -trimpath -ldflags \"-s -w\" -tags lambda.norpc) | size | zip | start-up to first answer under the RIE (host arch, median of 9) |")
	fmt.Fprintln(out, "|---|---:|---:|---:|")
	fmt.Fprintf(out, "| pinroll bootstrap | %s | %s | %s |\n", mib(su.pinrollSize), mib(su.pinrollZip), ms(su.pinrollStart))
	fmt.Fprintf(out, "| hello-world aws-lambda-go | %s | %s | %s |\n", mib(su.helloSize), mib(su.helloZip), ms(su.helloStart))
	fmt.Fprintf(out, "| pinroll / hello | %.2f× | %.2f× | %.2f× |\n", float64(su.pinrollSize)/float64(su.helloSize), float64(su.pinrollZip)/float64(su.helloZip), su.pinrollStart.Seconds()/su.helloStart.Seconds())

	fmt.Fprintf(out, "\npeak heap while planning 10,000 services (7,500 task definitions): %s — the process before the fleet %s, the discovered fleet %s, planning %s (an upper bound: the collector is off while planning)\n",
		mib(peak), mib(base), mib(live-base), mib(peak-live))
	fmt.Fprintf(out, "\nmake bench took %s\n", time.Since(began).Round(time.Second))
}

// planHeap builds a discovered fleet of n services in memory and plans a push over it with
// the collector off, so the heap after planning bounds its peak from above.
func planHeap(tb testing.TB, n int) (peak, live, base uint64) {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	base = m.HeapAlloc
	registry := "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	f := &discover.Fleet{TaskDefinitions: map[string]*discover.TaskDefinition{}}
	distinct := n * 3 / 4
	for i := range n {
		td := i % distinct
		arn := fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task-definition/td-%05d:1", td)
		if _, ok := f.TaskDefinitions[arn]; !ok {
			image := fmt.Sprintf("%s/lib-%05d:latest", registry, td)
			if td < 5 {
				image = registry + "/app:latest"
			}
			f.TaskDefinitions[arn] = &discover.TaskDefinition{Definition: &types.TaskDefinition{
				TaskDefinitionArn: aws.String(arn), Family: aws.String(fmt.Sprintf("td-%05d", td)), Revision: 1,
				ContainerDefinitions: []types.ContainerDefinition{{
					Name: aws.String("main"), Image: aws.String(image), Essential: aws.Bool(true),
					Environment: []types.KeyValuePair{{Name: aws.String("LOG_LEVEL"), Value: aws.String("info")}, {Name: aws.String("PORT"), Value: aws.String("8080")}},
				}},
			}, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("platform")}}}
		}
		cluster := fmt.Sprintf("c%03d", i/100)
		f.Services = append(f.Services, discover.Service{
			Cluster: cluster, ClusterARN: "arn:aws:ecs:us-east-1:123456789012:cluster/" + cluster,
			Name: fmt.Sprintf("svc-%03d", i%100), ARN: fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:service/%s/svc-%03d", cluster, i%100),
			Status: "ACTIVE", TaskDefinition: arn, Controller: "ECS", DesiredCount: 2, Tags: map[string]string{"team": "platform"},
		})
	}
	target := imageref.Pushed{Host: registry, Path: "app", Tag: "latest", Digest: awstest.Digest(NextManifest)}
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p := plan.Make(plan.Input{Pushed: target, Fleet: f})
	runtime.ReadMemStats(&after)
	if p.Services() != 10 { // task definitions td-00000…td-00004, each run by 2 services
		tb.Fatalf("planned %d updates over %d services, want 10", p.Services(), n)
	}
	runtime.KeepAlive(f)
	return after.HeapAlloc, before.HeapAlloc, base
}

type startupResult struct {
	pinrollSize, pinrollZip, helloSize, helloZip int64
	pinrollStart, helloStart                     time.Duration
}

// startup builds both functions with the Lambda flags — for linux/arm64 to size them, for this
// machine to run them under the Runtime Interface Emulator — and times each one's first
// answer from a fresh process, alternately, nine times.
func startup(tb testing.TB) startupResult {
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
	var r startupResult
	for _, fn := range []struct {
		pkg        string
		size, zipp *int64
		name       string
	}{{"./lambda", &r.pinrollSize, &r.pinrollZip, "pinroll"}, {"./lambda/internal/bench/testdata/hello", &r.helloSize, &r.helloZip, "hello"}} {
		arm := filepath.Join(dir, fn.name+"-arm64")
		build(arm, fn.pkg, "arm64", true)
		*fn.size, *fn.zipp = sizes(tb, arm)
		build(filepath.Join(dir, fn.name), fn.pkg, runtime.GOARCH, true)
	}
	rie := filepath.Join(dir, "aws-lambda-rie")
	build(rie, "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie", runtime.GOARCH, false)

	// An untagged push: pinroll decodes, validates and skips it without an AWS call, so the
	// time is start-up plus the smallest real answer.
	event := []byte(`{"version":"0","id":"e","detail-type":"ECR Image Action","source":"aws.ecr","account":"123456789012","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":{"result":"SUCCESS","repository-name":"app","image-digest":"sha256:` + strings.Repeat("a", 64) + `","action-type":"PUSH","image-tag":""}}`)
	env := []string{"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_ENDPOINT_URL=http://127.0.0.1:9"}
	var ps, hs []time.Duration
	for range 9 {
		ps = append(ps, firstAnswer(tb, rie, filepath.Join(dir, "pinroll"), event, env))
		hs = append(hs, firstAnswer(tb, rie, filepath.Join(dir, "hello"), event, env))
	}
	r.pinrollStart, r.helloStart = median(ps), median(hs)
	return r
}

// firstAnswer starts bootstrap under the RIE and returns how long the first invocation took:
// the RIE starts the process when the first event arrives, so this is process start to the
// first request served (plus the RIE's own hop, the same for both binaries).
func firstAnswer(tb testing.TB, rie, bootstrap string, event []byte, env []string) time.Duration {
	api, runtimeAPI := freePort(tb), freePort(tb)
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(api),
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(runtimeAPI), bootstrap)
	cmd.Env = append(os.Environ(), env...)
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

func sizes(tb testing.TB, path string) (size, zipped int64) {
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "bootstrap", Method: zip.Deflate})
	if err == nil {
		_, err = w.Write(data)
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return int64(len(data)), int64(buf.Len())
}

func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func mib(n any) string {
	switch v := n.(type) {
	case int64:
		return fmt.Sprintf("%.2f MiB", float64(v)/(1<<20))
	case uint64:
		return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20))
	}
	return fmt.Sprint(n)
}

func ratio(d, floor time.Duration) string {
	if floor <= 0 {
		return "— (no floor)"
	}
	return fmt.Sprintf("%.2f", d.Seconds()/floor.Seconds())
}
