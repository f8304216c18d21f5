package pinroll

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// GIVEN context as cdk.json gives it (typed) or as `-c` gives it (strings), THEN the same props.
func TestPropsFromContext(t *testing.T) {
	typed := map[string]any{
		CtxClusters: []any{"prod", "staging"}, CtxRepositories: []any{"app", "team-a/*"},
		CtxRequireOptIn: true, CtxDryRun: false, CtxRegistryAccounts: []any{"111122223333"},
		CtxPassRoles: []any{"app-*"}, CtxParameterPrefix: "/pinroll", CtxNotify: true,
		CtxNotificationEmail: "ops@example.com", CtxReconcileRate: "1 hour", CtxReservedConcurrency: 2.0,
		CtxStackName: "PinrollProd", "@aws-cdk/core:other-flag": true,
	}
	flags := map[string]any{
		CtxClusters: "prod, staging", CtxRepositories: "app,team-a/*",
		CtxRequireOptIn: "true", CtxDryRun: "false", CtxRegistryAccounts: "111122223333",
		CtxPassRoles: "app-*", CtxParameterPrefix: "/pinroll", CtxNotify: "true",
		CtxNotificationEmail: "ops@example.com", CtxReconcileRate: "1 hour", CtxReservedConcurrency: "2",
		CtxStackName: "PinrollProd",
	}
	for name, ctx := range map[string]map[string]any{"cdk.json": typed, "-c": flags} {
		cfg, err := PropsFromContext(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := *cfg.Props.ReconcileRate.ToMinutes(nil); got != 60 {
			t.Errorf("%s: reconcile rate %v minutes, want 60", name, got)
		}
		cfg.Props.ReconcileRate = nil
		want := StackConfig{StackName: "PinrollProd", Props: Props{
			Clusters: []string{"prod", "staging"}, Repositories: []string{"app", "team-a/*"}, RequireOptIn: true,
			RegistryAccounts: []string{"111122223333"}, PassRoles: []string{"app-*"}, ParameterPrefix: "/pinroll",
			Notify: true, NotificationEmail: "ops@example.com", ReservedConcurrency: 2,
		}}
		if diff := cmp.Diff(want, cfg); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}

	cfg, err := PropsFromContext(map[string]any{CtxReconcileRate: "off"})
	if err != nil || !cfg.Props.DisableReconcile || cfg.StackName != DefaultStackName {
		t.Errorf("off: %+v %v", cfg, err)
	}

	_, err = PropsFromContext(map[string]any{
		"pinroll:cluster": "prod", CtxReconcileRate: "every 5 minutes", CtxReservedConcurrency: 0.5, CtxDryRun: "yes please",
	})
	for _, want := range []string{`unknown context key "pinroll:cluster"`, CtxReconcileRate, CtxReservedConcurrency, CtxDryRun} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

// GIVEN bad props, THEN Validate names every problem at once.
func TestValidate(t *testing.T) {
	p := Props{
		Clusters: []string{"prod", "no spaces"}, Repositories: []string{"App"}, RegistryAccounts: []string{"123"},
		PassRoles: []string{"*"}, ParameterPrefix: "pinroll/", ReservedConcurrency: -1, CodePath: t.TempDir(),
	}
	err := p.Validate()
	for _, want := range []string{`"no spaces"`, `"App"`, `"123"`, `PassRoles: "*"`, "ParameterPrefix", "ReservedConcurrency", "bootstrap is missing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}
