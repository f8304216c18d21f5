// Package contract names what pinroll shares with the world outside its code: the function's
// environment variables, the tags owners set on services and pinroll sets on revisions, and the
// EventBridge sources and detail-types it reacts to. The function (config, trigger, plan, apply)
// and the CDK app (infra/) both import it, so the two can never drift apart. It is not internal
// on purpose: infra/ is outside lambda/ and may import only what is not.
//
// Changing a value here changes a contract operators and scripts rely on; change README.md and
// the tests with it.
package contract

// Function configuration: environment variables. An unknown PINROLL_* variable is a start-up error.
const (
	EnvClusters         = "PINROLL_CLUSTERS"
	EnvDryRun           = "PINROLL_DRY_RUN"
	EnvRequireOptIn     = "PINROLL_REQUIRE_OPT_IN"
	EnvRegistryAccounts = "PINROLL_REGISTRY_ACCOUNTS"
	EnvNotifyTopicARN   = "PINROLL_NOTIFY_TOPIC_ARN"
	EnvParameterPrefix  = "PINROLL_PARAMETER_PREFIX"
	EnvTargetRoles      = "PINROLL_TARGET_ROLES"
	EnvIndexTable       = "PINROLL_INDEX_TABLE"
	// EnvContinueQueue is the URL of the SQS FIFO queue that carries the rest of an event's work
	// when it cannot finish inside one invocation; the function consumes it through an event
	// source mapping.
	EnvContinueQueue = "PINROLL_CONTINUE_QUEUE_URL"
)

// The Go runtime's collector setting the CDK app gives the function, and the bench its binary.
// Initialising the AWS SDK's service packages allocates about 5 MiB before main, past the first
// goal of Go's default (4 MiB at GOGC=100), so a cold start ran one collection before its first
// event — a third of the time pinroll took beyond an SDK hello world. At 200 the first goal is
// 8 MiB and none runs; later the heap may grow to 3× what is live between collections instead of
// 2×, which the function's 256 MB holds (planning 10,000 services peaks under 30 MiB).
const (
	EnvGOGC = "GOGC"
	GOGC    = "200"
)

// Service tags, set by the owners of ECS services.
const (
	TagEnabled  = "pinroll:enabled"  // "false" excludes the service; "true" opts it in when opt-in is required
	TagPolicy   = "pinroll:policy"   // track (default) | semver | semver:<constraint>
	TagPaused   = "pinroll:paused"   // any value: no automatic deploys until removed
	TagApproval = "pinroll:approval" // "required": every automatic deploy waits for `pinroll approve`
	TagWave     = "pinroll:wave"     // <n>, 0 by default: deployed after the lower waves are verified
)

// Service tags pinroll sets.
const (
	// TagHeld is the revision (family:revision) registered for a service that waits for
	// approval: `pinroll approve` moves the service to it, `pinroll reject` drops it.
	TagHeld = "pinroll:held"
	// TagReleased is the revision (family:revision) a staged rollout — a push whose services
	// span several pinroll:wave values — deployed to the service. While the service runs it,
	// its deployment says how the wave is doing; once it runs anything else (ECS rolled it
	// back, someone deployed over it), the rollout of that digest is halted at its wave.
	TagReleased = "pinroll:released"
)

// Audit tags on every task-definition revision pinroll registers.
const (
	TagTag      = "pinroll:tag"      // the tag the container tracks
	TagDigest   = "pinroll:digest"   // the digest it is pinned to
	TagEvent    = "pinroll:event"    // the id of the event that caused the registration
	TagPrevious = "pinroll:previous" // the ARN of the revision it replaced
)

// EventBridge sources and detail-types pinroll handles.
const (
	SourceECR             = "aws.ecr"
	DetailTypeECRImage    = "ECR Image Action"
	DetailTypeReplication = "ECR Replication Action"
	SourceECS             = "aws.ecs"
	DetailTypeDeployment  = "ECS Deployment State Change"
	SourceEvents          = "aws.events"
	DetailTypeScheduled   = "Scheduled Event"
)
