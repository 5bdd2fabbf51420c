// A new build (sw.js and client.js both changed on the server) takes over as docs/CLIENT.md
// "Updates" says: the first page load after the deploy already runs the new client.js (the
// old worker asks the network first, revalidating), the new worker installs and takes the
// open page over at once, and a page opened offline afterwards runs the new build too, never
// the old one. The "new build" is the same files with a marker appended, served by a proxy
// in front of the example. (Chromium left the new worker waiting in two runs of three until
// the library asked it again to skip waiting, and under load once even then: the nudge in
// offlineSetup now asks every second.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as h from './harness.mjs';

const skip = h.prerequisites();

/* Asks the page's controlling worker which build it is (only build 2 answers). */
function workerBuild(page) {
  return page.evaluate(() => new Promise((resolve) => {
    const ctl = navigator.serviceWorker.controller;
    if (!ctl) { resolve(null); return; }
    const ch = new MessageChannel();
    const timer = setTimeout(() => resolve(1), 1000);
    ch.port1.onmessage = (e) => { clearTimeout(timer); resolve(e.data); };
    ctl.postMessage({ type: 'test:build' }, [ch.port2]);
  }));
}

test('a new build takes over: new client.js at once, new worker, offline loads run it', { skip, timeout: 120000 }, async (t) => {
  const srv = h.startServer({ offline: true });
  let build = 1;
  const fetchText = (p) => new Promise((resolve, reject) => {
    http.get(`${srv.origin}${p}`, (res) => { let b = ''; res.setEncoding('utf8'); res.on('data', (d) => { b += d; }); res.on('end', () => resolve(b)); }).on('error', reject);
  });
  const original = { sw: await fetchText('/api/sync/sw.js'), lib: await fetchText('/api/sync/client.js') };
  const served = { sw: 0, lib: 0 };
  const proxy = await h.startProxy(srv, (req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    if (build !== 2 || (p !== '/api/sync/sw.js' && p !== '/api/sync/client.js')) return false;
    const isSw = p.endsWith('sw.js');
    served[isSw ? 'sw' : 'lib']++;
    const body = isSw
      ? `${original.sw}\nself.addEventListener('message', (e) => { if (e.data && e.data.type === 'test:build') e.ports[0].postMessage(2); });\n`
      : `${original.lib}\nwindow.__rhtmxBuild = 2;\n`;
    res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache', 'Service-Worker-Allowed': '/' });
    res.end(body);
    return true;
  });
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  let failed = false;
  let page;
  t.after(async () => {
    if (failed) h.dumpLogs('page', page);
    await browser.close();
    proxy.close();
    srv.stop({ keep: failed });
  });
  const guard = (fn) => async (st) => { try { await fn(st); } catch (err) { failed = true; throw err; } };

  page = await h.openApp(ctx, srv, { origin: proxy.origin });
  await h.workerReady(page);
  assert.equal(await workerBuild(page), 1);
  assert.equal(await page.evaluate(() => window.__rhtmxBuild), undefined);

  await t.test('the first load after the deploy runs the new client.js; the new worker takes over', guard(async () => {
    build = 2;
    await page.reload();
    await h.appReady(page);
    assert.equal(await page.evaluate(() => window.__rhtmxBuild), 2, 'the old worker did not serve its kept client.js');
    await h.eventually(async () => (await workerBuild(page)) === 2, { what: 'the new worker to control the page' });
    assert.ok(served.sw >= 1 && served.lib >= 1);
    await h.waitIdle(page);
  }));

  await t.test('offline, the page opens with the new build', guard(async () => {
    await page.evaluate(() => RhtmxSync._debug.offline.done);
    await ctx.setOffline(true);
    srv.halt();
    await page.reload();
    await h.appReady(page);
    assert.equal(await page.evaluate(() => window.__rhtmxBuild), 2, 'the kept client.js is the new build');
    assert.equal(await workerBuild(page), 2);
    await page.waitForSelector('#todo-list >> text=Watch it sync');
  }));
});
