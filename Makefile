# colindex: `make run` serves, `make test` tests. Both install what they need and are idempotent.
SHELL := /bin/bash
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/colindex?sslmode=disable
export TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
# RocksDB is linked from Debian's static librocksdb.a rather than its shared library: the shared
# one reaches its thread-local perf context through __tls_get_addr on every key comparison,
# which static linking removes (BenchmarkAddPairsStream/fresh, alternating runs: 15.7-17.8
# against 18.9-19.7 µs a pair; the stream benchmark's 5-round ratio to collectiondir stayed
# within its noise, BENCHMARKS.md). grocksdb's own -lrocksdb would bind the shared library first,
# so the flags must be the environment's, not a #cgo line; a plain `go build` links the shared
# library and works the same, only slower.
export CGO_LDFLAGS ?= -Wl,--as-needed -Wl,-Bstatic -lrocksdb -Wl,-Bdynamic -lgflags -lsnappy -llz4 -lzstd -lbz2 -lz

BIN := $(CURDIR)/bin
SQLC := $(BIN)/sqlc
SQLC_VERSION := v1.31.1
OAPI_CODEGEN := $(BIN)/oapi-codegen
OAPI_CODEGEN_VERSION := v2.8.2
TS_SDK := sdk/ts

.PHONY: run test bench chaos fuzz deps postgres build generate check-generated vet ts-deps

run: build postgres
	./scripts/run.sh

test: deps postgres vet check-generated
	go test -race -count=1 ./...
	cd $(TS_SDK) && npm run --silent typecheck

# The performance harness: a real colindex serve against a synthetic network-shaped source;
# prints the results table and the targets (about 10 minutes; BENCH_FLAGS="-seed=false
# -large-pairs 0" for a quick run).
bench: build postgres $(BIN)/collectiondir
	go run ./cmd/colindex-bench -colindex $(BIN)/colindex -collectiondir $(BIN)/collectiondir $(BENCH_FLAGS)

# indigo's collectiondir (the service behind bsky.network's listReposByCollection), at the
# indigo version colindex builds with, for the side-by-side stream benchmark.
INDIGO_VERSION = $(shell go list -m -f '{{.Version}}' github.com/bluesky-social/indigo)
$(BIN)/collectiondir:
	GOBIN=$(BIN) go install github.com/bluesky-social/indigo/cmd/collectiondir@$(INDIGO_VERSION)

# The slow crash tests: a dozen SIGKILLs during a 600,000-pair backfill (a few minutes).
chaos: deps postgres
	go test -tags chaos -count=1 -run Chaos -v -timeout 30m ./cmd/colindex

# Each fuzz target for FUZZTIME (default a minute), one after another.
FUZZTIME ?= 60s
FUZZ_TARGETS := jobs:FuzzParseLexiconList jobs:FuzzValidDIDs source:FuzzDecodePage \
	source:FuzzParseSource rocksindex:FuzzKeyRoundTrip api:FuzzListReposQuery firehose/proof:FuzzDecide firehose/proof:FuzzLoad \
	firehose:FuzzCollectionOf
fuzz: deps
	@set -o pipefail; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		go test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) ./$$pkg 2>&1 | grep -vE '^fuzz: elapsed: [0-9]+s, (gathering|execs: [0-9]+ \([0-9]+/sec\), new interesting: [0-9]+ \(total: [0-9]+\))$$' | tail -4; \
	done

deps:
	@./scripts/install-deps.sh

postgres:
	@./scripts/ensure-postgres.sh

build: deps
	go build -o $(BIN)/colindex ./cmd/colindex

vet: deps
	go vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.gen\.go$$')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi

$(SQLC):
	GOBIN=$(BIN) go install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION)

$(OAPI_CODEGEN):
	GOBIN=$(BIN) go install github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@$(OAPI_CODEGEN_VERSION)

# The TypeScript SDK's toolchain (openapi-typescript, openapi-fetch, tsc), from its lock file.
ts-deps: $(TS_SDK)/node_modules/.package-lock.json
$(TS_SDK)/node_modules/.package-lock.json: $(TS_SDK)/package-lock.json
	cd $(TS_SDK) && npm ci --no-audit --no-fund --silent

# Regenerates everything generated, in dependency order: sqlc's query code, the OpenAPI
# documents (from the Huma operations), then the Go and TypeScript SDKs (from the documents).
generate: $(SQLC) $(OAPI_CODEGEN) deps ts-deps
	$(SQLC) generate
	go run ./cmd/colindex openapi > api/openapi.json
	go run ./cmd/colindex openapi --3.0 > api/openapi-3.0.json
	cd sdk/goclient && $(OAPI_CODEGEN) -config oapi-codegen.yaml -o client.gen.go ../../api/openapi-3.0.json
	cd $(TS_SDK) && npm run --silent generate

# Fails when any generated file differs from what the code produces.
check-generated: $(SQLC) $(OAPI_CODEGEN) deps ts-deps
	$(SQLC) diff
	@go run ./cmd/colindex openapi | diff -u api/openapi.json - || { echo "api/openapi.json is stale: run make generate" >&2; exit 1; }
	@go run ./cmd/colindex openapi --3.0 | diff -u api/openapi-3.0.json - || { echo "api/openapi-3.0.json is stale: run make generate" >&2; exit 1; }
	@cd sdk/goclient && $(OAPI_CODEGEN) -config oapi-codegen.yaml ../../api/openapi-3.0.json | diff -u client.gen.go - || { echo "sdk/goclient/client.gen.go is stale: run make generate" >&2; exit 1; }
	@cd $(TS_SDK) && npm run --silent check-generated
