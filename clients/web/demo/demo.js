// demo.js - herald's demo page: connect as a user (development mode: a token from the
// broker's /api/dev/token), show live notifications by channel with priority, seq and
// publish->display latency, the resumed/gap events, and publish test notifications.
import { HeraldClient } from '/js/herald.js';

const $ = (id) => document.getElementById(id);
const CHANNELS = ['trade', 'account', 'position', 'risk', 'system'];
const MAX_PER_CHANNEL = 500;

// Payloads with every field protocol.md 2 requires, for the publish form.
const TEMPLATES = {
  system_notice: (u) => ({ title: 'maintenance', content: `hello ${u}`, level: 'info' }),
  risk_alert: (u) => ({ user_id: u, alert_type: 'margin', severity: 'high', message: 'ratio 92%', risk_ratio: 0.92, suggestion: 'add margin' }),
  margin_call: (u) => ({ user_id: u, current_margin: 1000, required_margin: 1500, deadline: 1800000000, message: 'add margin' }),
  order_rejected: () => ({ order_id: 'o-1', instrument_id: 'IF2606', reason: 'price out of range', error_code: 1021 }),
  trade_executed: () => ({ trade_id: 't-1', order_id: 'o-1', exchange_order_id: 'x-1', instrument_id: 'IF2606', direction: 'buy', offset: 'open', price: 3890.2, volume: 1, commission: 2.3, fill_type: 'full' }),
  account_update: (u) => ({ user_id: u, balance: 100000, available: 80000, frozen: 5000, margin: 15000, position_profit: 120, close_profit: 0, risk_ratio: 0.15 }),
  position_update: (u) => ({ user_id: u, instrument_id: 'IF2606', volume_long: 2, volume_short: 0, cost_long: 3880, cost_short: 0, profit_long: 40, profit_short: 0 }),
};

const state = { client: null, config: { dev: false, broker: '', gateway: null }, counts: { shown: 0, duplicates: 0 } };
window.heraldDemo = state; // for the browser tests and the curious

function event(kind, text) {
  const li = document.createElement('li');
  li.className = kind;
  li.dataset.kind = kind;
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $('events').prepend(li);
  while ($('events').children.length > 200) $('events').lastChild.remove();
}

function channelList(channel) {
  let list = document.querySelector(`.channel[data-channel="${CSS.escape(channel)}"] ul`);
  if (list) return list;
  const sec = document.createElement('div');
  sec.className = 'channel';
  sec.dataset.channel = channel;
  sec.innerHTML = '<h3></h3><ul></ul>';
  sec.querySelector('h3').textContent = channel;
  $('channels').append(sec);
  return sec.querySelector('ul');
}

function show(n) {
  const li = document.createElement('li');
  li.className = `notif p${n.priority}${n.user_id === '*' ? ' bcast' : ''}`;
  li.dataset.seq = String(n.seq);
  li.dataset.user = n.user_id;
  li.dataset.type = n.message_type;
  const latency = Date.now() - n.timestamp / 1e6;
  const head = document.createElement('div');
  const seq = document.createElement('span');
  seq.className = 'seq';
  seq.textContent = `#${n.seq}${n.user_id === '*' ? ' (broadcast)' : ''} `;
  const prio = document.createElement('span');
  prio.className = 'prio';
  prio.textContent = `P${n.priority}`;
  const lat = document.createElement('span');
  lat.className = 'lat';
  lat.textContent = `${latency.toFixed(1)} ms`;
  lat.title = 'publish (broker timestamp) to display, this browser\'s clock';
  head.append(seq, prio, ` ${n.message_type}`, lat);
  const body = document.createElement('div');
  body.className = 'body';
  body.textContent = JSON.stringify(n.payload);
  li.append(head, body);
  const list = channelList(n.channel || 'other');
  list.prepend(li);
  while (list.children.length > MAX_PER_CHANNEL) list.lastChild.remove();
  state.counts.shown++;
  counts();
}

function counts() {
  const c = state.client;
  $('counts').textContent = c ? `${state.counts.shown} shown, ${c.stats.duplicates} duplicates dropped, resume point ${c.lastSeq}` : '';
}

async function devToken(user) {
  const r = await fetch(`${state.config.broker}/api/dev/token?user=${encodeURIComponent(user)}`);
  const body = await r.json();
  if (!r.ok) throw new Error(body.message || `HTTP ${r.status}`);
  return body.token;
}

function connect(user, token, protocol) {
  disconnect();
  const getToken = state.config.dev && !token ? () => devToken(user) : undefined;
  const c = new HeraldClient('/ws', {
    token: token || undefined, getToken, protocol,
    storage: window.localStorage, backoff: { initialMs: 250, maxMs: 5000 },
  });
  state.client = c;
  c.on('state', (s) => {
    $('state').textContent = s.state;
    $('state').className = `state ${s.state}`;
    if (s.state === 'reconnecting') event('state', `reconnecting in ${s.delayMs} ms (attempt ${s.attempt}, close ${s.code}${s.reason ? ` ${s.reason}` : ''})`);
  });
  c.on('welcome', (w) => {
    $('session').textContent = `user ${w.user_id} on gateway ${w.gateway}, session ${w.session_id}`;
    event('welcome', `welcome: gateway ${w.gateway}, resume point ${c.lastSeq}`);
  });
  c.on('notification', show);
  c.on('resumed', (r) => event('resumed', `resumed: seqs ${r.from}..${r.to} replayed`));
  c.on('gap', (g) => event('gap', `gap: seqs ${g.from}..${g.to} are no longer in history - refetch state`));
  c.on('conflated', (g) => event('conflated', `conflated: ${g.seqs.join(', ')} replaced by newer state`));
  c.on('refreshed', (r) => event('refreshed', `token refreshed, expires ${new Date(r.exp * 1000).toLocaleTimeString()}`));
  c.on('error', (e) => event('error', `error ${e.code}: ${e.message}`));
  $('connect').disabled = true;
  $('disconnect').disabled = false;
}

function disconnect() {
  if (!state.client) return;
  state.client.close();
  state.client = null;
  $('connect').disabled = false;
  $('disconnect').disabled = true;
}

async function publish(ev) {
  ev.preventDefault();
  const user = $('user').value.trim();
  let payload;
  try {
    payload = JSON.parse($('pub-payload').value);
  } catch (e) {
    $('pub-result').textContent = `payload is not JSON: ${e.message}`;
    return;
  }
  const body = { message_type: $('pub-type').value, user_id: user, source: 'DemoPage', payload };
  if ($('pub-priority').value !== '') body.priority = Number($('pub-priority').value);
  // text/plain keeps this a "simple" cross-origin request (no preflight); the broker reads
  // the body as JSON whatever its type and, in development mode, allows the page to read
  // the answer (Access-Control-Allow-Origin).
  try {
    const r = await fetch(`${state.config.broker}/api/publish`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(body) });
    const res = await r.json();
    $('pub-result').textContent = r.ok ? `accepted: seq ${res.seq}` : `refused (${r.status}): ${res.message}`;
  } catch (e) {
    $('pub-result').textContent = `publish failed: ${e.message}`;
  }
}

function fillTemplate() {
  const u = $('user').value.trim() || 'u1';
  $('pub-payload').value = JSON.stringify(TEMPLATES[$('pub-type').value](u));
}

async function main() {
  try {
    state.config = await (await fetch('/web-config.json')).json();
  } catch {
    state.config = { dev: false, broker: '', gateway: null };
  }
  const dev = state.config.dev;
  $('mode').textContent = dev
    ? `Development mode: the token comes from ${state.config.broker}/api/dev/token. This page is served by gateway ${state.config.gateway}.`
    : 'Paste a client token for the user (heraldctl token --user U).';
  $('token-row').hidden = dev;
  $('publish-box').hidden = !dev;
  for (const ch of CHANNELS) channelList(ch);
  for (const t of Object.keys(TEMPLATES)) $('pub-type').append(new Option(t, t));
  $('pub-type').addEventListener('change', fillTemplate);
  $('user').addEventListener('change', fillTemplate);
  fillTemplate();
  $('connect-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    connect($('user').value.trim(), $('token').value.trim(), $('protocol').value);
  });
  $('disconnect').addEventListener('click', disconnect);
  $('publish-form').addEventListener('submit', publish);
  setInterval(counts, 1000);
  // ?user=U[&token=T][&protocol=msgpack]&connect=1 connects at once (links, tests).
  const q = new URLSearchParams(location.search);
  if (q.get('user')) $('user').value = q.get('user');
  if (q.get('token')) $('token').value = q.get('token');
  if (q.get('protocol')) $('protocol').value = q.get('protocol');
  fillTemplate();
  if (q.get('connect') === '1' && $('user').value) connect($('user').value, $('token').value, $('protocol').value);
}

main();
