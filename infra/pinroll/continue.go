package pinroll

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// The continuation queue carries the rest of an event's work when it cannot finish inside one
// invocation (PINROLL_CONTINUE_QUEUE_URL; README "The continuation queue"). The function sends it, and the
// same function consumes it through an event source mapping.
const (
	// AWS's guidance for a queue a Lambda event source mapping reads: a visibility timeout of at
	// least six times the function's timeout, so that Lambda can retry a batch whose invocation
	// was throttled before the message reappears ("Creating and configuring an Amazon SQS event
	// source mapping", Lambda Developer Guide; the SQS Developer Guide says the same).
	continueVisibilityPerTimeout = 6
	// Lambda's guidance for the source queue's redrive policy: maxReceiveCount of at least 5,
	// "a few chances to retry" before the dead-letter queue (same page). Each receive that fails
	// waits out the visibility timeout, so 5 receives are 5 × 6 × the timeout (2.5 hours with the
	// default 5 minutes): long enough to ride out a throttled ECS or a deployment of the function,
	// short enough that a continuation that cannot succeed reaches an operator the same day.
	continueMaxReceives = 5
	// A continuation is consumed within seconds; the source keeps a message 4 days (SQS's
	// default) only for when the mapping is disabled or the function broken for a long weekend.
	// The dead-letter queue keeps 14 (queueRetentionDays, SQS's maximum): a FIFO queue's enqueue
	// timestamp restarts when a message moves to its dead-letter queue (SQS Developer Guide,
	// "dead-letter queue retention"), so each dead letter gets the full 14 days from its failure.
	continueRetentionDays = 4
	// The event source mapping's maximum concurrency: 2 is the least Lambda accepts
	// (ScalingConfig.MaximumConcurrency, 2–1000). A FIFO queue's mapping never runs more
	// invocations than there are message groups with messages, and one group is served in order,
	// one batch at a time, so the function's message groups decide the real parallelism.
	continueMaxConcurrency = 2
	// An event source mapping delivers one continuation per invocation: each carries a whole
	// invocation's worth of work, and a failure returns exactly that message (partial batch
	// responses report it by id).
	continueBatchSize = 1
	// The stuck-chain alarm fires when the oldest continuation has waited twice the visibility
	// timeout: it has then failed (or been throttled past its retries) at least twice, which a
	// healthy chain never does, and it is still three receives away from the dead-letter queue.
	continueStuckVisibilities = 2
)

// continueVisibility is the continuation queue's visibility timeout for a function of the given
// timeout (AWS's six times; see continueVisibilityPerTimeout).
func continueVisibility(timeout awscdk.Duration) awscdk.Duration {
	return awscdk.Duration_Seconds(jsii.Number(*timeout.ToSeconds(nil) * continueVisibilityPerTimeout))
}

// newContinueQueues creates the continuation queue and its dead-letter queue.
//
// Both are FIFO: the function sets MessageGroupId and MessageDeduplicationId itself, so content-
// based deduplication is off (two continuations with equal bodies are still two steps), and a
// FIFO queue's dead-letter queue must be FIFO too.
//
// Both are encrypted with SSE-SQS, not with the stack's customer-managed key: Control Tower's
// CT.SQS.PR.2 and cdk-nag's AwsSolutions-SQS2 accept either, and with SQS-owned keys neither the
// function (SendMessage) nor its event source mapping (ReceiveMessage, which decrypts) needs a
// kms: permission or a key-policy statement, so the role stays exactly the four SQS actions on the
// queue. A customer-managed key would add kms:GenerateDataKey and kms:Decrypt to the role for a
// queue whose messages are work items of pinroll's own (ARNs, digests, event ids), no secrets.
//
// The dead-letter queue carries a redrive allow policy (CT.SQS.PR.1), allowAll like the other
// dead-letter queues (newDeadLetterQueue): byQueue would have to name the continuation queue,
// whose ARN references this queue's through its redrive policy — a cycle CloudFormation refuses
// unless the queue gets a fixed name, and a fixed name blocks every replacement of the queue.
func newContinueQueues(c constructs.Construct, timeout awscdk.Duration) (queue, deadLetters awssqs.Queue) {
	deadLetters = awssqs.NewQueue(c, jsii.String("ContinueDeadLetterQueue"), &awssqs.QueueProps{
		Fifo:                      jsii.Bool(true),
		ContentBasedDeduplication: jsii.Bool(false),
		Encryption:                awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:                jsii.Bool(true),
		RetentionPeriod:           awscdk.Duration_Days(jsii.Number(queueRetentionDays)),
		RedriveAllowPolicy:        &awssqs.RedriveAllowPolicy{RedrivePermission: awssqs.RedrivePermission_ALLOW_ALL},
	})
	queue = awssqs.NewQueue(c, jsii.String("ContinueQueue"), &awssqs.QueueProps{
		Fifo:                      jsii.Bool(true),
		ContentBasedDeduplication: jsii.Bool(false),
		Encryption:                awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:                jsii.Bool(true),
		RetentionPeriod:           awscdk.Duration_Days(jsii.Number(continueRetentionDays)),
		VisibilityTimeout:         continueVisibility(timeout),
		DeadLetterQueue:           &awssqs.DeadLetterQueue{Queue: deadLetters, MaxReceiveCount: jsii.Number(continueMaxReceives)},
	})
	return queue, deadLetters
}

// newContinueMapping is the function's event source mapping on the continuation queue: one
// message a batch, partial batch responses (the function reports a failed continuation by its
// message id instead of failing the invocation), the least maximum concurrency Lambda allows.
// The mapping grants nothing itself (unlike awslambdaeventsources.SqsEventSource, whose grant adds
// sqs:GetQueueUrl and sqs:ChangeMessageVisibility): continueStatements holds exactly what it needs.
func newContinueMapping(c constructs.Construct, fn awslambda.IFunction, queue awssqs.IQueue) awslambda.EventSourceMapping {
	return awslambda.NewEventSourceMapping(c, jsii.String("ContinueMapping"), &awslambda.EventSourceMappingProps{
		Target:                  fn,
		EventSourceArn:          queue.QueueArn(),
		BatchSize:               jsii.Number(continueBatchSize),
		ReportBatchItemFailures: jsii.Bool(true),
		MaxConcurrency:          jsii.Number(continueMaxConcurrency),
		Enabled:                 jsii.Bool(true),
	})
}

// continueStatements: the function sends continuations (SendMessage only: it reads the queue's
// URL from its environment, so no GetQueueUrl), and its event source mapping, which acts with the
// function's role, reads and deletes them. The mapping's three actions are the ones the SQS
// Developer Guide lists for a Lambda execution role ("Configuring an Amazon SQS queue to trigger
// an AWS Lambda function": DeleteMessage, GetQueueAttributes, ReceiveMessage; the
// AWSLambdaSQSQueueExecutionRole managed policy holds the same). No kms: action: SSE-SQS.
func continueStatements(queue awssqs.IQueue) []awsiam.PolicyStatement {
	return []awsiam.PolicyStatement{
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("SendContinuations"),
			Actions:   jsii.Strings("sqs:SendMessage"),
			Resources: &[]*string{queue.QueueArn()},
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("ConsumeContinuations"),
			Actions:   jsii.Strings("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"),
			Resources: &[]*string{queue.QueueArn()},
		}),
	}
}
