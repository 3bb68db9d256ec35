#!/usr/bin/env python3
"""test_cluster_script.py - deploy/cluster/herald-cluster.sh starts a 3-server NATS
JetStream cluster and 3 herald nodes on the ports it is given; the nodes see each other and
share the partitions, a notification published on one node is acknowledged, and on Ctrl-C
(SIGINT) it stops every process it started (herald nodes with their brokers and gateways,
then the servers) and exits 0. Skips (77) without nats-server."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def bases(count, span):
    """count bases with ports base+1..base+span free."""
    start = 20000 + (os.getpid() * 53) % 9000
    found = []
    port = start
    while len(found) < count and port < 31000:
        if all(free(port + i) for i in range(1, span + 1)):
            found.append(port)
            port += span + 1
        else:
            port += 1
    return found


def get_json(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


def ours(work):
    """pids of live processes whose command line names the work dir (nodes, brokers, gateways)."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if work.encode() in f.read():
                    found.append(int(p))
        except OSError:
            pass
    return found


def main():
    if not any(os.access(p, os.X_OK) for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server",
                                               "/usr/local/bin/nats-server")):
        print("SKIP: nats-server is not installed")
        return 77
    root = os.environ.get("HERALD_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../.."))
    build = os.environ.get("HERALD_BUILD_ROOT", os.path.join(root, "build"))
    script = os.path.join(root, "deploy/cluster/herald-cluster.sh")
    work = tempfile.mkdtemp(prefix="herald-cluster-script-")
    shm = f"hcs{os.getpid()}n"
    client, route, monitor, http = bases(4, 3)
    ws = bases(1, 35)[0]
    env = dict(os.environ, HERALD_CLUSTER_DIR=work, NATS_CLIENT_BASE=str(client),
               NATS_ROUTE_BASE=str(route), NATS_MONITOR_BASE=str(monitor),
               HERALD_HTTP_BASE=str(http), HERALD_WS_BASE=str(ws), HERALD_BUILD=build,
               HERALD_PARTITIONS="4", HERALD_SHM_PREFIX=shm)
    proc = subprocess.Popen(["bash", script], env=env, stderr=subprocess.PIPE, text=True)
    ok = False
    try:
        deadline = time.time() + 180
        lines = []
        while time.time() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "running; Ctrl-C stops it" in line:
                ok = True
                break
        assert ok, "not ready:\n" + "".join(lines)
        pids = [int(open(os.path.join(work, f"n{i}", "nats.pid")).read()) for i in (1, 2, 3)]
        for i in (1, 2, 3):  # every server answers and JetStream has a meta leader
            with urllib.request.urlopen(f"http://127.0.0.1:{monitor + i}/jsz", timeout=5) as r:
                assert b'"leader"' in r.read(), f"server {i}: no meta leader"
        # Every node sees the three, and the partitions settle on one owner each.
        settled = False
        for _ in range(150):
            views = [get_json(http + i, "/api/cluster") for i in (1, 2, 3)]
            owners = [[p["owner"] for p in v["partition"]] for v in views]
            held = [sum(p["owned"] for v in views for p in v["partition"] if p["p"] == k)
                    for k in range(5)]
            if all(sorted(v["nodes"]) == [1, 2, 3] for v in views) and \
                    owners[0] == owners[1] == owners[2] and all(o for o in owners[0]) and \
                    held == [1] * 5:
                settled = True
                break
            time.sleep(0.2)
        assert settled, f"partitions did not settle: {views}"
        # Published on node 1, acknowledged (whichever node owns the user's partition).
        body = json.dumps({"user_id": "script-user", "message_type": "system_notice",
                           "payload": {"title": "t", "content": "c", "level": "info"}}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{http + 1}/api/publish", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.loads(r.read())["seq"] == 1
        nodes = ours(work)
        assert len(nodes) >= 9, f"expected 3 supervisors, brokers, gateways: {nodes}"
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=90)
        rest = proc.stderr.read()
        assert rc == 0, f"exit {rc}: {rest}"
        assert "stopped" in rest, rest
        for pid in pids + nodes:
            try:
                os.kill(pid, 0)
                raise AssertionError(f"process {pid} still running")
            except ProcessLookupError:
                pass
        print("PASS: herald-cluster.sh starts 3 servers and 3 herald nodes that share the "
              "partitions, and stops them all on Ctrl-C")
        return 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in ours(work):  # whatever the script left behind
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for i in (1, 2, 3):
            try:
                pid = int(open(os.path.join(work, f"n{i}", "nats.pid")).read())
                with open(f"/proc/{pid}/comm") as comm:
                    if comm.read().strip() == "nats-server":
                        os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        for name in os.listdir("/dev/shm"):  # the nodes' rings, journals, heartbeats
            if name.startswith(shm):
                try:
                    os.unlink(os.path.join("/dev/shm", name))
                except OSError:
                    pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
