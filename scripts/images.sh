#!/usr/bin/env bash
# make images: build the example and test images locally, no registry.
#   orch/hello:dev    a static Go HTTP server (examples/images/hello)
#   orch/busybox:dev  Debian's busybox-static (sh, wget, nslookup, ...)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/docker.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# build TAG DIR: docker build, showing its output only when it fails (the
# legacy builder otherwise prints a deprecation notice every time).
build() {
  if ! docker build -q -t "$1" "$2" >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    exit 1
  fi
  echo "built $1"
}

mkdir "$work/hello"
CGO_ENABLED=0 go build -o "$work/hello/hello" ./examples/images/hello
cp examples/images/hello/Dockerfile "$work/hello/"
build orch/hello:dev "$work/hello"

dpkg -s busybox-static >/dev/null 2>&1 || scripts/deps.sh
mkdir "$work/busybox"
cp /bin/busybox "$work/busybox/busybox"
cp examples/images/busybox/Dockerfile "$work/busybox/"
build orch/busybox:dev "$work/busybox"
