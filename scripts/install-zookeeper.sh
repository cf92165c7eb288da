#!/usr/bin/env bash
# Installs ZooKeeper (and java) from Debian's packages when missing: the
# ClickHouse cluster tests (internal/testenv.ClickHouseCluster) start a
# standalone ZooKeeper from /usr/share/java/zookeeper.jar. Needs root or
# sudo.
set -euo pipefail
if [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-zookeeper: run as root or install sudo" >&2; exit 1; }
  SUDO=sudo
fi
echo "Installing ZooKeeper from Debian's packages..."
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper >/dev/null
echo "ZooKeeper installed."
