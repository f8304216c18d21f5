package main

import (
	"context"
	"fmt"
	"io"

	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
)

func emulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("emulate", stderr)
	addr := fs.String("addr", "127.0.0.1:4566", "listen on this loopback address")
	fleetFile := fs.String("fleet", "events/fleet.json", "the world to start from (empty: an empty world)")
	delay := fs.Duration("deploy-delay", 0, "how long a deployment takes (0: done within UpdateService)")
	eventsURL := fs.String("deployment-events-url", "", "POST every ECS Deployment State Change event here (e.g. the Lambda Runtime Interface Emulator's invoke URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError{2}
	}
	srv, err := emulator.Start(*addr, emulator.Options{DeployDelay: *delay, DeploymentEventURL: *eventsURL})
	if err != nil {
		return fmt.Errorf("start the emulator on %s: %w", *addr, err)
	}
	defer srv.Close()
	if *fleetFile != "" {
		f, err := fleet.Load(*fleetFile)
		if err != nil {
			return err
		}
		if err := srv.Emulator().Load(f); err != nil {
			return fmt.Errorf("load %s: %w", *fleetFile, err)
		}
	}
	fmt.Fprintf(stdout, "pinroll emulator (ECS + ECR) listening on %s — fleet %s\n", srv.URL(), *fleetFile)
	fmt.Fprintf(stdout, "try: pinroll verify --endpoint-url %s   or   aws --endpoint-url %s ecs list-services --cluster prod\n", srv.URL(), srv.URL())
	<-ctx.Done()
	return nil
}
