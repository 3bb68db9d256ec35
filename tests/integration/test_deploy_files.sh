#!/usr/bin/env bash
# test_deploy_files.sh - the monitoring files in deploy/ are valid and watch real metrics:
# the Grafana dashboard is a well-formed dashboard whose every query parses, the alert
# rules load and fire at the guide's thresholds (promtool unit tests), and every herald_*
# metric they name is one the broker or gateway sources export.
# Parts needing promtool (Debian package prometheus) are skipped, saying so, without it.
set -euo pipefail

root=${HERALD_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herald-deploy-test.$$.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

dashboard=$root/deploy/grafana/herald-dashboard.json
alerts=$root/deploy/prometheus/herald-alerts.yml

# 1. The dashboard: JSON, a Prometheus datasource variable every panel uses, unique ids,
#    and its queries collected (with $gateway expanded) into a rule file promtool can parse.
python3 - "$dashboard" "$tmp/dashboard-rules.yml" "$tmp/dashboard-metrics.txt" <<'PY'
import json, re, sys
path, rules_out, metrics_out = sys.argv[1:]
try:
    d = json.load(open(path))
except ValueError as e:
    sys.exit(f"FAIL: {path} is not valid JSON: {e}")
errors = []
ds = [v for v in d.get("templating", {}).get("list", []) if v.get("type") == "datasource"]
if not ds or ds[0].get("query") != "prometheus":
    errors.append("no Prometheus datasource variable in templating")
var = "${%s}" % ds[0]["name"] if ds else None
ids, exprs = set(), []
for p in d.get("panels", []):
    if p.get("id") in ids:
        errors.append(f"panel id {p.get('id')} used twice")
    ids.add(p.get("id"))
    g = p.get("gridPos", {})
    if not all(k in g for k in "hwxy") or g["x"] + g["w"] > 24:
        errors.append(f"panel {p.get('title')!r}: bad gridPos {g}")
    if p.get("type") == "row":
        continue
    if p.get("datasource", {}).get("uid") != var:
        errors.append(f"panel {p.get('title')!r} does not use the datasource variable")
    if not p.get("targets"):
        errors.append(f"panel {p.get('title')!r} has no query")
    for t in p.get("targets", []):
        exprs.append((p["title"], t["expr"].replace("$gateway", ".*")))
for name in ["publish", "deliver", "queue", "ring", "fail", "session", "memory", "slow", "timeout"]:
    if not any(name in (t + " " + e).lower() for t, e in exprs):
        errors.append(f"no panel about {name}")
if errors:
    sys.exit("FAIL: " + "\n      ".join(errors))
with open(rules_out, "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        f.write(f"      - record: dashboard_query_{i}\n        expr: {json.dumps(e)}\n")
names = sorted({m for _, e in exprs for m in re.findall(r"\b(herald_[a-z_]+)", e)})
open(metrics_out, "w").write("\n".join(names) + "\n")
print(f"dashboard: {len(d['panels'])} panels, {len(exprs)} queries, valid JSON")
PY

# 2. The alert rules and the dashboard's queries, through Prometheus's own parser, and the
#    alert unit tests.
if command -v promtool >/dev/null; then
  promtool check rules "$alerts" "$tmp/dashboard-rules.yml"
  promtool check config "$root/deploy/prometheus/prometheus.yml"
  (cd "$root/tests/integration/prometheus" && promtool test rules herald-alerts.test.yml)
else
  echo "SKIP part: promtool not installed (apt-get install prometheus): alert rules and queries not parsed"
  python3 -c 'import json, sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert d["groups"]' \
    "$alerts" 2>/dev/null || echo "SKIP part: no python3 yaml either: herald-alerts.yml not even parsed"
fi

# 3. Every herald_* metric the alerts and the dashboard name is exported by the sources
#    (checked once broker/ and gateway/ have their sources, i.e. on the integrated tree).
grep -oE '\bherald_[a-z_]*[a-z]\b' "$alerts" >>"$tmp/dashboard-metrics.txt" || true
sort -u "$tmp/dashboard-metrics.txt" -o "$tmp/metrics.txt"
shopt -s nullglob
broker_src=("$root"/broker/*.c)
gateway_src=("$root"/gateway/*.c)
if [ ${#broker_src[@]} -eq 0 ] || [ ${#gateway_src[@]} -eq 0 ]; then
  echo "SKIP part: broker/ or gateway/ sources absent: metric names not checked against them"
else
  missing=0
  while read -r m; do
    case $m in
      herald_*_latency_seconds*|herald_slo_seconds)
        # protocol.md 14's names (common/wire/latency.c renders them; the broker and gateways name
        # them): the histogram's own suffixes come from the renderer
        base=${m%_bucket}; base=${base%_sum}; base=${base%_count}
        grep -qE "\"$base\"|$base[{ ]" "${broker_src[@]}" "${gateway_src[@]}" "$root/common/wire/latency.c" && continue
        echo "FAIL: $m is used by deploy/ but not exported"; missing=1; continue ;;
      herald_broker_*) src=("${broker_src[@]}"); short=${m#herald_broker_}; proc=broker ;;
      herald_gateway_*) src=("${gateway_src[@]}"); short=${m#herald_gateway_}; proc=gateway ;;
      *) echo "FAIL: $m is neither a broker nor a gateway metric"; missing=1; continue ;;
    esac
    # The broker writes its names literally; the gateway's table names a family and its
    # type, and its /metrics appends _total to counters not already ending in it.
    base=${short%_total}
    if [ "$proc" = broker ]; then
      grep -qE "\"$short\"|$m[{ \"]" "${src[@]}" && continue
    elif [ "$short" = "$base" ]; then
      grep -qE "\"$short\", \"gauge\"" "${src[@]}" && continue
    else
      grep -qE "\"$base\", \"counter\"|\"$short\"" "${src[@]}" && continue
    fi
    echo "FAIL: $m is used by deploy/ but not exported by the $proc sources"; missing=1
  done <"$tmp/metrics.txt"
  [ "$missing" -eq 0 ] || exit 1
  echo "metrics: $(wc -l <"$tmp/metrics.txt") herald_* names used, all exported"
fi
echo "PASS: deploy monitoring files"
