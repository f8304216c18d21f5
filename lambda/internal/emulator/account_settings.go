package emulator

import (
	"slices"
	"strings"
)

// ECS account settings: the emulator serves ListAccountSettings with ECS's defaults and no
// Put; nothing has been set explicitly, so only effectiveSettings lists anything, as in a new
// account.

type accountSetting struct {
	Name         string `json:"name"`
	Value        string `json:"value"`
	PrincipalArn string `json:"principalArn"`
	Type         string `json:"type"`
}

// defaultAccountSettings are ECS's defaults for a new account, in the order of the API
// reference's SettingName list.
var defaultAccountSettings = [][2]string{
	{"serviceLongArnFormat", "enabled"},
	{"taskLongArnFormat", "enabled"},
	{"containerInstanceLongArnFormat", "enabled"},
	{"awsvpcTrunking", "disabled"},
	{"containerInsights", "disabled"},
	{"fargateFIPSMode", "disabled"},
	{"tagResourceAuthorization", "on"},
	{"fargateTaskRetirementWaitPeriod", "7"},
	{"guardDutyActivate", "off"},
	{"defaultLogDriverMode", "non-blocking"},
}

const (
	defaultAccountSettingsPage = 10
	maxAccountSettingsPage     = 10
)

func (e *Emulator) opListAccountSettings(rc *request) (any, error) {
	var in struct {
		listInput
		Name              string `json:"name"`
		Value             string `json:"value"`
		PrincipalArn      string `json:"principalArn"`
		EffectiveSettings bool   `json:"effectiveSettings"`
	}
	if err := rc.decode(&in); err != nil {
		return nil, err
	}
	size := defaultAccountSettingsPage
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxAccountSettingsPage {
			return nil, invalidParameter("maxResults must be between 1 and %d, got %d.", maxAccountSettingsPage, *in.MaxResults)
		}
		size = *in.MaxResults
	}
	if in.Name != "" && !slices.ContainsFunc(defaultAccountSettings, func(s [2]string) bool { return s[0] == in.Name }) {
		return nil, invalidParameter("name %q is not an account setting name.", in.Name)
	}
	if in.Value != "" && in.Name == "" {
		return nil, invalidParameter("value can only be given with name.")
	}
	principal := in.PrincipalArn
	if principal == "" {
		principal = "arn:aws:iam::" + rc.account + ":root"
	} else if !strings.HasPrefix(principal, "arn:aws:iam::") {
		return nil, invalidParameter("principalArn %q is not an IAM user, role or root ARN.", principal)
	}
	settings := []accountSetting{}
	if in.EffectiveSettings {
		for _, s := range defaultAccountSettings {
			if (in.Name == "" || s[0] == in.Name) && (in.Value == "" || s[1] == in.Value) {
				settings = append(settings, accountSetting{Name: s[0], Value: s[1], PrincipalArn: principal, Type: "aws_managed"})
			}
		}
	}
	page, next, err := paginate(settings, in.NextToken, size)
	if err != nil {
		return nil, err
	}
	return pageOut("settings", page, next), nil
}
