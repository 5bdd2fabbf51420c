// The window of a region the library renders from IndexedDB (data-sync-render): at most
// data-sync-limit records (500 when unset), the first ones in data-sync-sort order or the
// last ones (data-sync-window="last"), sorted by the key either way or by another field;
// rows the region already shows from further back are kept, up to 5 windows; a write made
// while the library renders goes in its place. Checked on the example's page with the
// network off (the library renders the list then), changing the list's attributes between
// renders and emptying it first, so each render starts from nothing shown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

const ROWS = 600;

test('a region renders a window of its records', { skip, timeout: 120000 }, async (t) => {
  const srv = h.startServer({ seed: ROWS });
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  let page;
  let failed = false;
  t.after(async () => {
    if (failed) h.dumpLogs('page', page);
    await browser.close();
    srv.stop({ keep: failed });
  });
  const guard = (fn) => async (st) => { try { await fn(st); } catch (err) { failed = true; throw err; } };

  page = await h.openApp(ctx, srv, { waitSynced: false });
  await h.waitIdle(page, 60000);
  await ctx.setOffline(true);
  await page.waitForSelector('#todo-list[data-sync-rendered=local]');

  /* Sets the list's attributes (null removes one), empties it unless told to keep its rows,
   * renders it and says which ids it shows, in order. */
  const render = (attrs, { keep = false } = {}) => page.evaluate(async ({ attrs, keep }) => {
    const list = document.getElementById('todo-list');
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null) list.removeAttribute(name); else list.setAttribute(name, value);
    }
    if (!keep) list.replaceChildren();
    await RhtmxSync.render('todos');
    return [...list.querySelectorAll('li.todo')].map((li) => li.getAttribute('data-sync-id'));
  }, { attrs, keep });
  const range = (from, to) => Array.from({ length: Math.abs(to - from) + 1 }, (_, i) => String(from < to ? from + i : from - i));

  await t.test('the example\'s window: the newest 200, oldest first', guard(async () => {
    assert.deepEqual(await render({}), range(ROWS - 199, ROWS));
  }));

  await t.test('without data-sync-limit: the first 500', guard(async () => {
    assert.deepEqual(await render({ 'data-sync-limit': null, 'data-sync-window': null }), range(1, 500));
  }));

  await t.test('sorted by the key descending: the first 3 are the newest, the last 3 the oldest', guard(async () => {
    assert.deepEqual(await render({ 'data-sync-sort': '-id', 'data-sync-limit': '3', 'data-sync-window': 'first' }), range(ROWS, ROWS - 2));
    assert.deepEqual(await render({ 'data-sync-window': 'last' }), ['3', '2', '1']);
  }));

  await t.test('sorted by another field: the window of that order', guard(async () => {
    await page.evaluate(() => RhtmxSync.put('todos', { id: 300, title: 'Todo 0' })); // first by title (queued)
    // By title the last three are 'Try the demo' (1), 'Turn the network off' (2), 'Watch it sync' (3).
    assert.deepEqual(await render({ 'data-sync-sort': 'title', 'data-sync-window': 'last' }), ['1', '2', '3']);
    assert.deepEqual(await render({ 'data-sync-window': 'first' }), ['300', '10', '100']);
  }));

  await t.test('rows shown from further back are kept, up to 5 windows', guard(async () => {
    await render({ 'data-sync-sort': 'id', 'data-sync-limit': '11', 'data-sync-window': 'last' });
    assert.deepEqual(await render({ 'data-sync-limit': '3' }, { keep: true }), range(ROWS - 10, ROWS), 'the 11 shown, not 3');
    await render({ 'data-sync-limit': '40' });
    assert.deepEqual(await render({ 'data-sync-limit': '3' }, { keep: true }), range(ROWS - 14, ROWS), '5 windows of 3 of the 40 shown');
  }));

  await t.test('a write while the library renders goes in its place in the window', guard(async () => {
    await render({ 'data-sync-sort': '-id', 'data-sync-limit': '3', 'data-sync-window': 'first' });
    await h.addTodo(page, 'newest of all');
    await page.waitForSelector('#todo-list li[data-sync-pending] >> text=newest of all');
    const shown = await h.shownTodos(page);
    assert.deepEqual(shown.map((x) => x.title), ['newest of all', `Todo ${ROWS}`, `Todo ${ROWS - 1}`, `Todo ${ROWS - 2}`],
      'a temporary id sorts after every number: first, sorted descending');
    await h.deleteTodo(page, `Todo ${ROWS - 1}`);
    await page.waitForFunction((t) => !document.getElementById('todo-list').textContent.includes(t), `Todo ${ROWS - 1}`);
    assert.deepEqual((await h.shownTodos(page)).map((x) => x.title), ['newest of all', `Todo ${ROWS}`, `Todo ${ROWS - 2}`]);
  }));
});
