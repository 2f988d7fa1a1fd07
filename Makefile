# Meridian. `make run` starts the demo node; `make test` runs every test.
GO        ?= go
BIN       ?= bin/meridian
FUZZTIME  ?= 10s
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)

.PHONY: all build run check test unit race bench-ci fuzz e2e bench bench-scale cluster lint geodb worldmap static image clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/meridian

## run: build and start one node serving the demo zone on 127.0.0.1:5353 (UDP+TCP)
run: build
	$(BIN) check -config deploy/demo/node.toml
	$(BIN) serve -config deploy/demo/node.toml

check: build
	$(BIN) check -config deploy/demo/node.toml

## test: vet, unit + end-to-end tests under the race detector, each benchmark once, short fuzz runs
test: build
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./...
	$(MAKE) fuzz FUZZTIME=3s

## fuzz: run every fuzz target for FUZZTIME each. Go 1.26's fuzz coordinator
## can report "context deadline exceeded" when -fuzztime ends while a worker
## is mid-input (golang/go#75804, fixed in Go 1.27): that, with no failing
## input written, is not a finding and does not fail the run.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    if ! out=$$($(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg 2>&1); then \
	      echo "$$out"; \
	      if echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input written'; then \
	        echo "fuzz $$t: Go's -fuzztime shutdown race (golang/go#75804), no failing input: not a finding"; \
	      else exit 1; fi; \
	    else echo "$$out" | tail -n 3; fi; \
	  done; \
	done

## e2e: only the end-to-end tests (real dig/kdig against a started node;
## TestE2EDelegation: knot, unbound and zonemaster-cli around a cluster on
## port 53, as root). Verbose, filtered to the results, each "step N:"
## line and zonemaster-cli's messages as they come; on a failure the whole output follows. The exit
## status is go test's.
e2e:
	@out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	bash -c 'set -o pipefail; $(GO) test -race -count=1 -run E2E -v ./... 2>&1 | tee "$$0" | \
	  grep -E "^(=== RUN +\w+$$|--- |PASS|FAIL|ok|panic:)|^\s+\w+_test\.go:[0-9]+: (step [0-9]+|zonemaster:)"' "$$out"; rc=$$?; \
	if [ $$rc -ne 0 ]; then echo "== make e2e failed; the whole output:"; cat "$$out"; fi; exit $$rc

## bench: Go benchmarks, then dnsperf against Meridian and gdnsd side by side (run by hand)
bench: build
	$(GO) test -run='^$$' -bench=. -benchmem ./...
	deploy/bench/run.sh

## cluster: three nodes (us-east, eu-west, ap-southeast) on 127.0.0.21-23 and
## a stand-in endpoint per region on 127.0.0.31-33:8080; Ctrl-C stops all
cluster:
	deploy/cluster/run.sh

## bench-scale: startup, memory, failover and reload on a GeoLite2-sized
## synthetic database with 50 pools in 50 shapes (run by hand; the database
## is generated once into deploy/scale/out). SCALE_FLAGS adds flags, e.g.
## SCALE_FLAGS="-v4 225000 -v6 75000 -locations 30000" for a quick run.
bench-scale: build
	$(GO) build -o bin/meridian-geodb ./cmd/meridian-geodb
	$(GO) run ./deploy/scale $(SCALE_FLAGS)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

## geodb: regenerate the demo GeoIP database from deploy/demo/geoip.csv
geodb:
	$(GO) run ./cmd/meridian-geodb -type City -in deploy/demo/geoip.csv -out deploy/demo/demo-city.mmdb

## worldmap: regenerate the dashboard's world map, admin/dashboard/assets/world.js,
## from pinned npm packages installed into a temporary directory (run by hand;
## needs npm; the output is committed, so build and tests do not). Update the
## versions in admin/dashboard/assets/world.LICENSE.txt too when bumping them.
WORLDMAP_NPM := world-atlas@2.0.2 i18n-iso-countries@7.14.0 countries-list@3.4.1
worldmap:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	npm install --prefix "$$tmp" --no-save --no-audit --no-fund --no-package-lock $(WORLDMAP_NPM); \
	m="$$tmp/node_modules"; \
	$(GO) run ./admin/dashboard/mapgen \
	  -atlas "$$m/world-atlas/countries-110m.json" \
	  -iso "$$m/i18n-iso-countries/codes.json" \
	  -continents "$$m/countries-list/countries.min.json" \
	  -out admin/dashboard/assets/world.js

## static: a static binary (no cgo, no libc) for the container image and for
## copying to hosts: bin/meridian-static, the file deploy/container/Containerfile copies
static:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/meridian-static ./cmd/meridian

## image: the container image meridian:$(VERSION) from the binary `static` built
## (needs docker or podman: CONTAINER=podman; CI has neither and does not build it)
CONTAINER ?= docker
image: static
	$(CONTAINER) build -f deploy/container/Containerfile -t meridian:$(VERSION) .

clean:
	rm -rf bin
