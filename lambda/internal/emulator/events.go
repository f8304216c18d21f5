package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
)

// deploymentEvent is an EventBridge "ECS Deployment State Change" event.
type deploymentEvent struct {
	Version    string                `json:"version"`
	ID         string                `json:"id"`
	DetailType string                `json:"detail-type"`
	Source     string                `json:"source"`
	Account    string                `json:"account"`
	Time       string                `json:"time"`
	Region     string                `json:"region"`
	Resources  []string              `json:"resources"`
	Detail     deploymentEventDetail `json:"detail"`
}

type deploymentEventDetail struct {
	EventType    string `json:"eventType"`
	EventName    string `json:"eventName"`
	DeploymentID string `json:"deploymentId"`
	UpdatedAt    string `json:"updatedAt"`
	Reason       string `json:"reason"`
}

// emitDeploymentEvent queues an event for delivery; nothing is delivered while a fleet loads.
// Call with e.mu held.
func (e *Emulator) emitDeploymentEvent(w *world, s *service, d *deployment, eventType, name, reason string) {
	if e.loading || !e.hasEventSinks() {
		return
	}
	now := e.now()
	ev := deploymentEvent{
		Version: "0", ID: newUUID(), DetailType: "ECS Deployment State Change", Source: "aws.ecs",
		Account: w.account, Time: now.Format("2006-01-02T15:04:05Z"), Region: w.region,
		Resources: []string{s.arn},
		Detail: deploymentEventDetail{
			EventType: eventType, EventName: name, DeploymentID: d.id,
			UpdatedAt: d.updatedAt.UTC().Format("2006-01-02T15:04:05.000Z"), Reason: reason,
		},
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return // cannot happen: plain strings
	}
	e.delivery.enqueue(data)
}

// delivery hands events to the sinks one at a time, in order, from its own goroutine, so a sink
// may call back into the emulator.
type delivery struct {
	mu      sync.Mutex
	idle    *sync.Cond
	queue   [][]byte
	running bool
	ctx     context.Context
	cancel  context.CancelFunc
}

func (d *delivery) init() {
	d.idle = sync.NewCond(&d.mu)
	d.ctx, d.cancel = context.WithCancel(context.Background())
}

func (d *delivery) enqueue(event []byte) {
	d.mu.Lock()
	d.queue = append(d.queue, event)
	d.mu.Unlock()
}

// deliverEvents starts delivering queued events, unless a delivery is already under way.
func (e *Emulator) deliverEvents() {
	d := &e.delivery
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running || len(d.queue) == 0 {
		return
	}
	d.running = true
	go e.drain()
}

func (e *Emulator) drain() {
	d := &e.delivery
	for {
		d.mu.Lock()
		if len(d.queue) == 0 || d.ctx.Err() != nil {
			d.queue = nil
			d.running = false
			d.idle.Broadcast()
			d.mu.Unlock()
			return
		}
		event := d.queue[0]
		d.queue = d.queue[1:]
		d.mu.Unlock()
		e.deliver(d.ctx, event)
	}
}

// hasEventSinks reports whether any event sink is configured.
func (e *Emulator) hasEventSinks() bool {
	o := &e.opts
	return o.OnEvent != nil || o.EventURL != "" || o.OnDeploymentEvent != nil || o.DeploymentEventURL != ""
}

func (e *Emulator) deliver(ctx context.Context, event []byte) {
	for _, fn := range []func(context.Context, []byte){e.opts.OnEvent, e.opts.OnDeploymentEvent} {
		if fn != nil {
			fn(ctx, event)
		}
	}
	for _, url := range []string{e.opts.EventURL, e.opts.DeploymentEventURL} {
		if url == "" {
			continue
		}
		if err := e.post(ctx, url, event); err != nil {
			e.opts.Logger.Warn("event not delivered", "url", url, "error", err)
		}
	}
}

func (e *Emulator) post(ctx context.Context, url string, event []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(event))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.opts.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST answered %s", resp.Status)
	}
	return nil
}

// wait blocks until every queued event has been delivered (or delivery was closed).
func (d *delivery) wait() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.running || (len(d.queue) > 0 && d.ctx.Err() == nil) {
		d.idle.Wait()
	}
}

func (d *delivery) close() {
	d.cancel()
	d.wait()
}
