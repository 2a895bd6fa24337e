#!/usr/bin/env bash
# Install the Debian packages the tests and images need, when missing:
#   busybox-static   for the orch/busybox:dev image
#   docker-registry  the local registry the pull tests start on loopback
#   docker.io        Docker Engine, only when dockerd is missing (scripts/docker.sh)
set -euo pipefail
missing=()
for p in busybox-static docker-registry; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y -q "${missing[@]}" >/dev/null; then
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q "${missing[@]}" >/dev/null
  fi
fi
# Docker Engine itself: installed and started when it is not there.
"$(dirname "$0")/docker.sh"
