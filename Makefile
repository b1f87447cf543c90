# reelrank: `make run` runs the main job, `make test` runs every check.
# Both install what they need (Go modules, staticcheck) on a fresh machine.

export PATH := /usr/local/go/bin:$(PATH)
GO          ?= go
BIN         := $(CURDIR)/.bin
STATICCHECK := $(BIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
BENCHSTAT   := $(BIN)/benchstat
# Benchmarks: override, e.g. make bench BENCH=FastScan COUNT=10
BENCH ?= .
COUNT ?= 1
PKGS  ?= ./...

.PHONY: all run test test-go test-race test-purego lint vet fmt staticcheck generate generate-check wire flatc bench bench-check fuzz deps tools clean ptx build-cuda vet-cuda test-cuda

all: test

## run: build, make the embedded default world, train and index it once
## (cached in .cache/), then serve it on 127.0.0.1:7070 until interrupted
run: deps
	$(GO) build -o $(BIN)/reelrank ./cmd/reelrank
	REELRANK_CACHE=$(CURDIR)/.cache $(BIN)/reelrank serve $(RUNFLAGS)

## test: vet, gofmt, staticcheck, the tests, the race detector and the purego build
test: deps lint test-go test-race test-purego

deps:
	@command -v $(GO) >/dev/null || { echo "go not found: install Go 1.26 (https://go.dev/dl)"; exit 1; }
	$(GO) mod download

tools: $(STATICCHECK)

$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(BENCHSTAT):
	GOBIN=$(BIN) $(GO) install golang.org/x/perf/cmd/benchstat@latest

## lint: go vet, gofmt, staticcheck, and generated assembly up to date
lint: vet fmt staticcheck generate-check

## generate: regenerate the generated assembly (kernels/gemm_amd64.s, kernels/fmapeak_amd64.s)
## and the flatbuffers code of the model bundle and the wire protocol
generate: flatc
	$(GO) generate ./kernels ./ranker $(wildcard ./wire)

## wire: regenerate the wire protocol's Go code from wire/reelrank.fbs
wire: flatc
	$(GO) generate ./wire

# flatc: Debian's flatbuffers-compiler 2.0.8, which matches the Go runtime in go.mod.
flatc:
	@command -v flatc >/dev/null || { command -v apt-get >/dev/null && \
		(apt-get install -y flatbuffers-compiler || sudo apt-get install -y flatbuffers-compiler); } || \
		{ echo "flatc not found: install Debian's flatbuffers-compiler 2.0.8"; exit 1; }

vet:
	$(GO) vet $(PKGS)
	$(GO) vet -tags purego $(PKGS)

fmt:
	@out=$$(gofmt -l .); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

generate-check:
	@tmp=$$(mktemp -d) && $(GO) run kernels/gemm_asm_gen.go -out $$tmp && \
	for f in gemm_amd64.s fmapeak_amd64.s; do \
		cmp -s $$tmp/$$f kernels/$$f || { echo "kernels/$$f is stale: run make generate"; rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp

staticcheck: $(STATICCHECK)
	$(STATICCHECK) $(PKGS)

test-go:
	$(GO) test -count=1 $(PKGS)

## test-race: the race detector, short mode
test-race:
	$(GO) test -count=1 -race -short $(PKGS)

## test-purego: the build without assembly
test-purego:
	$(GO) test -count=1 -short -tags purego $(PKGS)

## bench: the benchmarks (BENCH=regexp COUNT=n PKGS=./kernels)
bench: deps
	$(GO) test -run '^$$' -bench '$(BENCH)' -count $(COUNT) -timeout 60m $(PKGS)

## bench-check: a short fixed set (four kernels and search on a small generated
## index, 6 repetitions each) against bench/baseline/<cpu>.jsonl; fails on a
## significant regression past BENCH_THRESHOLD, records the baseline when this CPU
## has none (commit it). Not part of make test: it times this machine.
BENCH_THRESHOLD ?= 10%
bench-check: deps
	$(GO) run ./cmd/reelrank bench check --threshold $(BENCH_THRESHOLD)

## fuzz: each fuzz target (kernels, index, event log, feature snapshots, world files, wire, server, client, the durable log, the flatbuffers verifier, drift references, model folder manifests and arms records) for FUZZTIME (default 30s)
FUZZTIME ?= 30s
FUZZPKGS ?= ./kernels ./ann ./eventlog ./features ./sim ./ranker ./wire ./server ./client ./internal/wal ./internal/fbverify ./drift ./modeldir
fuzz: deps
	@for p in $(FUZZPKGS); do for f in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
		echo "== $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 3s $$p || exit 1; done; done

clean:
	rm -rf $(BIN)

## ptx: recompile the CUDA kernels (kernels/cuda/*.cu) to the committed PTX
## (needs nvcc: Debian's nvidia-cuda-toolkit, non-free; see DEVELOPERS.md)
NVCC       ?= nvcc
CUDA_STUBS ?= /usr/lib/x86_64-linux-gnu/stubs
CUDA_ENV   := CGO_ENABLED=1 CGO_LDFLAGS="-L$(CUDA_STUBS) $(CGO_LDFLAGS)"
ptx:
	@command -v $(NVCC) >/dev/null || { echo "nvcc not found: install nvidia-cuda-toolkit (DEVELOPERS.md)"; exit 1; }
	for f in kernels/cuda/*.cu; do \
		$(NVCC) $$(cat kernels/cuda/nvcc.flags) -o kernels/cuda/ptx/$$(basename $$f .cu).ptx $$f || exit 1; \
	done

## build-cuda: the GPU build of reelrank (-tags cuda; links libcuda, the driver,
## alone: it runs on a GPU host only); links against the driver stub here
build-cuda: deps
	$(CUDA_ENV) $(GO) build -tags cuda -o $(BIN)/reelrank-cuda ./cmd/reelrank

## vet-cuda: vet and compile every package and test of the cuda build
## (runs without a GPU; the test binaries need one to run)
vet-cuda: deps
	$(CUDA_ENV) $(GO) vet -tags cuda $(PKGS)
	$(CUDA_ENV) $(GO) build -tags cuda $(PKGS)
	$(CUDA_ENV) $(GO) test -tags cuda -count=1 -run '^$$' -exec true ./kernels/cuda ./ranker ./ann ./engine ./cmd/reelrank

## test-cuda: on a GPU host, the GPU's tests against the CPU
test-cuda: deps
	$(CUDA_ENV) $(GO) test -tags cuda -count=1 ./kernels/cuda ./ranker ./ann ./engine

## image: the server's container image (Dockerfile; a static binary on distroless,
## user nonroot), the image `reelrank plan --emit k8s` manifests run
IMAGE ?= reelrank:latest
.PHONY: image
image:
	docker build -t $(IMAGE) .
