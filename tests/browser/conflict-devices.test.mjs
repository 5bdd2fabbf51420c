// A conflict between two browsers, told to both. B renames two todos online; A had renamed
// the same two while offline and breaks a CHECK constraint on a third. When A comes back,
// last-write-wins keeps A's titles: A hears of two conflicts and a rejection, B hears that
// its two changes were overwritten. Each device lists every problem, in words naming the
// todo, until the person dismisses it (a reload does not dismiss it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

const problems = (page) => page.$$eval('rhtmx-sync-status .rhtmx-sync-problem', (els) => els.map((e) => e.textContent));

test('a conflict is shown on both devices, as a list that stays until dismissed', { skip, timeout: 120000 }, async (t) => {
  const srv = h.startServer({ strategy: 'last-write-wins' });
  const browser = await h.launchBrowser();
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  let failed = false;
  let pageA, pageB;
  t.after(async () => {
    if (failed) { h.dumpLogs('A', pageA); h.dumpLogs('B', pageB); }
    await browser.close();
    srv.stop({ keep: failed });
  });
  try {
    pageA = await h.openApp(ctxA, srv);
    pageB = await h.openApp(ctxB, srv);
    await pageB.waitForSelector('rhtmx-sync-status[live=stream], rhtmx-sync-status[live=poll]');

    await ctxA.setOffline(true);
    await pageA.waitForSelector('rhtmx-sync-status[state=offline]');
    await pageA.evaluate(async () => {
      await RhtmxSync.put('todos', { id: 2, title: 'network, by A' });
      await RhtmxSync.put('todos', { id: 3, title: 'sync, by A' });
      await RhtmxSync.put('todos', { id: 1, done: 7 }); // done must be 0 or 1
    });

    await pageB.evaluate(async () => {
      await RhtmxSync.put('todos', { id: 2, title: 'network, by B' });
      await RhtmxSync.put('todos', { id: 3, title: 'sync, by B' });
    });
    await h.waitIdle(pageB);
    assert.deepEqual(h.dbTodos(srv).slice(1).map((x) => x.title), ['network, by B', 'sync, by B']);

    await ctxA.setOffline(false);
    await h.waitIdle(pageA, 20000);
    assert.deepEqual(h.dbTodos(srv).slice(1).map((x) => x.title), ['network, by A', 'sync, by A'], 'A pushed last and wins');

    // A: two conflicts and a rejection, all listed, naming the todos.
    await h.eventually(async () => (await problems(pageA)).length === 3, { what: 'three problems listed on A' });
    const onA = await problems(pageA);
    assert.ok(onA.some((x) => /network, by A/.test(x) && /kept/.test(x)), `A's conflict on todo 2: ${onA}`);
    assert.ok(onA.some((x) => /sync, by A/.test(x) && /kept/.test(x)), `A's conflict on todo 3: ${onA}`);
    assert.ok(onA.some((x) => /Could not save 'Try the demo'/.test(x)), `A's rejected change to todo 1: ${onA}`);
    assert.ok(onA.every((x) => !/todos \d/.test(x)), `in the person's words, not "todos 2": ${onA}`);

    // B: told that its changes were overwritten.
    await h.eventually(async () => (await problems(pageB)).length === 2, { what: 'two problems listed on B', timeout: 20000 });
    const onB = await problems(pageB);
    assert.ok(onB.some((x) => /network, by B/.test(x) && /overwritten/.test(x)), `B's change to todo 2: ${onB}`);
    assert.ok(onB.some((x) => /sync, by B/.test(x) && /overwritten/.test(x)), `B's change to todo 3: ${onB}`);
    await h.eventually(async () => (await h.matchesDb(pageA, srv)) && h.matchesDb(pageB, srv), { what: 'both to show the database' });
    await h.screenshot(pageB, 'conflict-overwritten');

    // They stay until dismissed, one at a time, and a reload does not dismiss them.
    await pageA.locator('rhtmx-sync-status .rhtmx-sync-dismiss').first().click();
    await h.eventually(async () => (await problems(pageA)).length === 2, { what: 'one problem dismissed on A' });
    await pageA.reload();
    await h.appReady(pageA);
    await h.eventually(async () => (await problems(pageA)).length === 2, { what: 'the two others still listed after a reload' });
  } catch (err) { failed = true; throw err; }
});
