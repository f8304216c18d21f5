package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

type emulateCmd struct {
	Addr        string        `default:"127.0.0.1:4566" placeholder:"HOST:PORT" help:"Listen on this address; loopback only unless --allow-remote."`
	AllowRemote bool          `help:"Allow a non-loopback --addr. The emulator has no authentication: anyone who reaches it can change its world."`
	Fleet       string        `default:"events/fleet.json" placeholder:"FILE" help:"The world to start from; '' for an empty world."`
	DeployDelay time.Duration `default:"2s" placeholder:"D" help:"How long a deployment takes; CreateService and UpdateService answer it IN_PROGRESS, as ECS does (0: an instant world, done within the call)."` // default: emulator.ECSDeployDelay
	BakeTime    time.Duration `default:"1m" placeholder:"D" help:"How long one minute of a BLUE_GREEN, LINEAR or CANARY deployment's bake times lasts (bakeTimeInMinutes, stepBakeTimeInMinutes, canaryBakeTimeInMinutes): 1m is ECS's pace, 2s suits a demo, 0 ends every bake at once."`
	EventsURL   string        `name:"deployment-events-url" placeholder:"URL" help:"POST every event the emulator emits (ECS Deployment State Change, ECR Replication Action, with --push-events ECR Image Action) here, e.g. the Lambda Runtime Interface Emulator's invoke URL."`
	EventsDir   string        `placeholder:"DIR" help:"Also write every event the emulator emits into DIR, one file each (NNNN-<detail-type>-<account>-<region>.json), to replay them with pinroll replay."`
	PushEvents  bool          `help:"Emit an ECR Image Action (PUSH) event for every image pushed (PutImage), as ECR does."`
	Account     string        `placeholder:"ID" help:"The account that requests without assumed-role credentials act in (default: the fleet's first world's account, else 123456789012)."`
	Queue       string        `name:"continue-queue" default:"pinroll-continue.fifo" placeholder:"NAME" help:"Create this SQS FIFO queue (and NAME-dlq.fifo, its dead-letter queue after 5 receives) in the world's account and region, for PINROLL_CONTINUE_QUEUE_URL: the queue that carries the rest of a push that outlives one invocation; '' for none."`
}

// eventFiles writes each event into dir as its own file, in the order emitted.
type eventFiles struct {
	dir string
	mu  sync.Mutex
	n   int
	log io.Writer
}

func (f *eventFiles) write(_ context.Context, event []byte) {
	var env struct {
		DetailType string `json:"detail-type"`
		Account    string `json:"account"`
		Region     string `json:"region"`
	}
	_ = json.Unmarshal(event, &env)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	name := fmt.Sprintf("%04d-%s-%s-%s.json", f.n, strings.ReplaceAll(strings.ToLower(env.DetailType), " ", "-"), env.Account, env.Region)
	if err := os.WriteFile(filepath.Join(f.dir, name), event, 0o644); err != nil {
		fmt.Fprintf(f.log, "pinroll emulate: write event: %v\n", err)
	}
}

// checkAddr refuses an address that would serve other machines unless allowed; allowed, it
// returns a warning.
func checkAddr(addr string, allowRemote bool) (warning string, err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", usageError{fmt.Sprintf("--addr %s: %v (want HOST:PORT, e.g. 127.0.0.1:4566)", addr, err)}
	}
	if isLoopbackHost(host) {
		return "", nil
	}
	what := host
	if host == "" || host == "0.0.0.0" || host == "::" {
		what = "every interface"
	}
	if !allowRemote {
		return "", usageError{fmt.Sprintf("--addr %s would serve %s, and the emulator has no authentication: use a loopback address (127.0.0.1:PORT), or add --allow-remote if other machines must reach it", addr, what)}
	}
	return fmt.Sprintf("warning: the emulator listens on %s (%s) with no authentication: anyone who reaches it can read and change its world", addr, what), nil
}

func (c *emulateCmd) Run(e *env) error {
	warning, err := checkAddr(c.Addr, c.AllowRemote)
	if err != nil {
		return err
	}
	if warning != "" {
		fmt.Fprintln(e.stderr, warning)
	}
	var world *fleet.Fleet
	if c.Fleet != "" {
		if world, err = fleet.Load(c.Fleet); err != nil {
			return err
		}
	}
	if c.BakeTime < 0 {
		return usageError{fmt.Sprintf("--bake-time %s: want 0 or more (how long a bake minute lasts)", c.BakeTime)}
	}
	opts := emulator.Options{DeployDelay: c.DeployDelay, BakeMinute: c.BakeTime, EventURL: c.EventsURL, PushEvents: c.PushEvents, Account: c.Account}
	if opts.Account == "" && world != nil {
		opts.Account = world.AllWorlds()[0].Account
	}
	if c.EventsDir != "" {
		if err := os.MkdirAll(c.EventsDir, 0o755); err != nil {
			return fmt.Errorf("--events-dir: %w", err)
		}
		opts.OnEvent = (&eventFiles{dir: c.EventsDir, log: e.stderr}).write
	}
	srv, err := emulator.Start(c.Addr, opts)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s is in use (another pinroll emulate?): stop what listens there, or choose another --addr", c.Addr)
	}
	if err != nil {
		return fmt.Errorf("start the emulator on %s: %w", c.Addr, err)
	}
	defer srv.Close()
	if world != nil {
		if err := srv.Emulator().Load(world); err != nil {
			return fmt.Errorf("load %s: %w", c.Fleet, err)
		}
	}
	name, region := c.Fleet, localRegion
	if name == "" {
		name = "none (an empty world)"
	}
	if world != nil && world.Region != "" {
		region = world.Region
	}
	fmt.Fprintf(e.stdout, "pinroll emulator (ECS + ECR) listening on %s — fleet %s\n", srv.URL(), name)
	if c.Queue != "" {
		if !strings.HasSuffix(c.Queue, ".fifo") {
			return usageError{fmt.Sprintf("--continue-queue %s: the continuation queue is a FIFO queue; its name ends in .fifo", c.Queue)}
		}
		account := cmp.Or(opts.Account, emulator.DefaultAccount)
		url, err := srv.Emulator().CreateQueue(account, region, c.Queue, strings.TrimSuffix(c.Queue, ".fifo")+"-dlq.fifo", 5, 90*time.Minute)
		if err != nil {
			return fmt.Errorf("--continue-queue %s: %w", c.Queue, err)
		}
		fmt.Fprintf(e.stdout, "continuation queue: %s=%s\n", config.EnvContinueQueue, url)
	}
	fmt.Fprintf(e.stdout, "try: pinroll verify --endpoint-url %s   or   AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=%s aws --endpoint-url %s ecs list-services --cluster prod\n",
		srv.URL(), region, srv.URL())
	<-e.ctx.Done()
	return nil
}
