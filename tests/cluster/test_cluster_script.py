#!/usr/bin/env python3
"""test_cluster_script.py - deploy/cluster/herald-cluster.sh starts a 3-server NATS
JetStream cluster on the ports it is given, reports it ready, and on Ctrl-C (SIGINT) stops
every server it started and exits 0. Skips (77) without nats-server."""
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


def bases():
    """Three bases (clients, routes, monitoring) with ports base+1..base+3 free."""
    start = 20000 + (os.getpid() * 53) % 9000
    found = []
    port = start
    while len(found) < 3 and port < 31000:
        if all(free(port + i) for i in (1, 2, 3)):
            found.append(port)
            port += 4
        else:
            port += 1
    return found


def main():
    if not any(os.access(p, os.X_OK) for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server",
                                               "/usr/local/bin/nats-server")):
        print("SKIP: nats-server is not installed")
        return 77
    root = os.environ.get("HERALD_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../.."))
    script = os.path.join(root, "deploy/cluster/herald-cluster.sh")
    work = tempfile.mkdtemp(prefix="herald-cluster-script-")
    client, route, monitor = bases()
    env = dict(os.environ, HERALD_CLUSTER_DIR=work, NATS_CLIENT_BASE=str(client),
               NATS_ROUTE_BASE=str(route), NATS_MONITOR_BASE=str(monitor))
    proc = subprocess.Popen(["bash", script], env=env, stderr=subprocess.PIPE, text=True)
    ok = False
    try:
        deadline = time.time() + 60
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
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
        rest = proc.stderr.read()
        assert rc == 0, f"exit {rc}: {rest}"
        assert "stopped" in rest, rest
        for pid in pids:
            try:
                os.kill(pid, 0)
                raise AssertionError(f"nats-server {pid} still running")
            except ProcessLookupError:
                pass
        print("PASS: herald-cluster.sh starts 3 servers, a meta leader, and stops them on Ctrl-C")
        return 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for i in (1, 2, 3):  # whatever the script left behind, by its pid files
            try:
                pid = int(open(os.path.join(work, f"n{i}", "nats.pid")).read())
                with open(f"/proc/{pid}/comm") as comm:
                    if comm.read().strip() == "nats-server":
                        os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
