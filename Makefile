# orch: make help lists the targets.
SHELL := /bin/bash
GO ?= go
STATICCHECK_VERSION := v0.8.2
VERSION ?= 0.1.0-dev
export GOFLAGS := -buildvcs=false
LDFLAGS := -X orch.dev/orch/internal/version.Version=$(VERSION)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/orchd and bin/orchctl
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

.PHONY: deps
deps: ## install the Debian packages the images and tests need (busybox-static, docker-registry) and start Docker Engine
	scripts/deps.sh

.PHONY: images
images: deps ## build orch/hello:dev and orch/busybox:dev locally with Docker (no registry)
	scripts/images.sh

.PHONY: run
run: build images ## build everything and the images, start `orchd dev` (state in .orch/dev), deploy examples/hello.yaml
	scripts/run.sh

.PHONY: stop
stop: ## stop the `orchd dev` that `make run` started
	@if [ -f .orch/dev/orchd.pid ] && kill -0 $$(cat .orch/dev/orchd.pid) 2>/dev/null; then \
	  kill $$(cat .orch/dev/orchd.pid) && echo "stopped orchd dev (its pods keep running until it starts again)"; else echo "orchd dev is not running"; fi

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.orch/*')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

.PHONY: test
test: lint images ## lint, build the images, then every test (race detector on), Docker integration tests included
	$(GO) test -race -count=1 -timeout 25m ./...

.PHONY: bench
bench: ## run the benchmarks recorded in docs/benchmarks.md
	$(GO) test -run XXX -bench 'ClusterPut' -benchtime 30000x ./raftstore/
	$(GO) test -run XXX -bench 'WatchFanout' -benchtime 3000x ./raftstore/
	$(GO) test -run XXX -bench 'APICreate' -benchtime 30000x ./integration/
	$(GO) test -run XXX -bench 'Failover' -benchtime 10x ./integration/
	$(GO) test -run XXX -bench 'Schedule' -benchtime 1x -count 5 ./server/scheduler/
	$(GO) test -run XXX -bench 'PodStartup/pods=1$$' -benchtime 30x ./integration/
	$(GO) test -run XXX -bench 'NodeLossRecovery' -benchtime 1x ./integration/
	$(GO) test -run XXX -bench 'ServiceVIP' -benchtime 1x ./integration/
	$(GO) test -run XXX -bench 'EndpointChange' -benchtime 5x ./integration/
	$(GO) test -run XXX -bench . -benchtime 10x ./node/proxy/
	scripts/dnsperf.sh

.PHONY: fuzz
fuzz: ## fuzz manifest decoding and validation for a minute each
	$(GO) test -run XXX -fuzz FuzzDecodeManifest -fuzztime 60s ./server/api/
	$(GO) test -run XXX -fuzz FuzzValidate -fuzztime 60s ./server/api/validation/

.PHONY: clean
clean: ## remove bin/ and the local cluster's state (stop it first)
	@# memory-backed volumes (emptyDir medium Memory, secrets) are tmpfs mounts under .orch
	@awk -v d="$(CURDIR)/.orch/" 'index($$5, d) == 1 {print $$5}' /proc/self/mountinfo | sort -r | xargs -r umount -l
	rm -rf bin .orch
