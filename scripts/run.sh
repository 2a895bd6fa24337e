#!/usr/bin/env bash
# make run: start `orchd dev` (a single-server cluster and a node agent in one
# process) from bin/, with its state in .orch/dev, and deploy the example.
# `make stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=.orch/dev
mkdir -p "$dir"
if [ -f "$dir/orchd.pid" ] && kill -0 "$(cat "$dir/orchd.pid")" 2>/dev/null; then
  echo "orchd dev is already running (pid $(cat "$dir/orchd.pid")); restarting it"
  kill "$(cat "$dir/orchd.pid")"
  while kill -0 "$(cat "$dir/orchd.pid")" 2>/dev/null; do sleep 0.2; done
fi

echo "starting orchd dev (logs: $dir/orchd.log)"
nohup bin/orchd dev --data-dir "$dir" >"$dir/orchd.log" 2>&1 &
echo $! >"$dir/orchd.pid"

export ORCHCONFIG=$PWD/$dir/admin.kubeconfig
alive() {
  if ! kill -0 "$(cat "$dir/orchd.pid")" 2>/dev/null; then
    echo "orchd exited; the end of its log:" >&2
    tail -20 "$dir/orchd.log" >&2
    exit 1
  fi
}
for _ in $(seq 1 150); do
  alive
  if [ -f "$ORCHCONFIG" ] && bin/orchctl get nodes 2>/dev/null | grep -q " Ready"; then
    break
  fi
  sleep 0.2
done
bin/orchctl get nodes

echo
echo "deploying examples/hello.yaml"
bin/orchctl apply -f examples/hello.yaml
for _ in $(seq 1 100); do
  alive
  running=$(bin/orchctl get pods -n demo 2>/dev/null | grep -c " Running " || true)
  [ "$running" -ge 2 ] && break
  sleep 0.2
done
echo
bin/orchctl get pods -n demo -o wide
pod=$(bin/orchctl get pods -n demo -o name | head -1 | cut -d/ -f2)
ip=$(bin/orchctl get pod "$pod" -n demo -o json | sed -n 's/.*"podIP": *"\([^"]*\)".*/\1/p' | head -1)
if [ -n "$ip" ] && command -v wget >/dev/null; then
  echo
  echo "asking $pod at its pod IP $ip:"
  wget -qO- "http://$ip:8080/" || true
fi
cat <<MSG

The cluster is running; orchctl finds it through ~/.orch/config. Try:
  bin/orchctl get deploy,pods -n demo -o wide
  bin/orchctl logs $pod -n demo
  bin/orchctl exec $pod -n demo -- /hello env
  bin/orchctl scale deployment/hello -n demo --replicas 4
  bin/orchctl rollout restart deployment/hello -n demo
  bin/orchctl rollout status deployment/hello -n demo
  bin/orchctl rollout history deployment/hello -n demo
Stop it with: make stop
MSG
