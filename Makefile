# Switchyard — the two commands a new user needs are `make run` and `make test`.
SHELL     := /bin/bash
GO        ?= go
TAGS      := sqlite_fts5
GOFLAGS_T := -tags $(TAGS)
BIN       := bin/console
# Two cores: two packages at a time, each test binary with its default parallelism.
TEST_P    ?= 2
export CGO_ENABLED := 1

.PHONY: run build test generate dashboards lint bench clean

## run: build and start the console with an embedded Kafka and demo services on :8080
run: build
	./$(BIN) demo

## build: compile the console binary (cgo SQLite with FTS5, built once and cached)
build:
	$(GO) build $(GOFLAGS_T) -o $(BIN) ./cmd/console

## test: the whole suite (real kfake, real RabbitMQ, real SQLite, real Chromium)
test:
	$(GO) test $(GOFLAGS_T) -p $(TEST_P) -count=1 -timeout 12m ./...

## generate: regenerate templ components (committed) and golden files are NOT touched
generate:
	$(GO) tool templ generate

## dashboards: regenerate grafana/dashboards/*.json and the provisioning file from grafana/ (committed)
dashboards:
	$(GO) generate ./grafana

## lint: formatting, vet, and generated code in sync with its sources
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(GOFLAGS_T) ./...
	@sum() { find . -name '*_templ.go' -not -path './.git/*' | sort | xargs sha256sum; }; \
	before=$$(sum); $(GO) tool templ generate >/dev/null 2>&1 || { echo "templ generate failed"; exit 1; }; after=$$(sum); \
	if [ "$$before" != "$$after" ]; then echo "templ drift: generated files did not match their .templ sources (now regenerated; review and commit):"; \
	diff <(echo "$$before") <(echo "$$after") | grep '^[<>]' | awk '{print $$3}' | sort -u; exit 1; fi
	@echo lint ok

## bench: our figures beside a bare-client baseline measured in the same run, with ratios
bench:
	@scripts/bench.sh

clean:
	rm -rf bin
