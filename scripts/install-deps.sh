#!/usr/bin/env bash
# Installs what moesim needs beyond the Swift toolchain: OpenBLAS (and pkg-config to find it).
# Does nothing when both are already there.
set -euo pipefail
if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openblas; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq pkg-config libopenblas-dev >/dev/null
pkg-config --exists openblas
