// No tab can hold the others hostage. A leader tab that stops running JavaScript (paused in a
// debugger through CDP, or frozen by the browser's page lifecycle) still holds its Web Locks
// (the leader lock and, here, the write lock too); the leases on those locks run out and the
// other tab takes both over: it opens the stream, gets live updates, and its writes reach the
// server. When the stopped tab runs again it steps down and catches up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

/* Opens two tabs and returns [leader, follower]. */
async function twoTabs(ctx, srv, pages) {
  pages.push(await h.openApp(ctx, srv));
  pages.push(await h.openApp(ctx, srv));
  const [a, b] = pages;
  await h.eventually(async () => (await a.evaluate(() => RhtmxSync.isLeader)) !== (await b.evaluate(() => RhtmxSync.isLeader)),
    { what: 'exactly one leader' });
  return (await a.evaluate(() => RhtmxSync.isLeader)) ? [a, b] : [b, a];
}

/* The leader also holds the write lock (as if stopped in the middle of a push). */
async function holdWriteLock(page) {
  await page.evaluate(() => { RhtmxSync._debug.withLock('sync', () => new Promise(() => {})).catch(() => {}); });
}

async function othersCarryOn(srv, follower, streams, tag) {
  await follower.waitForFunction(() => RhtmxSync.isLeader, null, { timeout: 10000 });
  await h.eventually(() => streams.some((r) => r.page === follower), { what: 'the new leader to open the stream' });
  srv.sql(`INSERT INTO todos (title) VALUES ('live while stuck ${tag}')`);
  await follower.waitForSelector(`#todo-list >> text=live while stuck ${tag}`, { timeout: 10000 });
  await h.addTodo(follower, `written while stuck ${tag}`);
  await h.eventually(() => h.titleCounts(srv)[`written while stuck ${tag}`] === 1,
    { timeout: 10000, what: 'the follower\'s write to reach the server' });
}

async function stepsDownAndCatchesUp(srv, stuck, follower, tag) {
  await h.eventually(async () => !(await stuck.evaluate(() => RhtmxSync.isLeader)) && follower.evaluate(() => RhtmxSync.isLeader),
    { what: 'the resumed tab to step down' });
  await stuck.waitForSelector(`#todo-list >> text=written while stuck ${tag}`, { timeout: 10000 });
  await h.eventually(async () => (await h.matchesDb(stuck, srv)) && h.matchesDb(follower, srv), { what: 'both tabs to show the server' });
  assert.equal(h.titleCounts(srv)[`written while stuck ${tag}`], 1, 'the write arrived once');
}

for (const how of ['Debugger.pause', 'Page.setWebLifecycleState frozen']) {
  test(`a leader stopped by ${how} does not stop the other tabs`, { skip, timeout: 120000 }, async (t) => {
    const srv = h.startServer();
    const browser = await h.launchBrowser();
    const ctx = await browser.newContext();
    const pages = [];
    let failed = false;
    t.after(async () => {
      if (failed) pages.forEach((p, i) => h.dumpLogs(`tab ${i + 1}`, p));
      await browser.close();
      srv.stop({ keep: failed });
    });
    try {
      const streams = h.recordRequests(ctx, '/api/sync/events');
      const [leader, follower] = await twoTabs(ctx, srv, pages);
      await holdWriteLock(leader);
      const cdp = await ctx.newCDPSession(leader);
      if (how === 'Debugger.pause') {
        await cdp.send('Debugger.enable');
        const paused = new Promise((r) => cdp.once('Debugger.paused', r));
        await cdp.send('Debugger.pause');
        await paused; /* at the leader's next timer: it runs no JavaScript from here */
      } else {
        await leader.evaluate(() => { window.__ticks = 0; setInterval(() => { window.__ticks++; }, 50); });
        await cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
        const ticks = async () => (await cdp.send('Runtime.evaluate', { expression: 'window.__ticks', returnByValue: true })).result.value;
        const before = await ticks();
        await new Promise((r) => setTimeout(r, 500));
        if ((await ticks()) !== before) {
          /* Headless Chromium keeps every page visible, and it freezes only hidden ones. */
          t.skip('this Chromium does not freeze the (visible, headless) page: its timers still run');
          return;
        }
      }
      await othersCarryOn(srv, follower, streams, how);
      if (how === 'Debugger.pause') await cdp.send('Debugger.resume');
      else await cdp.send('Page.setWebLifecycleState', { state: 'active' });
      await stepsDownAndCatchesUp(srv, leader, follower, how);
    } catch (err) {
      failed = true;
      throw err;
    }
  });
}

/* Headless Chromium shows every page as visible; the leader's page is made to say it is
 * hidden (document.hidden, visibilityState, and the visibilitychange event it would get). */
test('a hidden leader yields the lead to a visible tab', { skip, timeout: 60000 }, async (t) => {
  const srv = h.startServer();
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  const pages = [];
  let failed = false;
  t.after(async () => {
    if (failed) pages.forEach((p, i) => h.dumpLogs(`tab ${i + 1}`, p));
    await browser.close();
    srv.stop({ keep: failed });
  });
  try {
    const streams = h.recordRequests(ctx, '/api/sync/events');
    const [leader, follower] = await twoTabs(ctx, srv, pages);
    await leader.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await follower.waitForFunction(() => RhtmxSync.isLeader, null, { timeout: 10000 });
    await h.eventually(async () => !(await leader.evaluate(() => RhtmxSync.isLeader)), { what: 'the hidden tab to step down' });
    await h.eventually(() => streams.some((r) => r.page === follower), { what: 'the visible tab to open the stream' });
    srv.sql("INSERT INTO todos (title) VALUES ('seen by the visible leader')");
    await follower.waitForSelector('#todo-list >> text=seen by the visible leader', { timeout: 10000 });
    await leader.waitForSelector('#todo-list >> text=seen by the visible leader', { timeout: 10000 });
    await leader.waitForTimeout(3000);
    assert.equal(await follower.evaluate(() => RhtmxSync.isLeader), true, 'the lead stays with the visible tab');

    // Visible again: the tab catches up by cursor at once (a pull), and the lead stays put.
    const pulls = h.recordRequests(ctx, '/api/sync/todos');
    await leader.evaluate(() => {
      delete document.hidden;
      delete document.visibilityState;
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await h.eventually(() => pulls.some((r) => r.page === leader && r.method === 'GET'), { timeout: 3000, what: 'a catch-up pull from the tab made visible' });
    await leader.waitForTimeout(2500);
    assert.deepEqual([await leader.evaluate(() => RhtmxSync.isLeader), await follower.evaluate(() => RhtmxSync.isLeader)], [false, true]);
  } catch (err) {
    failed = true;
    throw err;
  }
});
