// Background Sync (Chromium): a write queued offline leaves with no page of the app open.
// The page registers the sync tag when it queues offline; the test closes the page, brings
// the network back and fires the sync event through the DevTools protocol
// (ServiceWorker.dispatchSyncEvent, what Chromium does by itself when the network returns).
// The worker sends the queue under the page's lock with the page's client id and mutation
// ids, takes each answered batch out of _pending and keeps the answer; the page, opened
// again, applies those answers (the real id replaces the temporary one) and sends nothing
// again: the row exists exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

test('the worker sends the queue with no page open', { skip, timeout: 120000 }, async (t) => {
  const srv = h.startServer({ offline: true });
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  let failed = false;
  let page;
  t.after(async () => {
    if (failed) h.dumpLogs('page', page);
    await browser.close();
    srv.stop({ keep: failed });
  });
  try {
    page = await h.openApp(ctx, srv);
    await h.workerReady(page);
    const clientId = await page.evaluate(() => RhtmxSync.clientId);

    await ctx.setOffline(true);
    srv.halt();
    await page.waitForSelector('rhtmx-sync-status[state=offline]');
    await h.addTodo(page, 'sent by the worker');
    await h.toggleTodo(page, 'Watch it sync');
    await page.waitForSelector('#todo-list li[data-sync-pending] >> text=sent by the worker');
    const tags = await page.evaluate(() => navigator.serviceWorker.ready.then((r) => r.sync.getTags()));
    assert.deepEqual(tags, ['rhtmx-sync:rhtmx-sync'], 'the page asked for a background sync of its database');
    await page.close();

    // No page of the app is open; a blank page carries the DevTools session.
    const blank = await ctx.newPage();
    const cdp = await ctx.newCDPSession(blank);
    const registrations = [];
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => registrations.push(...e.registrations));
    await cdp.send('ServiceWorker.enable');
    const reg = await h.eventually(() => registrations.find((r) => r.scopeURL === srv.url && !r.isDeleted),
      { what: 'the worker registration' });
    assert.deepEqual(ctx.pages().map((p) => p.url()), ['about:blank'], 'no page of the app is open');

    assert.equal(h.titleCounts(srv)['sent by the worker'], undefined);
    // Chromium may fire the sync event itself as soon as the network is back; the explicit
    // one below then sends the queue a second time, which the server answers from its
    // stored outcomes: still one row.
    srv.resume();
    await ctx.setOffline(false);
    await cdp.send('ServiceWorker.dispatchSyncEvent', { origin: srv.origin, registrationId: reg.registrationId, tag: 'rhtmx-sync:rhtmx-sync', lastChance: false });
    await h.eventually(() => h.titleCounts(srv)['sent by the worker'] === 1, { what: 'the worker to push the create' });
    await h.eventually(() => h.dbTodos(srv).find((x) => x.title === 'Watch it sync').done, { what: 'the worker to push the toggle' });
    const mine = srv.sql(`SELECT action FROM _rhtmx_sync_log WHERE client_id = '${clientId}' ORDER BY version`);
    assert.deepEqual(mine.map((r) => r.action), ['create', 'update'], 'as the page\'s client, in order');

    // The page, opened again, applies the answers the worker kept and pushes nothing.
    const posts = h.recordRequests(ctx, '/api/sync/todos');
    page = await h.openApp(ctx, srv);
    await h.waitIdle(page, 30000);
    assert.equal(h.titleCounts(srv)['sent by the worker'], 1, 'created exactly once');
    assert.equal(srv.sql(`SELECT count(*) AS n FROM _rhtmx_sync_log WHERE client_id = '${clientId}'`)[0].n, 2, 'nothing written twice');
    await h.eventually(() => h.matchesDb(page, srv), { what: 'the page to show the server state' });
    const stored = await page.evaluate(() => RhtmxSync.list('todos'));
    assert.ok(stored.every((r) => typeof r.id === 'number'), 'the temporary id was replaced');
    assert.deepEqual(posts.filter((r) => r.method === 'POST' && !r.worker).map((r) => r.body), [], 'the page sent nothing again');
    assert.equal(await page.evaluate(() => RhtmxSync.pendingCount()), 0);
  } catch (err) { failed = true; throw err; }
});
