#!/usr/bin/env bash
# DNS load test: serve 1,000 synthetic services from the DNS server pinned
# to CPU 0 and query it with dnsperf pinned to CPU 1 (8 queries
# outstanding, 20 s). Needs dnsperf (Debian package dnsperf) and taskset.
#   scripts/dnsperf.sh [seconds] [extra dnsbench flags, e.g. -cpuprofile /tmp/dns.prof]
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-20}
shift || true
port=${DNSPERF_PORT:-5300}
for tool in dnsperf taskset; do
  command -v "$tool" >/dev/null || { echo "dnsperf.sh: $tool not found (apt-get install -y dnsperf)" >&2; exit 1; }
done

dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

go build -o "$dir/dnsbench" ./dns/internal/dnsbench
taskset -c 0 "$dir/dnsbench" -addr "127.0.0.1:$port" -services 1000 -queries "$dir/queries.txt" "$@" \
  >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  grep -q serving "$dir/server.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  sleep 0.1
done
grep -q serving "$dir/server.log" || { echo "dnsperf.sh: server did not start" >&2; cat "$dir/server.log" >&2; exit 1; }

taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$dir/queries.txt" -l "$secs" -q 8 -c 1 -T 1
