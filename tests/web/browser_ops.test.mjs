// browser_ops.test.mjs - the operations page (broker /ui) in headless chromium against a real
// herald: processes and gateways render, and the numbers change live after publishing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Herald, mintToken, notif, requireNodeWithWebSocket } from '../../clients/js/test/harness.mjs';
import { Chromium } from './cdp.mjs';

requireNodeWithWebSocket();
const { HeraldClient } = await import('../../clients/js/herald.js');

let h, browser;
before(async () => {
  h = await new Herald({ gateways: 2, dev: false }).start();
  browser = await Chromium.launch();
});
after(async () => {
  await browser?.close();
  await h?.stop();
});

const num = (id) => `Number((document.getElementById('${id}')?.textContent ?? '').replace(/,/g, ''))`;

test('the operations page renders processes, gateways and live numbers that change after publishing', async () => {
  const page = await browser.open(`${h.brokerUrl}/ui`);
  await page.waitFor('processes', `document.querySelector('#proc-gateway1 td:nth-child(3)')?.textContent === 'up'`);
  assert.equal(await page.eval(`document.querySelector('#proc-broker td:nth-child(3)').textContent`), 'up');
  await page.waitFor('two polls', 'window.heraldOps.polls >= 2');
  const before = await page.eval(num('total-messages_accepted'));

  const c = new HeraldClient(h.gatewayUrl(1), { token: mintToken('ops-u'), pingIntervalMs: 0 });
  try {
    await new Promise((r) => c.on('welcome', r));
    await page.waitFor('a session on gateway 1', `${num('gw-1-sessions')} === 1`);
    assert.equal(await page.eval(num('gw-0-sessions')), 0);
    for (let i = 1; i <= 30; i++) await h.publish(notif('ops-u', i));
    await page.waitFor('accepted total +30', `${num('total-messages_accepted')} >= ${before + 30}`);
    await page.waitFor('a publish rate above 0', 'window.heraldOps.series.publish.some((v) => v > 0)');
    await page.waitFor('a push rate above 0', 'window.heraldOps.series.pushed.some((v) => v > 0)');
    // The chart was drawn: some pixel of the publish canvas is not blank.
    const inked = await page.eval(`(() => { const c = document.getElementById('chart-publish');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true; return false; })()`);
    assert.equal(inked, true);
    assert.match(await page.eval(`document.getElementById('queue-P1').textContent`), /^P1: \d+ \/ 50,000/);
    assert.match(await page.eval(`document.getElementById('gw-1-fill').textContent`), /%$/);
    // Latency per priority: the broker's ingest and gateway 1's delivery, with counts.
    await page.waitFor('latency rows', `[...document.querySelectorAll('#latency-table td')].some((td) => td.textContent === 'delivery gw1 count')`);
    const counts = await page.eval(`(() => {
      const rows = [...document.querySelectorAll('#latency-table tr')];
      const row = (name) => rows.find((r) => r.firstChild.textContent === name);
      const sum = (r) => [...r.children].slice(1).reduce((a, td) => a + Number(td.textContent.replace(/,/g, '')), 0);
      return { ingest: sum(row('ingest count')), delivery: sum(row('delivery gw1 count')) };
    })()`);
    assert.ok(counts.ingest >= 30, `ingest count ${counts.ingest}`);
    assert.ok(counts.delivery >= 30, `delivery count ${counts.delivery}`);
    if (process.env.HERALD_SCREENSHOT) await page.screenshot(process.env.HERALD_SCREENSHOT);
  } finally {
    c.close();
  }
});
