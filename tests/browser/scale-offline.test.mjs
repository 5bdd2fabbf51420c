// The example at 50,000 todos when the LIBRARY renders the list (data-sync-render): with the
// network off, a write queued there and a page opened from the service worker's kept copy.
// The library renders the same window the page shows (data-sync-limit="200"
// data-sync-window="last" on the list), updates only the rows a write names, and never builds
// elements for every todo. Asserted: the element count stays bounded, the queued rows are
// shown (marked pending), every change to the window is shown, the focus stays on the
// toggled todo's button, and each write reaches the server once when it is back. The figures
// (elements, long tasks, time from a click or a reload to the row on screen) are printed,
// never asserted. The library as it was rendered all 50,000 todos here (about 550,000
// elements) and did not answer within the waits below.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

const ROWS = 50000;
const WINDOW = 200;        // TODO_WINDOW in examples/todo/lib.php
const MAX_ELEMENTS = 10000;
const WAIT = 60000;        // a page that renders every todo does not answer within this

const ms = (x) => `${Math.round(x)} ms`;

/* page.evaluate, failing after WAIT instead of waiting for a frozen page for good. */
async function ask(page, fn, arg, what) {
  let timer;
  const late = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`the page did not answer within ${WAIT} ms: ${what}`)), WAIT);
  });
  try {
    return await Promise.race([page.evaluate(fn, arg), late]);
  } finally {
    clearTimeout(timer);
  }
}

const elements = (page) => ask(page, () => document.getElementsByTagName('*').length, undefined, 'count the elements');

/* The window the page should show: the server's todos from id `from` on, with the writes
 * made offline applied (done flags, deletions, added titles at the end, pending). */
function expectedWindow(srv, from, { done = {}, deleted = [], added = [] }) {
  const rows = srv.sql(`SELECT id, title, done FROM todos WHERE id >= ${from} ORDER BY id`)
    .filter((r) => !deleted.includes(r.id))
    .map((r) => ({ id: String(r.id), title: r.title, done: r.id in done ? done[r.id] : r.done === 1, pending: r.id in done }));
  return rows.concat(added.map((title) => ({ title, done: false, pending: true })));
}

/* The rows on screen in the shape of expectedWindow (an added row's temporary id left out). */
async function shownWindow(page) {
  return (await h.shownTodos(page)).map(({ id, title, done, pending }) => (id.startsWith('tmp-') ? { title, done, pending } : { id, title, done, pending }));
}

test('at 50,000 todos the library renders a window: a write queued offline, a page opened offline',
  { skip, timeout: 280000 }, async (t) => {
    const srv = h.startServer({ seed: ROWS, offline: true });
    const browser = await h.launchBrowser();
    const ctx = await browser.newContext();
    let page;
    let failed = false;
    t.after(async () => {
      if (failed) h.dumpLogs('page', page);
      await browser.close();
      srv.stop({ keep: failed });
    });
    /* Each step builds on the one before: after a failure the rest are skipped (a page that
     * renders every todo would make each of them wait WAIT for nothing). */
    const guard = (fn) => async (st) => {
      if (failed) { st.skip('an earlier step failed'); return; }
      try { await fn(st); } catch (err) { failed = true; throw err; }
    };
    const figures = [];

    await ctx.addInitScript(() => {
      window.__longTasks = [];
      new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__longTasks.push({ at: e.startTime, ms: e.duration })))
        .observe({ type: 'longtask', buffered: true });
      /* Each render of the library: how many rows, how many elements in the page right after. */
      window.__renders = [];
      document.addEventListener('rhtmx:rendered', (e) => window.__renders.push({
        at: performance.now(), count: e.detail.count, ids: e.detail.ids,
        elements: document.getElementsByTagName('*').length,
      }));
    });
    const longTasksSince = (since) => ask(page, (t0) => {
      const l = window.__longTasks.filter((x) => x.at >= t0);
      return { count: l.length, total: l.reduce((s, x) => s + x.ms, 0), max: l.reduce((s, x) => Math.max(s, x.ms), 0) };
    }, since, 'read the long tasks');
    const now = () => ask(page, () => performance.now(), undefined, 'read the clock');

    page = await h.openApp(ctx, srv, { waitSynced: false });
    await h.waitIdle(page, 180000);
    await h.workerReady(page);
    assert.equal(await page.evaluate(() => RhtmxSync.list('todos').then((r) => r.length)), ROWS, 'the library holds every todo');
    const first = ROWS - WINDOW + 1;
    assert.equal((await h.shownTodos(page))[0].id, String(first), 'the page shows the newest window');

    const toggled = ROWS - 50;   // a row of the window, not done
    const deleted = ROWS - 100;
    const title = 'written offline at scale';
    const offline = { done: { [toggled]: true }, deleted: [deleted], added: [title] };

    await t.test('offline, the library renders the window, not every todo', guard(async () => {
      const t0 = await now();
      await ctx.setOffline(true);
      srv.halt();
      await page.waitForSelector('rhtmx-sync-status[state=offline]', { timeout: WAIT });
      await page.waitForSelector('#todo-list[data-sync-rendered=local]', { timeout: WAIT });
      const renders = await ask(page, () => window.__renders, undefined, 'read the renders');
      const els = await elements(page);
      figures.push(`  offline: the library rendered ${renders[0].count} rows, ${renders[0].elements} elements in the page ` +
        `(${ms(renders[0].at - t0)} after the network went off)`);
      assert.ok(renders[0].count <= WINDOW, `a window of rows: ${renders[0].count}`);
      assert.ok(els < MAX_ELEMENTS, `bounded elements: ${els}`);
      assert.deepEqual(await shownWindow(page), expectedWindow(srv, first, {}), 'the window, as the server has it');
      /* The window rendered again: every row comes out the same, so its elements (and the
       * focus in one) are kept. */
      const again = await ask(page, async () => {
        const rows = [...document.querySelectorAll('#todo-list li.todo')];
        rows[rows.length - 1].querySelector('button.remove').focus();
        await RhtmxSync.render('todos');
        const now = [...document.querySelectorAll('#todo-list li.todo')];
        return { same: now.length === rows.length && now.every((li, i) => li === rows[i]), focus: document.activeElement === rows[rows.length - 1].querySelector('button.remove') };
      }, undefined, 'render the window again');
      assert.deepEqual(again, { same: true, focus: true }, 'rows that come out the same are kept');
    }));

    await t.test('a toggle, a delete and an add made offline: only those rows change, each shown', guard(async () => {
      const row = `#todo-list li[data-sync-id="${toggled}"]`;
      const before = (await ask(page, () => window.__renders, undefined, 'read the renders')).length;
      await page.focus(`${row} button.check`);
      const t0 = await now();
      await page.keyboard.press('Enter');
      await page.waitForSelector(`${row}[data-done="1"][data-sync-pending]`, { timeout: WAIT });
      const toggledAt = await now();
      /* The toggle's button has the focus again (todo.js puts it back on the same row's). */
      await h.eventually(() => ask(page, (sel) => document.activeElement === document.querySelector(sel), `${row} button.check`, 'read the focus'),
        { timeout: WAIT, what: 'the focus on the toggled todo\'s button' });
      assert.equal(await page.getAttribute(`${row} button.check`, 'aria-pressed'), 'true');

      await page.click(`#todo-list li[data-sync-id="${deleted}"] button.remove`);
      await page.waitForSelector(`#todo-list li[data-sync-id="${deleted}"]`, { state: 'detached', timeout: WAIT });
      await h.addTodo(page, title);
      await page.waitForSelector(`#todo-list li[data-sync-pending] >> text=${title}`, { timeout: WAIT });
      const addedAt = await now();

      const renders = await ask(page, () => window.__renders, undefined, 'read the renders');
      const writes = renders.slice(before).filter((r) => r.ids);
      const els = await elements(page);
      const long = await longTasksSince(t0);
      figures.push(`  offline writes: toggle shown ${ms(toggledAt - t0)} after the key press, the three writes in ${ms(addedAt - t0)}; ` +
        `${writes.length} renders of ${writes.map((r) => (r.ids ? r.ids.length : 'all')).join(', ')} rows; at most ` +
        `${Math.max(...writes.map((r) => r.elements))} elements; long tasks ${long.count}, longest ${ms(long.max)}`);
      /* Rows named by a write are rendered alone (a render of ids), not the whole window. */
      assert.ok(writes.length >= 3 && writes.every((r) => r.ids.length <= 2),
        `each write re-rendered its own row only: ${JSON.stringify(renders.slice(before).map((r) => r.ids))}`);
      assert.ok(els < MAX_ELEMENTS, `bounded elements: ${els}`);
      assert.equal(await page.evaluate(() => RhtmxSync.pendingCount()), 3);
      assert.deepEqual(await shownWindow(page), expectedWindow(srv, first, offline), 'every change to the window shown');
    }));

    await t.test('the page opened offline from the kept copy renders the window with the queued rows', guard(async () => {
      const started = Date.now();
      await page.reload({ timeout: WAIT });
      await h.appReady(page);
      await page.waitForSelector(`#todo-list[data-sync-rendered=local] li[data-sync-pending] >> text=${title}`, { timeout: WAIT });
      const renders = await ask(page, () => window.__renders, undefined, 'read the renders');
      const els = await elements(page);
      const nav = await ask(page, () => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd, undefined, 'read the load');
      const long = await longTasksSince(0);
      figures.push(`  offline reload: DOMContentLoaded ${ms(nav)}, rendered ${ms(renders[renders.length - 1].at)} after the navigation ` +
        `(${renders.length} renders, at most ${Math.max(...renders.map((r) => r.count))} rows), ${els} elements, ` +
        `long tasks ${long.count} (${ms(long.total)}, longest ${ms(long.max)}); ${ms(Date.now() - started)} in the test`);
      assert.equal(await page.getAttribute('rhtmx-sync-status', 'state'), 'offline');
      assert.ok(renders.every((r) => r.count <= WINDOW + 1), `windows of rows: ${renders.map((r) => r.count)}`);
      assert.ok(els < MAX_ELEMENTS, `bounded elements: ${els}`);
      assert.deepEqual(await shownWindow(page), expectedWindow(srv, first, offline), 'the window with the writes still queued');
    }));

    await t.test('back online: each write reaches the server once, and the page shows its window', guard(async () => {
      srv.resume();
      await ctx.setOffline(false);
      await h.waitIdle(page, WAIT);
      assert.equal(srv.sql(`SELECT count(*) AS n FROM todos WHERE title = '${title}'`)[0].n, 1, 'created exactly once');
      assert.equal(srv.sql(`SELECT done FROM todos WHERE id = ${toggled}`)[0].done, 1);
      assert.equal(srv.sql(`SELECT count(*) AS n FROM todos WHERE id = ${deleted}`)[0].n, 0);
      await h.eventually(async () => JSON.stringify(await shownWindow(page)) === JSON.stringify(expectedWindow(srv, first, {})),
        { timeout: WAIT, what: 'the window as the server has it' });
      const els = await elements(page);
      figures.push(`  online again: ${els} elements`);
      assert.ok(els < MAX_ELEMENTS, `bounded elements: ${els}`);
      console.log([`scale-offline: ${ROWS} todos, a window of ${WINDOW}`, ...figures].join('\n'));
    }));
  });
