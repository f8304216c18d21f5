// Package awstest gives tests real AWS-protocol endpoints on loopback: moto_server (a
// third-party emulator) started on a free port, and SDK configurations that talk to it.
package awstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Account is the account both moto and pinroll's emulator use by default.
const (
	Account = "123456789012"
	Region  = "us-east-1"
)

// Moto is a running moto_server.
type Moto struct {
	URL  string
	cmd  *exec.Cmd
	once sync.Once
}

// StartMoto starts moto_server on a free loopback port and waits until it answers.
// It returns an error (for the caller to skip or fail on) when moto_server is missing.
//
// moto_server cannot be given port 0, so the port is picked first and bound later; another
// process (a test package running in parallel) may take it in between. A server is used only
// once the listening socket is seen to belong to the moto_server started here — else a test
// would share another package's moto, and each would reset the other's state — and a lost
// race is retried on a new port.
func StartMoto() (*Moto, error) {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("moto_server is not installed (pip install 'moto[server]'): %w", err)
	}
	var errs []error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		m, err := startMotoOn(path, port)
		if err == nil {
			return m, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func startMotoOn(path string, port int) (*Moto, error) {
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "MOTO_ALLOW_NONEXISTENT_REGION=false")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	m := &Moto{URL: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for {
		switch owner, known := listenerOwner(port); {
		case known && owner != cmd.Process.Pid && owner != 0:
			m.Close()
			return nil, fmt.Errorf("port %d was taken by process %d before moto_server bound it", port, owner)
		case known && owner == cmd.Process.Pid:
			if resp, err := http.Get(m.URL + "/moto-api/"); err == nil {
				resp.Body.Close()
				return m, nil
			}
		case !known:
			// No /proc to ask (not Linux): trust the answer, as before.
			if resp, err := http.Get(m.URL + "/moto-api/"); err == nil {
				resp.Body.Close()
				return m, nil
			}
		}
		if time.Now().After(deadline) {
			m.Close()
			return nil, fmt.Errorf("moto_server did not answer on %s within 30s", m.URL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listenerOwner finds, on Linux, the process that listens on 127.0.0.1:port: its pid (0
// while nobody listens), and whether /proc could tell.
func listenerOwner(port int) (pid int, known bool) {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, false
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	inode := ""
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == want && f[3] == "0A" { // 0A: LISTEN
			inode = f[9]
		}
	}
	if inode == "" {
		return 0, true
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		id, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir("/proc/" + p.Name() + "/fd")
		for _, fd := range fds {
			if target, err := os.Readlink("/proc/" + p.Name() + "/fd/" + fd.Name()); err == nil && target == "socket:["+inode+"]" {
				return id, true
			}
		}
	}
	return 0, true // a socket whose owner we may not read
}

// Close stops moto_server and everything it started.
func (m *Moto) Close() {
	m.once.Do(func() {
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		_ = m.cmd.Wait()
	})
}

// Reset wipes moto's state.
func (m *Moto) Reset() error {
	resp, err := http.Post(m.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		return fmt.Errorf("reset moto: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset moto: %s", resp.Status)
	}
	return nil
}

// Config is an SDK configuration for an emulator at endpoint, with dummy credentials and
// retries kept short so fault tests do not wait on backoff.
func Config(t testing.TB, endpoint string) aws.Config {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithRegion(Region),
		awsconfig.WithBaseEndpoint(endpoint),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		awsconfig.WithSharedConfigFiles([]string{}),
		awsconfig.WithSharedCredentialsFiles([]string{}),
	)
	if err != nil {
		t.Fatalf("SDK config: %v", err)
	}
	return cfg
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("loopback listener has no TCP address")
	}
	return addr.Port, nil
}
