# The README's commands. Go 1.26+ is the only prerequisite; ClickHouse is
# installed from Debian's packages when missing.
.PHONY: run test build bench-ingest bench-pipeline bench-live lint verify-verdicts release-check release-snapshot

run:            ## install/start ClickHouse, build, run evidenced (embedded NATS)
	scripts/quickstart.sh

test:           ## install ClickHouse if missing, then every test (real NATS and ClickHouse), and the Helm chart's (its own module)
	scripts/install-clickhouse.sh
	go test -count=1 -timeout 30m ./...
	cd deploy/helm && go test -count=1 -timeout 10m ./...

verify-verdicts: ## 10,000 changes / 50 repositories delivered five ways: identical verdicts, equal to the reference judge
	scripts/install-clickhouse.sh
	EVIDENCE_PROPERTY_CHANGES=10000 go test -count=1 -v -timeout 90m -run 'TestVerdictProperty$$' ./internal/daemon

build:
	go build -o bin/ ./cmd/evidenced ./cmd/evidence

bench-ingest:   ## sustained ingest benchmark: HTTP -> JetStream -> ClickHouse, against a bare baseline
	scripts/install-clickhouse.sh
	go run ./internal/bench/ingest

bench-pipeline: ## the verdict core: realistic changes posted -> archived, correlated, judged; freshness; beside the bare baseline
	scripts/install-clickhouse.sh
	go run ./internal/bench/pipeline $(BENCH_FLAGS)

bench-live:     ## the live page's endpoints with 100,000 deployments in history (LIVE_BENCH_DEPLOYMENTS): p50/p99 each
	scripts/install-clickhouse.sh
	go test -count=1 -run '^$$' -bench PageEndpoints -benchtime 50x ./internal/live/

lint:
	gofmt -l . | (! grep .)
	go vet ./...
	cd deploy/helm && go vet ./...

# Releases (.goreleaser.yaml). goreleaser runs at a pinned version with go
# run, outside the main module's go.mod.
GORELEASER = go run github.com/goreleaser/goreleaser/v2@v2.15.1

release-check:    ## validate .goreleaser.yaml
	$(GORELEASER) check

release-snapshot: ## snapshot build of the CLI for this machine into dist/ (no SBOM, nothing published)
	$(GORELEASER) build --snapshot --clean --single-target --id evidence
	./dist/evidence_*/evidence --version
