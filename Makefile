# colindex: `make run` serves, `make test` tests. Both install what they need and are idempotent.
SHELL := /bin/bash
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/colindex?sslmode=disable
export TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable

BIN := $(CURDIR)/bin
SQLC := $(BIN)/sqlc
SQLC_VERSION := v1.31.1

.PHONY: run test deps postgres build generate check-generated vet

run: build postgres
	./scripts/run.sh

test: deps postgres vet check-generated
	go test -count=1 ./...

deps:
	@./scripts/install-deps.sh

postgres:
	@./scripts/ensure-postgres.sh

build: deps
	go build -o $(BIN)/colindex ./cmd/colindex

vet: deps
	go vet ./...

$(SQLC):
	GOBIN=$(BIN) go install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION)

# Regenerates everything generated: sqlc's query code and the OpenAPI documents.
generate: $(SQLC) deps
	$(SQLC) generate
	go run ./cmd/colindex openapi > api/openapi.json
	go run ./cmd/colindex openapi --3.0 > api/openapi-3.0.json

# Fails when generated files differ from what the code produces.
check-generated: $(SQLC) deps
	$(SQLC) diff
	@go run ./cmd/colindex openapi | diff -u api/openapi.json - || { echo "api/openapi.json is stale: run make generate" >&2; exit 1; }
	@go run ./cmd/colindex openapi --3.0 | diff -u api/openapi-3.0.json - || { echo "api/openapi-3.0.json is stale: run make generate" >&2; exit 1; }
