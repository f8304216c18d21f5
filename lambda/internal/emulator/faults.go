package emulator

import (
	"sync"
	"time"
)

// FaultKind is a kind of failure InjectFault can make an operation answer.
type FaultKind int

// Fault kinds.
const (
	// Throttle answers 400 ThrottlingException.
	Throttle FaultKind = iota + 1
	// ServerError answers 500 ServerException.
	ServerError
	// Timeout waits Fault.Delay and then runs the operation and answers normally; give a Delay
	// longer than the client's timeout. The request body is read only then, so the emulator does
	// not notice a client that gave up: its request lands late, as on a slow server (with
	// Applied, it runs at once and only the answer is late).
	Timeout
	// Reset closes the connection without an answer.
	Reset
)

func (k FaultKind) String() string {
	switch k {
	case Throttle:
		return "Throttle"
	case ServerError:
		return "ServerError"
	case Timeout:
		return "Timeout"
	case Reset:
		return "Reset"
	}
	return "FaultKind(?)"
}

// Fault is an injected failure. Delay is used by Timeout.
type Fault struct {
	Kind  FaultKind
	Delay time.Duration
	// Applied makes a Timeout or Reset strike after the operation has run: its state change
	// happens (as when a real request succeeds server-side) but the answer is late (Timeout)
	// or never comes (Reset). Without it, a faulted call changes no state.
	Applied bool
	// Account limits the fault to requests acting in that account ("" for any): one target
	// account of several failing while the others answer.
	Account string
}

type injectedFault struct {
	fault     Fault
	remaining int // < 0: persistent
}

// hooks are the test and benchmark controls: latency, faults, throttling, call records.
type hooks struct {
	mu       sync.Mutex
	latency  map[string]time.Duration
	faults   map[string][]*injectedFault
	throttle *throttler
	calls    map[string]int
	log      []Call
}

func (h *hooks) init() {
	h.latency = map[string]time.Duration{}
	h.faults = map[string][]*injectedFault{}
	h.calls = map[string]int{}
}

// SetLatency makes op (an operation name such as "DescribeServices"; "" = every operation) wait d
// before answering. An operation's own latency wins over the "" one; d = 0 removes it.
func (e *Emulator) SetLatency(op string, d time.Duration) {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	if d <= 0 {
		delete(e.hooks.latency, op)
		return
	}
	e.hooks.latency[op] = d
}

func (e *Emulator) latency(op string) time.Duration {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	if d, ok := e.hooks.latency[op]; ok {
		return d
	}
	return e.hooks.latency[""]
}

// InjectFault makes the next `times` calls of op ("" = any operation) fail with f; times < 0 makes
// it persistent, times = 0 removes op's faults. Faults of one op apply in the order injected, an
// operation's own before the "" ones. A faulted call changes no state unless f.Applied.
func (e *Emulator) InjectFault(op string, f Fault, times int) {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	if times == 0 {
		delete(e.hooks.faults, op)
		return
	}
	e.hooks.faults[op] = append(e.hooks.faults[op], &injectedFault{fault: f, remaining: times})
}

// ClearFaults removes every injected fault.
func (e *Emulator) ClearFaults() {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	e.hooks.faults = map[string][]*injectedFault{}
}

// takeFault returns the fault the next call of op, acting in account, must answer, if any,
// and uses it up.
func (e *Emulator) takeFault(op, account string) (Fault, bool) {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	for _, key := range []string{op, ""} {
		list := e.hooks.faults[key]
		for i, f := range list {
			if f.fault.Account != "" && f.fault.Account != account {
				continue
			}
			if f.remaining > 0 {
				f.remaining--
				if f.remaining == 0 {
					e.hooks.faults[key] = append(list[:i:i], list[i+1:]...)
				}
			}
			return f.fault, true
		}
	}
	return Fault{}, false
}

// Call is one request the emulator received.
type Call struct {
	Service  string    // "ecs", "ecr", "ssm", "sts" or "sns"
	Op       string    // operation name, e.g. "UpdateService"
	Time     time.Time // when it arrived
	Mutating bool      // whether the operation changes state (Register…, Update…, Create…, Tag…, …)
	Error    string    // error code answered ("" = success), incl. injected faults and throttling
	Account  string    // the account the request acted in ("" when it could not be identified)
}

func (e *Emulator) recordCall(c Call) {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	e.hooks.calls[c.Op]++
	e.hooks.log = append(e.hooks.log, c)
}

// Calls returns how many requests each operation received (faulted and throttled ones included).
func (e *Emulator) Calls() map[string]int {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	out := make(map[string]int, len(e.hooks.calls))
	for k, v := range e.hooks.calls {
		out[k] = v
	}
	return out
}

// CallLog returns every request received since the last ResetCalls, in order of completion.
func (e *Emulator) CallLog() []Call {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	return append([]Call(nil), e.hooks.log...)
}

// ResetCalls forgets the call counts and the call log.
func (e *Emulator) ResetCalls() {
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	e.hooks.calls = map[string]int{}
	e.hooks.log = nil
}
