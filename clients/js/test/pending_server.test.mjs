// pending_server.test.mjs - the client's side of server features that other branches bring:
// token refresh (SPEC 12: {"op":"refresh"} -> {"type":"refreshed","exp":E}) and acknowledged
// delivery (SPEC 14: acks=1, {"op":"ack","seq":S}, GET /api/unacked).
//
// EXPECTED TO FAIL until the server side is merged: tests/web/meson.build registers this file
// with should_fail: true. Once the gateway answers refresh and acks, meson reports it as an
// unexpected pass: then drop should_fail there.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Herald, record, requireNodeWithWebSocket, mintToken, sleep, waitFor } from './harness.mjs';

requireNodeWithWebSocket();
const { HeraldClient } = await import('../herald.js');

let h;
before(async () => { h = await new Herald({ gateways: 1 }).start(); });
after(async () => { await h?.stop(); });

test('token refresh: the client sends refresh before exp and keeps its one session past the old exp', async () => {
  const exps = [];
  const getToken = () => {
    const ttl = exps.length === 0 ? 4 : 3600;
    const t = mintToken('refresh-u', ttl);
    exps.push(Math.floor(Date.now() / 1000) + ttl);
    return t;
  };
  const c = new HeraldClient(h.gatewayUrl(), { getToken, refreshBeforeS: 2, pingIntervalMs: 0 });
  try {
    const ev = record(c);
    await waitFor('welcome', () => ev.welcomes.length === 1);
    await waitFor('refreshed', () => ev.refreshed.length === 1, 10000);
    assert.equal(ev.refreshed[0].exp, exps[1]);
    assert.equal(c.exp, exps[1]);
    await sleep(Math.max(0, (exps[0] + 2) * 1000 - Date.now()));
    await h.publish({ message_type: 'system_notice', user_id: 'refresh-u', payload: { title: 'a', content: 'b', level: 'info' } });
    await waitFor('delivery after the first token expired', () => ev.seqs.length === 1);
    assert.equal(ev.welcomes.length, 1, 'the session was not closed (4001) and reopened');
  } finally {
    c.close();
  }
});

test('acks: with acks on, a margin_call is acknowledged after the handler returns', async () => {
  const c = new HeraldClient(h.gatewayUrl(), { token: mintToken('ack-u'), acks: true, pingIntervalMs: 0 });
  try {
    const ev = record(c);
    let handled = false;
    c.on('notification', async () => { await sleep(50); handled = true; });
    await waitFor('welcome', () => ev.welcomes.length === 1);
    await h.publish({ message_type: 'margin_call', user_id: 'ack-u', payload: { user_id: 'ack-u', current_margin: 1, required_margin: 2, deadline: 3, message: 'm' } });
    await waitFor('handled', () => handled);
    const unacked = await waitFor('no unacked notification left', async () => {
      const r = await h.get(`${h.brokerUrl}/api/unacked?user=ack-u`);
      if (r.status !== 200) return null;
      const body = JSON.parse(r.text);
      return body.unacked.length === 0 ? body : null;
    }, 10000);
    assert.equal(unacked.user, 'ack-u');
    assert.deepEqual(ev.seqs, [1], 'delivered once');
  } finally {
    c.close();
  }
});
