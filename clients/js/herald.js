// herald.js - a dependency-free client for herald's WebSocket protocol (protocol.md 6, 12, 13, 14):
// token auth, jittered exponential backoff, resume from the last seq delivered (optionally
// persisted), no seq delivered twice, gap and resume events, channel subscriptions, token
// refresh, herald.json and herald.msgpack. An ES module for browsers and Node >= 20.
//
//   import { HeraldClient } from './herald.js';
//   const c = new HeraldClient('ws://127.0.0.1:7500/ws', { getToken, channels: ['trade'] });
//   c.on('notification', (n) => console.log(n.seq, n.message_type, n.payload));
//   c.on('gap', ({ from, to }) => refetchState());
//
// docs/clients.md describes the behaviour; herald.d.ts the types.

/** Default options (see herald.d.ts for what each means). */
export const DEFAULTS = Object.freeze({
  protocol: 'json',
  backoff: Object.freeze({ initialMs: 500, maxMs: 30000, factor: 2, jitter: 0.5 }),
  refreshBeforeS: 30,
  pingIntervalMs: 25000,
  pongTimeoutMs: 10000,
  holeMs: 3000,
  acks: false,
  ackTypes: Object.freeze(['margin_call', 'risk_alert']),
  persistEveryMs: 200,
});

const MAX_ABOVE = 10000; // seqs remembered above the watermark before a hole is given up
const PERSIST_ABOVE = 256; // of those, how many are persisted

// ---------------------------------------------------------------------------------------------
// msgpack: the subset herald speaks (nil, bool, ints, floats, str, bin, array, map, ext), both
// ways. Written here rather than taken from npm so the client stays one file with no
// dependencies and no build step, loadable by a browser as it is; herald's frames need
// ~150 lines of it.

const utf8enc = new TextEncoder();
const utf8dec = new TextDecoder();

/**
 * Encode a value as msgpack.
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function msgpackEncode(value) {
  const out = { buf: new Uint8Array(256), len: 0 };
  mpWrite(out, value, 0);
  return out.buf.subarray(0, out.len);
}

function mpReserve(out, n) {
  if (out.len + n <= out.buf.length) return;
  let cap = out.buf.length * 2;
  while (cap < out.len + n) cap *= 2;
  const nb = new Uint8Array(cap);
  nb.set(out.buf.subarray(0, out.len));
  out.buf = nb;
}

function mpByte(out, b) {
  mpReserve(out, 1);
  out.buf[out.len++] = b;
}

function mpBytes(out, bytes) {
  mpReserve(out, bytes.length);
  out.buf.set(bytes, out.len);
  out.len += bytes.length;
}

function mpUint(out, tag, v, n) {
  mpReserve(out, n + 1);
  out.buf[out.len++] = tag;
  const dv = new DataView(out.buf.buffer, out.buf.byteOffset + out.len, n);
  if (n === 1) dv.setUint8(0, v);
  else if (n === 2) dv.setUint16(0, v);
  else if (n === 4) dv.setUint32(0, v);
  else dv.setBigUint64(0, BigInt.asUintN(64, BigInt(v)));
  out.len += n;
}

function mpInt(out, v) {
  if (v >= 0) {
    if (v < 128) return mpByte(out, v);
    if (v < 0x100) return mpUint(out, 0xcc, v, 1);
    if (v < 0x10000) return mpUint(out, 0xcd, v, 2);
    if (v < 0x100000000) return mpUint(out, 0xce, v, 4);
    return mpUint(out, 0xcf, v, 8);
  }
  if (v >= -32) return mpByte(out, v & 0xff);
  mpReserve(out, 9);
  const dv = new DataView(out.buf.buffer, out.buf.byteOffset + out.len + 1);
  if (v >= -128) {
    out.buf[out.len] = 0xd0;
    dv.setInt8(0, v);
    out.len += 2;
  } else if (v >= -32768) {
    out.buf[out.len] = 0xd1;
    dv.setInt16(0, v);
    out.len += 3;
  } else if (v >= -2147483648) {
    out.buf[out.len] = 0xd2;
    dv.setInt32(0, v);
    out.len += 5;
  } else {
    out.buf[out.len] = 0xd3;
    dv.setBigInt64(0, BigInt(v));
    out.len += 9;
  }
}

function mpLen(out, n, fix, fixMax, t8, t16, t32) {
  if (n <= fixMax && fix !== null) mpByte(out, fix | n);
  else if (n < 0x100 && t8 !== null) mpUint(out, t8, n, 1);
  else if (n < 0x10000) mpUint(out, t16, n, 2);
  else mpUint(out, t32, n, 4);
}

function mpWrite(out, v, depth) {
  if (depth > 64) throw new RangeError('msgpack: nesting deeper than 64');
  if (v === null || v === undefined) return mpByte(out, 0xc0);
  switch (typeof v) {
    case 'boolean':
      return mpByte(out, v ? 0xc3 : 0xc2);
    case 'number':
      if (Number.isSafeInteger(v)) return mpInt(out, v);
      mpReserve(out, 9);
      out.buf[out.len] = 0xcb;
      new DataView(out.buf.buffer, out.buf.byteOffset + out.len + 1, 8).setFloat64(0, v);
      out.len += 9;
      return;
    case 'bigint':
      if (v >= 0n) return mpUint(out, 0xcf, v, 8);
      mpReserve(out, 9);
      out.buf[out.len] = 0xd3;
      new DataView(out.buf.buffer, out.buf.byteOffset + out.len + 1, 8).setBigInt64(0, v);
      out.len += 9;
      return;
    case 'string': {
      const b = utf8enc.encode(v);
      mpLen(out, b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      return mpBytes(out, b);
    }
    default:
      break;
  }
  if (v instanceof Uint8Array) {
    mpLen(out, v.length, null, -1, 0xc4, 0xc5, 0xc6);
    return mpBytes(out, v);
  }
  if (Array.isArray(v)) {
    mpLen(out, v.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const x of v) mpWrite(out, x, depth + 1);
    return;
  }
  if (typeof v === 'object') {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    mpLen(out, keys.length, 0x80, 15, null, 0xde, 0xdf);
    for (const k of keys) {
      mpWrite(out, k, depth + 1);
      mpWrite(out, v[k], depth + 1);
    }
    return;
  }
  throw new TypeError(`msgpack: cannot encode a ${typeof v}`);
}

/**
 * Decode one msgpack value that fills `bytes` exactly. Integers beyond 2^53 become Numbers
 * (rounded, as JSON.parse rounds them), so a notification decodes to the same object in both
 * protocols. Throws RangeError on truncated input or trailing bytes.
 * @param {Uint8Array | ArrayBuffer} bytes
 * @returns {unknown}
 */
export function msgpackDecode(bytes) {
  const buf = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const r = { buf, dv: new DataView(buf.buffer, buf.byteOffset, buf.byteLength), pos: 0 };
  const v = mpRead(r, 0);
  if (r.pos !== buf.length) throw new RangeError(`msgpack: ${buf.length - r.pos} trailing bytes`);
  return v;
}

function mpNeed(r, n) {
  if (r.pos + n > r.buf.length) throw new RangeError('msgpack: truncated');
  const p = r.pos;
  r.pos += n;
  return p;
}

function mpStr(r, n) {
  const p = mpNeed(r, n);
  return utf8dec.decode(r.buf.subarray(p, p + n));
}

function mpArr(r, n, depth) {
  const a = new Array(n);
  for (let i = 0; i < n; i++) a[i] = mpRead(r, depth + 1);
  return a;
}

function mpMap(r, n, depth) {
  const o = {};
  for (let i = 0; i < n; i++) {
    const k = mpRead(r, depth + 1);
    const key = typeof k === 'string' ? k : String(k);
    const v = mpRead(r, depth + 1);
    if (key === '__proto__') Object.defineProperty(o, key, { value: v, enumerable: true });
    else o[key] = v;
  }
  return o;
}

function mpExt(r, n) {
  const type = r.dv.getInt8(mpNeed(r, 1));
  const p = mpNeed(r, n);
  return { ext: type, data: r.buf.slice(p, p + n) };
}

function mpRead(r, depth) {
  if (depth > 256) throw new RangeError('msgpack: nesting deeper than 256');
  const dv = r.dv;
  const t = r.buf[mpNeed(r, 1)];
  if (t < 0x80) return t;
  if (t < 0x90) return mpMap(r, t & 0x0f, depth);
  if (t < 0xa0) return mpArr(r, t & 0x0f, depth);
  if (t < 0xc0) return mpStr(r, t & 0x1f);
  if (t >= 0xe0) return t - 0x100;
  switch (t) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: { const n = dv.getUint8(mpNeed(r, 1)); const p = mpNeed(r, n); return r.buf.slice(p, p + n); }
    case 0xc5: { const n = dv.getUint16(mpNeed(r, 2)); const p = mpNeed(r, n); return r.buf.slice(p, p + n); }
    case 0xc6: { const n = dv.getUint32(mpNeed(r, 4)); const p = mpNeed(r, n); return r.buf.slice(p, p + n); }
    case 0xc7: return mpExt(r, dv.getUint8(mpNeed(r, 1)));
    case 0xc8: return mpExt(r, dv.getUint16(mpNeed(r, 2)));
    case 0xc9: return mpExt(r, dv.getUint32(mpNeed(r, 4)));
    case 0xca: return dv.getFloat32(mpNeed(r, 4));
    case 0xcb: return dv.getFloat64(mpNeed(r, 8));
    case 0xcc: return dv.getUint8(mpNeed(r, 1));
    case 0xcd: return dv.getUint16(mpNeed(r, 2));
    case 0xce: return dv.getUint32(mpNeed(r, 4));
    case 0xcf: return Number(dv.getBigUint64(mpNeed(r, 8)));
    case 0xd0: return dv.getInt8(mpNeed(r, 1));
    case 0xd1: return dv.getInt16(mpNeed(r, 2));
    case 0xd2: return dv.getInt32(mpNeed(r, 4));
    case 0xd3: return Number(dv.getBigInt64(mpNeed(r, 8)));
    case 0xd4: return mpExt(r, 1);
    case 0xd5: return mpExt(r, 2);
    case 0xd6: return mpExt(r, 4);
    case 0xd7: return mpExt(r, 8);
    case 0xd8: return mpExt(r, 16);
    case 0xd9: return mpStr(r, dv.getUint8(mpNeed(r, 1)));
    case 0xda: return mpStr(r, dv.getUint16(mpNeed(r, 2)));
    case 0xdb: return mpStr(r, dv.getUint32(mpNeed(r, 4)));
    case 0xdc: return mpArr(r, dv.getUint16(mpNeed(r, 2)), depth);
    case 0xdd: return mpArr(r, dv.getUint32(mpNeed(r, 4)), depth);
    case 0xde: return mpMap(r, dv.getUint16(mpNeed(r, 2)), depth);
    case 0xdf: return mpMap(r, dv.getUint32(mpNeed(r, 4)), depth);
    default: throw new RangeError(`msgpack: unused type byte 0x${t.toString(16)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Which seqs of one sequence (a user's, or the broadcasts') were delivered.

/**
 * Seqs of one sequence that were delivered, as a watermark (every seq <= w is done) plus the
 * seqs above it. Seqs may arrive out of order (a higher priority overtakes a lower one), so the
 * watermark only moves over a missing seq when it arrives, is reported skipped (gap,
 * conflation), or has been missing for `holeMs` (it was filtered by a channel subscription, or
 * will never come): the resume point is the watermark, and a replay from it re-sends nothing
 * that is then delivered twice.
 */
export class SeqTracker {
  /**
   * @param {{holeMs?: number, now?: () => number}} [opts]
   */
  constructor(opts = {}) {
    this.holeMs = opts.holeMs ?? DEFAULTS.holeMs;
    this.now = opts.now ?? Date.now;
    /** @type {number | null} every seq <= w is done; null = nothing known yet */
    this.w = null;
    /** @type {Set<number>} delivered seqs above w */
    this.above = new Set();
    /** @type {Array<[number, number]>} skipped ranges above w+1 */
    this.ranges = [];
    this.holeSince = null;
  }

  /** @param {number} seq */
  seen(seq) {
    if (this.w !== null && seq <= this.w) return true;
    return this.above.has(seq) || this.ranges.some(([a, b]) => seq >= a && seq <= b);
  }

  /** Record seq as delivered (or as skipped). @param {number} seq */
  mark(seq) {
    if (this.seen(seq)) return;
    this.above.add(seq);
    this.advance();
  }

  /** Record [from, to] as skipped (a gap). */
  skipRange(from, to) {
    if (to < from) return;
    if (this.w === null || from <= this.w + 1) this.w = Math.max(this.w ?? 0, to);
    else this.ranges.push([from, to]);
    this.advance();
  }

  /** Forget everything: every seq <= w is done, nothing above it is known. @param {number} w */
  reset(w) {
    this.w = w;
    this.above.clear();
    this.ranges = [];
    this.holeSince = null;
  }

  /** The resume point: the `since` to reconnect with (0 = nothing to resume). */
  resumePoint() {
    this.checkHole();
    if (this.w !== null) return this.w;
    if (!this.above.size) return 0;
    // Nothing known below the first seq seen: the top of the run that starts there.
    let s = Math.min(...this.above);
    while (this.above.has(s + 1)) s++;
    return s;
  }

  advance() {
    const before = this.w;
    if (this.w !== null) {
      for (;;) {
        if (this.above.delete(this.w + 1)) {
          this.w++;
          continue;
        }
        const i = this.ranges.findIndex(([a]) => a <= this.w + 1);
        if (i < 0) break;
        this.w = Math.max(this.w, this.ranges[i][1]);
        this.ranges.splice(i, 1);
      }
      for (const s of this.above) if (s <= this.w) this.above.delete(s);
    }
    if (this.w !== before) this.holeSince = null; // a hole at the new w+1 starts now
    this.checkHole();
  }

  // The hole at w+1 (a seq missing below delivered ones) is given up after holeMs, counted
  // from when it appeared (w reached its value with seqs above, or a seq above w+1 arrived),
  // or at once when too many seqs wait above it.
  checkHole() {
    if (this.above.size === 0 && this.ranges.length === 0) {
      this.holeSince = null;
      return;
    }
    const t = this.now();
    if (this.holeSince === null) this.holeSince = t;
    if (t - this.holeSince < this.holeMs && this.above.size < MAX_ABOVE) return;
    const lows = [...this.above, ...this.ranges.map(([a]) => a)];
    this.w = Math.min(...lows) - 1;
    this.holeSince = null;
    this.advance();
  }

  /** @returns {{w: number|null, a: number[]}} */
  toJSON() {
    return { w: this.w, a: [...this.above].sort((x, y) => x - y).slice(0, PERSIST_ABOVE) };
  }

  /** @param {{w?: number|null, a?: number[]}} st */
  load(st) {
    if (st && Number.isSafeInteger(st.w) && st.w >= 0) this.w = st.w;
    if (st && Array.isArray(st.a))
      for (const s of st.a) if (Number.isSafeInteger(s) && (this.w === null || s > this.w)) this.above.add(s);
    this.advance();
  }
}

// ---------------------------------------------------------------------------------------------

/** A storage adapter that keeps values in memory (same shape as localStorage). */
export function memoryStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => void m.set(k, String(v)),
    removeItem: (k) => void m.delete(k),
  };
}

/**
 * The claims of a JWT (not verified: the gateway does that), or null.
 * @param {string} token
 */
export function tokenClaims(token) {
  try {
    const part = String(token).split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((part.length + 3) % 4);
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const claims = JSON.parse(utf8dec.decode(bytes));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

/**
 * The delay before reconnect attempt `attempt` (0-based): initialMs * factor^attempt, capped at
 * maxMs, minus a random share of up to `jitter` of it (so clients that lost the same gateway do
 * not come back at the same instant).
 * @param {number} attempt
 * @param {{initialMs:number,maxMs:number,factor:number,jitter:number}} b
 * @param {() => number} [random]
 */
export function backoffDelay(attempt, b, random = Math.random) {
  const cap = Math.min(b.maxMs, b.initialMs * Math.pow(b.factor, attempt));
  return Math.round(cap * (1 - b.jitter * random()));
}

const EVENTS = ['notification', 'gap', 'resumed', 'conflated', 'state', 'error', 'welcome',
  'subscribed', 'refreshed', 'pong'];

/**
 * A herald WebSocket session that reconnects, resumes and never delivers a seq twice.
 * Connects on the next microtask, so handlers attached right after `new` see everything.
 */
export class HeraldClient {
  /**
   * @param {string} url ws://host:port/ws (or a path relative to the page in a browser)
   * @param {import('./herald').HeraldOptions} [opts]
   */
  constructor(url, opts = {}) {
    if (!opts.token && !opts.getToken) throw new TypeError('HeraldClient: token or getToken is required');
    if (opts.protocol && opts.protocol !== 'json' && opts.protocol !== 'msgpack')
      throw new TypeError(`HeraldClient: protocol must be 'json' or 'msgpack'`);
    this.url = url;
    this.opts = {
      ...DEFAULTS,
      ...opts,
      backoff: { ...DEFAULTS.backoff, ...(opts.backoff || {}) },
    };
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    if (!this.WebSocket)
      throw new TypeError('HeraldClient: no WebSocket (Node 20: run with --experimental-websocket, or pass opts.WebSocket)');
    /** @type {Map<string, Set<Function>>} */
    this.handlers = new Map(EVENTS.map((e) => [e, new Set()]));
    this.channels = new Set(opts.channels || []);
    this.state = 'idle';
    this.userId = null;
    this.sessionId = null;
    this.gateway = null;
    this.exp = null;
    this.attempt = 0;
    this.stats = { connects: 0, delivered: 0, duplicates: 0, gaps: 0, resumes: 0 };
    this.user = new SeqTracker({ holeMs: this.opts.holeMs });
    this.bcast = new SeqTracker({ holeMs: this.opts.holeMs });
    this.storageKey = null;
    this.loaded = false;
    this.ws = null;
    this.closed = false;
    this.timers = { reconnect: null, ping: null, pong: null, refresh: null, persist: null };
    this.lastPersist = 0;
    this.refreshPending = false;
    queueMicrotask(() => this.connect());
  }

  /**
   * Add a handler; returns a function that removes it.
   * @param {string} event
   * @param {Function} fn
   */
  on(event, fn) {
    const set = this.handlers.get(event);
    if (!set) throw new TypeError(`HeraldClient: unknown event '${event}' (one of ${EVENTS.join(', ')})`);
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Remove a handler. */
  off(event, fn) {
    this.handlers.get(event)?.delete(fn);
  }

  /** Receive only these channels (added to the current set); sent now or after reconnecting. */
  subscribe(channels) {
    for (const c of channels) this.channels.add(c);
    this.sendOp({ op: 'subscribe', channels: [...channels] });
  }

  /** Stop receiving these channels. */
  unsubscribe(channels) {
    for (const c of channels) this.channels.delete(c);
    this.sendOp({ op: 'unsubscribe', channels: [...channels] });
  }

  /** The `since` a reconnect would send now (the last seq delivered without a hole below). */
  get lastSeq() {
    return this.user.resumePoint();
  }

  /** Close for good: no reconnect. The resume point is persisted. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.clearTimers();
    this.persist(true);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      detach(ws);
      try {
        ws.close(1000, 'client closed');
      } catch {
        /* already closing */
      }
    }
    this.setState('closed');
  }

  // -------------------------------------------------------------------------------------------

  emit(event, arg) {
    let ret;
    for (const fn of [...this.handlers.get(event)]) {
      try {
        const r = fn(arg, this);
        if (r && typeof r.then === 'function') ret = ret ? Promise.all([ret, r]) : r;
      } catch (e) {
        if (event === 'error') console.error('HeraldClient: error handler threw', e);
        else this.emit('error', { code: 'handler_threw', message: `${event} handler threw: ${e?.message ?? e}`, cause: e });
        if (event === 'notification') throw e;
      }
    }
    return ret;
  }

  setState(state, extra = {}) {
    this.state = state;
    this.emit('state', { state, ...extra });
  }

  clearTimers() {
    for (const k of Object.keys(this.timers)) {
      clearTimeout(this.timers[k]);
      this.timers[k] = null;
    }
  }

  async connect() {
    if (this.closed) return;
    this.setState('connecting', { attempt: this.attempt });
    let token;
    try {
      token = this.opts.getToken ? await this.opts.getToken() : this.opts.token;
      if (!token || typeof token !== 'string') throw new Error('getToken returned no token');
    } catch (e) {
      this.emit('error', { code: 'token_unavailable', message: String(e?.message ?? e), cause: e });
      return this.scheduleReconnect({ code: 0, reason: 'token_unavailable' });
    }
    if (this.closed) return;
    const claims = tokenClaims(token);
    this.exp = claims && Number.isFinite(claims.exp) ? claims.exp : null;
    if (!this.loaded) this.loadState(claims?.sub);
    let u;
    try {
      u = new URL(this.url, globalThis.location?.href);
    } catch (e) {
      this.emit('error', { code: 'bad_url', message: String(e?.message ?? e) });
      return this.close();
    }
    if (u.protocol === 'http:') u.protocol = 'ws:';
    if (u.protocol === 'https:') u.protocol = 'wss:';
    u.searchParams.set('token', token);
    const since = this.user.resumePoint();
    if (since > 0) u.searchParams.set('since', String(since));
    else u.searchParams.delete('since');
    if (this.opts.acks) u.searchParams.set('acks', '1');
    const binary = this.opts.protocol === 'msgpack';
    let ws;
    try {
      ws = new this.WebSocket(u.toString(), [binary ? 'herald.msgpack' : 'herald.json']);
    } catch (e) {
      this.emit('error', { code: 'connect_failed', message: String(e?.message ?? e) });
      return this.scheduleReconnect({ code: 0, reason: 'connect_failed' });
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.stats.connects++;
    ws.onmessage = (ev) => this.onFrame(ev.data);
    ws.onclose = (ev) => this.onClose(ws, ev);
    // onclose normally follows an error; Node 20's WebSocket leaves a failed connect in
    // CONNECTING without one, so a socket that is not open is given up shortly after.
    ws.onerror = () => {
      setTimeout(() => {
        if (this.ws === ws && ws.readyState !== 1) this.onClose(ws, { code: 1006, reason: 'connection failed' });
      }, 250);
    };
  }

  onClose(ws, ev) {
    if (ws !== this.ws) return;
    detach(ws);
    this.ws = null;
    this.refreshPending = false;
    for (const k of ['ping', 'pong', 'refresh']) {
      clearTimeout(this.timers[k]);
      this.timers[k] = null;
    }
    this.persist(true);
    if (!this.closed) this.scheduleReconnect({ code: ev?.code ?? 0, reason: ev?.reason ?? '' });
  }

  // Drop the socket now (no close handshake to wait for: the peer may be gone).
  dropSocket(reason) {
    const ws = this.ws;
    if (!ws) return;
    try {
      ws.close(4000, reason);
    } catch {
      /* ignore */
    }
    this.onClose(ws, { code: 4000, reason });
  }

  scheduleReconnect({ code, reason }) {
    if (this.closed) return;
    // 4001: the token expired; a fresh one from getToken needs no wait.
    const delayMs = code === 4001 && this.opts.getToken ? 0 : backoffDelay(this.attempt, this.opts.backoff);
    this.attempt++;
    this.setState('reconnecting', { attempt: this.attempt, delayMs, code, reason });
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => this.connect(), delayMs);
  }

  sendOp(op) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1 || this.state !== 'open') return false;
    ws.send(this.opts.protocol === 'msgpack' ? msgpackEncode(op) : JSON.stringify(op));
    return true;
  }

  onFrame(data) {
    let msg;
    try {
      msg = typeof data === 'string' ? JSON.parse(data) : msgpackDecode(data);
    } catch (e) {
      this.emit('error', { code: 'bad_frame', message: `undecodable frame: ${e?.message ?? e}` });
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    this.armPing();
    switch (msg.type) {
      case 'welcome': return this.onWelcome(msg);
      case 'notification': return this.onNotification(msg);
      case 'gap':
        this.stats.gaps++;
        this.user.skipRange(msg.from, msg.to);
        this.persist(false);
        return void this.emit('gap', { from: msg.from, to: msg.to });
      case 'resumed':
        this.stats.resumes++;
        if (Number.isSafeInteger(msg.from) && Number.isSafeInteger(msg.to) && msg.to < msg.from - 1) {
          // The server's last seq is below the one we resumed from: it lost its state (a
          // journal removed, a reboot) and numbers the user's notifications from msg.to + 1
          // again. Start over there, or every new seq up to our old watermark would be
          // dropped as a duplicate; the app must refetch what it showed (a gap).
          const lost = { from: msg.to + 1, to: msg.from - 1 };
          this.user.reset(msg.to);
          this.stats.gaps++;
          this.persist(false);
          this.emit('gap', lost);
        }
        return void this.emit('resumed', { from: msg.from, to: msg.to });
      case 'conflated':
        if (Array.isArray(msg.seqs)) for (const s of msg.seqs) this.user.mark(s);
        this.persist(false);
        return void this.emit('conflated', { seqs: msg.seqs });
      case 'subscribed':
        return void this.emit('subscribed', { channels: msg.channels });
      case 'refreshed':
        this.refreshPending = false;
        if (Number.isFinite(msg.exp)) this.exp = msg.exp;
        this.scheduleRefresh();
        return void this.emit('refreshed', { exp: msg.exp });
      case 'pong':
        return void this.emit('pong', msg);
      case 'error':
        if (this.refreshPending && (msg.code === 'refresh_denied' || msg.code === 'unknown_op'))
          this.refreshPending = false;
        return void this.emit('error', { code: msg.code, message: msg.message });
      default:
        return; // newer server messages are ignored
    }
  }

  onWelcome(msg) {
    this.attempt = 0;
    this.userId = msg.user_id;
    this.sessionId = msg.session_id;
    this.gateway = msg.gateway;
    this.setState('open', { gateway: msg.gateway, sessionId: msg.session_id });
    this.emit('welcome', msg);
    if (this.channels.size) this.sendOp({ op: 'subscribe', channels: [...this.channels] });
    this.scheduleRefresh();
  }

  onNotification(n) {
    const t = n.user_id === '*' ? this.bcast : this.user;
    const seq = n.seq;
    if (!Number.isSafeInteger(seq) || seq < 1) {
      this.emit('error', { code: 'bad_frame', message: 'notification without a valid seq' });
      return;
    }
    if (t.seen(seq)) {
      // A re-sent ack_required notification (protocol.md 14) that was delivered: our ack was lost.
      if (n.redelivery) this.ack(n);
      else this.stats.duplicates++;
      return;
    }
    t.mark(seq);
    this.stats.delivered++;
    if (t === this.user) this.persist(false);
    let r;
    try {
      r = this.emit('notification', n);
    } catch {
      return; // the handler threw: no ack, so an ack_required one is re-sent
    }
    if (r) r.then(() => this.ack(n), () => {});
    else this.ack(n);
  }

  ack(n) {
    if (!this.opts.acks || n.user_id === '*' || !this.opts.ackTypes.includes(n.message_type)) return;
    this.sendOp({ op: 'ack', seq: n.seq });
  }

  // App-level keepalive: a dead peer (no FIN, e.g. a laptop that slept) is noticed within
  // pingIntervalMs + pongTimeoutMs of silence. Any frame from the server counts as alive.
  armPing() {
    clearTimeout(this.timers.pong);
    this.timers.pong = null;
    clearTimeout(this.timers.ping);
    if (!this.opts.pingIntervalMs) return;
    this.timers.ping = setTimeout(() => {
      if (!this.sendOp({ op: 'ping' })) return;
      this.timers.pong = setTimeout(() => this.dropSocket('pong timeout'), this.opts.pongTimeoutMs);
    }, this.opts.pingIntervalMs);
  }

  // protocol.md 12: send {"op":"refresh","token":T} before exp; the gateway answers "refreshed".
  scheduleRefresh() {
    clearTimeout(this.timers.refresh);
    this.timers.refresh = null;
    if (!this.opts.getToken || !Number.isFinite(this.exp)) return;
    const remaining = this.exp - Date.now() / 1000;
    const lead = Math.min(this.opts.refreshBeforeS, Math.max(remaining / 2, 0));
    const delayMs = Math.max(0, (remaining - lead) * 1000);
    this.timers.refresh = setTimeout(() => this.refresh(), Math.min(delayMs, 2 ** 31 - 1));
  }

  async refresh() {
    if (this.state !== 'open' || this.refreshPending) return;
    let token;
    try {
      token = await this.opts.getToken();
    } catch (e) {
      this.emit('error', { code: 'token_unavailable', message: String(e?.message ?? e), cause: e });
      return;
    }
    if (typeof token === 'string' && this.sendOp({ op: 'refresh', token })) this.refreshPending = true;
  }

  // ----- persistence: {"w":watermark,"a":[delivered seqs above it]} per url and user -----

  loadState(sub) {
    this.loaded = true;
    const st = this.opts.storage;
    if (sub && st) {
      const base = String(this.url).split('?')[0];
      this.storageKey = `herald:${base}:${sub}`;
      try {
        const v = st.getItem(this.storageKey);
        if (v) this.user.load(JSON.parse(v));
      } catch (e) {
        this.emit('error', { code: 'storage', message: `stored state unreadable: ${e?.message ?? e}` });
      }
    }
    const since = this.opts.since;
    if (Number.isSafeInteger(since) && since >= 0 && (this.user.w === null || since > this.user.w)) {
      this.user.skipRange(1, since);
    }
  }

  // Written at most every persistEveryMs (and at once when forced or when quiet).
  persist(force) {
    const st = this.opts.storage;
    if (!st || !this.storageKey) return;
    const now = Date.now();
    if (!force && now - this.lastPersist < this.opts.persistEveryMs) {
      if (!this.timers.persist && !this.closed)
        this.timers.persist = setTimeout(() => {
          this.timers.persist = null;
          this.persist(true);
        }, this.opts.persistEveryMs);
      return;
    }
    this.lastPersist = now;
    try {
      st.setItem(this.storageKey, JSON.stringify(this.user));
    } catch (e) {
      this.emit('error', { code: 'storage', message: `cannot store the resume point: ${e?.message ?? e}` });
    }
  }
}

function detach(ws) {
  ws.onmessage = ws.onclose = ws.onerror = ws.onopen = null;
}

export default HeraldClient;
