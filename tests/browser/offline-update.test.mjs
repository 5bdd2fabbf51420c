// A new build (sw.js and client.js both changed on the server) takes over as docs/CLIENT.md
// "Updates" says: the first page load after the deploy already runs the new client.js (the
// old worker asks the network first, revalidating), the new worker installs and takes the
// open page over at once, and a page opened offline afterwards runs the new build too, never
// the old one. The "new build" is the same files with a marker appended, served by a proxy
// in front of the example. Under load the new worker used to be left waiting: Chromium swaps
// the workers once it has stopped the old one as idle, and an event sent to the old worker
// while it was being stopped (the library's own message, or this test asking the controller
// for its build every 100 ms) started it again; the offline reload then swapped them in the
// middle of the old worker's answer and hung. The library now sends its messages to the new
// worker, and this test watches the page's controller change without messaging the old one.
// A second test deploys a build whose install fetch of a precached page never gets an answer:
// the worker gives that fetch up (10 s) and takes over all the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as h from './harness.mjs';

const skip = h.prerequisites();

/* Asks the page's controlling worker which build it is (the proxy adds the answer to both
 * builds). A worker that has not answered within a second is asked again (it may be starting,
 * or the page may have a new controller by now): the build is read from an answer, never
 * guessed from a silence. Resolves null when the page has no controller, and 'no answer'
 * (which no check accepts) when no worker answered in 15 s. */
function workerBuild(page) {
  return page.evaluate(() => new Promise((resolve) => {
    let done = false;
    setTimeout(() => { if (!done) { done = true; resolve('no answer'); } }, 15000);
    const ask = () => {
      if (done) return;
      const ctl = navigator.serviceWorker.controller;
      if (!ctl) { done = true; resolve(null); return; }
      const ch = new MessageChannel();
      const again = setTimeout(ask, 1000);
      ch.port1.onmessage = (e) => { clearTimeout(again); if (!done) { done = true; resolve(e.data); } };
      ctl.postMessage({ type: 'test:build' }, [ch.port2]);
    };
    ask();
  }));
}

/* The example behind a proxy that serves build 1 of sw.js and client.js until deploy(2), then
 * build 2 (the same files with a marker: window.__rhtmxBuild, and the worker's answer to
 * 'test:build'); with stallPrecache, the proxy never answers build 2's install fetch of the
 * precached page "/". Opens the app and waits for build 1's worker to control it. */
async function deployable(t, { stallPrecache = false } = {}) {
  const srv = h.startServer({ offline: true });
  let build = 1;
  const fetchText = (p) => new Promise((resolve, reject) => {
    http.get(`${srv.origin}${p}`, (res) => { let b = ''; res.setEncoding('utf8'); res.on('data', (d) => { b += d; }); res.on('end', () => resolve(b)); }).on('error', reject);
  });
  const original = { sw: await fetchText('/api/sync/sw.js'), lib: await fetchText('/api/sync/client.js') };
  const served = { sw: 0, lib: 0, stalled: 0 };
  const proxy = await h.startProxy(srv, (req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    /* A worker's own fetches carry its script as the referrer. */
    if (stallPrecache && build === 2 && p === '/' && /\/api\/sync\/sw\.js/.test(req.headers.referer || '')) {
      served.stalled++;
      return true; /* never answered */
    }
    if (p !== '/api/sync/sw.js' && p !== '/api/sync/client.js') return false;
    const isSw = p.endsWith('sw.js');
    if (build === 2) served[isSw ? 'sw' : 'lib']++;
    const body = isSw
      ? `${original.sw}\nself.addEventListener('message', (e) => { if (e.data && e.data.type === 'test:build') e.ports[0].postMessage(${build}); });\n`
      : `${original.lib}\nwindow.__rhtmxBuild = ${build};\n`;
    res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache', 'Service-Worker-Allowed': '/' });
    res.end(body);
    return true;
  });
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  const app = { srv, proxy, ctx, served, page: null, failed: false, deploy: (n) => { build = n; } };
  t.after(async () => {
    if (app.failed) h.dumpLogs('page', app.page);
    await browser.close();
    proxy.close();
    srv.stop({ keep: app.failed });
  });
  app.guard = (fn) => async (st) => { try { await fn(st); } catch (err) { app.failed = true; throw err; } };
  /* The worker that controlled each document as it loaded. */
  await ctx.addInitScript(() => { window.__loadedWith = navigator.serviceWorker && navigator.serviceWorker.controller; });
  app.page = await h.openApp(ctx, srv, { origin: proxy.origin });
  await h.workerReady(app.page);
  assert.equal(await workerBuild(app.page), 1);
  assert.equal(await app.page.evaluate(() => window.__rhtmxBuild), 1);
  return app;
}

/* Waits until the page's controller is another worker than the one it loaded with (read,
 * not asked, so the old worker gets no event while the browser stops it). */
function controllerChanged(page) {
  return page.waitForFunction(() => navigator.serviceWorker.controller && navigator.serviceWorker.controller !== window.__loadedWith,
    null, { timeout: 30000 });
}

test('a new build takes over: new client.js at once, new worker, offline loads run it', { skip, timeout: 120000 }, async (t) => {
  const app = await deployable(t);
  const { srv, ctx, served, guard } = app;
  const page = app.page;

  await t.test('the first load after the deploy runs the new client.js; the new worker takes over', guard(async () => {
    app.deploy(2);
    await page.reload();
    await h.appReady(page);
    assert.equal(await page.evaluate(() => window.__rhtmxBuild), 2, 'the old worker did not serve its kept client.js');
    /* The new worker takes the page over, and says it is build 2. */
    await controllerChanged(page);
    assert.equal(await workerBuild(page), 2);
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

test('a new build whose install fetch never gets an answer still installs and takes over', { skip, timeout: 120000 }, async (t) => {
  const app = await deployable(t, { stallPrecache: true });
  const page = app.page;
  await t.test('the new worker gives up its precache fetch of "/" and takes the page over', app.guard(async () => {
    app.deploy(2);
    await page.reload();
    await h.appReady(page);
    assert.equal(await page.evaluate(() => window.__rhtmxBuild), 2);
    await controllerChanged(page);
    assert.equal(await workerBuild(page), 2);
    assert.ok(app.served.stalled >= 1, 'the precache fetch reached the proxy and was left unanswered');
    await h.waitIdle(page);
  }));
});
