#!/usr/bin/env bash
# Make sure Docker Engine answers before images are built or tests run:
# install it from Debian's packages when it is missing and start the daemon
# when it is stopped (its log then goes to /var/log/orch-dockerd.log).
set -euo pipefail

reachable() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

reachable && exit 0

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

if ! command -v dockerd >/dev/null 2>&1; then
  echo "installing docker.io (Docker Engine)"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q docker.io >/dev/null
  reachable && exit 0
fi

echo "starting Docker Engine (log: /var/log/orch-dockerd.log)"
# setsid and closed descriptors: the daemon outlives this script and holds
# none of the caller's pipes open.
$sudo setsid nohup dockerd </dev/null >>/var/log/orch-dockerd.log 2>&1 &

for _ in $(seq 1 120); do
  reachable && { echo "Docker Engine is up"; exit 0; }
  sleep 0.5
done
echo "Docker Engine did not start within 60 s; see /var/log/orch-dockerd.log" >&2
tail -n 20 /var/log/orch-dockerd.log >&2 || true
exit 1
