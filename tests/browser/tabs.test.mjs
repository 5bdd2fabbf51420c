// Tabs of one browser share one event stream: the tab holding the leader lock opens it, the
// others hear about changes over BroadcastChannel; when the leader closes, another tab leads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

test('two tabs, one event stream', { skip, timeout: 120000 }, async (t) => {
  const srv = h.startServer();
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  let failed = false;
  const pages = [];
  t.after(async () => {
    if (failed) pages.forEach((p, i) => h.dumpLogs(`tab ${i + 1}`, p));
    await browser.close();
    srv.stop({ keep: failed });
  });
  const guard = (fn) => async (st) => { try { await fn(st); } catch (err) { failed = true; throw err; } };
  const streams = h.recordRequests(ctx, '/api/sync/events');

  pages.push(await h.openApp(ctx, srv));
  pages.push(await h.openApp(ctx, srv));
  const [tab1, tab2] = pages;

  await t.test('only the leader tab opens /api/sync/events', guard(async () => {
    await h.eventually(() => streams.length > 0, { what: 'an event stream request' });
    await tab1.waitForTimeout(2000);
    const leaders = [await tab1.evaluate(() => RhtmxSync.isLeader), await tab2.evaluate(() => RhtmxSync.isLeader)];
    assert.deepEqual(leaders.filter(Boolean).length, 1, `exactly one leader: ${leaders}`);
    const leader = leaders[0] ? tab1 : tab2;
    const fromPages = new Set(streams.map((r) => r.page));
    assert.equal(fromPages.size, 1, 'event stream requests came from one tab');
    assert.ok(fromPages.has(leader), 'and that tab is the leader');
    const open = await leader.evaluate(() => RhtmxSync._debug.events.es && RhtmxSync._debug.events.es.readyState);
    assert.equal(open, 1, 'the leader\'s EventSource is open');
    const follower = leader === tab1 ? tab2 : tab1;
    assert.match(await follower.getAttribute('rhtmx-sync-status', 'live'), /stream|poll/, 'the follower shows the leader\'s live state');
  }));

  await t.test('a change reaches both tabs through the one stream',
    guard(async () => {
      const before = streams.length;
      srv.sql("INSERT INTO todos (title) VALUES ('seen by both tabs')");
      await tab1.waitForSelector('#todo-list >> text=seen by both tabs', { timeout: 15000 });
      await tab2.waitForSelector('#todo-list >> text=seen by both tabs', { timeout: 15000 });
      const newStreams = streams.slice(before).filter((r) => !/mode=poll/.test(r.search));
      assert.ok(newStreams.length <= 1, 'no extra streams were opened for it');
    }));

  await t.test('offline writes from both tabs are pushed once each',
    guard(async () => {
      await ctx.setOffline(true);
      await tab1.waitForSelector('rhtmx-sync-status[state=offline]');
      await tab2.waitForSelector('rhtmx-sync-status[state=offline]');
      await h.addTodo(tab1, 'from tab 1');
      await h.addTodo(tab2, 'from tab 2');
      // One queue per browser: each tab shows both pending writes.
      await tab1.waitForSelector('#todo-list li[data-sync-pending] >> text=from tab 2');
      await tab2.waitForSelector('#todo-list li[data-sync-pending] >> text=from tab 1');
      await ctx.setOffline(false);
      await h.waitIdle(tab1, 20000);
      await h.waitIdle(tab2, 20000);
      const db = h.dbTodos(srv).map((x) => x.title);
      assert.equal(db.filter((x) => x === 'from tab 1').length, 1);
      assert.equal(db.filter((x) => x === 'from tab 2').length, 1);
      await h.eventually(async () => (await h.matchesDb(tab1, srv)) && h.matchesDb(tab2, srv), { what: 'both tabs to show the server' });
    }));

  await t.test('closing the leader hands the stream to the other tab', guard(async () => {
    const leader = (await tab1.evaluate(() => RhtmxSync.isLeader)) ? tab1 : tab2;
    const other = leader === tab1 ? tab2 : tab1;
    await leader.close();
    await other.waitForFunction(() => RhtmxSync.isLeader, null, { timeout: 10000 });
    await h.eventually(() => streams.some((r) => r.page === other), { what: 'the new leader to open the stream' });
    srv.sql("INSERT INTO todos (title) VALUES ('after the handover')");
    await other.waitForSelector('#todo-list >> text=after the handover', { timeout: 15000 });
    assert.ok(await h.matchesDb(other, srv));
  }));
});
