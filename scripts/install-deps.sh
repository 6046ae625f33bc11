#!/usr/bin/env bash
# Installs what moesim needs beyond the Swift toolchain: OpenBLAS (and pkg-config to find it).
# Does nothing when both are already there.
set -euo pipefail
if ! command -v swift >/dev/null 2>&1; then
    echo "install-deps: no swift on PATH; install Swift 6.1 or newer (https://www.swift.org/install)" >&2
    exit 1
fi
if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openblas; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-deps: OpenBLAS is missing; run as root or install sudo, or: apt-get install pkg-config libopenblas-dev" >&2
        exit 1
    fi
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq pkg-config libopenblas-dev >/dev/null
pkg-config --exists openblas
