#!/usr/bin/env bash
# test_nginx.sh - deploy/nginx/herald.conf routes each WebSocket client to the gateway that
# common/wire/shard.c picks for its user (rendezvous hashing, bit-exact in embedded Perl), with
# the upgrade headers forwarded; deploy/nginx/herald-tls.conf does the same behind TLS (a
# self-signed certificate made here, verified by the client). The gateways are stand-ins (nginx servers answering their
# own id): the thing under test is nginx's routing, not the gateway.
# Usage: test_nginx.sh SHARD_PRINT  (the tests/integration/shard_print program)
# Exit 0 pass, 1 fail, 77 skip (nginx, its Perl module or openssl is not installed).
set -euo pipefail

shard_print=${1:?usage: test_nginx.sh SHARD_PRINT}
root=${HERALD_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
perl_module=/usr/lib/nginx/modules/ngx_http_perl_module.so
gateways=5
users=300

nginx_bin=$(command -v nginx || true)
[ -z "$nginx_bin" ] && [ -x /usr/sbin/nginx ] && nginx_bin=/usr/sbin/nginx
if [ -z "$nginx_bin" ] || [ ! -f "$perl_module" ] || ! command -v openssl >/dev/null; then
  echo "SKIP: nginx, libnginx-mod-http-perl or openssl not installed (deploy/setup.sh --test installs them)"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/herald-nginx-test.$$.XXXXXX")
nginx_pid=
cleanup() {
  if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
    kill -TERM "$nginx_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/error.log" ] && tail -n 20 "$tmp/error.log"; exit 1; }

# Free loopback ports: one for the proxy, one per stand-in gateway.
read -r -a ports <<<"$(python3 - "$((gateways + 2))" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)"
proxy_port=${ports[0]}
tls_port=${ports[gateways + 1]}
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1 || fail "openssl req failed"
python3 - "$root/deploy/nginx/herald-tls.conf" "$tmp/herald-tls.conf" "$tls_port" "$tmp" <<'PY'
import re, sys
src, dst, port, tmp = sys.argv[1:]
conf = open(src).read()
def sub(pattern, repl, flags=re.M):
    global conf
    conf, n = re.subn(pattern, lambda m: repl, conf, flags=flags)
    if n != 1:
        sys.exit(f"herald-tls.conf: expected exactly one match of {pattern!r}, found {n}")
sub(r"^    listen 443 ssl;", f"    listen 127.0.0.1:{port} ssl;")
sub(r"^    ssl_certificate +\S+;", f"    ssl_certificate {tmp}/cert.pem;")
sub(r"^    ssl_certificate_key \S+;", f"    ssl_certificate_key {tmp}/key.pem;")
sub(r"^    access_log \S+ herald;", f"    access_log {tmp}/tls-access.log herald;")
open(dst, "w").write(conf)
PY

# The shipped herald.conf, with only its deployment-specific values replaced: where the
# Perl module is, the gateway count, the gateway list, the listen port, the access log.
# Each replacement is
# checked, so a herald.conf that drifts from this shape fails here instead of passing.
upstreams="$tmp/upstreams.conf"
any="upstream herald_gw_any {"
for ((g = 0; g < gateways; g++)); do
  backup=${ports[(g + 1) % gateways + 1]}
  echo "upstream herald_gw_$g { server 127.0.0.1:${ports[g + 1]}; server 127.0.0.1:$backup backup; }" >>"$upstreams"
  any+=" server 127.0.0.1:${ports[g + 1]};"
done
echo "$any }" >>"$upstreams"
python3 - "$root/deploy/nginx/herald.conf" "$tmp/herald.conf" "$root/deploy/nginx" \
  "$gateways" "$upstreams" "$proxy_port" "$tmp" <<'PY'
import re, sys
src, dst, moddir, count, upstreams, port, logdir = sys.argv[1:]
conf = open(src).read()
def sub(pattern, repl, flags=0):
    global conf
    conf, n = re.subn(pattern, lambda m: repl, conf, flags=flags)
    if n != 1:
        sys.exit(f"herald.conf: expected exactly one match of {pattern!r}, found {n}")
sub(r"^perl_modules [^;]+;", f"perl_modules {moddir};", re.M)
sub(r"HeraldShard::route\(\$_\[0\], \d+\)", f"HeraldShard::route($_[0], {count})")
sub(r"^# BEGIN herald gateways.*?^# END herald gateways$", open(upstreams).read(), re.M | re.S)
sub(r"^    listen 127\.0\.0\.1:\d+;", f"    listen 127.0.0.1:{port};", re.M)
sub(r"^    access_log \S+ herald;", f"    access_log {logdir}/access.log herald;", re.M)
open(dst, "w").write(conf)
PY

# Stand-in gateway g answers "gw<g>" and the upgrade headers it received.
{
  echo "load_module $perl_module;"
  echo "pid $tmp/nginx.pid;"
  echo "error_log $tmp/error.log info;"
  echo "daemon off;"
  echo "worker_processes 1;"
  echo "events { worker_connections 256; }"
  echo "http {"
  echo "  access_log off;"
  for d in client_body proxy fastcgi uwsgi scgi; do echo "  ${d}_temp_path $tmp/$d;"; done
  echo "  include $tmp/herald.conf;"
  echo "  include $tmp/herald-tls.conf;"
  for ((g = 0; g < gateways; g++)); do
    echo "  server { listen 127.0.0.1:${ports[g + 1]};"
    echo "    location / { return 200 \"gw$g upgrade=\$http_upgrade connection=\$http_connection uri=\$request_uri\"; } }"
  done
  echo "}"
} >"$tmp/nginx.conf"

"$nginx_bin" -t -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/error.log" >"$tmp/check.log" 2>&1 ||
  { cat "$tmp/check.log"; fail "nginx -t rejected the configuration"; }
"$nginx_bin" -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/error.log" &
nginx_pid=$!

# Users: plain, long (several 8-byte chunks), empty chunk boundaries, needing
# percent-encoding, and non-ASCII (UTF-8 bytes are hashed).
python3 - "$users" >"$tmp/users.txt" <<'PY'
import sys
n = int(sys.argv[1])
special = ["u1", "alice", "a", "abcdefgh", "abcdefghi", "0123456789abcdefX", "x" * 64,
           "trader 7", "a+b", "a&b=c", "100%", "ü-ser", "交易员", "user/with/slash"]
for u in special:
    print(u)
for i in range(n - len(special)):
    print(f"user-{i * 7919 % 100003}" if i % 2 else f"acct{i:06d}.sub")
PY
"$shard_print" "$gateways" <"$tmp/users.txt" >"$tmp/expected.txt"

rc=0
python3 - "$proxy_port" "$tmp/users.txt" "$tmp/expected.txt" "$nginx_pid" "$tls_port" \
  "$tmp/cert.pem" <<'PY' || rc=$?
import base64, http.client, json, os, ssl, sys, time, urllib.parse
port, users_file, expected_file, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tls_port, cafile = int(sys.argv[5]), sys.argv[6]
users = open(users_file, encoding="utf-8").read().split("\n")[:-1]
expected = open(expected_file).read().split()
assert len(users) == len(expected), "shard_print answered a different number of users"

def connect():
    deadline = time.time() + 20
    while True:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit("FAIL: nginx exited during start-up")
        try:
            c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
            c.request("GET", "/ws")
            c.getresponse().read()
            return c
        except OSError:
            if time.time() > deadline:
                sys.exit("FAIL: nginx did not accept connections within 20 s")
            time.sleep(0.1)

def jwt(sub):  # unsigned as far as nginx cares: it never checks the signature
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    header = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
    claims = json.dumps({"sub": sub, "iat": 1, "exp": 4000000000}).encode()
    return f"{enc(header)}.{enc(claims)}.c2lnbmF0dXJl"

def get(conn, query, headers=None):
    conn.request("GET", "/ws?" + query, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.getheader("X-Herald-Gateway"), r.read().decode()

conn = connect()
failures = 0
for i, (user, want) in enumerate(zip(users, expected)):
    q = urllib.parse.quote(user, safe="")
    if i % 3 == 0:
        query, hdrs, how = f"user={q}&since=5", None, "user parameter"
    elif i % 3 == 1:
        query, hdrs, how = f"since=5&token={jwt(user)}", None, "token parameter"
    else:
        query, hdrs, how = "since=5&user=someone-else", {"Authorization": f"Bearer {jwt(user)}"}, \
            "Authorization header (its sub wins over user=)"
    status, chosen, body = get(conn, query, hdrs)
    if status != 200 or chosen != want or not body.startswith(f"gw{want} "):
        failures += 1
        print(f"FAIL: user {user!r} via {how}: C says gateway {want}, nginx chose "
              f"{chosen} (status {status}, body {body!r})")
    elif not body.endswith("uri=/ws?" + query):
        failures += 1
        print(f"FAIL: the request URI was not passed on unchanged: {body!r}")

# '+' in the user parameter is a space (form encoding), so "trader+7" is "trader 7".
idx = users.index("trader 7")
status, chosen, _ = get(conn, "user=trader+7")
if chosen != expected[idx]:
    failures += 1
    print(f"FAIL: user=trader+7 went to {chosen}, 'trader 7' belongs to {expected[idx]}")

# Upgrade headers reach the gateway only when the client asks to upgrade.
_, _, body = get(conn, "user=u1", {"Upgrade": "websocket", "Connection": "Upgrade"})
if "upgrade=websocket connection=upgrade " not in body:
    failures += 1
    print(f"FAIL: upgrade headers not forwarded: {body!r}")
_, _, body = get(conn, "user=u1")
if "upgrade= connection=close " not in body:
    failures += 1
    print(f"FAIL: a plain request was forwarded with upgrade headers: {body!r}")

# No user, an unreadable token, an over-long user: balanced over all gateways.
for query in ["since=1", "token=not-a-jwt", "user=" + "x" * 65]:
    status, chosen, body = get(conn, query)
    if status != 200 or chosen != "any" or not body.startswith("gw"):
        failures += 1
        print(f"FAIL: {query[:20]!r}: expected any gateway, got {chosen} {status} {body!r}")

# The TLS server (herald-tls.conf) routes the same way; the client verifies the certificate.
tls = http.client.HTTPSConnection("127.0.0.1", tls_port, timeout=10,
                                  context=ssl.create_default_context(cafile=cafile))
for user, want in list(zip(users, expected))[:40]:
    status, chosen, body = get(tls, f"token={jwt(user)}",
                               {"Upgrade": "websocket", "Connection": "Upgrade"})
    if status != 200 or chosen != want or "upgrade=websocket connection=upgrade " not in body:
        failures += 1
        print(f"FAIL: over TLS, user {user!r}: want gateway {want}, got {chosen} {status} {body!r}")

print(f"{len(users)} users routed through nginx (40 of them over TLS), {failures} mismatches")
sys.exit(1 if failures else 0)
PY
[ "$rc" -eq 0 ] || fail "nginx routing differs from common/wire/shard.c"
grep -q 'gateway=[0-9]' "$tmp/access.log" || fail "access log does not name the chosen gateway"
! grep -q 'token=' "$tmp/access.log" || fail "access log records the clients' tokens"
kill -0 "$nginx_pid" 2>/dev/null || fail "nginx died during the test"
echo "PASS: nginx routes like shard_gateway for $users users over $gateways gateways"
