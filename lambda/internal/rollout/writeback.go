package rollout

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// SSM is the part of the SSM API write-back uses.
type SSM interface {
	GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	PutParameter(context.Context, *ssm.PutParameterInput, ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
}

var _ SSM = (*ssm.Client)(nil)

// ParameterName is where write-back keeps the pinned image of repository:tag.
func ParameterName(prefix, repository, tag string) string {
	return prefix + "/" + repository + "/" + tag
}

// writeBack records the pinned image in SSM Parameter Store (PINROLL_PARAMETER_PREFIX), so
// infrastructure code can deploy the current digest instead of resetting services to a stale
// image. It writes only when the value changes: a redelivery adds no parameter version.
func (e *Engine) writeBack(ctx context.Context, repository, tag, image string) error {
	if e.Config.ParameterPrefix == "" || e.Config.DryRun {
		return nil
	}
	if e.SSM == nil {
		return errors.New("write-back: PINROLL_PARAMETER_PREFIX is set but no SSM client was configured")
	}
	name := ParameterName(e.Config.ParameterPrefix, repository, tag)
	got, err := e.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var notFound *ssmtypes.ParameterNotFound
	switch {
	case err == nil && aws.ToString(got.Parameter.Value) == image:
		return nil
	case err != nil && !errors.As(err, &notFound):
		return fmt.Errorf("write-back: read %s: %w", name, err)
	}
	_, err = e.SSM.PutParameter(ctx, &ssm.PutParameterInput{
		Name:        aws.String(name),
		Value:       aws.String(image),
		Type:        ssmtypes.ParameterTypeString,
		Overwrite:   aws.Bool(true),
		Description: aws.String("the image pinroll deployed for " + repository + ":" + tag),
	})
	if err != nil {
		return fmt.Errorf("write-back: put %s: %w", name, err)
	}
	return nil
}
