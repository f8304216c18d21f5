package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/report"
)

// emf logs one line with attrs as the function does and decodes it.
func emf(t *testing.T, attrs []any) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("metrics", attrs...)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.Bytes())
	}
	return line
}

// directive is the line's one CloudWatchMetrics directive: its dimension sets and metric names.
func directive(t *testing.T, line map[string]any) (dims [][]string, names []string) {
	t.Helper()
	aws := line["_aws"].(map[string]any)
	if _, ok := aws["Timestamp"].(float64); !ok {
		t.Errorf("no Timestamp: %v", aws)
	}
	ds := aws["CloudWatchMetrics"].([]any)
	if len(ds) != 1 {
		t.Fatalf("%d directives", len(ds))
	}
	d := ds[0].(map[string]any)
	if d["Namespace"] != Namespace {
		t.Errorf("namespace %v", d["Namespace"])
	}
	for _, set := range d["Dimensions"].([]any) {
		var s []string
		for _, k := range set.([]any) {
			s = append(s, k.(string))
		}
		dims = append(dims, s)
	}
	for _, m := range d["Metrics"].([]any) {
		name := m.(map[string]any)["Name"].(string)
		names = append(names, name)
		if _, ok := line[name]; !ok {
			t.Errorf("metric %s has no value on the line", name)
		}
	}
	for _, set := range dims {
		for _, k := range set {
			if _, ok := line[k].(string); !ok {
				t.Errorf("dimension %s has no string value on the line", k)
			}
		}
	}
	return dims, names
}

var now = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func deployedReport() report.Report {
	return report.Report{
		Kind: "push", Outcome: report.Deployed,
		Changes: []report.Change{{Account: "111111111111", Service: "api"}, {Account: "222222222222", Service: "api"}, {Account: "222222222222", Service: "worker"}},
		Failed:  []report.Service{{Account: "222222222222", Service: "batch"}},
		Verifications: []report.Verification{
			{Account: "111111111111", OK: true}, {Account: "222222222222", OK: false}, {Account: "", OK: false},
		},
		MissingImages: []report.MissingImage{{Account: "333333333333"}, {Account: "111111111111"}, {Account: "333333333333"}},
		Skipped:       []report.Service{{Account: "444444444444"}, {Account: "not-an-account"}},
	}
}

// GIVEN a deployed push, WHEN its metrics are logged, THEN one EMF line carries every metric with
// the dimension sets [Outcome], [] and [Kind, Outcome], and the counts of the report.
func TestMetricsEventLine(t *testing.T) {
	e := Event{Report: deployedReport(), Outcome: report.Deployed, Calls: 7, PushTime: now.Add(-42 * time.Second), Now: now}
	line := emf(t, e.Fields())
	dims, names := directive(t, line)
	if diff := cmp.Diff([][]string{{"Outcome"}, nil, {"Kind", "Outcome"}}, dims); diff != "" {
		t.Errorf("dimension sets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Events", "APICalls", "ServicesDeployed", "VerificationMismatches", "ServicesFailed", "MissingImages", "PushToDeploySeconds"}, names); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	want := map[string]any{"Outcome": "deployed", "Kind": "push", "Events": 1.0, "APICalls": 7.0, "ServicesDeployed": 3.0,
		"VerificationMismatches": 2.0, "ServicesFailed": 1.0, "MissingImages": 3.0, "PushToDeploySeconds": 42.0}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
	if line["_aws"].(map[string]any)["Timestamp"] != float64(now.UnixMilli()) {
		t.Errorf("timestamp %v", line["_aws"])
	}
}

// GIVEN events of every trigger and a rejected one, THEN Kind takes only push, deployment,
// reconcile or invalid: the [Kind, Outcome] set stays bounded, and a reconcile repair is told
// from a push (Kind=reconcile, Outcome=deployed, ServicesDeployed > 0).
func TestMetricsKindIsBounded(t *testing.T) {
	for kind, want := range map[string]string{"push": "push", "deployment": "deployment", "reconcile": "reconcile",
		"invalid": "invalid", "": "invalid", "Scheduled Event": "invalid", "something-new": "invalid"} {
		e := Event{Report: report.Report{Kind: kind, Outcome: report.Skipped}, Outcome: report.Skipped, Now: now}
		if got := emf(t, e.Fields())["Kind"]; got != want {
			t.Errorf("report kind %q: Kind %v, want %q", kind, got, want)
		}
	}
	repair := Event{Report: report.Report{Kind: "reconcile", Outcome: report.Deployed, Changes: []report.Change{{Service: "api"}}},
		Outcome: report.Deployed, Now: now}
	line := emf(t, repair.Fields())
	if line["Kind"] != "reconcile" || line["Outcome"] != "deployed" || line["ServicesDeployed"] != 1.0 {
		t.Errorf("reconcile repair line: %v", line)
	}
	// No push time: no push-to-deploy metric.
	if _, names := directive(t, line); strings.Contains(strings.Join(names, ","), "PushToDeploySeconds") {
		t.Errorf("a reconcile repair has PushToDeploySeconds: %v", names)
	}
}

// GIVEN a report naming several accounts, WHEN its per-account lines are made, THEN there is one
// small line per 12-digit account, sorted, with the dimension Account only, counting that
// account's deployed services, mismatches, failures and missing images; entries without an
// account are left to the event's line.
func TestMetricsAccountLines(t *testing.T) {
	e := Event{Report: deployedReport(), Outcome: report.Deployed, Calls: 7, PushTime: now.Add(-time.Second), Now: now}
	type counts struct {
		Account                                       string
		Events, Deployed, Mismatches, Failed, Missing float64
	}
	var got []counts
	for _, attrs := range e.AccountFields() {
		line := emf(t, attrs)
		dims, names := directive(t, line)
		if diff := cmp.Diff([][]string{{"Account"}}, dims); diff != "" {
			t.Errorf("dimension sets (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"Events", "ServicesDeployed", "VerificationMismatches", "ServicesFailed", "MissingImages"}, names); diff != "" {
			t.Errorf("metrics (-want +got):\n%s", diff)
		}
		if line["Outcome"] != "deployed" || line["Kind"] != "push" {
			t.Errorf("line %v: want Outcome and Kind as properties", line)
		}
		if _, ok := line["APICalls"]; ok {
			t.Errorf("an account line repeats APICalls: %v", line)
		}
		got = append(got, counts{line["Account"].(string), line["Events"].(float64), line["ServicesDeployed"].(float64),
			line["VerificationMismatches"].(float64), line["ServicesFailed"].(float64), line["MissingImages"].(float64)})
	}
	want := []counts{
		{"111111111111", 1, 1, 0, 0, 1},
		{"222222222222", 1, 2, 1, 1, 0},
		{"333333333333", 1, 0, 0, 0, 2},
		{"444444444444", 1, 0, 0, 0, 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("per-account lines (-want +got):\n%s", diff)
	}

	// Not deployed (a dry run): the changes are planned, none deployed, in any account.
	planned := Event{Report: report.Report{Kind: "push", Changes: []report.Change{{Account: "111111111111"}}}, Outcome: report.Planned, Now: now}
	lines := planned.AccountFields()
	if len(lines) != 1 || emf(t, lines[0])["ServicesDeployed"] != 0.0 {
		t.Errorf("planned: %v", lines)
	}
	// An event that names no account (rejected, or failed before any work) has no account line.
	if lines := (Event{Report: report.Report{Kind: "invalid"}, Outcome: report.EventFailed, Now: now}).AccountFields(); len(lines) != 0 {
		t.Errorf("invalid event: %d account lines", len(lines))
	}
}

// GIVEN a report naming more accounts than MaxAccountLines, THEN the lines stop there.
func TestMetricsAccountLinesBounded(t *testing.T) {
	var rep report.Report
	for i := range MaxAccountLines + 5 {
		rep.Skipped = append(rep.Skipped, report.Service{Account: strings.Repeat("0", 9) + string(rune('0'+i/100)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))})
	}
	if n := len((Event{Report: rep, Outcome: report.Skipped, Now: now}).AccountFields()); n != MaxAccountLines {
		t.Errorf("%d account lines, want %d", n, MaxAccountLines)
	}
}

// GIVEN an event naming two accounts, WHEN it is emitted, THEN the logger gets three "metrics"
// records: the event's line (APICalls, no Account) first, then one per account.
func TestMetricsEmit(t *testing.T) {
	var buf bytes.Buffer
	rep := report.Report{Kind: "push", Changes: []report.Change{{Account: "222222222222"}, {Account: "111111111111"}}}
	Event{Report: rep, Outcome: report.Deployed, Calls: 3, Now: now}.Emit(context.Background(), slog.New(slog.NewJSONHandler(&buf, nil)))
	var accounts []any
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	for i, l := range lines {
		var line map[string]any
		if err := json.Unmarshal([]byte(l), &line); err != nil || line["msg"] != "metrics" || line["_aws"] == nil {
			t.Fatalf("line %d: %v %s", i, err, l)
		}
		if i == 0 {
			if line["APICalls"] != 3.0 || line["Account"] != nil {
				t.Errorf("first line is not the event's: %s", l)
			}
			continue
		}
		accounts = append(accounts, line["Account"])
	}
	if diff := cmp.Diff([]any{"111111111111", "222222222222"}, accounts); diff != "" {
		t.Errorf("account lines (-want +got):\n%s", diff)
	}
}
