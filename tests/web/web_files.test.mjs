// web_files.test.mjs - what the gateway and the broker serve for the web (protocol.md 13): the demo
// page and the client at a gateway's /, the operations page at the broker's /ui, content
// types, no path traversal (raw requests, not normalised by a client), /api/status, and
// development tokens only with auth.allow_dev_secret.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import { Herald, requireNodeWithWebSocket, SECRET, waitFor } from '../../clients/js/test/harness.mjs';

requireNodeWithWebSocket();
const { HeraldClient } = await import('../../clients/js/herald.js');

/** A raw HTTP/1.0 GET of `target` exactly as written; resolves {status, head, body}. */
function rawGet(port, target) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks = [];
    s.setTimeout(5000, () => { s.destroy(); reject(new Error(`GET ${target}: timeout`)); });
    s.on('connect', () => s.write(`GET ${target} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`));
    s.on('data', (d) => chunks.push(d));
    s.on('error', reject);
    s.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const i = text.indexOf('\r\n\r\n');
      resolve({ status: Number(text.split(' ')[1]), head: text.slice(0, i).toLowerCase(), body: text.slice(i + 4) });
    });
  });
}

const TRAVERSALS = [
  '/../herald.ini', '/..%2fherald.ini', '/%2e%2e/%2e%2e/etc/passwd', '/js/../../../../etc/passwd',
  '/js/..%2f..%2f..%2f..%2fetc%2fpasswd', '//etc/passwd', '/.hidden', '/demo/../../run/status.json',
  '/js/%2e%2e/%2e%2e/%2e%2e/etc/passwd', '/ui/../../../etc/passwd', '/ui/..%2f..%2fherald.ini',
  '/ui/.%2e/.%2e/herald.ini', '/ui//etc/passwd', '/ui/%2f%2fetc/passwd', '/ui/.hidden', '/ui/a b.js',
];

describe('dev mode on', () => {
  let h;
  before(async () => { h = await new Herald({ gateways: 2, dev: true }).start(); });
  after(async () => { await h?.stop(); });

  test('each gateway serves the demo page at / and the client at /js/herald.js, typed', async () => {
    for (const i of [0, 1]) {
      const page = await h.get(`${h.gatewayHttp(i)}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type'), /^text\/html/);
      assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
      assert.match(page.text, /<script type="module" src="\/demo.js">/);
      const js = await h.get(`${h.gatewayHttp(i)}/js/herald.js`);
      assert.equal(js.status, 200);
      assert.match(js.headers.get('content-type'), /^text\/javascript/);
      assert.match(js.text, /export class HeraldClient/);
      const css = await h.get(`${h.gatewayHttp(i)}/demo.css`);
      assert.match(css.headers.get('content-type'), /^text\/css/);
      const cfg = JSON.parse((await h.get(`${h.gatewayHttp(i)}/web-config.json`)).text);
      assert.deepEqual(cfg, { gateway: i, broker: h.brokerUrl, dev: true });
      assert.equal((await h.get(`${h.gatewayHttp(i)}/nope.html`)).status, 404);
    }
  });

  test('no request path reaches outside the web directory (gateway and broker)', async () => {
    const before = await h.stats();
    for (const port of [h.gatewayPort, h.httpPort]) {
      for (const t of TRAVERSALS) {
        const r = await rawGet(port, t);
        assert.ok(r.status === 400 || r.status === 404, `${t} on ${port}: HTTP ${r.status}`);
        assert.doesNotMatch(r.body, /root:|secret|shm_prefix|supervisor_pid/, `${t} on ${port} leaked`);
      }
    }
    const gw = JSON.parse((await h.get(`${h.gatewayHttp(0)}/stats`)).text);
    const after = await h.stats();
    assert.ok(gw.bad_http_paths > 0, 'refused paths are counted on the gateway');
    assert.ok(after.web.refused_paths > before.web.refused_paths, 'and on the broker');
  });

  test('the broker serves the operations page at /ui and /ui/ with its script and style', async () => {
    for (const p of ['/ui', '/ui/']) {
      const r = await h.get(`${h.brokerUrl}${p}`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type'), /^text\/html/);
      assert.match(r.text, /\/ui\/ops.js/);
    }
    assert.match((await h.get(`${h.brokerUrl}/ui/ops.js`)).headers.get('content-type'), /^text\/javascript/);
    assert.equal((await h.get(`${h.brokerUrl}/ui/missing.js`)).status, 404);
  });

  test('/api/status carries the supervisor status and where each gateway\'s /stats is', async () => {
    const st = JSON.parse((await h.get(`${h.brokerUrl}/api/status`)).text);
    assert.deepEqual(st.supervisor.processes.map((p) => p.name), ['broker', 'gateway0', 'gateway1']);
    assert.deepEqual(st.gateways, [0, 1].map((i) => ({ id: i, stats: `${h.gatewayHttp(i)}/stats` })));
    assert.equal(st.dev, true);
    assert.equal(st.queue_capacity.length, 4);
    const gs = await h.get(st.gateways[1].stats);
    assert.equal(gs.headers.get('access-control-allow-origin'), '*', 'the ops page may read it');
  });

  test('/api/dev/token mints a token the gateway accepts, readable cross-origin', async () => {
    const r = await h.get(`${h.brokerUrl}/api/dev/token?user=dev%20user%2B1&ttl=120`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    const t = JSON.parse(r.text);
    assert.equal(t.user, 'dev user+1');
    assert.ok(Math.abs(t.exp - (Date.now() / 1000 + 120)) < 5);
    assert.match(t.url, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
    const c = new HeraldClient(h.gatewayUrl(0), { token: t.token, pingIntervalMs: 0 });
    try {
      const w = await new Promise((res) => c.on('welcome', res));
      assert.equal(w.user_id, 'dev user+1');
    } finally {
      c.close();
    }
    for (const q of ['', '?user=', '?user=*', '?user=u&ttl=0', '?user=u&ttl=86401', '?user=u&ttl=x', `?user=${'a'.repeat(65)}`]) {
      const bad = await h.get(`${h.brokerUrl}/api/dev/token${q}`);
      assert.equal(bad.status, 400, `dev token ${q}: ${bad.status} ${bad.text}`);
      assert.match(JSON.parse(bad.text).message, /user|ttl/);
    }
    const pub = await fetch(`${h.brokerUrl}/api/publish`, { method: 'POST', headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ message_type: 'system_notice', user_id: 'u', payload: { title: 'a', content: 'b', level: 'info' } }) });
    assert.equal(pub.status, 200);
    assert.equal(pub.headers.get('access-control-allow-origin'), '*', 'the demo page can read its publish result');
  });
});

test('dev mode off: no tokens, no CORS on publish, the page is told', async () => {
  const h = await new Herald({ gateways: 1, dev: false }).start();
  try {
    const r = await h.get(`${h.brokerUrl}/api/dev/token?user=u1`);
    assert.equal(r.status, 403);
    assert.match(JSON.parse(r.text).message, /allow_dev_secret/);
    assert.equal(r.headers.get('access-control-allow-origin'), null);
    await waitFor('refusal counted', async () => (await h.stats()).web.dev_refused === 1);
    const pub = await fetch(`${h.brokerUrl}/api/publish`, { method: 'POST',
      body: JSON.stringify({ message_type: 'system_notice', user_id: 'u', payload: { title: 'a', content: 'b', level: 'info' } }) });
    assert.equal(pub.headers.get('access-control-allow-origin'), null);
    assert.equal(JSON.parse((await h.get(`${h.gatewayHttp(0)}/web-config.json`)).text).dev, false);
    assert.ok(!SECRET.includes('development'));
  } finally {
    await h.stop();
  }
});
