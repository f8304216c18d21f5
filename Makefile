# pinroll — every task a newcomer can run. `make help` lists them.
SHELL := /bin/bash
export CDK_DISABLE_VERSION_CHECK := 1

# Node: the CDK CLI and jsii need Node 22+. Where the machine's Node is older, `npm ci` also installs
# package.json's optional "node" (a pinned Node 22 from npm) and node_modules/.bin goes first on PATH
# for npx cdk, jsii (the infra tests spawn `node`) and npm's own scripts; elsewhere it is left out.
HOST_NODE_MAJOR := $(shell PATH=$$(tr : '\n' <<<"$$PATH" | grep -vxF '$(CURDIR)/node_modules/.bin' | paste -sd:); node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
ifeq ($(shell test "$(HOST_NODE_MAJOR)" -lt 22 && echo old),old)
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
NPM_OMIT :=
else
NPM_OMIT := --omit=optional
endif
# Python test tools (moto_server, cfn-lint, aws): the installed ones; if any is missing, a venv
# built from requirements-dev.txt, first on PATH.
PY_TOOLS := moto_server cfn-lint aws
ifneq ($(strip $(foreach t,$(PY_TOOLS),$(if $(shell command -v $(t) 2>/dev/null),,$(t)))),)
export PATH := $(CURDIR)/.venv/bin:$(PATH)
PY_DEPS := .venv/.installed
endif
# Control Tower's proactive controls and the cfn-guard binary, both from @cdklabs/cdk-validator-cfnguard.
CFN_GUARD_PKG := node_modules/@cdklabs/cdk-validator-cfnguard
CFN_GUARD     := $(CFN_GUARD_PKG)/bin/$(if $(filter Darwin,$(shell uname -s)),macos,ubuntu)/$(subst arm64,aarch64,$(shell uname -m))/cfn-guard
CT_RULES      := $(CFN_GUARD_PKG)/rules/control-tower/cfn-guard

GO        ?= go
FUZZTIME  ?= 30s
DEMO_ADDR ?= 127.0.0.1:4566
ORG_ADDR  ?= 127.0.0.1:4567
LAMBDA_FLAGS := -trimpath -ldflags "-s -w" -tags lambda.norpc
# Not ./...: npm's node_modules/ holds Go templates the go tool would try to build.
PKGS      := ./lambda/... ./infra/...

.PHONY: help build test lint demo demo-org replay invoke synth cdk-synth diff deploy bench fuzz fuzz-smoke cfn-lint guard clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: dist/bootstrap dist/pinroll ## build the Lambda (arm64) and the CLI

dist/bootstrap: $(shell find lambda -name '*.go' -not -name '*_test.go') go.mod go.sum
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(LAMBDA_FLAGS) -o $@ ./lambda

dist/pinroll: $(shell find lambda -name '*.go' -not -name '*_test.go') go.mod go.sum
	$(GO) build -o $@ ./lambda/cmd/pinroll

test: node_modules/.bin/cdk $(PY_DEPS) ## every test: unit, scenarios (moto + emulator), Lambda runtime, CDK, fuzz smoke
	$(GO) test -race -count=1 -timeout 15m ./lambda/...
	$(GO) test -count=1 -timeout 15m ./infra/...  # no -race: the CDK is a jsii child process; its ~280 MB module then compiles once, shared with synth
	$(GO) test -count=1 -run 'TestPeakHeap' ./lambda/internal/bench/  # without -race, which inflates the heap
	$(MAKE) --no-print-directory fuzz-smoke synth

lint: ## gofmt, go vet, staticcheck, go mod tidy check
	@test -z "$$(gofmt -l lambda infra)" || { gofmt -l lambda infra; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	@cp go.mod /tmp/pinroll.go.mod.bak && cp go.sum /tmp/pinroll.go.sum.bak && $(GO) mod tidy && \
	  if ! git diff --quiet -- go.mod go.sum; then git diff -- go.mod go.sum; cp /tmp/pinroll.go.mod.bak go.mod; cp /tmp/pinroll.go.sum.bak go.sum; echo "go mod tidy: go.mod/go.sum are not tidy"; exit 1; fi

# The demo is the incident, told with the real commands: the emulator serves events/fleet.json,
# where ECR's :latest is the fix but the prod nodes run their cached old :latest. It pins the
# region and dummy credentials the local world needs, whatever the shell has (AWS_REGION,
# AWS_PROFILE, …), and refuses a DEMO_ADDR something else already listens on.
demo: dist/pinroll ## the incident and its fix, on the built-in emulator (no AWS account; DEMO_ADDR=127.0.0.1:4566)
	@set -euo pipefail; url=http://$(DEMO_ADDR); tcp=/dev/tcp/$${url#http://}; tcp=$${tcp%:*}/$${tcp##*:}; run() { echo; echo "\$$ pinroll $$*"; ./dist/pinroll "$$@"; }; \
	unset AWS_PROFILE AWS_DEFAULT_REGION AWS_SESSION_TOKEN PINROLL_CLUSTERS PINROLL_REGISTRY_ACCOUNTS PINROLL_DRY_RUN PINROLL_REQUIRE_OPT_IN; \
	export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test; \
	if (exec 3<>$$tcp) 2>/dev/null; then \
	  echo "demo: DEMO_ADDR=$(DEMO_ADDR) is already in use (another pinroll emulate?): stop it, or choose a free address: make demo DEMO_ADDR=127.0.0.1:4567" >&2; exit 1; fi; \
	./dist/pinroll emulate --addr $(DEMO_ADDR) --fleet events/fleet.json --deploy-delay 0 >/dev/null & emu=$$!; trap 'kill $$emu 2>/dev/null' EXIT; \
	for i in $$(seq 100); do (exec 3<>$$tcp) 2>/dev/null && break; \
	  kill -0 $$emu 2>/dev/null || { echo "demo: the emulator could not listen on DEMO_ADDR=$(DEMO_ADDR); choose another: make demo DEMO_ADDR=127.0.0.1:4567" >&2; exit 1; }; sleep 0.05; done; \
	./dist/pinroll index create --table pinroll-index --endpoint-url $$url >/dev/null; export PINROLL_INDEX_TABLE=pinroll-index; \
	echo "[1] The incident. ECR holds the fix under content-marketing-swarm-backend:latest, yet prod runs old code:"; \
	if run verify --cluster prod --service api,worker --endpoint-url $$url; then echo "demo: expected the incident (a mismatch) first" >&2; exit 1; fi; \
	echo; echo "[2] The push event, through the Lambda's own code path: pin the digest, update the services:"; \
	run replay --endpoint-url $$url events/push-tagged.json; \
	echo "[3] Verify again: every task now runs the pushed digest."; \
	run verify --cluster prod --service api,worker --endpoint-url $$url; \
	echo; echo "[4] The look-alike repository's service (content-marketing-swarm-dev-backend) was not touched:"; \
	run verify --cluster dev --endpoint-url $$url; \
	echo; echo "demo: OK — pushed, pinned by digest, verified, look-alike untouched."

# The organisation, told with the real commands: registry account 111111111111 pushes in
# us-east-1; ECR replicates to us-west-2; the hub of each region deploys in the dev (222222222222)
# account through its role, and in the prod (333333333333) account — its services are tagged
# pinroll:wave=1 — only once dev's deployment events have verified wave 0; verify checks every
# task everywhere.
demo-org: dist/pinroll ## an organisation: a push replicated to a second region, deployed in two target accounts by each region's hub (ORG_ADDR=127.0.0.1:4567)
	@set -euo pipefail; url=http://$(ORG_ADDR); tcp=/dev/tcp/$${url#http://}; tcp=$${tcp%:*}/$${tcp##*:}; tmp=$$(mktemp -d); \
	run() { echo; echo "\$$ $${AWS_REGION:+AWS_REGION=$$AWS_REGION }$${PINROLL_TARGET_ROLES:+PINROLL_TARGET_ROLES=… }pinroll $$*"; ./dist/pinroll "$$@"; }; \
	unset AWS_PROFILE AWS_SESSION_TOKEN PINROLL_CLUSTERS PINROLL_REGISTRY_ACCOUNTS PINROLL_DRY_RUN PINROLL_REQUIRE_OPT_IN PINROLL_TARGET_ROLES; \
	export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1; \
	dev=arn:aws:iam::222222222222:role/pinroll-target; prod=arn:aws:iam::333333333333:role/pinroll-target; \
	if (exec 3<>$$tcp) 2>/dev/null; then echo "demo-org: ORG_ADDR=$(ORG_ADDR) is already in use: make demo-org ORG_ADDR=127.0.0.1:4568" >&2; exit 1; fi; \
	./dist/pinroll emulate --addr $(ORG_ADDR) --fleet events/fleet-org.json --deploy-delay 0 --push-events --events-dir $$tmp/events >/dev/null & emu=$$!; \
	trap 'kill $$emu 2>/dev/null; rm -rf "$$tmp"' EXIT; \
	for i in $$(seq 100); do (exec 3<>$$tcp) 2>/dev/null && break; kill -0 $$emu 2>/dev/null || exit 1; sleep 0.05; done; \
	echo "[1] The registry account pushes shop/api:latest in us-east-1 (with the AWS CLI); ECR replicates it to us-west-2:"; \
	echo '$$ aws ecr put-image --repository-name shop/api --image-tag latest --image-manifest "$$(cat manifest.json)"'; \
	manifest='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000005030","size":1520},"layers":[]}'; \
	digest=$$(aws --endpoint-url $$url ecr put-image --repository-name shop/api --image-tag latest --image-manifest "$$manifest" --query image.imageId.imageDigest --output text); \
	echo "pushed $$digest"; for i in $$(seq 100); do [ -n "$$(ls $$tmp/events/*-us-west-2.json 2>/dev/null)" ] && break; sleep 0.05; done; \
	echo; echo "[2] ECR's events, one per region (the push in us-east-1, the replica in us-west-2):"; ls $$tmp/events | sed 's/^/  /'; \
	echo; echo "[3] The hub in us-east-1 deploys wave 0, the dev account; prod's api (pinroll:wave=1) is registered and held:"; \
	AWS_REGION=us-east-1 PINROLL_TARGET_ROLES=$$dev,$$prod run replay --endpoint-url $$url $$tmp/events/*-us-east-1.json; \
	echo "[4] The hub in us-west-2 does the same with the replica, from us-west-2's own registry host:"; \
	AWS_REGION=us-west-2 PINROLL_TARGET_ROLES=$$dev,$$prod run replay --endpoint-url $$url $$tmp/events/*-us-west-2.json; \
	echo "[5] ECS reports dev's deployments complete; each hub verifies dev's tasks, and only then deploys wave 1, prod:"; \
	for region in us-east-1 us-west-2; do completed=; for i in $$(seq 100); do \
	  completed=$$(grep -l SERVICE_DEPLOYMENT_COMPLETED $$tmp/events/*-ecs-deployment-state-change-222222222222-$$region.json 2>/dev/null || true); [ -n "$$completed" ] && break; sleep 0.05; done; \
	  [ -n "$$completed" ] || { echo "demo-org: no completed deployment from dev in $$region" >&2; exit 1; }; \
	  AWS_REGION=$$region PINROLL_TARGET_ROLES=$$dev,$$prod run replay --endpoint-url $$url $$completed; done; \
	echo "[6] Verify every task, in every account and region, acting in each through its role:"; \
	for region in us-east-1 us-west-2; do for role in $$dev $$prod; do \
	  AWS_REGION=$$region run verify --service api --role $$role --endpoint-url $$url > $$tmp/verify || { cat $$tmp/verify; echo "demo-org: $$role in $$region does not run $$digest" >&2; exit 1; }; \
	  grep -q "$${digest:0:19}" $$tmp/verify || { cat $$tmp/verify; echo "demo-org: $$role in $$region does not run $$digest" >&2; exit 1; }; \
	  echo "  → every api task of $${role:13:12} in $$region runs $$digest"; done; done; \
	echo; echo "[7] The look-alike — dev's OWN shop/api repository, in 222222222222's registry — was not touched:"; \
	AWS_REGION=us-east-1 run verify --service lookalike --role $$dev --endpoint-url $$url | tee $$tmp/lookalike; \
	grep -q "shop-api-lookalike:1 " $$tmp/lookalike || { echo "demo-org: the look-alike moved" >&2; exit 1; }; \
	echo; echo "demo-org: OK — one push, two regions, two target accounts in two waves (prod after dev was verified), every task verified, look-alike untouched."

replay: dist/pinroll ## replay EVENTS (default: every sample push) against ENDPOINT (default: AWS) — make replay ENDPOINT=http://127.0.0.1:4566 EVENTS=events/push-tagged.json
	./dist/pinroll replay $(if $(ENDPOINT),--endpoint-url $(ENDPOINT)) $(or $(EVENTS),events/push-*.json)

# invoke is the function as Lambda runs it, locally: a host-architecture bootstrap under the
# Runtime Interface Emulator (pinned in go.mod), its AWS calls going to a fresh emulator with
# events/fleet.json, on free loopback ports. It prints the function's answer (a report, or
# Lambda's {"errorType","errorMessage"}) and stops both. The function's logs: INVOKE_LOG=1.
EVENT ?= events/push-tagged.json
invoke: dist/pinroll ## run EVENT (default events/push-tagged.json) through the built function under the Lambda Runtime Interface Emulator, against the emulator
	@set -euo pipefail; export LC_ALL=C; tmp=$$(mktemp -d); pids=; \
	trap 'for p in $$pids; do kill $$p 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$$tmp"' EXIT; \
	test -r "$(EVENT)" || { echo "invoke: EVENT=$(EVENT) cannot be read (try EVENT=events/push-tagged.json)" >&2; exit 2; }; \
	CGO_ENABLED=0 $(GO) build -trimpath -tags lambda.norpc -o "$$tmp/bootstrap" ./lambda; \
	CGO_ENABLED=0 $(GO) build -trimpath -o "$$tmp/aws-lambda-rie" github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie; \
	free() { while :; do p=$$((20000 + RANDOM % 12000)); (exec 3<>/dev/tcp/127.0.0.1/$$p) 2>/dev/null || { echo $$p; return; }; done; }; \
	up() { for i in $$(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$$1) 2>/dev/null && return; kill -0 $$2 2>/dev/null || return 1; sleep 0.05; done; return 1; }; \
	emu=$$(free); ./dist/pinroll emulate --addr 127.0.0.1:$$emu --fleet events/fleet.json >"$$tmp/emulator.log" 2>&1 & pids="$$pids $$!"; \
	up $$emu $$! || { cat "$$tmp/emulator.log" >&2; echo "invoke: the emulator did not start" >&2; exit 1; }; \
	for try in 1 2 3 4 5; do api=$$(free); rt=$$(free); \
	  env -u AWS_PROFILE -u AWS_DEFAULT_REGION -u AWS_SESSION_TOKEN AWS_ENDPOINT_URL=http://127.0.0.1:$$emu AWS_REGION=us-east-1 \
	    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test PINROLL_REGISTRY_ACCOUNTS=123456789012 \
	    PINROLL_CONTINUE_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/pinroll-continue.fifo \
	    "$$tmp/aws-lambda-rie" --runtime-interface-emulator-address 127.0.0.1:$$api --runtime-api-address 127.0.0.1:$$rt "$$tmp/bootstrap" >"$$tmp/function.log" 2>&1 & rie=$$!; pids="$$pids $$rie"; \
	  up $$api $$rie && break; \
	  grep -q "address already in use" "$$tmp/function.log" && [ $$try -lt 5 ] && continue; \
	  cat "$$tmp/function.log" >&2; echo "invoke: the Runtime Interface Emulator did not start" >&2; exit 1; done; \
	body=$$(cat "$(EVENT)"); exec 3<>/dev/tcp/127.0.0.1/$$api; \
	printf 'POST /2015-03-31/functions/function/invocations HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' $$api $${#body} "$$body" >&3; \
	answer=$$(cat <&3 | sed '1,/^\r*$$/d'); exec 3<&-; \
	if [ -n "$(INVOKE_LOG)" ]; then cat "$$tmp/function.log" >&2; fi; \
	echo "$$answer"; \
	case "$$answer" in "{"*) ;; *) cat "$$tmp/function.log" >&2; echo "invoke: no answer from the function" >&2; exit 1;; esac

node_modules/.bin/cdk: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error $(NPM_OMIT)
	@touch $@

.venv/.installed: requirements-dev.txt
	python3 -m venv .venv && .venv/bin/pip install --quiet -r requirements-dev.txt
	@touch $@

synth: cdk-synth cfn-lint guard ## synthesize the hub and target templates into cdk.out/, then cfn-lint and cfn-guard them

cdk-synth: dist/bootstrap node_modules/.bin/cdk
	npx cdk synth --no-notices --quiet -c pinroll:stack=all $(CDK_ARGS)

cfn-lint: cdk-synth $(PY_DEPS) ## lint the synthesized templates (errors fail; CDK's own W3005 warning is expected)
	cfn-lint --non-zero-exit-code error cdk.out/*.template.json

# CT.LAMBDA.PR.3 (function in a VPC) fails unless pinroll:vpc is set; a landing zone may not enable
# it (README "Deploy"). GUARD_EXEMPT= makes every rule count, as for the VPC variant.
GUARD_EXEMPT ?= ct-lambda-pr-3
guard: cdk-synth ## Control Tower's proactive controls (cfn-guard) over the synthesized templates; any failure fails
	@set -uo pipefail; fail=0; for t in cdk.out/*.template.json; do \
	  out=$$($(CFN_GUARD) validate -d "$$t" -r $(CT_RULES) -S all 2>&1); \
	  n() { grep -cE "^ct-[^ ]+\.guard/[^ ]+ +$$1\$$" <<<"$$out"; }; \
	  failed=$$(grep -oE '^ct-[^ ]+\.guard/[^ ]+ +FAIL$$' <<<"$$out" | sed 's/\.guard.*//' | sort -u); \
	  exempt=$$(comm -12 <(echo "$$failed") <(tr ' ' '\n' <<<"$(GUARD_EXEMPT)" | sort -u) | paste -sd' '); \
	  real=$$(comm -23 <(echo "$$failed") <(tr ' ' '\n' <<<"$(GUARD_EXEMPT)" | sort -u) | paste -sd' '); \
	  echo "cfn-guard $$t: $$(n PASS) passed, $$(n FAIL) failed$${exempt:+ (exempt: $$exempt)}, $$(n SKIP) not applicable"; \
	  if [ -n "$$real" ]; then grep -E "^($${real// /|})\.guard/" <<<"$$out"; fail=1; fi; \
	  if ! grep -qE '^ct-[^ ]+\.guard/' <<<"$$out"; then echo "$$out"; fail=1; fi; \
	done; exit $$fail

diff: dist/bootstrap node_modules/.bin/cdk ## compare the stack with what is deployed (CDK_ARGS="-c pinroll:dryRun=true" …)
	npx cdk diff --no-notices $(CDK_ARGS)

deploy: dist/bootstrap node_modules/.bin/cdk ## deploy to the account and region of your AWS credentials
	npx cdk deploy --no-notices $(CDK_ARGS)

bench: ## API calls, wall time and start-up against the lower bound (see README "Performance")
	$(GO) test -run '^$$' -bench Performance -benchtime 1x -timeout 10m ./lambda/internal/bench/

fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	@for pkg in $$($(GO) list ./lambda/...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

# A count, not a duration: a duration-based -fuzztime races Go's fuzzing coordinator at its
# deadline and, on a loaded machine, fails with "context deadline exceeded" and no input.
fuzz-smoke: ## 500 inputs of each fuzz target, a few seconds (part of make test)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=500x

clean: ## remove build output
	rm -rf dist cdk.out
