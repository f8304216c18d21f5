package awstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BuildLambda builds the function binary the way the Makefile does (but for this machine's
// architecture) and the AWS Lambda Runtime Interface Emulator pinned in go.mod, into dir.
// It returns their paths.
func BuildLambda(t testing.TB, moduleRoot, dir string) (bootstrap, rie string) {
	t.Helper()
	bootstrap = filepath.Join(dir, "bootstrap")
	rie = filepath.Join(dir, "aws-lambda-rie")
	for _, b := range []struct{ out, pkg string }{
		{bootstrap, "./lambda"},
		{rie, "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"},
	} {
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "-o", b.out, b.pkg)
		cmd.Dir = moduleRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return bootstrap, rie
}

// Function is the Lambda binary running under the Runtime Interface Emulator.
type Function struct {
	URL string // the invoke URL
}

// StartFunction runs bootstrap under the Runtime Interface Emulator on free loopback ports
// with the given extra environment, and stops it when the test ends. Ports are picked before
// the emulator binds them, so another process may take one in between: the emulator is used
// only once its listener is seen to be its own, and a lost race is retried on new ports.
func StartFunction(t testing.TB, rie, bootstrap string, env ...string) *Function {
	t.Helper()
	var problems []string
	for range 5 {
		f, problem := startFunction(t, rie, bootstrap, env)
		if f != nil {
			return f
		}
		problems = append(problems, problem)
	}
	t.Fatalf("the Runtime Interface Emulator did not start: %s", strings.Join(problems, "; "))
	return nil
}

func startFunction(t testing.TB, rie, bootstrap string, env []string) (*Function, string) {
	apiPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	runtimePort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(apiPort),
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(runtimePort),
		bootstrap)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// One writer for both: os/exec then never calls it from two goroutines at once. It is
	// read only after the process has ended.
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the Runtime Interface Emulator: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	f := &Function{URL: fmt.Sprintf("http://127.0.0.1:%d/2015-03-31/functions/function/invocations", apiPort)}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			return nil, fmt.Sprintf("it exited (ports %d, %d): %s", apiPort, runtimePort, strings.TrimSpace(log.String()))
		default:
		}
		owner, known := listenerOwner(apiPort)
		if known && owner != 0 && owner != cmd.Process.Pid {
			stop()
			return nil, fmt.Sprintf("port %d was taken by process %d", apiPort, owner)
		}
		if !known || owner == cmd.Process.Pid {
			if conn, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", apiPort)); err == nil {
				conn.Body.Close()
				t.Cleanup(func() {
					stop()
					if t.Failed() {
						t.Logf("Runtime Interface Emulator output:\n%s", log.String())
					}
				})
				return f, ""
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Sprintf("it did not listen on %d within 20s", apiPort)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Invoke posts an event and returns the raw answer: a report, or {"errorType", "errorMessage"}.
func (f *Function) Invoke(t testing.TB, event []byte) map[string]any {
	t.Helper()
	resp, err := http.Post(f.URL, "application/json", bytes.NewReader(event))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("invoke: answer is not a JSON object: %v\n%s", err, body)
	}
	return out
}
