// ops.js - herald's operations page: polls the broker's /api/stats and /api/status and each
// gateway's /stats once a second, and draws rates, queues, rings and processes. No framework:
// tables are rebuilt from the numbers, charts are drawn on canvases.
const $ = (id) => document.getElementById(id);
const POLL_MS = 1000;
const HISTORY = 120; // samples kept per chart
const PRIO_COLORS = ['#c62828', '#ef6c00', '#1565c0', '#616161'];

const series = { publish: [], sent: [], pushed: [], queues: [[], [], [], []] };
let prev = null; // {t, accepted, sent, pushed: {gw: n}}
const gwStats = new Map(); // id -> last /stats of that gateway
const gwPushRate = new Map();
window.heraldOps = { series, polls: 0 }; // for the browser tests and the curious

const fmt = (n) => (n === undefined || n === null ? '-' : Number(n).toLocaleString('en-US', { maximumFractionDigits: 1 }));
function push(arr, v) {
  arr.push(v);
  if (arr.length > HISTORY) arr.shift();
}

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.append(td);
  return td;
}

// A line chart of one or more series, scaled to the largest value shown.
function chart(canvas, lines) {
  const ctx = canvas.getContext('2d');
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const max = Math.max(1, ...lines.flatMap((l) => l.data));
  ctx.fillStyle = '#888';
  ctx.font = '10px sans-serif';
  ctx.fillText(fmt(max), 4, 11);
  for (const { data, color } of lines) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    data.forEach((v, i) => {
      const x = w - (data.length - 1 - i) * (w / (HISTORY - 1));
      const y = h - 2 - (v / max) * (h - 16);
      if (i) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
    });
    ctx.stroke();
  }
}

async function getJson(url) {
  const r = await fetch(url, { cache: 'no-store' });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

function renderTotals(s) {
  const t = $('totals');
  t.replaceChildren();
  const rows = [
    ['accepted', 'messages_accepted'], ['sent', 'messages_sent'], ['deduplicated', 'messages_deduplicated'],
    ['dropped', 'messages_dropped'], ['invalid', 'messages_invalid'], ['ring drops', 'ring_drops'],
    ['active users', 'active_users'], ['active gateways', 'active_gateways'], ['replays', 'replays'], ['gaps', 'gaps'],
  ];
  for (let i = 0; i < rows.length; i += 5) {
    const tr = document.createElement('tr');
    for (const [label, key] of rows.slice(i, i + 5)) {
      cell(tr, label, 'hint');
      cell(tr, fmt(s[key]), 'num').id = `total-${key}`;
    }
    t.append(tr);
  }
}

function renderQueues(s, cap) {
  const q = $('queues');
  q.replaceChildren();
  s.queue_sizes.forEach((n, p) => {
    const c = cap?.[p] || 1;
    const div = document.createElement('div');
    div.className = `bar${n / c > 0.8 ? ' hot' : ''}`;
    div.innerHTML = '<div class="label"></div><div class="track"><div class="fill"></div></div>';
    div.querySelector('.label').textContent = `P${p}: ${fmt(n)} / ${fmt(c)} (refused ${fmt(s.queue_full?.[p])})`;
    div.querySelector('.label').id = `queue-P${p}`;
    div.querySelector('.fill').style.width = `${Math.min(100, (100 * n) / c)}%`;
    q.append(div);
    push(series.queues[p], n);
  });
  chart($('chart-queues'), series.queues.map((data, p) => ({ data, color: PRIO_COLORS[p] })));
}

// Latency per priority: the broker's stats.latency ({"ingest":{"P0":{"p50_ms","p99_ms","count"}}})
// and each gateway's /stats latency.delivery, a row group each.
function renderLatency(s) {
  const lat = { ...(s.latency || {}) };
  for (const [id, g] of [...gwStats].sort((x, y) => x[0] - y[0]))
    if (g?.latency?.delivery) lat[`delivery gw${id}`] = g.latency.delivery;
  if (!Object.keys(lat).length) return;
  const slo = s.slo_ms || null; // [p0..p3] when the broker reports its SLOs
  const table = document.createElement('table');
  table.id = 'latency-table';
  const head = document.createElement('tr');
  for (const h of ['', 'P0', 'P1', 'P2', 'P3']) {
    const th = document.createElement('th');
    th.textContent = h;
    head.append(th);
  }
  table.append(head);
  for (const [kind, per] of Object.entries(lat)) {
    for (const pct of ['p50_ms', 'p99_ms', 'count']) {
      const tr = document.createElement('tr');
      cell(tr, `${kind} ${pct.replace('_ms', '')}`, 'hint');
      for (let p = 0; p < 4; p++) {
        const v = per?.[`P${p}`]?.[pct];
        const td = cell(tr, pct === 'count' ? fmt(v) : v === undefined ? '-' : `${Number(v).toFixed(3)} ms`, 'num');
        if (pct === 'p99_ms' && slo && v > slo[p]) td.classList.add('slo-bad');
      }
      table.append(tr);
    }
  }
  $('latency').replaceChildren(table);
}

function renderGateways(s, status) {
  const body = $('gateways').querySelector('tbody');
  body.replaceChildren();
  const ids = new Set([...(status?.gateways || []).map((g) => g.id), ...s.gateways.map((g) => g.id)]);
  for (const id of [...ids].sort((a, b) => a - b)) {
    const g = s.gateways.find((x) => x.id === id) || {};
    const gs = gwStats.get(id);
    const tr = document.createElement('tr');
    tr.id = `gw-${id}`;
    cell(tr, String(id));
    cell(tr, g.attached ? 'yes' : 'no', g.attached ? 'up' : 'down');
    cell(tr, gs ? fmt(gs.active_sessions) : '-', 'num').id = `gw-${id}-sessions`;
    cell(tr, fmt(g.users), 'num');
    const ring = g.ring || {};
    const fill = ring.capacity ? (100 * ring.used_bytes) / ring.capacity : 0;
    cell(tr, `${fill.toFixed(1)} %`, 'num').id = `gw-${id}-fill`;
    cell(tr, fmt(ring.pending_records), 'num');
    cell(tr, fmt(ring.used_bytes), 'num');
    cell(tr, fmt(g.drops), 'num');
    cell(tr, gwPushRate.has(id) ? fmt(gwPushRate.get(id)) : '-', 'num').id = `gw-${id}-pushed`;
    cell(tr, fmt(ring.consumer_pid), 'num');
    body.append(tr);
  }
}

function renderProcesses(status) {
  const body = $('processes').querySelector('tbody');
  body.replaceChildren();
  const sup = status?.supervisor;
  $('supervisor').textContent = sup ? `supervisor pid ${sup.supervisor_pid}` : 'no supervisor status (broker not run by herald-supervisor)';
  const now = (status?.now_ms ?? Date.now()) / 1000;
  for (const p of sup?.processes || []) {
    const tr = document.createElement('tr');
    tr.id = `proc-${p.name}`;
    cell(tr, p.name);
    cell(tr, String(p.pid || '-'), 'num');
    cell(tr, p.state, p.state === 'up' ? 'up' : p.state === 'stopped' ? 'down' : 'other');
    cell(tr, String(p.restarts), 'num');
    cell(tr, p.state === 'up' && p.started_at ? `${Math.round(now - p.started_at)} s` : '-', 'num');
    cell(tr, p.last_exit || '');
    body.append(tr);
  }
}

async function poll() {
  let s, status;
  try {
    [s, status] = await Promise.all([getJson('/api/stats'), getJson('/api/status').catch(() => null)]);
  } catch (e) {
    $('updated').textContent = `broker unreachable: ${e.message}`;
    return;
  }
  // Gateways' own /stats (sessions, pushes); another origin, which they allow.
  await Promise.all((status?.gateways || []).map(async (g) => {
    try {
      gwStats.set(g.id, await getJson(g.stats));
    } catch {
      gwStats.delete(g.id);
    }
  }));
  const t = performance.now() / 1000;
  const pushed = Object.fromEntries([...gwStats].map(([id, g]) => [id, g.messages_pushed]));
  if (prev) {
    const dt = Math.max(t - prev.t, 0.001);
    const rate = (a, b) => Math.max(0, (a - b) / dt);
    const rp = rate(s.messages_accepted, prev.accepted), rs = rate(s.messages_sent, prev.sent);
    let rpu = 0;
    for (const [id, n] of Object.entries(pushed)) {
      const r = prev.pushed[id] === undefined ? 0 : rate(n, prev.pushed[id]);
      gwPushRate.set(Number(id), r);
      rpu += r;
    }
    push(series.publish, rp);
    push(series.sent, rs);
    push(series.pushed, rpu);
    $('rate-publish').textContent = fmt(rp);
    $('rate-sent').textContent = fmt(rs);
    $('rate-pushed').textContent = fmt(rpu);
    chart($('chart-publish'), [{ data: series.publish, color: '#1565c0' }]);
    chart($('chart-sent'), [{ data: series.sent, color: '#2e7d32' }]);
    chart($('chart-pushed'), [{ data: series.pushed, color: '#ef6c00' }]);
  }
  prev = { t, accepted: s.messages_accepted, sent: s.messages_sent, pushed };
  renderTotals(s);
  renderQueues(s, status?.queue_capacity);
  renderLatency(s);
  renderGateways(s, status);
  renderProcesses(status);
  window.heraldOps.polls++;
  $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function loop() {
  await poll();
  setTimeout(loop, POLL_MS);
}
loop();
