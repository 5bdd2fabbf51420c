// The example's list is a window of the newest todos, and a change costs the rows it names:
// rhtmx:todos:changed carries the changed ids (updates, adds and deletes, by any writer), the
// page asks list.php for those in its window only, and ends showing exactly the database's
// rows from the window's first id on. A write made in the page is rendered by the library
// in the same window until it is sent; then the server's window (with its button) comes back. "Show earlier todos" widens
// the window, and changes to the rows it brought are shown too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

/* The database's todos from id `from` on, as shownTodos() gives them. */
const dbFrom = (srv, from) => srv.sql(`SELECT id, title, done FROM todos WHERE id >= ${from} ORDER BY id`)
  .map((r) => ({ id: String(r.id), title: r.title, done: r.done === 1 }));

async function showsWindow(page, srv, from) {
  const shown = (await h.shownTodos(page)).map(({ id, title, done }) => ({ id, title, done }));
  return JSON.stringify(shown) === JSON.stringify(dbFrom(srv, from));
}

test('the example updates only the rows a change names, in a window of the list', { skip, timeout: 120000 }, async (t) => {
  const srv = h.startServer({ seed: 250 });
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

  page = await h.openApp(ctx, srv);
  await page.evaluate(() => {
    window.__changed = [];
    document.body.addEventListener('rhtmx:todos:changed', (e) => window.__changed.push(e.detail));
  });
  const lists = h.recordRequests(ctx, '/list.php');

  await t.test('the page shows the newest 200 and a button for the rest', guard(async () => {
    const shown = await h.shownTodos(page);
    assert.equal(shown.length, 200);
    assert.equal(shown[0].id, '51');
    assert.equal(await page.textContent('#todo-list li.earlier button'), 'Show 50 earlier todos');
  }));

  await t.test('changes by another writer: the event names them, list.php is asked for those in the window', guard(async () => {
    srv.sql("UPDATE todos SET title = 'renamed 240' WHERE id = 240");
    srv.sql('DELETE FROM todos WHERE id = 245');
    srv.sql("INSERT INTO todos (title, done) VALUES ('added 251', 0)");
    srv.sql("UPDATE todos SET title = 'renamed 10' WHERE id = 10"); // outside the window
    srv.sql('UPDATE todos SET done = 1 WHERE id = 60');
    await h.eventually(() => showsWindow(page, srv, 51), { what: 'the window to show the changes' });
    await h.eventually(async () => {
      const ids = (await page.evaluate(() => window.__changed)).flatMap((d) => d.ids);
      return [240, 245, 251, 10, 60].every((id) => ids.includes(id));
    }, { what: 'the events to name every changed id' });
    const details = await page.evaluate(() => window.__changed);
    assert.ok(details.every((d) => d.entity === 'todos' && d.source === 'server'), JSON.stringify(details));

    const asked = lists.map((r) => new URLSearchParams(r.search));
    assert.ok(asked.length >= 1, 'list.php was asked');
    assert.ok(asked.every((q) => q.has('ids')), `only for named rows, never the whole list: ${lists.map((r) => r.search)}`);
    const ids = asked.flatMap((q) => q.get('ids').split(',').map(Number));
    assert.deepEqual([...new Set(ids)].sort((a, b) => a - b), [60, 240, 245, 251], 'the ids in the window, not 10');
    assert.ok(asked.every((q) => q.get('from') === '51'), 'with the window\'s first id');
  }));

  await t.test('a write made here: the library renders the same window until it is sent, then the server\'s comes back',
    guard(async () => {
      await page.evaluate(() => {
        window.__renders = [];
        const list = document.getElementById('todo-list');
        list.addEventListener('rhtmx:rendered', (e) => {
          const ids = [...list.querySelectorAll('li.todo')].map((li) => li.getAttribute('data-sync-id'));
          window.__renders.push({ count: e.detail.count, first: ids[0], last: ids[ids.length - 1], rows: ids.length });
        });
      });
      await h.toggleTodo(page, 'Todo 100');
      await page.waitForFunction(() => window.__renders.length > 0);
      await h.waitIdle(page);
      /* Rendered from IndexedDB: the page's window, ids 51 to 251 but the deleted 245
       * (data-sync-limit / data-sync-window on the list), not every todo as before (from id 1). */
      const renders = await page.evaluate(() => window.__renders);
      assert.ok(renders.length && renders.every((r) => r.rows === 200 && r.first === '51' && r.last === '251'), JSON.stringify(renders));
      await h.eventually(async () => (await showsWindow(page, srv, 51)) && (await page.locator('#todo-list li.earlier').count()) === 1,
        { what: 'the window from id 51 again, with its button' });
      assert.equal(srv.sql('SELECT done FROM todos WHERE id = 100')[0].done, 1);
    }));

  await t.test('"Show earlier todos" widens the window; changes there are shown too', guard(async () => {
    await page.click('#todo-list li.earlier button');
    await page.waitForSelector('#todo-list li.todo[data-sync-id="1"]');
    assert.equal(await page.locator('#todo-list li.earlier').count(), 0, 'no more earlier todos');
    await h.eventually(() => page.evaluate(() => document.activeElement.getAttribute('aria-label')),
      { what: 'the focus on a button' });
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), "Mark 'Try the demo' done",
      'the focus goes to the first row the button brought');
    assert.ok(await showsWindow(page, srv, 1), 'every todo');
    srv.sql("UPDATE todos SET title = 'renamed 10 again' WHERE id = 10");
    srv.sql('DELETE FROM todos WHERE id = 3');
    await h.eventually(() => h.matchesDb(page, srv), { what: 'the whole list to follow' });
  }));

  await t.test('a write made here shows at once and is then the server\'s row', guard(async () => {
    await h.toggleTodo(page, 'renamed 240');
    await page.waitForSelector('#todo-list li[data-done="1"] >> text=renamed 240');
    await h.waitIdle(page);
    await h.eventually(() => h.matchesDb(page, srv), { what: 'the page to show the database' });
    assert.equal(srv.sql('SELECT done FROM todos WHERE id = 240')[0].done, 1);
  }));
});
