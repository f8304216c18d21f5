package discover_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/google/go-cmp/cmp"

	"github.com/pinroll/pinroll/lambda/internal/awstest"
	"github.com/pinroll/pinroll/lambda/internal/discover"
	"github.com/pinroll/pinroll/lambda/internal/emulator"
	"github.com/pinroll/pinroll/lambda/internal/index"
)

var exportAll = cmp.Exporter(func(reflect.Type) bool { return true })

// indexed is a world of 130 services in two clusters running 120 task definitions (more than
// one BatchGetItem), with an empty index table.
func indexed(t *testing.T) (*emulator.Emulator, aws.Config, *dynamodb.Client) {
	t.Helper()
	w, emu, cfg := emulated(t)
	for c := range 2 {
		w.Cluster(fmt.Sprintf("c%d", c))
	}
	tds := map[int]string{}
	for i := range 130 {
		if tds[i%120] == "" {
			tds[i%120] = w.TaskDefinition(fmt.Sprintf("td-%03d", i%120), awstest.Container("app", fmt.Sprintf("%s:%d", w.Image("lib", "latest"), i%120)))
		}
		w.Service(fmt.Sprintf("c%d", i%2), fmt.Sprintf("svc-%03d", i), tds[i%120])
	}
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	if _, err := index.Create(context.Background(), db, "pinroll-index"); err != nil {
		t.Fatal(err)
	}
	return emu, cfg, db
}

// logged is a logger and the WARN lines it received.
func logged() (*slog.Logger, func() []string) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return log, func() []string {
		var lines []string
		for l := range strings.Lines(buf.String()) {
			lines = append(lines, strings.TrimSpace(l))
		}
		return lines
	}
}

// discoverWith runs one Discover in a new process (a new Discoverer, empty cache) with the
// index table name ("" for none) and returns the fleet and the calls it made.
func discoverWith(t *testing.T, emu *emulator.Emulator, cfg aws.Config, db *dynamodb.Client, table string, log *slog.Logger) (*discover.Fleet, map[string]int) {
	t.Helper()
	d := discover.New(ecs.NewFromConfig(cfg))
	d.Pace = nil
	d.Log = log
	if table != "" {
		tbl := index.New(db, table)
		tbl.Attempts = 2
		d.Index = tbl
	}
	emu.ResetCalls()
	f, err := d.Discover(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return f, emu.Calls()
}

func sameFleet(t *testing.T, what string, want, got *discover.Fleet) {
	t.Helper()
	if d := cmp.Diff(want.Services, got.Services); d != "" {
		t.Errorf("%s: services (-without index +with):\n%s", what, d)
	}
	if d := cmp.Diff(want.TaskDefinitions, got.TaskDefinitions, exportAll); d != "" {
		t.Errorf("%s: task definitions (-without index +with):\n%s", what, d)
	}
}

func TestIndexColdStartDescribesOnlyWhatItNeverSaw(t *testing.T) {
	emu, cfg, db := indexed(t)
	plain, plainCalls := discoverWith(t, emu, cfg, db, "", nil)
	if plainCalls["DescribeTaskDefinition"] != 120 {
		t.Fatalf("without the index: %d DescribeTaskDefinition, want 120", plainCalls["DescribeTaskDefinition"])
	}
	log, warnings := logged()
	first, calls := discoverWith(t, emu, cfg, db, "pinroll-index", log)
	sameFleet(t, "first run, empty table", plain, first)
	want := map[string]int{"BatchGetItem": 2, "DescribeTaskDefinition": 120, "BatchWriteItem": 5}
	for op, n := range want {
		if calls[op] != n {
			t.Errorf("first run: %d %s, want %d (all calls %v)", calls[op], op, n, calls)
		}
	}
	second, calls := discoverWith(t, emu, cfg, db, "pinroll-index", log)
	sameFleet(t, "second process, table warm", plain, second)
	want = map[string]int{"BatchGetItem": 2, "DescribeTaskDefinition": 0, "BatchWriteItem": 0}
	for op, n := range want {
		if calls[op] != n {
			t.Errorf("new process, warm table: %d %s, want %d (all calls %v)", calls[op], op, n, calls)
		}
	}
	if w := warnings(); len(w) != 0 {
		t.Errorf("warnings with a healthy table: %q", w)
	}
}

func TestIndexFaultsFallBackToECS(t *testing.T) {
	for _, tc := range []struct {
		name  string
		table string
		fault func(*emulator.Emulator)
	}{
		{"table missing", "no-such-table", func(*emulator.Emulator) {}},
		{"reads throttled", "pinroll-index", func(e *emulator.Emulator) {
			e.InjectFault("BatchGetItem", emulator.Fault{Kind: emulator.Throttle}, -1)
		}},
		{"writes throttled", "pinroll-index", func(e *emulator.Emulator) {
			e.InjectFault("BatchWriteItem", emulator.Fault{Kind: emulator.Throttle}, -1)
		}},
		{"server errors", "pinroll-index", func(e *emulator.Emulator) { e.InjectFault("", emulator.Fault{Kind: emulator.ServerError}, -1) }},
		{"busy beyond the retries", "pinroll-index", func(e *emulator.Emulator) { e.SetDynamoDBUnprocessed(1000) }},
		{"hangs", "pinroll-index", func(e *emulator.Emulator) {
			e.InjectFault("BatchGetItem", emulator.Fault{Kind: emulator.Timeout, Delay: 30 * time.Second}, -1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu, cfg, db := indexed(t)
			plain, _ := discoverWith(t, emu, cfg, db, "", nil)
			tc.fault(emu)
			if tc.name == "server errors" { // ECS must still answer: fault only DynamoDB
				emu.ClearFaults()
				emu.InjectFault("BatchGetItem", emulator.Fault{Kind: emulator.ServerError}, -1)
				emu.InjectFault("BatchWriteItem", emulator.Fault{Kind: emulator.ServerError}, -1)
			}
			defer func(d time.Duration) { discover.IndexTimeout = d }(discover.IndexTimeout)
			discover.IndexTimeout = 300 * time.Millisecond
			log, warnings := logged()
			began := time.Now()
			got, calls := discoverWith(t, emu, cfg, db, tc.table, log)
			if took := time.Since(began); took > 10*time.Second {
				t.Errorf("discovery took %v with the table %s", took, tc.name)
			}
			sameFleet(t, tc.name, plain, got)
			if calls["DescribeTaskDefinition"] != 120 {
				t.Errorf("%d DescribeTaskDefinition, want 120 (all calls %v)", calls["DescribeTaskDefinition"], calls)
			}
			w := warnings()
			if tc.name == "busy beyond the retries" {
				if len(w) != 1 || !strings.Contains(w[0], "could not be written") {
					t.Errorf("warnings: %q; want one, the unwritten items", w)
				}
				return
			}
			if len(w) != 1 || !strings.Contains(w[0], "level=WARN") || !strings.Contains(w[0], "index table could not be") {
				t.Errorf("warnings: %q; want exactly one", w)
			}
		})
	}
}

func TestIndexCorruptItemIsIgnoredAndRewritten(t *testing.T) {
	emu, cfg, db := indexed(t)
	plain, _ := discoverWith(t, emu, cfg, db, "pinroll-index", nil) // fills the table
	ctx := context.Background()
	victim := plain.Services[0].TaskDefinition
	other := plain.Services[1].TaskDefinition
	good, err := index.New(db, "pinroll-index").Get(ctx, []string{other})
	if err != nil {
		t.Fatal(err)
	}
	// Under the victim's key: garbage, and then another revision's valid content.
	for _, item := range []map[string]ddbtypes.AttributeValue{
		{index.AttrARN: &ddbtypes.AttributeValueMemberS{Value: victim}, index.AttrVersion: &ddbtypes.AttributeValueMemberN{Value: "1"}, index.AttrData: &ddbtypes.AttributeValueMemberB{Value: []byte("garbage")}},
		func() map[string]ddbtypes.AttributeValue {
			item, _ := (&index.Table{}).Encode(good.Found[other])
			item[index.AttrARN] = &ddbtypes.AttributeValueMemberS{Value: victim}
			return item
		}(),
	} {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("pinroll-index"), Item: item}); err != nil {
			t.Fatal(err)
		}
		log, warnings := logged()
		got, calls := discoverWith(t, emu, cfg, db, "pinroll-index", log)
		sameFleet(t, "corrupt item", plain, got)
		if calls["DescribeTaskDefinition"] != 1 || calls["BatchWriteItem"] != 1 {
			t.Errorf("corrupt item: %d DescribeTaskDefinition, %d BatchWriteItem; want it described and rewritten (%v)", calls["DescribeTaskDefinition"], calls["BatchWriteItem"], calls)
		}
		if w := warnings(); len(w) != 1 || !strings.Contains(w[0], "index items ignored") || !strings.Contains(w[0], victim) {
			t.Errorf("warnings: %q", w)
		}
		_, calls = discoverWith(t, emu, cfg, db, "pinroll-index", nil)
		if calls["DescribeTaskDefinition"] != 0 {
			t.Errorf("after the rewrite: %d DescribeTaskDefinition, want 0", calls["DescribeTaskDefinition"])
		}
	}
}
