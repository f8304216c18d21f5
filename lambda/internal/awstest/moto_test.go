package awstest

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// A moto_server that lost its port to another process is not used: the test would share that
// process's state (another package's moto, resetting ours).
func TestMotoIsUsedOnlyWhenTheListenerIsItsOwn(t *testing.T) {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatalf("moto_server: %v", err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	if m, err := startMotoOn(path, port); err == nil || !strings.Contains(err.Error(), "was taken by process") {
		if m != nil {
			m.Close()
		}
		t.Fatalf("moto_server on a port another process listens on: %v; want it refused", err)
	}

	m, err := StartMoto()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(m.URL, "http://"))
	port2, _ := strconv.Atoi(p)
	if owner, known := listenerOwner(port2); known && owner != m.cmd.Process.Pid {
		t.Errorf("the listener on %d belongs to %d, not moto_server %d", port2, owner, m.cmd.Process.Pid)
	}
}
