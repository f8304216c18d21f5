package pinroll

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// The function's EMF metrics the dashboard reads (lambda/internal/metrics): dimension sets
// [Outcome], [] and [Kind, Outcome] on each event's line, [Account] on its per-account lines.
const (
	MetricEvents                 = "Events"
	MetricServicesDeployed       = "ServicesDeployed"
	MetricVerificationMismatches = "VerificationMismatches"
	MetricPushToDeploySeconds    = "PushToDeploySeconds"
	MetricMissingImages          = "MissingImages"
)

// The dashboard's widget titles (README "Deploy" says what each means for the on-call engineer).
const (
	WidgetAlarms        = "Alarms"
	WidgetEvents        = "Events by outcome"
	WidgetDeployed      = "Services deployed"
	WidgetPushToDeploy  = "Push to deploy (seconds)"
	WidgetVerification  = "Verification: mismatches and rollbacks"
	WidgetFailures      = "Permanent failures and missing images"
	WidgetQueues        = "Dead letters and failed invocations"
	WidgetContinuations = "Continuations: depth and age"
	WidgetReconcile     = "Reconcile repairs"
	WidgetAccountPrefix = "Per account: "
)

// dashboardPeriod is every widget's period: the alarms' period, so a spike reads the same in both.
func dashboardPeriod() awscdk.Duration { return awscdk.Duration_Minutes(jsii.Number(5)) }

// pinrollMetric is one of the function's EMF metrics with the given dimensions and statistic.
func pinrollMetric(name, stat, label string, dims map[string]*string) awscloudwatch.Metric {
	props := &awscloudwatch.MetricProps{
		Namespace: jsii.String(MetricNamespace), MetricName: &name,
		Statistic: &stat, Period: dashboardPeriod(), Label: &label,
	}
	if len(dims) > 0 {
		props.DimensionsMap = &dims
	}
	return awscloudwatch.NewMetric(props)
}

func outcome(o string) map[string]*string { return map[string]*string{"Outcome": jsii.String(o)} }

// newDashboard is the on-call picture of the rollout: the alarms, what arrives and how it ends,
// how fast a push reaches the services, what verification found, the queues (the continuations
// beside the dead letters), what failed for good, and what reconciliation repaired; with target
// accounts, the same per account.
func newDashboard(c constructs.Construct, p *Pinroll, props *Props) awscloudwatch.Dashboard {
	graph := func(title string, stacked bool, metrics ...awscloudwatch.IMetric) awscloudwatch.IWidget {
		return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title: jsii.String(title), Width: jsii.Number(12), Height: jsii.Number(6),
			Left: &metrics, Stacked: jsii.Bool(stacked), Period: dashboardPeriod(),
			LeftYAxis: &awscloudwatch.YAxisProps{Min: jsii.Number(0), ShowUnits: jsii.Bool(false)},
		})
	}
	var alarms []interfacesawscloudwatch.IAlarmRef
	for _, a := range p.Alarms {
		alarms = append(alarms, a)
	}
	max := &awscloudwatch.MetricOptions{Period: dashboardPeriod(), Statistic: jsii.String("Maximum")}
	dlq := p.DeadLetterQueue.MetricApproximateNumberOfMessagesVisible(max)
	failed := p.FailedInvocations.MetricApproximateNumberOfMessagesVisible(max)
	rows := [][]awscloudwatch.IWidget{
		{awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
			Title: jsii.String(WidgetAlarms), Alarms: &alarms, Width: jsii.Number(24), Height: jsii.Number(4),
		})},
		{
			// SEARCH shows every outcome the function emits, present and future, without a list here.
			graph(WidgetEvents, true, awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
				Expression: jsii.String(`SEARCH('{` + MetricNamespace + `,Outcome} MetricName="` + MetricEvents + `"', 'Sum', 300)`),
				Label:      jsii.String(""), Period: dashboardPeriod(),
			})),
			graph(WidgetDeployed, false,
				pinrollMetric(MetricServicesDeployed, "Sum", "all", nil),
				pinrollMetric(MetricServicesDeployed, "Sum", "by a push", map[string]*string{"Kind": jsii.String("push"), "Outcome": jsii.String("deployed")}),
				pinrollMetric(MetricServicesDeployed, "Sum", "by reconciliation", map[string]*string{"Kind": jsii.String("reconcile"), "Outcome": jsii.String("deployed")})),
		},
		{
			graph(WidgetPushToDeploy, false,
				pinrollMetric(MetricPushToDeploySeconds, "p50", "p50", nil),
				pinrollMetric(MetricPushToDeploySeconds, "p90", "p90", nil),
				pinrollMetric(MetricPushToDeploySeconds, "Maximum", "max", nil)),
			graph(WidgetVerification, false,
				pinrollMetric(MetricVerificationMismatches, "Sum", "containers not running the pinned digest", nil),
				pinrollMetric(MetricEvents, "Sum", "mismatch", outcome("mismatch")),
				pinrollMetric(MetricEvents, "Sum", "rolled back", outcome("rolled_back")),
				pinrollMetric(MetricEvents, "Sum", "unverified", outcome("unverified"))),
		},
		{graph(WidgetQueues, false, dlq, failed), continuations(p)},
		{
			graph(WidgetFailures, false,
				pinrollMetric(MetricServicesFailed, "Sum", "services failed for good", nil),
				pinrollMetric(MetricMissingImages, "Sum", "pinned digests missing in ECR", nil),
				pinrollMetric(MetricEvents, "Sum", "events failed (retried)", outcome("failed"))),
			graph(WidgetReconcile, false,
				pinrollMetric(MetricServicesDeployed, "Sum", "services repaired", map[string]*string{"Kind": jsii.String("reconcile"), "Outcome": jsii.String("deployed")}),
				// Every reconcile run, by outcome: a run that repaired something ends "deployed".
				awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
					Expression: jsii.String(`SEARCH('{` + MetricNamespace + `,Kind,Outcome} MetricName="` + MetricEvents + `" Kind="reconcile"', 'Sum', 300)`),
					Label:      jsii.String(""), Period: dashboardPeriod(),
				})),
		},
	}
	if targets := props.targetAccounts(); len(targets) > 0 {
		// The per-account lines (dimension Account): the hub's own account, then each target's.
		accounts := append([]string{account}, targets...)
		perAccount := func(name, what string) awscloudwatch.IWidget {
			var ms []awscloudwatch.IMetric
			for _, a := range accounts {
				label := a
				if a == account {
					label = "this account"
				}
				ms = append(ms, pinrollMetric(name, "Sum", label, map[string]*string{"Account": tok(a)}))
			}
			return graph(WidgetAccountPrefix+what, false, ms...)
		}
		rows = append(rows,
			[]awscloudwatch.IWidget{perAccount(MetricServicesDeployed, "services deployed"), perAccount(MetricVerificationMismatches, "verification mismatches")},
			[]awscloudwatch.IWidget{perAccount(MetricServicesFailed, "permanent failures"), perAccount(MetricMissingImages, "missing images")},
		)
	}
	var widgets []*[]awscloudwatch.IWidget
	for _, r := range rows {
		widgets = append(widgets, &r)
	}
	return awscloudwatch.NewDashboard(c, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		// Dashboards are global to an account: the stack's name and region keep the hubs of one
		// account apart.
		DashboardName:   jsii.String(*awscdk.Aws_STACK_NAME() + "-" + *awscdk.Aws_REGION()),
		DefaultInterval: awscdk.Duration_Days(jsii.Number(1)),
		Widgets:         &widgets,
	})
}

// continuations is the continuation queue beside the other queues: how many continuations wait
// and run (left), how long the oldest has waited (right, in seconds: the ContinuationsStuck
// alarm's metric), and its dead letters.
func continuations(p *Pinroll) awscloudwatch.IWidget {
	max := func(label string) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Period: dashboardPeriod(), Statistic: jsii.String("Maximum"), Label: jsii.String(label)}
	}
	q, dlq := p.ContinueQueue, p.ContinueDeadLetterQueue
	return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
		Title: jsii.String(WidgetContinuations), Width: jsii.Number(12), Height: jsii.Number(6), Period: dashboardPeriod(),
		Left: &[]awscloudwatch.IMetric{
			q.MetricApproximateNumberOfMessagesVisible(max("waiting")),
			q.MetricApproximateNumberOfMessagesNotVisible(max("running or retrying")),
			dlq.MetricApproximateNumberOfMessagesVisible(max("dead letters")),
		},
		Right:      &[]awscloudwatch.IMetric{q.MetricApproximateAgeOfOldestMessage(max("oldest (seconds)"))},
		LeftYAxis:  &awscloudwatch.YAxisProps{Min: jsii.Number(0), ShowUnits: jsii.Bool(false)},
		RightYAxis: &awscloudwatch.YAxisProps{Min: jsii.Number(0), ShowUnits: jsii.Bool(false)},
	})
}
