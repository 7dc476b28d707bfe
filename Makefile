# boot — see README.md. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/boot
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X github.com/bootctl/boot/cmd.version=$(VERSION)
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)
FUZZTIME ?= 20s
KUBERNETES ?= v1.37.2
BUNDLE ?= dist/bundle
# The upgrade bundle carries $(UPGRADE_FROM) too, to build a cluster at it and
# upgrade it to $(KUBERNETES) offline.
UPGRADE_FROM ?= v1.36.3
UPGRADE_BUNDLE ?= dist/bundle-upgrade
# The upstream release archives (git archive of release tags, pinned by
# sha256 in bundle/upstream.go), beside the project as in CI.
UPSTREAM ?= ../shared/upstream
# The module proxy alone: without ',direct' the go command never falls back to
# fetching from source hosts (these machines reach only the proxy).
export GOPROXY := https://proxy.golang.org

.PHONY: help build test unit fuzz lab-test lab-disk lint bench deps demo clean bundle bundle-upgrade lab-upgrade-test lab-up lab-down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

build: ## build bin/boot and the lab's helper programs beside it (Pebble from the module proxy)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/ ./lab/runc-capwrap ./lab/lab-registry ./lab/lab-mirror
	CGO_ENABLED=0 GOBIN=$(abspath bin) $(GO) install -trimpath -ldflags '-s -w' github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3

deps: ## install what the tests need (apt packages, Go tools, test users); idempotent, needs root
	bash .ci/deps

test: deps bundle unit fuzz lab-test ## install what the tests need, build the bundle, run every test (root)

unit: ## go test ./... (needs `make deps` and `make bundle` once)
	CI=$${CI:-true} BOOT_BUNDLE_DIR=$(abspath $(BUNDLE)) $(GO) test -count=1 ./...

# The lab takes about 15 GB while it runs and its kubelets evict pods once
# less than 2 GiB is free (lab.EvictionFree): short of 20 GB free, the Go
# build cache (a cache: rebuilt as needed) is freed first.
lab-disk: ## make room on the disk for the lab, freeing the Go build cache if needed
	@set -- $$(df -B1G --output=avail / | tail -n 1); need=20; \
	echo "disk: $$1 GB free; the lab needs $$need GB free"; \
	if [ "$$1" -lt "$$need" ]; then echo "freeing the Go build cache ($$(du -sh "$$($(GO) env GOCACHE)" | cut -f1))"; $(GO) clean -cache; fi

lab-test: lab-disk ## the lab end-to-end tests, one at a time (one lab per machine): four real hosts from the bundle, then online through the lab's mirrors (root, Docker)
	CI=$${CI:-true} BOOT_BUNDLE_DIR=$(abspath $(BUNDLE)) $(GO) test -p 1 -count=1 -tags lab -v -timeout 40m \
		-run '^(TestLab|TestLabOnRunningDocker|TestBootOnLab|TestBootOnlineOnLab)$$' ./lab/ ./cmd/

lab-upgrade-test: lab-disk bundle-upgrade ## the upgrade lab test: a cluster with the add-ons at $(UPGRADE_FROM) upgraded in place to $(KUBERNETES) by boot up, offline, with a workload polled throughout (root, Docker; ~30 min; not part of test: the second version costs the cold bundle build ~25 min)
	CI=$${CI:-true} BOOT_UPGRADE_BUNDLE_DIR=$(abspath $(UPGRADE_BUNDLE)) $(GO) test -p 1 -count=1 -tags lab -v -timeout 60m \
		-run '^TestUpgradeOnLab$$' ./cmd/

fuzz: ## run each fuzz target briefly
	$(GO) test ./inventory -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags lab ./...
	$(STATICCHECK) -tags lab ./...

bench: ## run the benchmarks once and print their figures
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

demo: bundle ## the main job: build the bundle if needed, bring the lab up, build the cluster on it
	$(BIN) validate -i examples/inventory.yaml
	$(BIN) lab status -o json | grep -q '"up":true' || $(BIN) lab up --bundle $(BUNDLE)
	$(BIN) up -i .lab/inventory.yaml --cluster-only --dry-run
	$(BIN) up -i .lab/inventory.yaml --cluster-only
	$(BUNDLE)/bin/kubectl --kubeconfig .lab/lab.kubeconfig get nodes -o wide

bundle: build ## build the offline bundle into $(BUNDLE), cert-manager and the add-on charts from the release archives in $(UPSTREAM) (cached: seconds when warm, ~50 min cold)
	$(BIN) bundle build --kubernetes $(KUBERNETES) --upstream $(UPSTREAM) --out $(BUNDLE)

bundle-upgrade: build ## build the bundle carrying Kubernetes $(UPGRADE_FROM) and $(KUBERNETES) into $(UPGRADE_BUNDLE), to upgrade a cluster offline (cached like bundle: ~25 min more cold, for $(UPGRADE_FROM); not part of test)
	$(BIN) bundle build --kubernetes $(UPGRADE_FROM),$(KUBERNETES) --upstream $(UPSTREAM) --out $(UPGRADE_BUNDLE)

lab-up: bundle ## bring the lab up: four hosts and a registry serving the bundle (needs root)
	$(BIN) lab up --bundle $(BUNDLE)

lab-down: build ## remove the lab and everything it changed
	$(BIN) lab down

clean: ## remove build outputs
	rm -rf bin
