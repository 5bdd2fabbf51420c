// auth.allowed_origins from a browser: a page on a listed origin (another port of the
// loopback address than the programs) pulls, pushes and listens to events with its
// cookie or its token; a page on an unlisted origin reads nothing and writes nothing.
// The programs run behind lighttpd with the shipped lighttpd/rhtmx-sync.conf; the pages
// come from two small node servers, one per origin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as h from './harness.mjs';

const skip = h.prerequisites();

// The server-test harness reads these when it is loaded.
process.env.RHTMX_SOURCE ??= h.ROOT;
process.env.RHTMX_BIN ??= h.BIN;
const { startLighttpdConf } = await import('../harness/apache.mjs');
const { makeTokenApp } = await import('../harness/token.mjs');
const { sql } = await import('../harness/rhtmx.mjs');

/* A page server on its own port: its origin is http://127.0.0.1:<port>. */
async function pageServer() {
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>page on another origin</title><p>hello</p>\n');
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((r) => srv.close(r)) };
}

async function setup(t) {
  const listedPage = await pageServer();
  const otherPage = await pageServer();
  const app = makeTokenApp({
    schema: "CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL); INSERT INTO todos (title) VALUES ('first');",
    auth: { allowed_origins: [listedPage.origin] },
  });
  const api = await startLighttpdConf(app);
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  // The cookie the app's PHP would set for the programs' host (cookies ignore ports).
  await ctx.addCookies([{ name: 'rhtmx_sync', value: app.token('u1'), domain: '127.0.0.1', path: '/', sameSite: 'Lax' }]);
  t.after(async () => {
    await browser.close();
    await api.stop();
    await listedPage.close();
    await otherPage.close();
  });
  const open = async (origin) => {
    const page = await ctx.newPage();
    await page.goto(`${origin}/`);
    return page;
  };
  return { app, api, ctx, listed: await open(listedPage.origin), other: await open(otherPage.origin), listedOrigin: listedPage.origin };
}

/* In the page: fetch and report what the page could see, or the error it got. */
function pageFetch(page, url, init) {
  return page.evaluate(async ([u, i]) => {
    try {
      const r = await fetch(u, i);
      return { status: r.status, body: await r.text(), retryAfter: r.headers.get('Retry-After') };
    } catch (e) {
      return { error: `${e.name}: ${e.message}` };
    }
  }, [url, init]);
}

const pushBody = (title, m) => JSON.stringify({ client_id: 'c-cors', changes: [
  { mutation_id: m, action: 'create', id: `tmp-${m}`, data: { title }, client_version: 0 }] });

test('a listed origin pulls and pushes with its cookie or its token; an unlisted one cannot', { skip, timeout: 120000 }, async (t) => {
  const { app, api, listed, other } = await setup(t);
  const pull = `${api.url}/api/sync/todos?since=0`;

  // Listed, with the cookie: the pull is readable.
  let r = await pageFetch(listed, pull, { credentials: 'include' });
  assert.equal(r.status, 200, JSON.stringify(r));
  assert.deepEqual(JSON.parse(r.body).changes.map((c) => c.data.title), ['first']);
  // Listed, with the token in Authorization (a preflighted GET), no cookie.
  r = await pageFetch(listed, pull, { credentials: 'omit', headers: { Authorization: `Bearer ${app.token('u1')}` } });
  assert.equal(r.status, 200, JSON.stringify(r));
  // Listed, without credentials: the 401 is readable, so the page can tell why.
  r = await pageFetch(listed, pull, { credentials: 'omit' });
  assert.equal(r.status, 401);
  assert.equal(JSON.parse(r.body).error.code, 'unauthorized');
  // Listed: a push (JSON, so preflighted) with the cookie, then with the token.
  r = await pageFetch(listed, `${api.url}/api/sync/todos`, {
    method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body: pushBody('from the listed page', 'm1') });
  assert.equal(r.status, 200, JSON.stringify(r));
  assert.deepEqual(JSON.parse(r.body).ids, { 'tmp-m1': 2 });
  r = await pageFetch(listed, `${api.url}/api/sync/todos`, {
    method: 'POST', credentials: 'omit', body: pushBody('with the token', 'm2'),
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${app.token('u1')}` } });
  assert.equal(r.status, 200, JSON.stringify(r));

  // Unlisted: the browser keeps the pull from the page (the cookie went, the answer did not
  // come back), and refuses the push at the preflight, so nothing is written.
  r = await pageFetch(other, pull, { credentials: 'include' });
  assert.match(r.error ?? '', /TypeError/, JSON.stringify(r));
  r = await pageFetch(other, pull, { credentials: 'omit', headers: { Authorization: `Bearer ${app.token('u1')}` } });
  assert.match(r.error ?? '', /TypeError/, JSON.stringify(r));
  r = await pageFetch(other, `${api.url}/api/sync/todos`, {
    method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body: pushBody('from elsewhere', 'm3') });
  assert.match(r.error ?? '', /TypeError/, JSON.stringify(r));
  assert.deepEqual(sql(app.db, 'SELECT title FROM todos ORDER BY id;', { json: true }).map((x) => x.title),
    ['first', 'from the listed page', 'with the token']);
});

test('events from another origin: EventSource withCredentials works for a listed origin only', { skip, timeout: 120000 }, async (t) => {
  const { app, api, listed, other } = await setup(t);
  const url = `${api.url}/api/sync/events?entities=todos&since=1`;
  const listen = (page) => page.evaluate((u) => new Promise((resolve) => {
    const es = new EventSource(u, { withCredentials: true });
    const seen = [];
    es.onmessage = (e) => { seen.push(JSON.parse(e.data)); es.close(); resolve({ opened: true, seen }); };
    es.onerror = () => { if (es.readyState === EventSource.CLOSED) resolve({ opened: false, seen }); };
    setTimeout(() => { es.close(); resolve({ timeout: true, seen }); }, 20000);
  }), url);
  const fromListed = listen(listed);
  const fromOther = listen(other);
  // A change after the cursor, written by someone else (the app's PHP, a shell).
  await new Promise((r) => setTimeout(r, 300));
  sql(app.db, "INSERT INTO todos (title) VALUES ('live');");
  const a = await fromListed;
  assert.deepEqual(a.seen.map((e) => [e.entity, e.action, e.id]), [['todos', 'create', 2]], JSON.stringify(a));
  const b = await fromOther;
  assert.equal(b.opened, false, JSON.stringify(b));
  assert.deepEqual(b.seen, []);
  void api;
});
