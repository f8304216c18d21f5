package discover_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/config"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/fleet"
	"github.com/pinroll/pinroll/lambda/internal/index"
	"github.com/pinroll/pinroll/lambda/internal/report"
	"github.com/pinroll/pinroll/lambda/internal/rollout"
)

// deployments replays the sample events through an engine wired as the function is (with
// PINROLL_INDEX_TABLE = table, "" for none) in a fresh incident world, after fault, and
// returns every report's outcome and changes, and the warnings logged.
func deployments(t *testing.T, table string, fault func(*emulator.Emulator, *dynamodb.Client, []string)) ([]report.Report, []string) {
	t.Helper()
	srv, err := emulator.Start("127.0.0.1:0", emulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	f, err := fleet.Load("../../../events/fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Emulator().Load(f); err != nil {
		t.Fatal(err)
	}
	cfg := awstest.Config(t, srv.URL())
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	if _, err := index.Create(context.Background(), db, "pinroll-index"); err != nil {
		t.Fatal(err)
	}
	log, warnings := logged()
	// A first process fills the table with what the fleet runs (a dry-run reconcile describes it all).
	filler := rollout.FromAWSConfig(config.Config{IndexTable: "pinroll-index", DryRun: true}, cfg, log)
	filler.Home().Discoverer.Pace = nil
	found, err := filler.Home().Discoverer.Discover(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if fault != nil {
		var arns []string
		for arn := range found.TaskDefinitions {
			arns = append(arns, arn)
		}
		fault(srv.Emulator(), db, arns)
	}
	var reps []report.Report
	for _, name := range []string{"push-tagged.json", "push-lookalike-dev-backend.json", "push-multiarch-index.json", "push-old-digest.json"} {
		// Each event in a new process: a cold start, every time.
		engine := rollout.FromAWSConfig(config.Config{IndexTable: table}, cfg, log)
		engine.Home().Discoverer.Pace = nil
		raw, err := os.ReadFile(filepath.Join("..", "..", "..", "events", name))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := engine.HandleRaw(context.Background(), raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		reps = append(reps, report.Report{Outcome: rep.Outcome, Changes: rep.Changes, Skipped: rep.Skipped})
	}
	return reps, warnings()
}

// The deployments with the index, healthy or failing, are exactly those without it.
func TestIndexGivesTheSameDeployments(t *testing.T) {
	want, _ := deployments(t, "", nil)
	if len(want[0].Changes) != 2 {
		t.Fatalf("push-tagged without the index: %+v, want prod/api and prod/worker", want[0])
	}
	for _, tc := range []struct {
		name     string
		table    string
		fault    func(*emulator.Emulator, *dynamodb.Client, []string)
		warnings string // in every warning; "" for none
	}{
		{"healthy", "pinroll-index", nil, ""},
		{"table missing", "no-such-table", nil, "index table could not be read"},
		{"throttled", "pinroll-index", func(e *emulator.Emulator, _ *dynamodb.Client, _ []string) {
			e.InjectFault("BatchGetItem", emulator.Fault{Kind: emulator.Throttle}, -1)
		}, "index table could not be read"},
		{"every item corrupt", "pinroll-index", func(_ *emulator.Emulator, db *dynamodb.Client, arns []string) {
			// Each item's content swapped for its neighbour's (valid, checksummed, another
			// revision), or garbage for the last.
			res, err := index.New(db, "pinroll-index").Get(context.Background(), arns)
			if err != nil || len(res.Found) != len(arns) {
				t.Fatalf("the filled table: %d of %d, %v", len(res.Found), len(arns), err)
			}
			for i, arn := range arns {
				item := map[string]ddbtypes.AttributeValue{index.AttrVersion: &ddbtypes.AttributeValueMemberN{Value: "1"}, index.AttrData: &ddbtypes.AttributeValueMemberB{Value: []byte("garbage")}}
				if i+1 < len(arns) {
					item, _ = (&index.Table{}).Encode(res.Found[arns[i+1]])
				}
				item[index.AttrARN] = &ddbtypes.AttributeValueMemberS{Value: arn}
				if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String("pinroll-index"), Item: item}); err != nil {
					t.Fatal(err)
				}
			}
		}, "index items ignored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, warnings := deployments(t, tc.table, tc.fault)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("deployments (-without index +with):\n%s", d)
			}
			for _, w := range warnings {
				if tc.warnings == "" || !strings.Contains(w, tc.warnings) {
					t.Errorf("warning: %s", w)
				}
			}
			if tc.warnings != "" && len(warnings) == 0 {
				t.Errorf("no warning, want %q", tc.warnings)
			}
		})
	}
}
