// A persistent Chromium profile, closed and started again (a cold browser start): the page
// visited online opens with the network off from the worker's copy, a write made there
// survives closing the browser, and it is pushed exactly once when the browser is started
// again online.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import * as h from './harness.mjs';

const skip = h.prerequisites();
const require = createRequire(import.meta.url);

/* The same profile folder each time: what a person's browser keeps between runs. */
function launchProfile(dir, offline) {
  return require('playwright-core').chromium.launchPersistentContext(dir, {
    executablePath: h.CHROMIUM, headless: true, offline,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

test('a persistent profile: cold start offline, a write, closed, reopened online', { skip, timeout: 180000 }, async (t) => {
  const srv = h.startServer({ offline: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rhtmx-profile-'));
  let failed = false;
  let ctx = null;
  let page;
  t.after(async () => {
    if (failed) h.dumpLogs('page', page);
    if (ctx) await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
    srv.stop({ keep: failed });
  });
  const guard = (fn) => async (st) => { try { await fn(st); } catch (err) { failed = true; throw err; } };

  await t.test('visited online, then the browser is closed', guard(async () => {
    ctx = await launchProfile(profile, false);
    page = await h.openApp(ctx, srv);
    await h.workerReady(page);
    await ctx.close();
    ctx = null;
  }));

  await t.test('started again with the network off: the page opens with its data; a write waits', guard(async () => {
    srv.halt();
    ctx = await launchProfile(profile, true);
    page = ctx.pages()[0] || await ctx.newPage();
    page.logs = [];
    page.on('console', (m) => page.logs.push(`${m.type()}: ${m.text()}`));
    await page.goto(srv.url);
    await h.appReady(page);
    await page.waitForSelector('#todo-list >> text=Watch it sync');
    assert.deepEqual(await h.titles(page), h.dbTodos(srv).map((x) => x.title));
    await h.addTodo(page, 'written after a cold start');
    await page.waitForSelector('#todo-list li[data-sync-pending] >> text=written after a cold start');
    assert.equal(await page.evaluate(() => RhtmxSync.pendingCount()), 1);
    await ctx.close();
    ctx = null;
    assert.equal(h.titleCounts(srv)['written after a cold start'], undefined);
  }));

  await t.test('started again online: pushed exactly once', guard(async () => {
    srv.resume();
    ctx = await launchProfile(profile, false);
    page = await h.openApp(ctx, srv, { waitSynced: false });
    await h.waitIdle(page, 30000);
    assert.equal(h.titleCounts(srv)['written after a cold start'], 1);
    await h.eventually(() => h.matchesDb(page, srv), { what: 'the page to show the server state' });
  }));
});
