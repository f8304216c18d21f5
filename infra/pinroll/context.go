package pinroll

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
)

// Context keys read by PropsFromContext (cdk.json "context", or `cdk … -c key=value`). Every key
// starting with "pinroll:" must be one of these: a typo fails the synth instead of being ignored.
const (
	CtxClusters            = "pinroll:clusters"
	CtxRepositories        = "pinroll:repositories"
	CtxRequireOptIn        = "pinroll:requireOptIn"
	CtxDryRun              = "pinroll:dryRun"
	CtxRegistryAccounts    = "pinroll:registryAccounts"
	CtxPassRoles           = "pinroll:passRoles"
	CtxParameterPrefix     = "pinroll:parameterPrefix"
	CtxNotify              = "pinroll:notify"
	CtxNotificationEmail   = "pinroll:notificationEmail"
	CtxReconcileRate       = "pinroll:reconcileRate"
	CtxReservedConcurrency = "pinroll:reservedConcurrency"
	CtxCodePath            = "pinroll:codePath"
	CtxStackName           = "pinroll:stackName"
)

var contextKeys = []string{CtxClusters, CtxRepositories, CtxRequireOptIn, CtxDryRun, CtxRegistryAccounts,
	CtxPassRoles, CtxParameterPrefix, CtxNotify, CtxNotificationEmail, CtxReconcileRate,
	CtxReservedConcurrency, CtxCodePath, CtxStackName}

// DefaultStackName is the stack's name unless pinroll:stackName says otherwise.
const DefaultStackName = "Pinroll"

// StackConfig is what the app reads from the CDK context.
type StackConfig struct {
	StackName string
	Props     Props
}

// PropsFromContext turns CDK context values into props. Values come typed from cdk.json (lists,
// booleans, numbers) or as strings from `-c` (lists comma-separated); both are accepted.
func PropsFromContext(ctx map[string]any) (StackConfig, error) {
	cfg := StackConfig{StackName: DefaultStackName}
	p := &cfg.Props
	var errs []error
	for k := range ctx {
		if strings.HasPrefix(k, "pinroll:") && !slices.Contains(contextKeys, k) {
			errs = append(errs, fmt.Errorf("unknown context key %q (known: %s)", k, strings.Join(contextKeys, ", ")))
		}
	}
	list := func(k string) []string {
		switch v := ctx[k].(type) {
		case nil:
			return nil
		case string:
			var out []string
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
			return out
		case []any:
			var out []string
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					errs = append(errs, fmt.Errorf("%s: element %v is not a string", k, e))
					continue
				}
				out = append(out, s)
			}
			return out
		default:
			errs = append(errs, fmt.Errorf("%s: want a list of strings or a comma-separated string, got %T", k, v))
			return nil
		}
	}
	str := func(k string) string {
		switch v := ctx[k].(type) {
		case nil:
			return ""
		case string:
			return v
		default:
			errs = append(errs, fmt.Errorf("%s: want a string, got %T", k, v))
			return ""
		}
	}
	boolean := func(k string) bool {
		switch v := ctx[k].(type) {
		case nil:
			return false
		case bool:
			return v
		case string:
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not true or false", k, v))
			}
			return b
		default:
			errs = append(errs, fmt.Errorf("%s: want true or false, got %T", k, v))
			return false
		}
	}

	p.Clusters = list(CtxClusters)
	p.Repositories = list(CtxRepositories)
	p.RequireOptIn = boolean(CtxRequireOptIn)
	p.DryRun = boolean(CtxDryRun)
	p.RegistryAccounts = list(CtxRegistryAccounts)
	p.PassRoles = list(CtxPassRoles)
	p.ParameterPrefix = str(CtxParameterPrefix)
	p.Notify = boolean(CtxNotify)
	p.NotificationEmail = str(CtxNotificationEmail)
	p.CodePath = str(CtxCodePath)
	if name := str(CtxStackName); name != "" {
		cfg.StackName = name
	}

	switch rate := str(CtxReconcileRate); rate {
	case "":
	case "off":
		p.DisableReconcile = true
	default:
		d, err := parseRate(rate)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", CtxReconcileRate, err))
		}
		p.ReconcileRate = d
	}

	switch v := ctx[CtxReservedConcurrency].(type) {
	case nil:
	case float64:
		p.ReservedConcurrency = int(v)
		if float64(p.ReservedConcurrency) != v || v < 1 {
			errs = append(errs, fmt.Errorf("%s: %v is not a whole number ≥ 1", CtxReservedConcurrency, v))
		}
	case string:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s: %q is not a whole number ≥ 1", CtxReservedConcurrency, v))
		}
		p.ReservedConcurrency = n
	default:
		errs = append(errs, fmt.Errorf("%s: want a number, got %T", CtxReservedConcurrency, v))
	}
	return cfg, errors.Join(errs...)
}

var rateRe = regexp.MustCompile(`^([1-9][0-9]*) (minute|minutes|hour|hours|day|days)$`)

// parseRate reads an EventBridge rate ("15 minutes", "1 hour", "2 days").
func parseRate(s string) (awscdk.Duration, error) {
	m := rateRe.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("%q: want \"<n> minutes|hours|days\" (e.g. \"15 minutes\") or \"off\"", s)
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	switch strings.TrimSuffix(m[2], "s") {
	case "minute":
		return awscdk.Duration_Minutes(&n), nil
	case "hour":
		return awscdk.Duration_Hours(&n), nil
	default:
		return awscdk.Duration_Days(&n), nil
	}
}
