// cdp.mjs - headless chromium driven over the DevTools protocol (no puppeteer): start it on a
// private profile with --remote-debugging-port=0, read DevToolsActivePort, open pages as
// targets on the browser's WebSocket (flattened sessions), evaluate expressions, poll DOM
// conditions. The browser is always killed by its pid.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { sleep, waitFor } from '../../clients/js/test/harness.mjs';

export class Chromium {
  static async launch() {
    const b = new Chromium();
    await b.start();
    return b;
  }

  async start() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hcdp-'));
    const log = fs.openSync(path.join(this.dir, 'chromium.log'), 'a');
    this.proc = spawn('chromium', [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage', '--remote-debugging-port=0', `--user-data-dir=${this.dir}/profile`,
      'about:blank',
    ], { stdio: ['ignore', log, log], detached: true }); // its own process group: see kill()
    fs.closeSync(log);
    this.pid = this.proc.pid;
    process.on('exit', () => this.kill());
    const portFile = path.join(this.dir, 'profile', 'DevToolsActivePort');
    const lines = await waitFor('DevToolsActivePort', () => {
      try {
        const l = fs.readFileSync(portFile, 'utf8').split('\n');
        return l.length >= 2 && l[1] ? l : null;
      } catch {
        return null;
      }
    }, 30000, 50);
    this.ws = new WebSocket(`ws://127.0.0.1:${Number(lines[0])}${lines[1].trim()}`);
    this.nextId = 1;
    this.pending = new Map();
    this.events = [];
    await new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error('cannot connect to the DevTools WebSocket'));
    });
    this.ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.id && this.pending.has(m.id)) {
        const { resolve, reject } = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error) reject(new Error(`${m.error.message} (${m.error.code})`));
        else resolve(m.result);
      } else if (m.method) {
        this.events.push(m);
        if (this.events.length > 1000) this.events.shift();
      }
    };
  }

  /** Send a DevTools command (to the page session when sessionId is given). */
  send(method, params = {}, sessionId = undefined, timeoutMs = 15000) {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
    });
  }

  /** Open url in a new tab; returns a Page. */
  async open(url) {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const page = new Page(this, targetId, sessionId);
    await this.send('Runtime.enable', {}, sessionId);
    await this.send('Page.enable', {}, sessionId);
    await this.send('Page.navigate', { url }, sessionId);
    return page;
  }

  // SIGKILL to the process group led by the chromium we started (its renderer and zygote
  // processes are in it), by that pid.
  kill() {
    if (!this.pid) return;
    for (const target of [-this.pid, this.pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    this.pid = 0;
  }

  async close() {
    try {
      this.ws?.close();
    } catch {
      /* ignore */
    }
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.kill();
    await Promise.race([exited, sleep(5000)]);
    if (!process.env.HERALD_TEST_KEEP) fs.rmSync(this.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }

  /** Console messages and exceptions of a page session, for failure messages. */
  pageLog(sessionId) {
    return this.events
      .filter((e) => e.sessionId === sessionId && (e.method === 'Runtime.consoleAPICalled' || e.method === 'Runtime.exceptionThrown'))
      .map((e) => (e.method === 'Runtime.exceptionThrown'
        ? `exception: ${e.params.exceptionDetails.exception?.description ?? e.params.exceptionDetails.text}`
        : `${e.params.type}: ${e.params.args.map((a) => a.value ?? a.description).join(' ')}`))
      .join('\n');
  }
}

export class Page {
  constructor(browser, targetId, sessionId) {
    this.browser = browser;
    this.targetId = targetId;
    this.sessionId = sessionId;
  }

  /** The value of a JavaScript expression in the page (promises awaited). */
  async eval(expression) {
    const r = await this.browser.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, this.sessionId);
    if (r.exceptionDetails) throw new Error(`${expression}: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value;
  }

  /** Poll expression until it is truthy; returns its value. */
  async waitFor(what, expression, timeoutMs = 20000) {
    try {
      return await waitFor(what, () => this.eval(expression).catch(() => null), timeoutMs, 100);
    } catch (e) {
      e.message += `\npage log:\n${this.browser.pageLog(this.sessionId)}`;
      throw e;
    }
  }

  async screenshot(file) {
    const { data } = await this.browser.send('Page.captureScreenshot', { format: 'png' }, this.sessionId);
    fs.writeFileSync(file, Buffer.from(data, 'base64'));
  }
}
