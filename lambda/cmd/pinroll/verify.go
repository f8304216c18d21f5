package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/verify"
)

type verifyCmd struct {
	Cluster string   `placeholder:"C" help:"Only this cluster (default: PINROLL_CLUSTERS, else every cluster)."`
	Service []string `placeholder:"S" sep:"," help:"Only these services (comma-separated names)."`
	JSON    bool     `name:"json" help:"Print the verification as one line of JSON."`
	AWSFlags
	RoleFlag
}

// Help is `pinroll verify --help`'s text beneath the usage line.
func (c *verifyCmd) Help() string {
	return `For every running task of every service in scope, compares each container's imageDigest (as ECS reports it) with the digest it should run: the digest its task definition pins, or for an image referenced by tag, the digest that tag has in ECR now. It also checks that every digest the services pin, in their current revision and in the pinroll:previous revision a rollback restores, is still in ECR and ACTIVE (not expired or archived by a lifecycle rule), and prints each that is not, with how to restore or redeploy it.

Exit status: 0 verified (every check passed; at least one check made); 1 mismatch (a task runs another digest, or an image is missing from ECR); 2 bad usage or input; 3 nothing could be verified (no such cluster, no services, no such service, no running tasks, no container to check), or a named cluster or service was not found, or a check could not be made, or a service's deployment has not completed yet — never an all-clear from zero checks.

A service whose deployment ECS is still carrying out is not judged: a rolling update until its new tasks run, and a BLUE_GREEN, LINEAR or CANARY deployment through its traffic shifts and bake time, while the previous revision's tasks still run beside the new ones. verify says which lifecycle stage it is in (from DescribeServiceDeployments) and, while it bakes, when to verify again.`
}

// gap is something verify was asked to check, or should have found, but could not.
type gap struct {
	what string
	// fails marks a gap that makes the run unverified even when other checks passed: a
	// cluster or service asked for by name, or a service that should run tasks but runs none.
	fails bool
}

func (c *verifyCmd) Run(e *env) error {
	s, err := newSession(e, c.AWSFlags, true, c.Role)
	if err != nil {
		return err
	}
	where := s.where()
	clusters := s.engine.Config.Clusters
	named := c.Cluster != ""
	if named {
		clusters = []string{c.Cluster}
	}
	var gaps []gap
	var services []discover.Service
	tds := map[string]*discover.TaskDefinition{}
	if len(clusters) == 0 {
		found, err := s.engine.Home().Discoverer.Discover(s.ctx, nil)
		if err != nil {
			return explain(c.Endpoint, err)
		}
		services, tds = found.Services, found.TaskDefinitions
		if len(services) == 0 {
			all, err := listClusters(s.ctx, s.ecs)
			if err != nil {
				return explain(c.Endpoint, err)
			}
			if len(all) == 0 {
				gaps = append(gaps, gap{"no clusters in " + where, true})
			}
			for _, cl := range all {
				gaps = append(gaps, gap{fmt.Sprintf("cluster %s has no services (%s)", cl, where), true})
			}
		}
	} else {
		// One cluster at a time, so a missing one is named and the others still checked.
		for _, cl := range clusters {
			found, err := s.engine.Home().Discoverer.Discover(s.ctx, []string{cl})
			var notFound *ecstypes.ClusterNotFoundException
			switch {
			case errors.As(err, &notFound):
				gaps = append(gaps, gap{fmt.Sprintf("no cluster %s in %s", discover.ClusterName(cl), where), true})
				continue
			case err != nil:
				return explain(c.Endpoint, err)
			}
			if len(found.Services) == 0 && len(c.Service) == 0 {
				gaps = append(gaps, gap{fmt.Sprintf("cluster %s has no services (%s)", discover.ClusterName(cl), where), true})
			}
			services = append(services, found.Services...)
			for arn, td := range found.TaskDefinitions {
				tds[arn] = td
			}
		}
	}
	if len(c.Service) > 0 {
		services = slices.DeleteFunc(services, func(svc discover.Service) bool { return !slices.Contains(c.Service, svc.Name) })
		in := "clusters " + strings.Join(clusterNames(clusters), ", ")
		if len(clusters) == 1 {
			in = "cluster " + clusterNames(clusters)[0]
		} else if len(clusters) == 0 {
			in = "any cluster"
		}
		for _, name := range c.Service {
			if !slices.ContainsFunc(services, func(svc discover.Service) bool { return svc.Name == name }) {
				gaps = append(gaps, gap{fmt.Sprintf("no service %s in %s (%s)", name, in, where), true})
			}
		}
	}

	rep := report.Report{Kind: "verify"}
	missing, err := c.missingImages(s, services, tds)
	if err != nil {
		return explain(c.Endpoint, err)
	}
	rep.MissingImages = missing
	tags := &verify.TagDigests{}
	revisions := map[string]string{} // cluster/service → task definition family:revision
	var checks, problems []report.Verification
	for _, svc := range services {
		if svc.Rollout != nil {
			gaps = append(gaps, gap{verify.InProgress(s.ctx, s.ecs, svc), true})
			continue
		}
		td := tds[svc.TaskDefinition]
		if td == nil {
			return fmt.Errorf("%s/%s: task definition %s was not described", svc.Cluster, svc.Name, svc.TaskDefinition)
		}
		vs, err := s.engine.Home().Verifier.Service(s.ctx, svc, td.Definition, tags)
		if err != nil {
			return explain(c.Endpoint, err)
		}
		revisions[svc.Cluster+"/"+svc.Name] = report.Revision(svc.TaskDefinition)
		rep.Verifications = append(rep.Verifications, vs...)
		n, missing := 0, 0
		noTasks := false
		for _, v := range vs {
			switch {
			case v.Task != "":
				checks = append(checks, v)
				n++
			case v.Container == "":
				// The verifier's note for a service with no running task: nothing to check.
				noTasks = true
			default:
				problems = append(problems, v) // e.g. the tag is not in ECR: a missing image
				missing++
			}
		}
		switch {
		case n > 0:
		case noTasks:
			gaps = append(gaps, gap{fmt.Sprintf("service %s/%s has no running task (desired %d)", svc.Cluster, svc.Name, svc.DesiredCount), true})
		case svc.DesiredCount == 0:
			gaps = append(gaps, gap{fmt.Sprintf("service %s/%s has no running tasks (desired 0)", svc.Cluster, svc.Name), len(c.Service) > 0})
		case missing == 0:
			gaps = append(gaps, gap{fmt.Sprintf("service %s/%s runs no container with an ECR image or a pinned digest to check", svc.Cluster, svc.Name), len(c.Service) > 0})
		}
	}

	// The verifier's outcome (mismatch, unverified, verified), made stricter by what the CLI
	// was asked for: a named cluster or service that is not there is never an all-clear.
	rep.Outcome, rep.Reason = verify.Outcome(rep.Verifications)
	failing := slices.ContainsFunc(gaps, func(g gap) bool { return g.fails })
	if rep.Outcome != report.Mismatch && len(problems) == 0 && (rep.Outcome == report.Unverified || failing) && len(gaps) > 0 {
		rep.Outcome = report.Unverified
		passed := 0
		for _, v := range checks {
			if v.OK {
				passed++
			}
		}
		rep.Reason = fmt.Sprintf("%s passed; not verified: %s", plural(passed, "check"), gapList(gaps))
		if passed == 0 {
			rep.Reason = "nothing could be verified: " + gapList(gaps)
		}
		rep.Reason += regionHint(c.Endpoint, s.aws.Region)
	}
	if n := len(rep.MissingImages); n > 0 {
		// Running tasks may be fine now; the next task start, or a rollback, is not.
		if rep.Outcome == report.Verified {
			rep.Outcome = report.Mismatch
		}
		rep.Reason += fmt.Sprintf("; %s ECR can no longer serve (expired or archived): a task that starts cannot pull it", plural(n, "pinned image"))
	}
	if c.JSON {
		line, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n", line)
	} else {
		printVerifications(e.stdout, rep, append(checks, problems...), gaps, revisions)
	}
	switch {
	case rep.Outcome == report.Mismatch, len(problems) > 0, len(rep.MissingImages) > 0: // a missing image is a failure, not a gap
		return exitError{exitFailed}
	case rep.Outcome != report.Verified:
		return exitError{exitUnverified}
	}
	return nil
}

// where names the account and region the CLI looks in.
func (s *session) where() string {
	account := s.account
	if account == "" {
		account = "(unknown)"
	}
	return fmt.Sprintf("account %s region %s", account, s.aws.Region)
}

// regionHint points at the likeliest cause of an empty local world: a shell region that is
// not the fleet's.
func regionHint(ep endpoint, region string) string {
	if ep.loopback() && regionFromEnv() != "" && region != localRegion {
		return fmt.Sprintf(" (AWS_REGION=%s is set; the default fleet is in %s: unset AWS_REGION or set it to the fleet's region)", region, localRegion)
	}
	return ""
}

func gapList(gaps []gap) string {
	var out []string
	for _, g := range gaps {
		out = append(out, g.what)
	}
	if len(out) == 0 {
		return "no running container to check"
	}
	return strings.Join(out, "; ")
}

func listClusters(ctx context.Context, client *ecs.Client) ([]string, error) {
	var names []string
	p := ecs.NewListClustersPaginator(client, &ecs.ListClustersInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		for _, arn := range page.ClusterArns {
			names = append(names, discover.ClusterName(arn))
		}
	}
	return names, nil
}

func clusterNames(clusters []string) []string {
	out := make([]string, len(clusters))
	for i, c := range clusters {
		out[i] = discover.ClusterName(c)
	}
	return out
}

func printVerifications(w io.Writer, rep report.Report, vs []report.Verification, gaps []gap, revisions map[string]string) {
	if len(vs) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tREVISION\tCONTAINER\tTASK\tRUNNING\tSHOULD RUN\t")
		vs = slices.Clone(vs)
		slices.SortStableFunc(vs, func(a, b report.Verification) int {
			return strings.Compare(a.Cluster+"/"+a.Service, b.Cluster+"/"+b.Service)
		})
		for _, v := range vs {
			status := "ok"
			switch {
			case !v.OK && v.Running == "":
				status = "NOT CHECKED " + v.Why
			case !v.OK:
				status = "MISMATCH " + v.Why
			}
			fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Cluster, v.Service, revisions[v.Cluster+"/"+v.Service],
				v.Container, shortID(v.Task), short(v.Running), short(v.Want), status)
		}
		_ = tw.Flush()
	}
	for _, m := range rep.MissingImages {
		fmt.Fprintf(w, "MISSING IMAGE %s/%s %s %s: %s\n", m.Cluster, m.Service, m.Revision, m.Image, m.Why)
	}
	for _, g := range gaps {
		fmt.Fprintf(w, "not verified: %s\n", g.what)
	}
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

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// missingImages checks that every digest the services pin — in their current revision and in
// the pinroll:previous revision a rollback restores — is still in ECR and ACTIVE: one
// DescribeImages call per 100 digests of a repository. Registries of the session's region are
// asked: the allowed ones (PINROLL_REGISTRY_ACCOUNTS, else the account verified), and with
// --role any, since a target's images are usually the caller's registry's.
func (c *verifyCmd) missingImages(s *session, services []discover.Service, tds map[string]*discover.TaskDefinition) ([]report.MissingImage, error) {
	home := s.engine.Home()
	checkable := func(account, region string) bool {
		return region == s.aws.Region && (c.Role != "" || s.engine.Config.RegistryAllowed(account, s.account))
	}
	var pins []verify.Pin
	for _, svc := range services {
		p, err := verify.Pins(s.ctx, home.Discoverer, svc, tds[svc.TaskDefinition], checkable)
		if err != nil {
			return nil, err
		}
		pins = append(pins, p...)
	}
	var q verify.Query
	verify.Ask(&q, pins)
	images := &verify.Images{}
	if err := q.Describe(s.ctx, home.Verifier.ECR, images); err != nil {
		return nil, err
	}
	return verify.Missing(pins, images), nil
}
