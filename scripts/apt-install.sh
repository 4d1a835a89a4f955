#!/usr/bin/env bash
# apt-get install the given Debian packages (the callers pass only the missing ones): as root, or
# through sudo; the package lists are refreshed only when installing from the present ones fails
# (absent or stale on a fresh machine).
set -euo pipefail
[ "$#" -gt 0 ] || exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "apt-get install $*"
if ! $sudo apt-get install -y -q --no-install-recommends "$@"; then
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "$@"
fi
