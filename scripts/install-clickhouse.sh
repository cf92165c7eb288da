#!/usr/bin/env bash
# Installs ClickHouse from Debian's packages when no server binary is
# present (clickhouse-server from Debian, or the single clickhouse binary of
# a current release). Needs root or sudo.
set -euo pipefail
if command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || command -v clickhouse >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-clickhouse: run as root or install sudo" >&2; exit 1; }
  SUDO=sudo
fi
echo "Installing ClickHouse from Debian's packages..."
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
echo "ClickHouse installed."
