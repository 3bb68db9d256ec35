// browser_demo.test.mjs - the demo page in headless chromium against a real herald: a
// notification published with heraldctl appears in the DOM; after kill -9 of the page's
// gateway (the supervisor restarts it) the page resumes and shows every seq once, in order.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';

import { Herald, buildRoot, notif, requireNodeWithWebSocket, sleep } from '../../clients/js/test/harness.mjs';
import { Chromium } from './cdp.mjs';

requireNodeWithWebSocket();
const run = promisify(execFile);

let h, browser;
before(async () => {
  h = await new Herald({ gateways: 1, dev: true }).start();
  browser = await Chromium.launch();
});
after(async () => {
  await browser?.close();
  await h?.stop();
});

// Seqs of user u shown on the page, oldest first (each channel list shows the newest on top).
const shownSeqs = (u) => `[...document.querySelectorAll('li.notif[data-user="${u}"]')].map((e) => Number(e.dataset.seq)).reverse()`;

test('the demo page shows a notification published with heraldctl publish', async () => {
  const page = await browser.open(`${h.gatewayHttp(0)}/?user=web-u1&connect=1`);
  await page.waitFor('the page to connect', `document.getElementById('state').textContent === 'open'`);
  assert.match(await page.eval(`document.getElementById('session').textContent`), /user web-u1 on gateway 0/);
  const payload = JSON.stringify({ user_id: 'web-u1', alert_type: 'margin', severity: 'high', message: 'ratio 92%', risk_ratio: 0.92, suggestion: 'add margin' });
  await run(path.join(buildRoot, 'tools/heraldctl/heraldctl'), ['-c', h.config, 'publish', '--user', 'web-u1', '--type', 'risk_alert', '--payload', payload]);
  const text = await page.waitFor('the notification in the DOM',
    `document.querySelector('.channel[data-channel="risk"] li.notif[data-seq="1"]')?.textContent`);
  assert.match(text, /#1/);
  assert.match(text, /risk_alert/);
  assert.match(text, /P0/);
  assert.match(text, /ratio 92%/);
  assert.match(text, /\d+\.\d ms/, 'publish->display latency is shown');
  assert.equal(await page.eval(`document.querySelector('li.notif[data-seq="1"]').classList.contains('p0')`), true);
});

test('the page survives kill -9 of its gateway: resumes and shows every seq once, in order', async () => {
  const user = 'web-u2';
  const page = await browser.open(`${h.gatewayHttp(0)}/?user=${user}&connect=1`);
  await page.waitFor('the page to connect', `document.getElementById('state').textContent === 'open'`);
  for (let i = 1; i <= 10; i++) await h.publish(notif(user, i));
  await page.waitFor('seqs 1..10', `${shownSeqs(user)}.length === 10`);
  const publishing = (async () => {
    for (let i = 11; i <= 50; i++) {
      await h.publish(notif(user, i));
      await sleep(15);
    }
  })();
  await sleep(80);
  await h.killGateway(0);
  await publishing;
  await page.waitFor('all 50 seqs after the restart', `${shownSeqs(user)}.length >= 50`, 40000);
  await sleep(300);
  const seqs = await page.eval(shownSeqs(user));
  assert.deepEqual(seqs, Array.from({ length: 50 }, (_, i) => i + 1));
  const kinds = await page.eval(`[...document.querySelectorAll('#events li')].map((e) => e.dataset.kind)`);
  assert.ok(kinds.includes('resumed'), `events: ${kinds}`);
  assert.ok(kinds.filter((k) => k === 'welcome').length >= 2, 'welcomed again after the restart');
  assert.equal(await page.eval(`window.heraldDemo.client.stats.duplicates >= 0 && document.getElementById('state').textContent`), 'open');
  if (process.env.HERALD_SCREENSHOT) await page.screenshot(process.env.HERALD_SCREENSHOT);
});
