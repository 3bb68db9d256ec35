#!/usr/bin/env bash
# herald-cluster.sh - run herald in cluster mode on one machine, in the foreground: a 3-server
# NATS JetStream cluster and 3 herald nodes on it (each a herald-supervisor with its broker
# and gateways, its own runtime dir, shm prefix and ports). Ctrl-C or SIGTERM stops
# everything, herald nodes first.
#
#   bash deploy/cluster/herald-cluster.sh            start, run until Ctrl-C
#   bash deploy/cluster/herald-cluster.sh --check    start, wait until ready, stop (exit 0 = ok)
#   bash deploy/cluster/herald-cluster.sh --nats-only  the NATS servers alone
#
# Environment (defaults in brackets):
#   HERALD_CLUSTER_DIR [/tmp/herald-cluster]  n1..n3: NATS store, log, pid; node1..node3:
#                                             config, runtime dir, logs
#   NATS_CLIENT_BASE   [14230]  server i (1..3) serves clients on NATS_CLIENT_BASE + i
#   NATS_ROUTE_BASE    [16240]  ... routes on NATS_ROUTE_BASE + i
#   NATS_MONITOR_BASE  [18220]  ... HTTP monitoring (/varz, /jsz, /routez) on NATS_MONITOR_BASE + i
#   HERALD_HTTP_BASE   [7480]   node i's broker HTTP API on HERALD_HTTP_BASE + i
#   HERALD_WS_BASE     [7500]   node i's gateway g listens on HERALD_WS_BASE + 10 * i + g
#   HERALD_GATEWAYS    [1]      gateways per node
#   HERALD_PARTITIONS  [16]     cluster.partitions
#   HERALD_SHM_PREFIX  [heraldc]  node i's runtime.shm_prefix is this followed by i
#   HERALD_BUILD       [<repo>/build-release]  where the herald binaries are (built there by
#                               meson + ninja, release, when it has none yet)
#   HERALD_SECRET      [random, kept in $HERALD_CLUSTER_DIR/secret]  auth.secret of every node
# Each node's config is $HERALD_CLUSTER_DIR/node<i>/herald.ini: heraldctl -c it (heraldctl
# cluster, heraldctl token --user U, herald-bench e2e --node ...).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${HERALD_CLUSTER_DIR:-/tmp/herald-cluster}
client_base=${NATS_CLIENT_BASE:-14230}
route_base=${NATS_ROUTE_BASE:-16240}
monitor_base=${NATS_MONITOR_BASE:-18220}
http_base=${HERALD_HTTP_BASE:-7480}
ws_base=${HERALD_WS_BASE:-7500}
gateways=${HERALD_GATEWAYS:-1}
partitions=${HERALD_PARTITIONS:-16}
shm_prefix=${HERALD_SHM_PREFIX:-heraldc}
build=${HERALD_BUILD:-$root/build-release}
check_only=false
nats_only=false
case "${1:-}" in
  --check) check_only=true ;;
  --nats-only) nats_only=true ;;
  "") ;;
  *) echo "usage: herald-cluster.sh [--check | --nats-only]" >&2; exit 2 ;;
esac

command -v nats-server >/dev/null || {
  echo "herald-cluster: nats-server not found (bash deploy/setup.sh installs it)" >&2
  exit 1
}

pids=()      # NATS servers
node_pids=() # herald supervisors
stop_all() {
  trap - INT TERM EXIT
  # Herald nodes first (each hands its partitions over while NATS is up), then the servers;
  # each by the pid we started.
  for group in node_pids pids; do
    declare -n list=$group
    for pid in "${list[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${list[@]}"; do
      for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    done
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
urls=""
for i in 1 2 3; do
  routes+="${routes:+,}nats://127.0.0.1:$((route_base + i))"
  urls+="${urls:+,}nats://127.0.0.1:$((client_base + i))"
done

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

if ! $nats_only; then
  sup="$build/tools/supervisor/herald-supervisor"
  if [ ! -x "$sup" ]; then
    echo "herald-cluster: building herald (release) in $build" >&2
    [ -f "$build/build.ninja" ] || meson setup "$build" "$root" --buildtype=release -Dtests=false >/dev/null
    ninja -C "$build" >/dev/null
  fi
  secret=${HERALD_SECRET:-}
  if [ -z "$secret" ]; then
    [ -s "$dir/secret" ] || (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/secret")
    secret=$(cat "$dir/secret")
  fi
  for i in 1 2 3; do
    d="$dir/node$i"
    mkdir -p "$d"
    mkdir -p -m 0700 "$d/run"
    chmod 0700 "$d/run"
    (umask 077 && cat >"$d/herald.ini" <<EOF
; node $i of the herald-cluster.sh cluster (generated; edit the script, not this file)
[runtime]
dir = $d/run
shm_prefix = $shm_prefix$i
web_dir = $root/clients/web
[broker]
http = 127.0.0.1:$((http_base + i))
[gateway]
count = $gateways
listen = 127.0.0.1:$((ws_base + 10 * i))
[auth]
secret = $secret
[cluster]
nats = $urls
node_id = $i
partitions = $partitions
replicas = 3
EOF
)
    "$sup" -c "$d/herald.ini" >"$d/supervisor.log" 2>&1 &
    node_pids+=($!)
  done
  echo "herald-cluster: herald nodes 1..3 (supervisor pids ${node_pids[*]}): broker HTTP on 127.0.0.1:$((http_base + 1))..$((http_base + 3)), gateways from 127.0.0.1:$((ws_base + 10)), $((ws_base + 20)), $((ws_base + 30)); configs $dir/node*/herald.ini" >&2
  # Ready: every broker answers and sees the three nodes.
  ready=false
  for _ in $(seq 300); do
    ready=true
    for i in 1 2 3; do
      curl -sf "http://127.0.0.1:$((http_base + i))/api/cluster" 2>/dev/null |
        grep -q '"nodes":\[[0-9]*,[0-9]*,[0-9]*\]' || ready=false
    done
    $ready && break
    for pid in "${node_pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || { echo "herald-cluster: a node's supervisor exited (see $dir/node*/supervisor.log)" >&2; exit 1; }
    done
    sleep 0.2
  done
  $ready || { echo "herald-cluster: the herald nodes did not see each other within 60 s (see $dir/node*/supervisor.log)" >&2; exit 1; }
  echo "herald-cluster: herald nodes ready" >&2
fi

$check_only && exit 0
echo "herald-cluster: running; Ctrl-C stops it" >&2
# A NATS server that dies is not restarted (the cluster rides it out: that is what it is
# for); a node's supervisor restarts its own processes. The script ends when a supervisor
# (or, with --nats-only, a server) exits.
if $nats_only; then wait -n "${pids[@]}" || true; else wait -n "${node_pids[@]}" || true; fi
echo "herald-cluster: a process exited; stopping the rest" >&2
