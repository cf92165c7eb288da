#!/usr/bin/env bash
# The quick start: on a fresh Debian machine with Go, installs and starts a
# local ClickHouse if none answers, builds evidenced and evidence, and runs
# evidenced with its embedded NATS in the foreground (Ctrl-C stops it).
# Extra arguments go to evidenced (--demo=false: no demo evidence).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${EVIDENCE_DATA_DIR:-./data}"
CH_PORT="${EVIDENCE_CH_PORT:-9000}"
CH_HTTP_PORT="${EVIDENCE_CH_HTTP_PORT:-8123}"

command -v go >/dev/null 2>&1 || { echo "quickstart: Go 1.26 or newer is needed (https://go.dev/doc/install)" >&2; exit 1; }
scripts/install-clickhouse.sh
mkdir -p "$DATA"
go run ./internal/chlocal/cmd/chlocal -dir "$DATA/clickhouse" -tcp-port "$CH_PORT" -http-port "$CH_HTTP_PORT"
echo "Building evidenced and evidence into ./bin ..."
go build -o bin/ ./cmd/evidenced ./cmd/evidence

HTTP_ADDR="${EVIDENCE_HTTP_ADDR:-127.0.0.1:8080}"
cat <<MSG

evidenced starts now, with demo evidence (--demo, sources https://demo.evidence.invalid/...).
The live page: http://$HTTP_ADDR/live/   (first changes within seconds)

In another terminal:

  bin/evidence emit --type dev.evidencepipeline.pipelinerun.finished.v1 --source https://ci.example/acme \\
    --data '{"repository":"github.com/acme/payments","commit":"4f2a9c1","run_id":"1","outcome":"success"}'
  clickhouse-client --port $CH_PORT -q 'SELECT stream_seq, type, event_id, hash FROM evidence.events'
  # as the read-only auditor (docs/auditor-guide.md; the URL is printed above)
  clickhouse-client --port $CH_PORT --user auditor --password "\$(cat $DATA/clickhouse/auditor.password)" -d evidence -q 'SELECT count() FROM changes FINAL'
  curl -s http://$HTTP_ADDR/readyz

MSG
exec bin/evidenced --http-addr "$HTTP_ADDR" --data-dir "$DATA" --clickhouse-url "clickhouse://127.0.0.1:$CH_PORT/evidence" --demo "$@"
