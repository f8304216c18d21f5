# pinroll — every task a newcomer can run. `make help` lists them.
SHELL := /bin/bash
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := 1

GO        ?= go
FUZZTIME  ?= 30s
DEMO_ADDR ?= 127.0.0.1:4566
LAMBDA_FLAGS := -trimpath -ldflags "-s -w" -tags lambda.norpc
# Not ./...: npm's node_modules/ holds Go templates the go tool would try to build.
PKGS      := ./lambda/... ./infra/...

.PHONY: help build test lint demo replay synth diff deploy bench fuzz fuzz-smoke cfn-lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: dist/bootstrap dist/pinroll ## build the Lambda (arm64) and the CLI

dist/bootstrap: $(shell find lambda -name '*.go' -not -name '*_test.go') go.mod go.sum
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(LAMBDA_FLAGS) -o $@ ./lambda

dist/pinroll: $(shell find lambda -name '*.go' -not -name '*_test.go') go.mod go.sum
	$(GO) build -o $@ ./lambda/cmd/pinroll

test: node_modules/.bin/cdk ## every test: unit, scenarios (moto + emulator), Lambda runtime, CDK, fuzz smoke
	$(GO) test -race -count=1 -timeout 15m ./lambda/...
	$(GO) test -count=1 -timeout 15m ./infra/...  # no -race: the CDK is a jsii child process; its ~280 MB module then compiles once, shared with synth
	$(GO) test -count=1 -run 'TestPeakHeap' ./lambda/internal/bench/  # without -race, which inflates the heap
	$(MAKE) --no-print-directory fuzz-smoke cfn-lint

lint: ## gofmt, go vet, staticcheck, go mod tidy check
	@test -z "$$(gofmt -l lambda infra)" || { gofmt -l lambda infra; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	@cp go.mod /tmp/pinroll.go.mod.bak && cp go.sum /tmp/pinroll.go.sum.bak && $(GO) mod tidy && \
	  if ! git diff --quiet -- go.mod go.sum; then git diff -- go.mod go.sum; cp /tmp/pinroll.go.mod.bak go.mod; cp /tmp/pinroll.go.sum.bak go.sum; echo "go mod tidy: go.mod/go.sum are not tidy"; exit 1; fi

# The demo is the incident, told with the real commands: the emulator serves events/fleet.json,
# where ECR's :latest is the fix but the prod nodes run their cached old :latest.
demo: dist/pinroll ## the incident and its fix, on the built-in emulator (no AWS account)
	@set -euo pipefail; url=http://$(DEMO_ADDR); run() { echo; echo "\$$ pinroll $$*"; ./dist/pinroll "$$@"; }; \
	./dist/pinroll emulate --addr $(DEMO_ADDR) --fleet events/fleet.json >/dev/null & emu=$$!; trap 'kill $$emu 2>/dev/null' EXIT; \
	for i in $$(seq 100); do (exec 3<>/dev/tcp/$${url#http://}) 2>/dev/null && break; kill -0 $$emu || exit 1; sleep 0.05; done; \
	echo "[1] The incident. ECR holds the fix under content-marketing-swarm-backend:latest, yet prod runs old code:"; \
	if run verify --cluster prod --service api,worker --endpoint-url $$url; then echo "demo: expected the incident (a mismatch) first" >&2; exit 1; fi; \
	echo; echo "[2] The push event, through the Lambda's own code path: pin the digest, update the services:"; \
	run replay --endpoint-url $$url events/push-tagged.json; \
	echo "[3] Verify again: every task now runs the pushed digest."; \
	run verify --cluster prod --service api,worker --endpoint-url $$url; \
	echo; echo "[4] The look-alike repository's service (content-marketing-swarm-dev-backend) was not touched:"; \
	run verify --cluster dev --endpoint-url $$url; \
	echo; echo "demo: OK — pushed, pinned by digest, verified, look-alike untouched."

replay: dist/pinroll ## replay EVENTS (default: every sample push) against ENDPOINT (default: AWS)
	./dist/pinroll replay $(if $(ENDPOINT),--endpoint-url $(ENDPOINT)) $(or $(EVENTS),events/push-*.json)

node_modules/.bin/cdk: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

synth: dist/bootstrap node_modules/.bin/cdk ## synthesize the CloudFormation template into cdk.out/
	npx cdk synth --no-notices --quiet

cfn-lint: synth ## lint the synthesized template (errors fail; CDK's own W3005 warning is expected)
	cfn-lint --non-zero-exit-code error cdk.out/*.template.json

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

fuzz-smoke: ## a few seconds of each fuzz target (part of make test)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3s

clean: ## remove build output
	rm -rf dist cdk.out
