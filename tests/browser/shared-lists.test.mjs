// Sync rules in the browser: the shared-lists example (examples/shared) with two users in two
// Chromium contexts. A todo alice adds to the list they share appears on bob's open page; when
// alice removes bob from that list, the list and its todos disappear from bob's page and from
// his IndexedDB without a reload, and his own list stays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as h from './harness.mjs';
import { freePort, waitForPort, childrenOf, stopPid } from '../harness/rhtmx.mjs';

const skip = h.prerequisites();
const SERVE = path.join(h.ROOT, 'examples/shared/serve.sh');

/* examples/shared/serve.sh in the foreground on a free port, with a fresh folder. */
async function startShared() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rhtmx-shared-'));
  const port = await freePort();
  const proc = spawn('bash', [SERVE, dir, String(port), h.BIN], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  try {
    await waitForPort(port, 20_000);
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`${e.message}\n${out}`);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    db: path.join(dir, 'shared.db'),
    sql: (q) => h.sql(path.join(dir, 'shared.db'), q),
    log: () => out + (fs.existsSync(path.join(dir, 'lighttpd-error.log')) ? fs.readFileSync(path.join(dir, 'lighttpd-error.log'), 'utf8') : ''),
    async stop() {
      const kids = childrenOf(proc.pid);
      await stopPid(proc.pid, { also: kids });
    },
  };
}

const shown = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));

test('two users share a list; removing one takes the list off their page and out of IndexedDB', { skip, timeout: 120000 }, async (t) => {
  const srv = await startShared();
  const browser = await h.launchBrowser();
  let failed = false;
  const pages = [];
  t.after(async () => {
    if (failed) { for (const p of pages) h.dumpLogs(p.who, p); console.log(srv.log()); }
    await browser.close();
    await srv.stop();
  });
  const guard = (fn) => async (st) => { try { await fn(st); } catch (err) { failed = true; throw err; } };
  const open = async (who) => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    page.who = who;
    page.logs = [];
    page.on('console', (m) => page.logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => page.logs.push(`pageerror: ${e.message}`));
    pages.push(page);
    await page.goto(`${srv.url}/?as=${who}`);
    await h.appReady(page);
    await h.waitIdle(page);
    await page.waitForSelector('rhtmx-sync-status[live=stream], rhtmx-sync-status[live=poll]');
    return page;
  };
  const alice = await open('alice');
  const bob = await open('bob');
  await bob.evaluate(() => { window.__sameDocument = true; });
  const stored = (page, entity) => page.evaluate((e) => RhtmxSync.list(e), entity);

  await t.test('both see the shared list; a todo alice adds appears on bob\'s page', guard(async () => {
    assert.deepEqual(await shown(alice, '#lists .name'), ['Groceries', 'Alice at work']);
    assert.deepEqual(await shown(bob, '#lists .name'), ['Groceries', "Bob's garage"]);
    assert.deepEqual((await stored(bob, 'todos')).map((r) => r.title).sort(), ['Bread', 'Fix the bike', 'Milk']);
    await alice.selectOption('#add-form select', '1');
    await alice.fill('#add-form input[name=title]', 'Eggs');
    await alice.click('#add-form button');
    await bob.waitForSelector('#todo-list >> text=Eggs', { timeout: 15000 });
    assert.equal(srv.sql("SELECT list_id FROM todos WHERE title = 'Eggs'")[0].list_id, 1);
  }));

  await t.test('alice removes bob from Groceries: it leaves bob\'s page and IndexedDB, live', guard(async () => {
    await alice.click('#members .members[data-list="1"] button[aria-label="Remove bob"]');
    await h.eventually(async () => (await shown(bob, '#lists .name')).join() === "Bob's garage",
      { what: "bob's lists to be only his own" });
    await h.eventually(async () => (await shown(bob, '#todo-list .title')).join() === 'Fix the bike',
      { what: "bob's todos to be only his own" });
    await h.eventually(async () => (await stored(bob, 'todos')).map((r) => r.title).join() === 'Fix the bike',
      { what: "bob's IndexedDB todos to be only his own" });
    assert.deepEqual((await stored(bob, 'lists')).map((r) => r.name), ["Bob's garage"]);
    await h.eventually(async () => (await shown(bob, '#add-form option')).join() === "Bob's garage",
      { what: "bob's add form to offer only his own list" });
    assert.equal(await bob.evaluate(() => window.__sameDocument), true, 'bob\'s page was not reloaded');
    // Alice keeps everything.
    assert.deepEqual((await stored(alice, 'todos')).map((r) => r.title).sort(), ['Bread', 'Eggs', 'Milk', 'Slides']);
    await h.screenshot(bob, 'shared-removed');
  }));
});
