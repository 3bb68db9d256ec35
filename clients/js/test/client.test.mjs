// client.test.mjs - HeraldClient against a real herald (supervisor, broker, gateways): delivery
// in order, channels, msgpack, resume after kill -9 of the gateway, dedup by seq, gap, backoff.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Herald, record, requireNodeWithWebSocket, mintToken, notif, sleep, waitFor, freePorts } from './harness.mjs';

requireNodeWithWebSocket();
const { HeraldClient, memoryStorage, backoffDelay } = await import('../herald.js');

const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const clients = [];
function client(url, opts) {
  const c = new HeraldClient(url, { pingIntervalMs: 0, ...opts });
  clients.push(c);
  return c;
}
after(() => clients.forEach((c) => c.close()));

describe('against one gateway', () => {
  let h;
  before(async () => { h = await new Herald({ gateways: 1 }).start(); });
  after(async () => { await h?.stop(); });

  test('delivers published notifications once each, in seq order, with the welcome first', async () => {
    const c = client(h.gatewayUrl(), { token: mintToken('order-u') });
    const ev = record(c);
    await waitFor('welcome', () => ev.welcomes.length === 1);
    assert.equal(c.userId, 'order-u');
    assert.equal(c.state, 'open');
    for (let i = 1; i <= 20; i++) await h.publish(notif('order-u', i));
    await waitFor('20 notifications', () => ev.seqs.length >= 20);
    await sleep(100);
    assert.deepEqual(ev.seqs, range(1, 20));
    assert.equal(ev.notifications[0].payload.title, 't1');
    assert.equal(ev.notifications[0].channel, 'system');
    assert.equal(c.lastSeq, 20);
    assert.equal(c.stats.duplicates, 0);
  });

  test('channels given to the constructor filter what arrives; subscribe widens it', async () => {
    const c = client(h.gatewayUrl(), { token: mintToken('chan-u'), channels: ['risk'] });
    const ev = record(c);
    const subscribed = [];
    c.on('subscribed', (s) => subscribed.push(s.channels));
    await waitFor('subscribed', () => subscribed.length === 1);
    await h.publish(notif('chan-u', 1)); // system: filtered out
    await h.publish({ message_type: 'risk_alert', user_id: 'chan-u', payload: { user_id: 'chan-u', alert_type: 'm', severity: 'high', message: 'x', risk_ratio: 0.9, suggestion: 's' } });
    await waitFor('the risk alert', () => ev.seqs.length === 1);
    assert.equal(ev.notifications[0].message_type, 'risk_alert');
    assert.equal(ev.notifications[0].seq, 2);
    c.subscribe(['system']);
    await waitFor('second subscribed', () => subscribed.length === 2);
    await h.publish(notif('chan-u', 3));
    await waitFor('the system notice', () => ev.seqs.length === 2);
    assert.deepEqual(ev.seqs, [2, 3]);
  });

  test('herald.msgpack delivers the same notification as herald.json, and ops go as msgpack', async () => {
    const j = client(h.gatewayUrl(), { token: mintToken('mp-u') });
    const m = client(h.gatewayUrl(), { token: mintToken('mp-u'), protocol: 'msgpack' });
    const ej = record(j), em = record(m);
    await waitFor('both welcomed', () => ej.welcomes.length && em.welcomes.length);
    const payload = { title: 'ünïcødé ✓', content: 'x'.repeat(300), level: 'info', n: -12345, f: 0.25, big: 4294967296, nested: { a: [1, null, true] } };
    await h.publish({ message_type: 'system_notice', user_id: 'mp-u', payload, source: 'Test' });
    await waitFor('both got it', () => ej.seqs.length === 1 && em.seqs.length === 1);
    assert.deepEqual(em.notifications[0], ej.notifications[0]);
    assert.deepEqual(em.notifications[0].payload, payload);
    const subscribed = [];
    m.on('subscribed', (s) => subscribed.push(s.channels));
    m.subscribe(['trade']); // a msgpack map in a binary frame
    await waitFor('subscribed over msgpack', () => subscribed.length === 1);
    assert.deepEqual(subscribed[0], ['trade']);
    await h.publish(notif('mp-u', 2));
    await waitFor('json client got seq 2', () => ej.seqs.length === 2);
    await sleep(150);
    assert.deepEqual(em.seqs, [1], 'the msgpack session is on trade only');
    assert.equal(em.errors.length, 0, JSON.stringify(em.errors));
  });

  test('a resume replays only what is missing: seqs already delivered are dropped (dedup by seq)', async () => {
    for (let i = 1; i <= 6; i++) await h.publish(notif('dedup-u', i));
    // This client delivered 1, 3 and 4 in an earlier life (stored); it resumes since=1, the
    // gateway replays 2..6, and 3 and 4 must not be delivered again.
    const storage = memoryStorage();
    storage.setItem(`herald:${h.gatewayUrl()}:dedup-u`, JSON.stringify({ w: 1, a: [3, 4] }));
    const c = client(h.gatewayUrl(), { token: mintToken('dedup-u'), storage });
    const ev = record(c);
    await waitFor('resumed and 2, 5, 6', () => ev.seqs.length >= 3 && ev.resumed.length >= 1);
    await sleep(150);
    assert.deepEqual(ev.seqs, [2, 5, 6]);
    assert.equal(c.stats.duplicates, 2);
    assert.deepEqual(ev.resumed[0], { from: 2, to: 6 });
    assert.equal(c.lastSeq, 6);
    c.close();
    assert.deepEqual(JSON.parse(storage.getItem(`herald:${h.gatewayUrl()}:dedup-u`)), { w: 6, a: [] });
  });

  test('a server behind the client (state lost) resets the watermark: new seqs are delivered, a gap is raised', async () => {
    await h.publish(notif('ahead-u', 1));
    await h.publish(notif('ahead-u', 2));
    // This client delivered up to seq 50 from a server that has since lost its journal.
    const storage = memoryStorage();
    storage.setItem(`herald:${h.gatewayUrl()}:ahead-u`, JSON.stringify({ w: 50, a: [] }));
    const c = client(h.gatewayUrl(), { token: mintToken('ahead-u'), storage });
    const ev = record(c);
    await waitFor('resumed', () => ev.resumed.length === 1);
    assert.deepEqual(ev.resumed[0], { from: 51, to: 2 });
    assert.deepEqual(ev.gaps, [{ from: 3, to: 50 }]);
    assert.equal(c.lastSeq, 2);
    await h.publish(notif('ahead-u', 3));
    await waitFor('seq 3 delivered', () => ev.seqs.length === 1);
    assert.deepEqual(ev.seqs, [3]);
    assert.equal(c.stats.duplicates, 0);
  });

  test('survives kill -9 of its gateway: resumes and ends with every seq exactly once, in order', async () => {
    const c = client(h.gatewayUrl(), { token: mintToken('kill-u'), backoff: { initialMs: 50, maxMs: 500 } });
    const ev = record(c);
    await waitFor('welcome', () => ev.welcomes.length === 1);
    for (let i = 1; i <= 15; i++) await h.publish(notif('kill-u', i));
    await waitFor('first 15', () => ev.seqs.length >= 15);
    const pub = (async () => { for (let i = 16; i <= 60; i++) { await h.publish(notif('kill-u', i)); await sleep(10); } })();
    await sleep(100);
    await h.killGateway(0);
    await pub;
    await waitFor('all 60 after the restart', () => ev.seqs.length >= 60, 30000);
    await sleep(200);
    assert.deepEqual(ev.seqs, range(1, 60));
    assert.ok(ev.welcomes.length >= 2, 'reconnected');
    assert.ok(ev.states.some((s) => s.state === 'reconnecting'));
    assert.ok(ev.resumed.length >= 1, 'the gateway answered the resume');
    assert.equal(ev.gaps.length, 0);
  });

  test('broadcasts (user "*") have their own sequence and are delivered next to the user\'s', async () => {
    const c = client(h.gatewayUrl(), { token: mintToken('bc-u') });
    const ev = record(c);
    await waitFor('welcome', () => ev.welcomes.length === 1);
    await h.publish(notif('bc-u', 1));
    const b = await h.publish(notif('*', 1));
    await h.publish(notif('bc-u', 2));
    await waitFor('3 notifications', () => ev.notifications.length === 3);
    const got = ev.notifications.map((n) => [n.user_id, n.seq]);
    assert.deepEqual(got, [['bc-u', 1], ['*', b.seq], ['bc-u', 2]]);
    assert.equal(c.lastSeq, 2, 'the resume point is the user\'s seq only');
  });
});

test('gap: when history no longer covers the resume, the client gets gap, then the rest', async () => {
  const h = await new Herald({ gateways: 1, ini: '[broker]\nhistory_size = 3' }).start();
  try {
    const storage = memoryStorage();
    const a = client(h.gatewayUrl(), { token: mintToken('gap-u'), storage });
    const ea = record(a);
    await waitFor('welcome', () => ea.welcomes.length === 1);
    await h.publish(notif('gap-u', 1));
    await h.publish(notif('gap-u', 2));
    await waitFor('1 and 2', () => ea.seqs.length === 2);
    a.close();
    for (let i = 3; i <= 12; i++) await h.publish(notif('gap-u', i));
    const b = client(h.gatewayUrl(), { token: mintToken('gap-u'), storage });
    const eb = record(b);
    await waitFor('gap and 10..12', () => eb.gaps.length === 1 && eb.seqs.length >= 3);
    await sleep(100);
    assert.deepEqual(eb.gaps[0], { from: 3, to: 9 });
    assert.deepEqual(eb.seqs, [10, 11, 12]);
    assert.equal(b.lastSeq, 12);
  } finally {
    await h.stop();
  }
});

test('backoff: jittered exponential delays, capped; connects once the gateway comes up', async () => {
  const port = await freePorts(1);
  const backoff = { initialMs: 40, maxMs: 320, factor: 2, jitter: 0.5 };
  const c = client(`ws://127.0.0.1:${port}/ws`, { token: mintToken('bo-u'), backoff });
  const ev = record(c);
  await waitFor('6 failed attempts', () => ev.states.filter((s) => s.state === 'reconnecting').length >= 6, 20000);
  const delays = ev.states.filter((s) => s.state === 'reconnecting').slice(0, 6);
  delays.forEach((s, i) => {
    const cap = Math.min(320, 40 * 2 ** i);
    assert.equal(s.attempt, i + 1);
    assert.ok(s.delayMs >= cap / 2 && s.delayMs <= cap, `attempt ${i + 1}: ${s.delayMs} ms not in [${cap / 2}, ${cap}]`);
  });
  assert.ok(delays[5].delayMs <= 320);
  const h = await new Herald({ gateways: 1, gatewayPort: port }).start();
  try {
    await waitFor('welcome once the gateway is up', () => ev.welcomes.length === 1, 20000);
    assert.equal(c.attempt, 0, 'a welcome resets the backoff');
    await h.publish(notif('bo-u', 1));
    await waitFor('delivery', () => ev.seqs.length === 1);
  } finally {
    c.close();
    await h.stop();
  }
});

test('backoffDelay: initial * factor^attempt, capped, minus up to jitter of it', () => {
  const b = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };
  assert.equal(backoffDelay(0, b, () => 0), 100);
  assert.equal(backoffDelay(0, b, () => 1), 50);
  assert.equal(backoffDelay(3, b, () => 0), 800);
  assert.equal(backoffDelay(4, b, () => 0), 1000);
  assert.equal(backoffDelay(40, b, () => 0.5), 750);
});
