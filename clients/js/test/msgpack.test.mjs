// msgpack.test.mjs - the client's own msgpack codec and seq bookkeeping, without a server:
// byte-exact encodings, round trips, refusals; SeqTracker's watermark, holes and gaps.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { msgpackDecode, msgpackEncode, SeqTracker, tokenClaims } from '../herald.js';

const hex = (u8) => Buffer.from(u8).toString('hex');
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));

test('msgpack encodes each kind in its smallest form (bytes as msgpack-c writes them)', () => {
  const cases = [
    [null, 'c0'], [false, 'c2'], [true, 'c3'], [0, '00'], [127, '7f'], [128, 'cc80'],
    [255, 'ccff'], [256, 'cd0100'], [65536, 'ce00010000'], [2 ** 32, 'cf0000000100000000'],
    [-1, 'ff'], [-32, 'e0'], [-33, 'd0df'], [-129, 'd1ff7f'], [-32769, 'd2ffff7fff'],
    [-(2 ** 31) - 1, 'd3ffffffff7fffffff'], [1.5, 'cb3ff8000000000000'], ['', 'a0'], ['a', 'a161'],
    ['x'.repeat(32), 'd920' + '78'.repeat(32)], [[], '90'], [[1, 2], '920102'], [{}, '80'],
    [{ op: 'ping' }, '81a26f70a470696e67'], [new Uint8Array([1, 2]), 'c4020102'],
  ];
  for (const [v, h] of cases) assert.equal(hex(msgpackEncode(v)), h, JSON.stringify(v));
});

test('msgpack round-trips nested values, long strings and 16/32-bit lengths', () => {
  const big = { s: 'é'.repeat(40000), a: Array.from({ length: 70000 }, (_, i) => i % 300 - 150),
    m: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, { n: i, f: i / 7 }])) };
  assert.deepEqual(msgpackDecode(msgpackEncode(big)), big);
});

test('msgpack decodes what the gateway sends: uint64 timestamps, float32, str8, map16', () => {
  const ts = 1764000000000000000;
  assert.equal(msgpackDecode(unhex('cf187ebc5a3a6b0000')), Number(0x187ebc5a3a6b0000n));
  assert.equal(msgpackDecode(msgpackEncode(ts)), ts);
  assert.equal(msgpackDecode(unhex('ca3fc00000')), 1.5);
  assert.equal(msgpackDecode(unhex('d903616263')), 'abc');
  assert.deepEqual(msgpackDecode(unhex('de0001a161c3')), { a: true });
  assert.deepEqual(msgpackDecode(unhex('d4010a')), { ext: 1, data: new Uint8Array([10]) });
});

test('msgpack refuses truncated input, trailing bytes and unused type bytes', () => {
  assert.throws(() => msgpackDecode(unhex('92 01'.replace(' ', ''))), /truncated/);
  assert.throws(() => msgpackDecode(unhex('a3 6162'.replace(' ', ''))), /truncated/);
  assert.throws(() => msgpackDecode(unhex('0101')), /trailing/);
  assert.throws(() => msgpackDecode(unhex('c1')), /unused/);
  assert.throws(() => msgpackDecode(new Uint8Array(0)), /truncated/);
});

test('msgpack keeps a "__proto__" key as data, not as the prototype', () => {
  const o = msgpackDecode(unhex('81a95f5f70726f746f5f5f01'));
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
  assert.equal(Object.keys(o)[0], '__proto__');
});

test('SeqTracker: the watermark moves over contiguous seqs; out-of-order ones wait above it', () => {
  const t = new SeqTracker({ holeMs: 1000, now: () => 0 });
  t.skipRange(1, 4);
  t.mark(6);
  t.mark(7);
  assert.equal(t.resumePoint(), 4);
  assert.ok(t.seen(6) && !t.seen(5));
  t.mark(5);
  assert.equal(t.resumePoint(), 7);
  assert.deepEqual(t.toJSON(), { w: 7, a: [] });
});

test('SeqTracker: a hole is given up after holeMs, counted from when it appeared', () => {
  let now = 0;
  const t = new SeqTracker({ holeMs: 1000, now: () => now });
  t.load({ w: 10 });
  t.mark(12);
  now = 900;
  t.mark(13);
  assert.equal(t.resumePoint(), 10, 'seq 11 may still come (a lower priority)');
  now = 1001;
  assert.equal(t.resumePoint(), 13, 'seq 11 given up');
  t.mark(15);
  now = 1500;
  assert.equal(t.resumePoint(), 13, 'the new hole at 14 is only 499 ms old');
});

test('SeqTracker: gaps are skipped, also above a hole; a fresh tracker resumes after its first run', () => {
  const t = new SeqTracker({ holeMs: 1e9, now: () => 0 });
  t.mark(20);
  t.mark(21);
  assert.equal(t.resumePoint(), 21);
  assert.ok(!t.seen(19), 'a lower seq still in flight is not taken for a duplicate');
  const g = new SeqTracker({ holeMs: 1e9, now: () => 0 });
  g.load({ w: 5 });
  g.skipRange(8, 9);
  assert.equal(g.resumePoint(), 5);
  g.mark(7);
  g.mark(6);
  assert.equal(g.resumePoint(), 9);
  assert.ok(g.seen(8));
});

test('tokenClaims reads a JWT payload (base64url, UTF-8) and returns null for junk', () => {
  const body = Buffer.from(JSON.stringify({ sub: 'ü1', exp: 5 })).toString('base64url');
  assert.deepEqual(tokenClaims(`x.${body}.y`), { sub: 'ü1', exp: 5 });
  assert.equal(tokenClaims('nope'), null);
});
