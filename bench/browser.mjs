// Browser: the initial sync of a table into IndexedDB by the real client (client.js from
// client-js, pages from sync-pull through lighttpd, gzip as the browser asks) in headless
// Debian Chromium, against a bare IndexedDB bulk put of the same rows in one transaction
// in the same page: the floor for getting those rows into IndexedDB at all.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { P, ROOT, makeDataset, startServers, median, fmt, result } from './common.mjs';

const require = createRequire(path.join(ROOT, 'package.json'));
const CHROMIUM = process.env.RHTMX_CHROMIUM || '/usr/bin/chromium';

// The page: a timestamp before client.js, and a status listener that records when the
// first sync is over (status leaves 'syncing' for 'online').
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>rhtmx-sync initial sync benchmark</title>
<script>window.__bench = { t0: performance.now(), seen: false, done: null, error: null };</script>
<script src="/api/sync/client.js" data-sync-entities="items" data-sync-events="off"
        data-sync-style="false" data-sync-db="bench"></script>
<script>
RhtmxSync.on('status', function (s) {
  var b = window.__bench;
  if (s.state === 'syncing') b.seen = true;
  else if (s.state === 'error') b.error = s.error;
  else if (b.seen && b.done === null && s.state === 'online') b.done = performance.now() - b.t0;
});
</script></head><body><p>benchmark</p></body></html>
`;

/** In the page: put rows into a fresh database in one transaction; ms for the put. */
async function barePut(name) {
  const rows = await window.RhtmxSync.list('items');
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open(name, 1);
    r.onupgradeneeded = () => r.result.createObjectStore('items', { keyPath: 'id' });
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const t0 = performance.now();
  const tx = db.transaction('items', 'readwrite');
  const store = tx.objectStore('items');
  for (const row of rows) store.put(row);
  await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
  const ms = performance.now() - t0;
  db.close();
  return { ms, rows: rows.length };
}

export function browserMissing() {
  if (!fs.existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM}`;
  try { require.resolve('playwright-core'); } catch { return 'playwright-core is not installed (npm ci)'; }
  return null;
}

export async function benchBrowser() {
  const n = P.browserRows;
  const name = `browser: initial sync of ${fmt(n)} rows into IndexedDB vs bare bulk put, time`;
  const why = browserMissing();
  if (why) return [result(name, { ratio: null, goal: 2, cmp: '<=', note: `not run: ${why}` })];

  const app = makeDataset({ rows: n, updates: 0, tag: 'bench-browser' });
  const www = fs.mkdtempSync(path.join(path.dirname(app.dir), 'www-'));
  fs.writeFileSync(path.join(www, 'index.html'), PAGE);
  const srv = await startServers(app, { docroot: www });
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const sync = [], bare = [];
    const reps = P.reps > 1 ? 3 : 1;
    for (let rep = 0; rep < reps; rep++) {
      const ctx = await browser.newContext(); // a fresh profile: IndexedDB starts empty
      const page = await ctx.newPage();
      await page.goto(`${srv.url}/index.html`);
      await page.waitForFunction(() => window.__bench.done !== null || window.__bench.error !== null,
        null, { timeout: 120_000, polling: 50 });
      const b = await page.evaluate(() => window.__bench);
      assert.equal(b.error, null, `the sync failed: ${b.error}`);
      const put = await page.evaluate(barePut, `bare-${rep}`);
      assert.equal(put.rows, n, 'the client stored every row');
      sync.push(b.done);
      bare.push(put.ms);
      await ctx.close();
    }
    const s = median(sync), p = median(bare);
    return [result(name, {
      ratio: s / p, goal: 2, cmp: '<=',
      figures: `initial sync ${fmt(s)} ms (client.js start to synced, pages of 1,000: the server default), bare put ${fmt(p)} ms`,
    })];
  } finally {
    await browser.close();
    await srv.stop();
  }
}
