// harness.mjs - a real herald for the JS and browser tests: herald-supervisor (broker and
// gateways) from the meson build dir, with a private runtime dir, shm prefix and free loopback
// ports; tokens, publishing, kill -9 of a gateway, and clean-up by pid even when a test fails.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SKIP = 77;
const here = path.dirname(fileURLToPath(import.meta.url));
export const sourceRoot = process.env.HERALD_SOURCE_ROOT || path.resolve(here, '../../..');
export const buildRoot = process.env.HERALD_BUILD_ROOT || path.join(sourceRoot, 'build-test');
export const SECRET = 'js-test-secret';

/** Exit with 77 (meson: SKIP) and a reason, unless Node has what the tests need. */
export function requireNodeWithWebSocket() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 20 || typeof globalThis.WebSocket !== 'function') {
    console.log(`SKIP: needs Node >= 20 with WebSocket (have ${process.version})`);
    process.exit(SKIP);
  }
  for (const b of ['tools/supervisor/herald-supervisor', 'broker/herald-broker', 'gateway/herald-gateway']) {
    if (!fs.existsSync(path.join(buildRoot, b))) {
      console.log(`SKIP: ${b} not built in ${buildRoot}`);
      process.exit(SKIP);
    }
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll fn until it returns a truthy value (returned) or timeoutMs passes (throws what). */
export async function waitFor(what, fn, timeoutMs = 15000, everyMs = 25) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

const handedOut = new Set(); // ports given to a caller of this process, not bound yet perhaps

/** A base port such that [base, base+count) are free on 127.0.0.1 now (below the ephemeral
 * range) and were not handed out before by this process (so two calls never collide). */
export async function freePorts(count) {
  for (let i = 0; i < 200; i++) {
    const base = 20000 + Math.floor(Math.random() * 12000);
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = !handedOut.has(p) && (await portFree(p));
    if (!ok) continue;
    for (let p = base; p < base + count; p++) handedOut.add(p);
    return base;
  }
  throw new Error('no free loopback ports');
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** An HS256 JWT {sub, iat, exp} signed with secret. */
export function mintToken(user, ttlS = 3600, secret = SECRET, extra = {}) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub: user, iat: now, exp: now + ttlS, ...extra }));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

const running = new Set();
let exitHook = false;

function killAll() {
  for (const h of running) h.killNow();
}

/** A notification for user with a small valid payload. */
export function notif(user, i, fields = {}) {
  return {
    message_type: 'system_notice',
    user_id: user,
    payload: { title: `t${i}`, content: `n${i}`, level: 'info' },
    ...fields,
  };
}

export class Herald {
  /**
   * @param {{gateways?: number, ini?: string, dev?: boolean, gatewayPort?: number}} opts
   */
  constructor(opts = {}) {
    this.gateways = opts.gateways ?? 1;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hjs-'));
    this.runDir = path.join(this.dir, 'run');
    this.prefix = `hjs${process.pid}x${Math.floor(Math.random() * 1e6)}`;
    this.extraIni = opts.ini ?? '';
    this.dev = opts.dev ?? true;
    this.gatewayPort = opts.gatewayPort ?? 0;
    this.pids = new Set();
    this.sup = null;
  }

  async start() {
    this.httpPort = await freePorts(1);
    if (!this.gatewayPort) this.gatewayPort = await freePorts(this.gateways);
    this.config = path.join(this.dir, 'herald.ini');
    const ini = [
      '[runtime]', `dir = ${this.runDir}`, `shm_prefix = ${this.prefix}`,
      `web_dir = ${path.join(sourceRoot, 'clients/web')}`,
      '[broker]', `http = 127.0.0.1:${this.httpPort}`,
      '[gateway]', `count = ${this.gateways}`, `listen = 127.0.0.1:${this.gatewayPort}`,
      'ring_bytes = 1M', 'flush_ms = 5,20,50',
      '[auth]', `secret = ${SECRET}`, `allow_dev_secret = ${this.dev}`,
    ].join('\n');
    fs.writeFileSync(this.config, `${ini}\n${mergeIni(this.extraIni)}`);
    const log = fs.openSync(path.join(this.dir, 'supervisor.log'), 'a');
    this.sup = spawn(path.join(buildRoot, 'tools/supervisor/herald-supervisor'), ['-c', this.config], {
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    this.pids.add(this.sup.pid);
    this.supExit = new Promise((r) => this.sup.once('exit', (code, sig) => r({ code, sig })));
    running.add(this);
    if (!exitHook) {
      exitHook = true;
      process.on('exit', killAll);
      for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { killAll(); process.exit(1); });
    }
    await this.waitUp();
    return this;
  }

  get brokerUrl() {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  gatewayUrl(i = 0) {
    return `ws://127.0.0.1:${this.gatewayPort + i}/ws`;
  }

  gatewayHttp(i = 0) {
    return `http://127.0.0.1:${this.gatewayPort + i}`;
  }

  status() {
    try {
      const st = JSON.parse(fs.readFileSync(path.join(this.runDir, 'status.json'), 'utf8'));
      for (const p of st.processes) if (p.pid > 0) this.pids.add(p.pid);
      return st;
    } catch {
      return null;
    }
  }

  proc(name) {
    return this.status()?.processes.find((p) => p.name === name) ?? null;
  }

  async waitUp(timeoutMs = 30000) {
    const names = ['broker', ...Array.from({ length: this.gateways }, (_, i) => `gateway${i}`)];
    await waitFor('herald up', () => {
      const st = this.status();
      return st && names.every((n) => st.processes.some((p) => p.name === n && p.state === 'up' && p.pid > 0));
    }, timeoutMs);
    for (let i = 0; i < this.gateways; i++)
      await waitFor(`gateway ${i} healthy`, async () => (await this.get(`${this.gatewayHttp(i)}/healthz`)).status === 200, timeoutMs, 50);
  }

  async get(url) {
    try {
      const r = await fetch(url);
      return { status: r.status, headers: r.headers, text: await r.text() };
    } catch {
      return { status: 0, headers: new Headers(), text: '' };
    }
  }

  async stats() {
    return JSON.parse((await this.get(`${this.brokerUrl}/api/stats`)).text);
  }

  /** POST /api/publish; returns the parsed answer (throws on HTTP errors). */
  async publish(body) {
    const r = await fetch(`${this.brokerUrl}/api/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    if (r.status !== 200) throw new Error(`publish: HTTP ${r.status}: ${text}`);
    return JSON.parse(text);
  }

  /** kill -9 gateway i and wait until the supervisor has it up again under a new pid. */
  async killGateway(i = 0) {
    const old = this.proc(`gateway${i}`).pid;
    process.kill(old, 'SIGKILL');
    await waitFor(`gateway${i} restarted`, () => {
      const p = this.proc(`gateway${i}`);
      return p && p.state === 'up' && p.pid !== old && p.pid > 0;
    }, 30000);
    return old;
  }

  killNow() {
    for (const pid of this.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    this.cleanupFiles();
  }

  cleanupFiles() {
    try {
      for (const f of fs.readdirSync('/dev/shm')) if (f.startsWith(this.prefix)) fs.rmSync(`/dev/shm/${f}`, { force: true });
    } catch {
      /* no /dev/shm */
    }
    if (!process.env.HERALD_TEST_KEEP) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** SIGTERM the supervisor (it stops its children), bounded; then SIGKILL whatever is left. */
  async stop() {
    if (!running.has(this)) return;
    running.delete(this);
    this.status();
    try {
      process.kill(this.sup.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    const done = await Promise.race([this.supExit, sleep(15000).then(() => null)]);
    if (!done) console.error(`supervisor ${this.sup.pid} did not stop in 15 s; killing`);
    this.killNow();
  }

  log() {
    try {
      return fs.readFileSync(path.join(this.dir, 'supervisor.log'), 'utf8');
    } catch {
      return '';
    }
  }
}

// Extra INI text with [section] headers: keys of a section already written are appended
// after the base file's sections (INI allows a section twice).
function mergeIni(extra) {
  return extra ? `${extra.trim()}\n` : '';
}

/** Collects a client's events for assertions. */
export function record(client) {
  const ev = { notifications: [], seqs: [], gaps: [], resumed: [], states: [], errors: [], welcomes: [], refreshed: [] };
  client.on('notification', (n) => { ev.notifications.push(n); ev.seqs.push(n.seq); });
  client.on('gap', (g) => ev.gaps.push(g));
  client.on('resumed', (r) => ev.resumed.push(r));
  client.on('state', (s) => ev.states.push(s));
  client.on('error', (e) => ev.errors.push(e));
  client.on('welcome', (w) => ev.welcomes.push(w));
  client.on('refreshed', (r) => ev.refreshed.push(r));
  return ev;
}
