package pinroll

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
)

// ARNs are computed here as templates with ${AWS::Partition}, ${AWS::Region} and ${AWS::AccountId}
// placeholders, so that the same string yields the CloudFormation value (tok), the name cdk-nag
// prints in its findings (nagForm), and the expectation the tests read.
const (
	partition = "${AWS::Partition}"
	region    = "${AWS::Region}"
	account   = "${AWS::AccountId}"
)

func arn(service, acct, resource string) string {
	if service == "iam" {
		return "arn:" + partition + ":iam::" + acct + ":" + resource
	}
	return "arn:" + partition + ":" + service + ":" + region + ":" + acct + ":" + resource
}

// tok resolves the placeholders to the stack's pseudo parameters (the stack is environment-agnostic).
func tok(s string) *string {
	return ptr(strings.NewReplacer(
		partition, *awscdk.Aws_PARTITION(),
		region, *awscdk.Aws_REGION(),
		account, *awscdk.Aws_ACCOUNT_ID(),
	).Replace(s))
}

func toks(ss []string) *[]*string {
	out := make([]*string, len(ss))
	for i, s := range ss {
		out[i] = tok(s)
	}
	return &out
}

// nagForm is how cdk-nag names a resource built from pseudo parameters in its findings.
func nagForm(s string) string {
	return strings.NewReplacer(
		partition, "<AWS::Partition>",
		region, "<AWS::Region>",
		account, "<AWS::AccountId>",
	).Replace(s)
}

// scope is what the props allow pinroll to touch, as ARN templates. It is a pure function of the
// props: the IAM statements, the rules and the cdk-nag suppressions are all derived from it.
type scope struct {
	clusters        []string // cluster ARNs (patterns) for the ecs:cluster condition
	services        []string // service ARN patterns: DescribeServices, UpdateService, tagging
	servicePrefixes []string // service ARN prefixes for the deployment rule; nil: every service
	tasks           []string // task ARN patterns: DescribeTasks
	repositories    []string // ECR repository ARNs (patterns): DescribeImages
	roles           []string // role ARNs (patterns): iam:PassRole
	parameters      string   // SSM parameter ARN pattern; "" when off
}

func newScope(p *Props) scope {
	var s scope
	if len(p.Clusters) == 0 {
		s.clusters = []string{arn("ecs", account, "cluster/*")}
		s.services = []string{arn("ecs", account, "service/*")}
		s.tasks = []string{arn("ecs", account, "task/*")}
	}
	for _, c := range p.Clusters {
		base, name := arn("ecs", account, ""), c // base ends in ":"
		if strings.HasPrefix(c, "arn:") {
			base, name, _ = strings.Cut(c, "cluster/")
		}
		s.clusters = append(s.clusters, base+"cluster/"+name)
		s.services = append(s.services, base+"service/"+name+"/*")
		s.servicePrefixes = append(s.servicePrefixes, base+"service/"+name+"/")
		s.tasks = append(s.tasks, base+"task/"+name+"/*")
	}

	accounts := p.RegistryAccounts
	if len(accounts) == 0 {
		accounts = []string{account}
	}
	repos := p.Repositories
	if len(repos) == 0 {
		repos = []string{"*"}
	}
	for _, a := range accounts {
		for _, r := range repos {
			s.repositories = append(s.repositories, arn("ecr", a, "repository/"+r))
		}
	}

	if len(p.PassRoles) == 0 {
		s.roles = []string{arn("iam", account, "role/*")}
	}
	for _, r := range p.PassRoles {
		if strings.HasPrefix(r, "arn:") {
			s.roles = append(s.roles, r)
		} else {
			s.roles = append(s.roles, arn("iam", account, "role/"+r))
		}
	}

	if p.ParameterPrefix != "" {
		s.parameters = arn("ssm", account, "parameter"+p.ParameterPrefix+"/*")
	}
	return s
}

// repositoryFilter is the push rule's repository-name filter; nil: every repository.
func repositoryFilter(repos []string) []any {
	var f []any
	for _, r := range repos {
		if prefix, ok := strings.CutSuffix(r, "*"); ok {
			f = append(f, map[string]any{"prefix": prefix})
		} else {
			f = append(f, r)
		}
	}
	return f
}
