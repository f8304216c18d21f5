package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/verify"
)

func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	cluster := fs.String("cluster", "", "only this cluster (default: PINROLL_CLUSTERS, else every cluster)")
	service := fs.String("service", "", "only these services (comma-separated names)")
	endpoint := fs.String("endpoint-url", "", "send AWS calls to this endpoint (the local emulator or moto)")
	asJSON := fs.Bool("json", false, "print the verification as one line of JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError{2}
	}
	engine, _, err := newEngine(ctx, *endpoint, true, false, stderr)
	if err != nil {
		return err
	}
	clusters := engine.Config.Clusters
	if *cluster != "" {
		clusters = []string{*cluster}
	}
	fleet, err := engine.Home().Discoverer.Discover(ctx, clusters)
	if err != nil {
		return err
	}
	rep := report.Report{Kind: "verify"}
	tags := &verify.TagDigests{}
	revisions := map[string]string{} // cluster/service → task definition family:revision
	only := strings.Split(*service, ",")
	for _, svc := range fleet.Services {
		if *service != "" && !slices.Contains(only, svc.Name) {
			continue
		}
		td := fleet.TaskDefinitions[svc.TaskDefinition]
		vs, err := engine.Home().Verifier.Service(ctx, svc, td.Definition, tags)
		if err != nil {
			return err
		}
		revisions[svc.Cluster+"/"+svc.Name] = report.Revision(svc.TaskDefinition)
		rep.Verifications = append(rep.Verifications, vs...)
	}
	if *service != "" && len(revisions) == 0 {
		return fmt.Errorf("no service named %s in %s", *service, strings.Join(orAll(clusters), ", "))
	}
	rep.Outcome, rep.Reason = verify.Outcome(rep.Verifications)
	if *asJSON {
		line, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", line)
	} else {
		printVerifications(stdout, rep, revisions)
	}
	if rep.Outcome != report.Verified {
		return exitError{1}
	}
	return nil
}

func printVerifications(w io.Writer, rep report.Report, revisions map[string]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tREVISION\tCONTAINER\tTASK\tRUNNING\tSHOULD RUN\t")
	vs := slices.Clone(rep.Verifications)
	slices.SortStableFunc(vs, func(a, b report.Verification) int {
		return strings.Compare(a.Cluster+"/"+a.Service, b.Cluster+"/"+b.Service)
	})
	for _, v := range vs {
		status := "ok"
		if !v.OK {
			status = "MISMATCH " + v.Why
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Cluster, v.Service, revisions[v.Cluster+"/"+v.Service],
			v.Container, shortID(v.Task), short(v.Running), short(v.Want), status)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%s: %s\n", strings.ToUpper(string(rep.Outcome)), rep.Reason)
}

func short(digest string) string {
	if strings.HasPrefix(digest, "sha256:") && len(digest) > 19 {
		return digest[:19] + "…"
	}
	return digest
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func orAll(clusters []string) []string {
	if len(clusters) == 0 {
		return []string{"every cluster"}
	}
	return clusters
}
