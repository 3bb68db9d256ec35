// refresh_acks.test.mjs - the client against the server side of token refresh (protocol.md 12:
// {"op":"refresh"} -> {"type":"refreshed","exp":E}) and acknowledged delivery (protocol.md 14:
// acks=1, {"op":"ack","seq":S} after the handlers, re-sends with "redelivery":true,
// GET /api/unacked).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Herald, record, requireNodeWithWebSocket, mintToken, sleep, waitFor } from './harness.mjs';

requireNodeWithWebSocket();
const { HeraldClient } = await import('../herald.js');

let h;
before(async () => {
  h = await new Herald({ gateways: 1, ini: '[delivery]\nack_timeout_ms = 400' }).start();
});

async function unacked(user) {
  const r = await h.get(`${h.brokerUrl}/api/unacked?user=${user}`);
  assert.equal(r.status, 200, r.text);
  const body = JSON.parse(r.text);
  assert.equal(body.user, user);
  return body.unacked;
}

function marginCall(user) {
  return h.publish({ message_type: 'margin_call', user_id: user, payload: { user_id: user, current_margin: 1, required_margin: 2, deadline: 3, message: 'm' } });
}
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
    let listedWhileHandling = null;
    c.on('notification', async (n) => {
      // the ack goes after the handler: until then the broker lists it as outstanding
      listedWhileHandling = (await unacked('ack-u')).some((e) => e.seq === n.seq && e.message_type === 'margin_call');
      await sleep(50);
      handled = true;
    });
    await waitFor('welcome', () => ev.welcomes.length === 1);
    await marginCall('ack-u');
    await waitFor('handled', () => handled);
    assert.equal(listedWhileHandling, true);
    await waitFor('no unacked notification left', async () => (await unacked('ack-u')).length === 0, 10000);
    await sleep(600); // past the timeout: acknowledged, so nothing is re-sent
    assert.deepEqual(ev.seqs, [1], 'delivered once');
    assert.equal(c.stats.duplicates, 0);
  } finally {
    c.close();
  }
});

test('acks: a handler that throws sends no ack; the re-send is acknowledged, not delivered again', async () => {
  const c = new HeraldClient(h.gatewayUrl(), { token: mintToken('ack-t'), acks: true, pingIntervalMs: 0 });
  try {
    const ev = record(c);
    let calls = 0;
    c.on('notification', () => { calls++; throw new Error('app failed'); });
    await waitFor('welcome', () => ev.welcomes.length === 1);
    await marginCall('ack-t');
    await waitFor('handled', () => calls === 1);
    assert.equal((await unacked('ack-t')).length, 1, 'not acknowledged: outstanding');
    // after ack_timeout_ms the gateway re-sends it ("redelivery":true): seen, so acked
    await waitFor('acknowledged on the re-send', async () => (await unacked('ack-t')).length === 0, 10000);
    assert.equal(calls, 1, 'the app saw it once');
    assert.deepEqual(ev.seqs, [1]);
    assert.ok(ev.errors.some((e) => e.code === 'handler_threw'));
  } finally {
    c.close();
  }
});
