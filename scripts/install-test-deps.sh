#!/usr/bin/env bash
# Installs the Debian packages the engine suite checks against, so that nothing skips on a fresh
# machine: python3-nbformat (Jupyter's own validator for the notebooks `linger run` writes) and
# python3-torch (the PyTorch round trips of state dicts and ONNX exports). Idempotent: when both
# are present it only checks. Needs Debian's apt (root, or sudo).
set -euo pipefail
missing=()
for p in python3-nbformat python3-torch; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
bash "$(dirname "$0")/apt-install.sh" ${missing[@]+"${missing[@]}"}
