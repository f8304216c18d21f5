package bench

import (
	"archive/zip"
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
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
	sidecarTable(b, out)

	startupTable(out, startup(b))

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
