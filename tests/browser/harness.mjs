// Shared by the browser tests: the example app behind lighttpd (examples/todo/serve.sh), a
// headless Debian Chromium driven by playwright-core, and small helpers to read the page and
// the database.
//
// Environment: RHTMX_BIN (or RHTMX_BIN_DIR) the folder with the built executables (default
// build/cgi-bin); RHTMX_ARTIFACTS where screenshots and failing servers' logs go (default
// $RHTMX_BUILD/browser-artifacts, else build/browser-artifacts); RHTMX_SKIP_EXIT, when set,
// the exit status that tells CTest a prerequisite is missing (the test is skipped).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../..');
export const BIN = path.resolve(process.env.RHTMX_BIN_DIR || process.env.RHTMX_BIN || path.join(ROOT, 'build/cgi-bin'));
export const ARTIFACTS = path.resolve(process.env.RHTMX_ARTIFACTS ||
  (process.env.RHTMX_BUILD ? path.join(process.env.RHTMX_BUILD, 'browser-artifacts') : path.join(ROOT, 'build/browser-artifacts')));
const SERVE = path.join(ROOT, 'examples/todo/serve.sh');
export const CHROMIUM = process.env.RHTMX_CHROMIUM || '/usr/bin/chromium';

const require = createRequire(import.meta.url);

/* Why the browser tests cannot run here, or null. */
export function missingPrerequisite() {
  for (const exe of ['sync-pull', 'sync-push', 'sync-events', 'client-js', 'rhtmx-sync']) {
    if (!fs.existsSync(path.join(BIN, exe))) return `no ${exe} in ${BIN} (build first)`;
  }
  if (!fs.existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
  for (const tool of ['lighttpd', 'php-cgi', 'sqlite3']) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }); } catch { return `${tool} is not installed`; }
  }
  try { require.resolve('playwright-core'); } catch { return 'playwright-core is not installed (npm ci)'; }
  if (!fs.existsSync(path.join(ROOT, 'node_modules/htmx.org/dist/htmx.min.js'))) return 'htmx.org is not installed (npm ci)';
  return null;
}

/* Exits with RHTMX_SKIP_EXIT (CTest's skip code) when something the tests need is missing;
 * otherwise returns the `skip` option for node:test (false when all is there). */
export function prerequisites() {
  const why = missingPrerequisite();
  if (why && process.env.RHTMX_SKIP_EXIT) {
    console.log(`SKIP browser tests: ${why}`);
    process.exit(Number(process.env.RHTMX_SKIP_EXIT));
  }
  return why || false;
}

const servers = new Set();

/* Starts the example on a free loopback port with a fresh database. Resolves with
 * { url, dir, db, stop(), sql(q), ... }. Servers still running at exit are stopped. */
export function startServer(opts = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rhtmx-browser-'));
  const args = ['start', '--dir', dir, '--port', '0', '--bin-dir', BIN];
  if (opts.strategy) args.push('--strategy', opts.strategy);
  if (opts.seed !== undefined) args.push('--seed', String(opts.seed));
  if (opts.eventsMode) args.push('--events-mode', opts.eventsMode);
  if (opts.debug) args.push('--debug');
  if (opts.buffered) args.push('--buffered');
  /* The example registers its service worker only for tests that ask (offline: true): one
   * would take over navigations and assets that other tests route themselves. */
  if (!opts.offline) args.push('--no-offline');
  const url = execFileSync('bash', [SERVE, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  const srv = {
    url,
    origin: url.replace(/\/$/, ''),
    dir,
    db: path.join(dir, 'todo.db'),
    sql: (q) => sql(path.join(dir, 'todo.db'), q),
    /* Stops the web server but keeps its folder and database: the page's server is gone. */
    halt() {
      execFileSync('bash', [SERVE, 'stop', '--dir', dir], { stdio: 'ignore' });
    },
    /* Starts it again on the same port with the same database; extra: more serve.sh
     * options (a later one wins: ['--offline', 'false'], ['--sw-off']). */
    resume(extra = []) {
      const port = new URL(url).port;
      execFileSync('bash', [SERVE, 'start', ...args.slice(1).map((a, i, all) => (all[i - 1] === '--port' ? port : a)), ...extra],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    },
    stop({ keep } = {}) {
      if (!servers.has(srv)) return;
      servers.delete(srv);
      try { execFileSync('bash', [SERVE, 'stop', '--dir', dir], { stdio: 'ignore' }); } catch { /* already gone */ }
      if (keep) {
        const dest = path.join(ARTIFACTS, 'logs', path.basename(dir));
        fs.mkdirSync(dest, { recursive: true });
        for (const f of ['lighttpd-error.log', 'access.log', 'init.log', 'rhtmx-sync.json', 'lighttpd.conf']) {
          try { fs.copyFileSync(path.join(dir, f), path.join(dest, f)); } catch { /* not written */ }
        }
        console.log(`server logs kept in ${dest}`);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  servers.add(srv);
  return srv;
}

function stopAll() { for (const s of [...servers]) s.stop(); }
process.on('exit', stopAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stopAll(); process.exit(130); });

/* Runs one SQL statement with the sqlite3 shell (another writer, like a person at a shell);
 * returns the rows as objects. */
export function sql(db, q) {
  const out = execFileSync('sqlite3', ['-json', '-cmd', '.timeout 5000', db, q], { encoding: 'utf8' }).trim();
  return out ? JSON.parse(out) : [];
}

let chromiumModule = null;
/* Debian's Chromium, headless. Playwright gives each launch a fresh temporary profile (its
 * own --user-data-dir), removed when the browser closes. */
export async function launchBrowser() {
  chromiumModule = chromiumModule || require('playwright-core').chromium;
  return chromiumModule.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/* Opens the app in a new page of `context`, waits until the library is ready and (unless
 * told not to) its first pull is done. Console errors are collected on page.logs. */
export async function openApp(context, srv, { waitSynced = true, path: p = '/', origin = srv.origin } = {}) {
  const page = await context.newPage();
  page.logs = [];
  page.on('console', (m) => page.logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => page.logs.push(`pageerror: ${e.message}`));
  await page.goto(origin + p);
  await appReady(page);
  if (waitSynced) await waitIdle(page);
  return page;
}

/* Waits until the library on the page has opened IndexedDB and started its first pull. */
export async function appReady(page) {
  await page.waitForFunction(() => window.RhtmxSync);
  await page.evaluate(() => window.RhtmxSync.ready.then(() => true));
}

/* Waits until the page's status is online (not syncing) with nothing pending. */
export async function waitIdle(page, timeout = 15000) {
  await page.waitForFunction(() => {
    const s = window.RhtmxSync.status();
    return s.state === 'online' && s.pending === 0;
  }, null, { timeout });
}

/* Waits until the page's service worker (data-sync-offline) controls it and has kept what
 * the page is made of. */
export async function workerReady(page) {
  await page.evaluate(() => RhtmxSync._debug.offline.done);
  await page.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 15000 });
}

/* The todos the page shows: [{ id, title, done, pending }] in list order. */
export function shownTodos(page) {
  return page.$$eval('#todo-list li.todo', (lis) => lis.map((li) => ({
    id: li.getAttribute('data-sync-id'),
    title: li.querySelector('.title').textContent.trim(),
    done: li.getAttribute('data-done') === '1',
    pending: li.hasAttribute('data-sync-pending'),
  })));
}

export async function titles(page) { return (await shownTodos(page)).map((t) => t.title); }

/* Polls fn until it returns a truthy value (returned) or the timeout passes (throws with
 * the last value, for the assertion message). */
export async function eventually(fn, { timeout = 15000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/* The database's todos as the page would list them. */
export function dbTodos(srv) {
  return srv.sql('SELECT id, title, done FROM todos ORDER BY id')
    .map((r) => ({ id: String(r.id), title: r.title, done: r.done === 1 }));
}

/* True once the page lists exactly the database's todos, with nothing pending. */
export async function matchesDb(page, srv) {
  const shown = (await shownTodos(page)).map(({ id, title, done }) => ({ id, title, done }));
  return JSON.stringify(shown) === JSON.stringify(dbTodos(srv));
}

export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file }); // the viewport: a person's first look
  return file;
}

/* Adds a todo through the page's form (htmx), as a person would. */
export async function addTodo(page, title) {
  await page.fill('#add-form input[name=title]', title);
  await page.click('#add-form button');
}

export async function toggleTodo(page, title) {
  await page.locator('#todo-list li.todo', { has: page.locator('.title', { hasText: title }) }).locator('button.check').click();
}

export async function deleteTodo(page, title) {
  await page.locator('#todo-list li.todo', { has: page.locator('.title', { hasText: title }) }).locator('button.remove').click();
}

/* Records the requests a context makes to a path prefix: [{ url, method, page, worker, at }].
 * A request the service worker makes itself (Background Sync, its install) has no page
 * (Playwright's frame() throws for it): page null, worker true. */
export function recordRequests(context, prefix) {
  const list = [];
  context.on('request', (req) => {
    const u = new URL(req.url());
    if (u.pathname.startsWith(prefix)) {
      const worker = !!req.serviceWorker();
      list.push({ url: req.url(), path: u.pathname, search: u.search, method: req.method(), page: worker ? null : req.frame()?.page(), worker, at: Date.now(), headers: req.headers(), body: req.postData() });
    }
  });
  return list;
}

/* Makes every IndexedDB write of the page fail with QuotaExceededError while
 * window.__diskFull is true (a full disk, as the page sees it). Call before the page loads. */
export async function fakeFullDisk(context) {
  await context.addInitScript(() => {
    window.__diskFull = false;
    window.__quotaErrors = 0;
    for (const name of ['put', 'add', 'delete', 'clear']) {
      const real = IDBObjectStore.prototype[name];
      IDBObjectStore.prototype[name] = function (...a) {
        if (window.__diskFull) {
          window.__quotaErrors++;
          throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
        }
        return real.apply(this, a);
      };
    }
  });
}

/* How many times each title is in the server's database: { title: count }. */
export function titleCounts(srv) {
  const out = {};
  for (const r of srv.sql('SELECT title, count(*) AS n FROM todos GROUP BY title')) out[r.title] = r.n;
  return out;
}

/* Dumps page logs when a test failed, to make CI output useful. */
export function dumpLogs(label, page) {
  if (page && page.logs && page.logs.length) console.log(`--- ${label} console ---\n${page.logs.join('\n')}`);
}

/* A plain HTTP proxy on a loopback port in front of the example, for tests that need to see
 * or shape what really crosses the wire (Playwright's request routing does not show headers
 * that Chromium adds late, such as Last-Event-ID). intercept(req, res) returns true when it
 * answered itself. Resolves with { origin, close() }. */
export async function startProxy(srv, intercept) {
  const port = Number(new URL(srv.origin).port);
  const server = http.createServer((req, res) => {
    if (intercept && intercept(req, res)) return;
    const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => { server.closeAllConnections(); server.close(); },
  };
}

/* The programs behind a real Apache (tests/harness/apache.mjs), uploaded with apache/.htaccess:
 * fcgid 'default' (mod_fcgid as installed: a shared host), 'recommended' (plus
 * apache/fcgid.conf) or false (plain CGI through mod_cgid); config is merged into the app's
 * rhtmx-sync.json (the harness's todos schema). `pages` ({ 'name.html': html }) are written
 * into the document root, next to /vendor/htmx.min.js and /vendor/sse.js (htmx-ext-sse).
 * Resolves with { url, app, apache, sql(q), stop() }. */
export async function startApacheApp({ fcgid = 'default', config = {}, pages = {} } = {}) {
  process.env.RHTMX_BIN ??= BIN;
  process.env.RHTMX_SOURCE ??= ROOT;
  const { makeApp } = await import('../harness/rhtmx.mjs');
  const { startApache } = await import('../harness/apache.mjs');
  const app = makeApp({ config, tag: 'browser-apache' });
  const apache = await startApache(app, { fcgid, from: BIN, htaccess: path.join(ROOT, 'apache/.htaccess') });
  const vendor = path.join(apache.www, 'vendor');
  fs.mkdirSync(vendor, { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'node_modules/htmx.org/dist/htmx.min.js'), path.join(vendor, 'htmx.min.js'));
  fs.copyFileSync(path.join(ROOT, 'node_modules/htmx-ext-sse/dist/sse.js'), path.join(vendor, 'sse.js'));
  for (const [name, html] of Object.entries(pages)) fs.writeFileSync(path.join(apache.www, name), html);
  return { url: apache.url, app, apache, sql: (q) => sql(app.db, q), stop: () => apache.stop() };
}

/* A page with the library and its status element (for startApacheApp's pages). */
export function libraryPage(attrs = '') {
  return `<!doctype html><meta charset="utf-8"><title>sync</title>
<rhtmx-sync-status></rhtmx-sync-status>
<script src="/api/sync/client.js" data-sync-entities="todos" data-debug="true" ${attrs}></script>\n`;
}
