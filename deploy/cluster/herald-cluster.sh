#!/usr/bin/env bash
# herald-cluster.sh - run a 3-server NATS JetStream cluster (and, from phase 2 of issue 12, the
# herald nodes on it) on one machine, in the foreground; Ctrl-C or SIGTERM stops everything.
#
#   bash deploy/cluster/herald-cluster.sh            start, wait for JetStream, run until Ctrl-C
#   bash deploy/cluster/herald-cluster.sh --check    start, wait for JetStream, stop (exit 0 = ok)
#
# Environment (defaults in brackets):
#   HERALD_CLUSTER_DIR [/tmp/herald-cluster]  one sub-directory per server: store, log, pid
#   NATS_CLIENT_BASE   [14230]  server i (1..3) serves clients on NATS_CLIENT_BASE + i
#   NATS_ROUTE_BASE    [16240]  ... routes on NATS_ROUTE_BASE + i
#   NATS_MONITOR_BASE  [18220]  ... HTTP monitoring (/varz, /jsz, /routez) on NATS_MONITOR_BASE + i
# herald nodes use cluster.nats = nats://127.0.0.1:14231,nats://127.0.0.1:14232,nats://127.0.0.1:14233
set -euo pipefail

dir=${HERALD_CLUSTER_DIR:-/tmp/herald-cluster}
client_base=${NATS_CLIENT_BASE:-14230}
route_base=${NATS_ROUTE_BASE:-16240}
monitor_base=${NATS_MONITOR_BASE:-18220}
check_only=false
[ "${1:-}" = "--check" ] && check_only=true

command -v nats-server >/dev/null || {
  echo "herald-cluster: nats-server not found (bash deploy/setup.sh installs it)" >&2
  exit 1
}

pids=()
stop_all() {
  trap - INT TERM EXIT
  # Herald nodes first (phase 2), then the NATS servers; each by the pid we started.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  echo "herald-cluster: stopped" >&2
}
on_signal() {
  stop_all
  exit 0
}
trap on_signal INT TERM
trap stop_all EXIT

routes=""
for i in 1 2 3; do routes+="${routes:+,}nats://127.0.0.1:$((route_base + i))"; done

for i in 1 2 3; do
  d="$dir/n$i"
  mkdir -p "$d/store"
  nats-server -js -n "n$i" -a 127.0.0.1 -p $((client_base + i)) -m $((monitor_base + i)) \
    -sd "$d/store" --cluster_name herald --cluster "nats://127.0.0.1:$((route_base + i))" \
    --routes "$routes" -l "$d/nats.log" -P "$d/nats.pid" &
  pids+=($!)
done
echo "herald-cluster: nats-server n1..n3 pids ${pids[*]}, clients on 127.0.0.1:$((client_base + 1))..$((client_base + 3)), logs in $dir/n*/nats.log" >&2

# JetStream is usable once the servers agree on a meta leader: /jsz shows it on every server.
ready=false
for _ in $(seq 150); do
  ready=true
  for i in 1 2 3; do
    curl -sf "http://127.0.0.1:$((monitor_base + i))/jsz" 2>/dev/null | grep -q '"leader"' || ready=false
  done
  $ready && break
  sleep 0.2
done
$ready || { echo "herald-cluster: JetStream did not form a cluster within 30 s (see $dir/n*/nats.log)" >&2; exit 1; }
echo "herald-cluster: JetStream cluster ready" >&2

# Phase 2 of issue 12 starts the herald nodes here: one supervisor per node, each with its
# own runtime.dir, runtime.shm_prefix, ports, cluster.node_id = i and the cluster.nats list above.

$check_only && exit 0
echo "herald-cluster: running; Ctrl-C stops it" >&2
wait -n "${pids[@]}" || true
echo "herald-cluster: a process exited; stopping the rest" >&2
