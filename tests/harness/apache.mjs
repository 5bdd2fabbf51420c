// Real web servers configured the way a customer configures them, for the
// deployment tests (tests/server/apache*, lighttpd-conf*, cgi*):
//
//   startApache(app, {fcgid})   Debian's apache2 on a free loopback port, as an
//       unprivileged instance (its own ServerRoot, PidFile, logs and fcgid folders in
//       a temp dir), serving a document root with the programs and apache/.htaccess
//       copied into /api/sync/ as a customer uploads them. fcgid: 'default'
//       (mod_fcgid exactly as installed), 'recommended' (plus apache/fcgid.conf), or
//       false (no mod_fcgid: mod_cgid runs them as plain CGI).
//   startLighttpdConf(app)      lighttpd with lighttpd/rhtmx-sync.conf included.
//
// Both are stopped by pid; stop() fails if any FastCGI/CGI process outlives the
// server, or if a sanitizer report reached the error log. The checks every
// server runs (pull, push, events, client.js) are exported from here too.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import assert from 'node:assert/strict';
import {
  BIN, SOURCE, bin, tmpdir, freePort, waitForPort, stopPid, assertSanitizerClean,
} from './rhtmx.mjs';

export const PROGRAMS = ['sync-pull', 'sync-push', 'sync-events', 'client-js'];
const APACHE = '/usr/sbin/apache2';
const MODULES = '/usr/lib/apache2/modules';

/**
 * SQL through the sqlite3 shell, as the PHP app or an operator would write, but
 * waiting for the write lock (a running program may hold it for a moment)
 * instead of failing with "database is locked".
 */
export function sql(db, statements, { json = false } = {}) {
  const args = ['-cmd', '.timeout 10000', json ? '-json' : '-batch', db];
  const out = execFileSync('sqlite3', args, { input: statements, encoding: 'utf8' });
  return json ? (out.trim() ? JSON.parse(out) : []) : out;
}

/** SQL on the app's database: app.exec/app.rows for an app of backendApp (either
 *  backend), else the sqlite3 shell on app.db (an app of makeApp). */
function appSql(app, statements, { json = false } = {}) {
  if (app.exec) return json ? app.rows(statements) : app.exec(statements);
  return sql(app.db, statements, { json });
}

const readIf = (p) => { try { return fs.readFileSync(p, 'utf8'); } catch { return ''; } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every pid below pid (children, grandchildren...). */
export function descendantsOf(pid) {
  const parent = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(parseInt(d, 10), parseInt(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1], 10));
    } catch { /* gone */ }
  }
  const out = [];
  const walk = (p) => { for (const [c, pp] of parent) if (pp === p) { out.push(c); walk(c); } };
  walk(pid);
  return out;
}

/** Pids of live processes whose executable is inside dir. */
export function processesIn(dir) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const exe = fs.readlinkSync(`/proc/${d}/exe`);
      const state = fs.readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1][0];
      if (exe.startsWith(dir + '/') && state !== 'Z') out.push(parseInt(d, 10));
    } catch { /* gone, or not ours to read */ }
  }
  return out;
}

const alive = (pid) => {
  try {
    const state = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0];
    return state !== 'Z';
  } catch { return false; }
};

/**
 * When the tests run as root, the server runs as www-data (Apache refuses to
 * serve as root, and a customer's server never is): the folders it must write
 * are handed to that user. Returns {uid, gid} or null when not root.
 */
function serverUser() {
  if (process.getuid() !== 0) return null;
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('www-data:'));
  assert.ok(line, 'running as root needs a www-data user for the web server');
  const [, , uid, gid] = line.split(':');
  return { uid: parseInt(uid, 10), gid: parseInt(gid, 10) };
}

function chownR(p, user) {
  if (!user) return;
  execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, p]);
}

/**
 * Lay out a document root the way a customer uploads the programs:
 *   www/api/sync/{sync-pull,sync-push,sync-events,client-js,.htaccess}
 *   www/api/sync/rhtmx-sync.json -> the app's config (a symlink: the config and the
 *   database stay outside the document root)
 *   www/index.html
 * from: folder holding the programs (the build's cgi-bin, or an unpacked tarball).
 */
export function layoutDocroot(dir, app, { from = BIN, programs = {}, htaccess } = {}) {
  htaccess ??= path.join(SOURCE, 'apache/.htaccess');
  const www = path.join(dir, 'www');
  const folder = path.join(www, 'api/sync');
  fs.mkdirSync(folder, { recursive: true });
  for (const p of PROGRAMS) fs.copyFileSync(programs[p] ?? path.join(from, p), path.join(folder, p));
  for (const p of PROGRAMS) fs.chmodSync(path.join(folder, p), 0o755);
  fs.copyFileSync(htaccess, path.join(folder, '.htaccess'));
  if (app) fs.symlinkSync(app.config, path.join(folder, 'rhtmx-sync.json'));
  fs.writeFileSync(path.join(www, 'index.html'), '<!doctype html><title>app</title>\n');
  return { www, folder };
}

/**
 * Start Apache. Options:
 *   fcgid: 'default' | 'recommended' | false (plain CGI through mod_cgid)
 *   from, programs, htaccess: what is uploaded (see layoutDocroot)
 *   docroot: a document root the caller laid out instead (programs in api/sync/);
 *     it and app.dir are handed to the server's user
 *   compressAll: make mod_deflate compress every type it can (as some hosts do),
 *     so the test shows the .htaccess keeps it off the event stream (default true)
 *   extra: more httpd.conf text
 * Returns { url, port, dir, www, folder, pid, errorLog(), stop() }.
 */
export async function startApache(app, { fcgid = 'default', from = BIN, programs = {}, htaccess, docroot = null, compressAll = true, extra = '' } = {}) {
  const port = await freePort();
  const dir = tmpdir('apache');
  const { www, folder } = docroot
    ? { www: docroot, folder: path.join(docroot, 'api/sync') }
    : layoutDocroot(dir, app, { from, programs, htaccess });
  for (const d of ['logs', 'run', 'fcgid', 'conf']) fs.mkdirSync(path.join(dir, d));
  const mods = ['mpm_event', 'authz_core', 'mime', 'dir', 'rewrite', 'setenvif', 'env', 'headers',
    'filter', 'deflate', fcgid ? 'fcgid' : 'cgid'];
  const load = mods.map((m) => `LoadModule ${m}_module ${MODULES}/mod_${m}.so`).join('\n');
  const conf = `# A throwaway, unprivileged Apache: everything it writes is under ${dir}.
ServerRoot "${dir}"
ServerName 127.0.0.1
Listen 127.0.0.1:${port}
PidFile "${dir}/run/httpd.pid"
DefaultRuntimeDir "${dir}/run"
ErrorLog "${dir}/logs/error.log"
LogLevel warn
LogFormat "%h %t \\"%r\\" %>s %b %D" timed
CustomLog "${dir}/logs/access.log" timed
${load}
TypesConfig /etc/mime.types
Timeout 300
KeepAlive On
StartServers 1
ServerLimit 2
ThreadsPerChild 32
MaxRequestWorkers 64
${fcgid ? `# Where mod_fcgid keeps its sockets and process table: its defaults are under
# /var/lib/apache2, which an unprivileged instance cannot write. Nothing else about
# mod_fcgid is set here${fcgid === 'recommended' ? ' except what apache/fcgid.conf sets' : ''}.
FcgidIPCDir "${dir}/fcgid"
FcgidProcessTableFile "${dir}/fcgid/shm"
${fcgid === 'recommended' ? `Include "${path.join(SOURCE, 'apache/fcgid.conf')}"` : ''}`
    : `ScriptSock "${dir}/run/cgid.sock"`}
${compressAll ? `# A host that compresses every text answer it can, the event stream included.
AddOutputFilterByType DEFLATE text/html text/plain text/javascript application/json text/event-stream` : ''}
DocumentRoot "${www}"
<Directory />
  AllowOverride None
  Require all denied
</Directory>
# The customer's site, as a cPanel-style host sets it up: .htaccess files allowed,
# here only what apache/.htaccess says it needs (cPanel allows All).
<Directory "${www}">
  Options SymLinksIfOwnerMatch
  AllowOverride FileInfo Options AuthConfig
  Require all granted
</Directory>
AccessFileName .htaccess
<FilesMatch "^\\.ht">
  Require all denied
</FilesMatch>
${extra}
`;
  const confPath = path.join(dir, 'conf/httpd.conf');
  fs.writeFileSync(confPath, conf);
  const user = serverUser();
  chownR(dir, user);
  if (app) chownR(app.dir, user);
  if (docroot) chownR(docroot, user);
  // Apache needs no environment; the sanitizer options reach the programs through
  // mod_cgid (which passes its own environment) and are harmless elsewhere.
  const env = { PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? '', LANG: 'C' };
  const proc = spawn(APACHE, ['-f', confPath, '-DFOREGROUND'], {
    stdio: ['ignore', 'pipe', 'pipe'], env, ...(user ?? {}),
  });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((r) => proc.on('exit', r));
  try {
    const up = await Promise.race([waitForPort(port).then(() => true), exited.then(() => false)]);
    if (!up) throw new Error('apache2 exited at start');
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`${e.message}\n${output}\n${readIf(path.join(dir, 'logs/error.log'))}`);
  }
  const errorLog = () => readIf(path.join(dir, 'logs/error.log')) + output;
  return {
    url: `http://127.0.0.1:${port}`, port, dir, www, folder, pid: proc.pid, errorLog,
    accessLog: () => readIf(path.join(dir, 'logs/access.log')),
    /** Pids of the running copies of one program (the processes mod_fcgid keeps). */
    processes: (prog) => processesIn(folder).filter((p) => fs.readlinkSync(`/proc/${p}/exe`).endsWith(`/${prog}`)),
    async stop() {
      await stopServer(proc.pid, exited, folder, 'apache2');
      assertSanitizerClean(errorLog(), 'programs behind apache2');
    },
  };
}

/**
 * Stop a web server by pid with SIGTERM and let it stop its own children (that is
 * what the test is about); then fail if any process of it, or any program from
 * folder, is still alive. Stragglers are killed so one failure does not leak.
 */
async function stopServer(pid, exited, folder, what) {
  const before = descendantsOf(pid);
  try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
  let timer;
  const gone = await Promise.race([exited.then(() => true),
    new Promise((r) => { timer = setTimeout(() => r(false), 20_000); })]);
  clearTimeout(timer);
  // The server's own exit is the moment that matters; give the kernel a moment to
  // reap what it killed just before.
  const deadline = Date.now() + 500;
  let left;
  do {
    left = [...new Set([...before.filter(alive), ...processesIn(folder)])];
    if (left.length === 0) break;
    await sleep(25);
  } while (Date.now() < deadline);
  const describe = left.map((p) => { try { return `${p} ${fs.readlinkSync(`/proc/${p}/exe`)}`; } catch { return `${p}`; } });
  if (left.length || !gone) await stopPid(pid, { also: left, ms: 2000 });
  assert.ok(gone, `${what} (pid ${pid}) did not exit within 20 s of SIGTERM`);
  assert.deepEqual(describe, [], `processes outlived ${what}`);
}

/**
 * Start lighttpd with lighttpd/rhtmx-sync.conf included, set up as its header says.
 * Returns { url, port, dir, www, pid, errorLog(), stop() }.
 */
export async function startLighttpdConf(app, { from = BIN, before = '', after = '', env = {} } = {}) {
  const port = await freePort();
  const dir = tmpdir('lighttpd-conf');
  const www = path.join(dir, 'www');
  const cgiBin = path.join(dir, 'cgi-bin');
  const run = path.join(dir, 'run');
  for (const d of [www, cgiBin, run]) fs.mkdirSync(d, { recursive: true });
  for (const p of PROGRAMS) fs.copyFileSync(path.join(from, p), path.join(cgiBin, p));
  for (const p of PROGRAMS) fs.chmodSync(path.join(cgiBin, p), 0o755);
  fs.writeFileSync(path.join(www, 'index.html'), '<!doctype html><title>app</title>\n');
  const confPath = path.join(dir, 'lighttpd.conf');
  fs.writeFileSync(confPath, `server.document-root = "${www}"
server.bind = "127.0.0.1"
server.port = ${port}
server.errorlog = "${dir}/error.log"
mimetype.assign = ( ".html" => "text/html" )
${before}
var.rhtmx_bin = "${cgiBin}"
var.rhtmx_config = "${app.config}"
var.rhtmx_run = "${run}"
include "${path.join(SOURCE, 'lighttpd/rhtmx-sync.conf')}"
${after}
`);
  const proc = spawn('/usr/sbin/lighttpd', ['-D', '-f', confPath], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((r) => proc.on('exit', r));
  try {
    const up = await Promise.race([waitForPort(port).then(() => true), exited.then(() => false)]);
    if (!up) throw new Error('lighttpd exited at start');
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`${e.message}\n${output}\n${readIf(path.join(dir, 'error.log'))}`);
  }
  const errorLog = () => readIf(path.join(dir, 'error.log')) + output;
  return {
    url: `http://127.0.0.1:${port}`, port, dir, www, pid: proc.pid, errorLog,
    processes: (prog) => processesIn(cgiBin).filter((p) => fs.readlinkSync(`/proc/${p}/exe`).endsWith(`/${prog}`)),
    async stop() {
      await stopServer(proc.pid, exited, cgiBin, 'lighttpd');
      await sleep(50); // let the pipes drain
      assertSanitizerClean(errorLog(), 'programs behind lighttpd');
    },
  };
}

/**
 * One HTTP request with node:http: no automatic decompression, no header
 * rewriting. Returns { status, headers, body (Buffer), text(), json() }.
 */
export function request(url, { method = 'GET', headers = {}, body = null, timeout = 60_000 } = {}) {
  // A body goes with a Content-Length, as browsers send it (node would otherwise
  // send it chunked, and plain CGI gets no CONTENT_LENGTH for a chunked body).
  if (body !== null) headers = { 'content-length': Buffer.byteLength(body), ...headers };
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        resolve({ status: res.statusCode, headers: res.headers, body: b,
          text: () => b.toString('utf8'), json: () => JSON.parse(b.toString('utf8')) });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeout, () => req.destroy(new Error(`${method} ${url}: no answer in ${timeout} ms`)));
    req.on('error', reject);
    if (body !== null) req.write(body);
    req.end();
  });
}

/**
 * Open a streaming GET and collect what arrives, with the time each chunk came.
 * Returns { response (promise of {status, headers}), chunks: [{t, text}], text(),
 * waitFor(re, ms), close() }.
 */
export function openStream(url, { headers = {} } = {}) {
  const chunks = [];
  const start = Date.now();
  let res = null;
  let ended = false;
  const waiters = [];
  const text = () => chunks.map((c) => c.text).join('');
  const wake = () => { for (const w of waiters.splice(0)) w(); };
  const req = http.request(url, { headers, agent: false });
  const response = new Promise((resolve, reject) => {
    req.on('response', (r) => {
      res = r;
      resolve({ status: r.statusCode, headers: r.headers });
      r.setEncoding('utf8');
      r.on('data', (d) => { chunks.push({ t: Date.now() - start, text: d }); wake(); });
      r.on('end', () => { ended = true; wake(); });
      r.on('error', () => { ended = true; wake(); });
    });
    req.on('error', (e) => { ended = true; wake(); reject(e); });
  });
  req.end();
  response.catch(() => {}); // closing before the answer came is not an error
  return {
    response, chunks, text, ended: () => ended,
    /** Resolve with the text so far once it matches re; reject after ms. */
    async waitFor(re, ms = 10_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        if (re.test(text())) return text();
        if (ended) throw new Error(`stream ended without ${re}; got:\n${text()}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no ${re} within ${ms} ms; got:\n${text()}`);
        let timer;
        await Promise.race([new Promise((r) => waiters.push(r)), new Promise((r) => { timer = setTimeout(r, left); })]);
        clearTimeout(timer);
      }
    },
    close() { req.destroy(); if (res) res.destroy(); },
  };
}

/** Server-Sent Events text -> [{event, id, data}] (comments and retry: dropped). */
export function parseSse(text) {
  const out = [];
  for (const block of text.split('\n\n')) {
    const e = { event: 'message', id: undefined, data: undefined };
    let any = false;
    for (const line of block.split('\n')) {
      const m = line.match(/^(event|id|data): ?(.*)$/);
      if (!m) continue;
      any = true;
      e[m[1]] = m[1] === 'data' && e.data !== undefined ? `${e.data}\n${m[2]}` : m[2];
    }
    if (any && e.data !== undefined) out.push(e);
  }
  return out;
}

// ---------------------------------------------------------------------------
// The checks every deployment runs. Each takes the server's base URL and the app
// (from makeApp with the default todos schema, or backendApp with TODOS on either
// backend) and asserts the wire contract as a browser meets it through that server.

/** sync-pull: full and incremental sync, errors, and the method split. */
export async function checkPull(url, app) {
  appSql(app, "INSERT INTO todos (title) VALUES ('one'), ('two');");
  const full = await request(`${url}/api/sync/todos?since=0`);
  assert.equal(full.status, 200, full.text());
  assert.match(full.headers['content-type'], /^application\/json/);
  const body = full.json();
  assert.deepEqual(body.changes.map((c) => [c.action, c.data.title]), [['create', 'one'], ['create', 'two']]);
  assert.ok(body.changes.every((c) => Number.isInteger(c.id)), 'integer keys stay JSON integers');
  assert.equal(body.has_more, false);

  appSql(app, "UPDATE todos SET done = 1 WHERE title = 'one';");
  const inc = await request(`${url}/api/sync/todos?since=${body.version}`);
  assert.equal(inc.status, 200);
  assert.deepEqual(inc.json().changes.map((c) => [c.action, c.data.title, c.data.done]), [['update', 'one', 1]]);

  const paged = await request(`${url}/api/sync/todos?since=0&limit=1`);
  assert.equal(paged.json().has_more, true);

  const unknown = await request(`${url}/api/sync/nope`);
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json().error.code, 'not_found');
  const bad = await request(`${url}/api/sync/todos?since=abc`);
  assert.equal(bad.status, 400);
  assert.equal(bad.json().error.code, 'bad_request');
  // Methods other than GET/HEAD/POST reach sync-pull, which says what is allowed.
  const del = await request(`${url}/api/sync/todos`, { method: 'DELETE' });
  assert.equal(del.status, 405);
  assert.match(del.headers.allow, /GET/);
  // A browser that accepts gzip gets the same answer, compressed or not (by the
  // program or by the server).
  appSql(app, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
               INSERT INTO todos (title) SELECT 'row number ' || i FROM n;`);
  const gz = await request(`${url}/api/sync/todos?since=0`, { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(gz.status, 200);
  const plain = gz.headers['content-encoding'] === 'gzip' ? zlib.gunzipSync(gz.body) : gz.body;
  assert.equal(JSON.parse(plain).changes.length, 202);
}

/**
 * An answer given without reading the request body (405 to a PUT, and any early
 * refusal of a push: 401, 413, 415) must still reach the client. Under Apache's
 * mod_cgid the program's stdin and stdout are one Unix socket: a program that
 * exits with the body unread resets it, and Apache loses the answer.
 */
export async function checkUnreadBody(url) {
  for (const size of [2, 5000, 60000]) {
    const body = JSON.stringify({ pad: 'x'.repeat(size) });
    const put = await request(`${url}/api/sync/todos`, { method: 'PUT', body, headers: { 'content-type': 'application/json' } });
    assert.equal(put.status, 405, `PUT with a ${body.length}-byte body`);
    assert.equal(put.json().error.code, 'method_not_allowed');
    const wrongType = await request(`${url}/api/sync/todos`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
    assert.equal(wrongType.status, 415, `POST text/plain with a ${body.length}-byte body`);
  }
}

/** client-js: the library, its ETag/304, gzip. */
export async function checkClientJs(url) {
  const raw = await request(`${url}/api/sync/client.js`);
  assert.equal(raw.status, 200, raw.text());
  assert.equal(raw.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.match(raw.headers['cache-control'], /max-age=300/);
  const source = raw.body;
  assert.ok(source.length > 1000 && /rhtmx/i.test(source.toString()), 'client.js is the library');
  const etag = raw.headers.etag;
  assert.match(etag, /^"/);
  const again = await request(`${url}/api/sync/client.js`, { headers: { 'if-none-match': etag } });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
  const gz = await request(`${url}/api/sync/client.js`, { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(gz.status, 200);
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.ok(zlib.gunzipSync(gz.body).equals(source));
}

/** client-js at /api/sync/sw.js: the service worker (not the library), revalidated on
 * every use, allowed to control the whole site. */
export async function checkServiceWorkerJs(url) {
  const r = await request(`${url}/api/sync/sw.js`);
  assert.equal(r.status, 200, r.text());
  assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal(r.headers['cache-control'], 'no-cache');
  assert.equal(r.headers['service-worker-allowed'], '/');
  assert.ok(r.body.equals(fs.readFileSync(path.join(SOURCE, 'js/rhtmx-sync-sw.js'))), 'sw.js is js/rhtmx-sync-sw.js');
  const again = await request(`${url}/api/sync/sw.js`, { headers: { 'if-none-match': r.headers.etag } });
  assert.equal(again.status, 304);
}

/** sync-push: a create, an update and a delete, then what pull says. */
export async function checkPush(url, app) {
  const push = (changes, headers = {}) => request(`${url}/api/sync/todos`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ client_id: 'c-deploy', changes }),
  });
  appSql(app, "INSERT INTO todos (id, title) VALUES (100000, 'server row');");
  const first = await push([{ mutation_id: 'm-1', id: 'tmp-1', action: 'create', data: { title: 'from browser' }, client_version: 0 }]);
  assert.equal(first.status, 200, first.text());
  const answer = first.json();
  const newId = answer.ids['tmp-1'];
  assert.ok(Number.isInteger(newId), JSON.stringify(answer));
  assert.deepEqual(answer.applied, [newId]);
  const v = answer.version;
  const second = await push([
    { mutation_id: 'm-2', id: newId, action: 'update', data: { done: 1 }, client_version: v },
    { mutation_id: 'm-3', id: 100000, action: 'delete', client_version: v },
  ]);
  assert.equal(second.status, 200, second.text());
  assert.deepEqual(second.json().applied, [newId, 100000]);
  // A retry of the same batch changes nothing and gets the same answer.
  const retry = await push([
    { mutation_id: 'm-2', id: newId, action: 'update', data: { done: 1 }, client_version: v },
    { mutation_id: 'm-3', id: 100000, action: 'delete', client_version: v },
  ]);
  assert.deepEqual(retry.json().applied, [newId, 100000]);
  assert.deepEqual(appSql(app, `SELECT id, title, done FROM todos WHERE id IN (${newId}, 100000);`, { json: true }),
    [{ id: newId, title: 'from browser', done: 1 }]);
  const pulled = (await request(`${url}/api/sync/todos?since=${v}`)).json();
  assert.deepEqual(pulled.changes.map((c) => [c.id, c.action, c.client_id]),
    [[newId, 'update', 'c-deploy'], [100000, 'delete', 'c-deploy']]);
  // Bad input is 400 and changes nothing.
  const bad = await request(`${url}/api/sync/todos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"changes": 5' });
  assert.equal(bad.status, 400);
}

/** sync-events in poll mode: the answer ends as soon as it has news. */
export async function checkEventsPoll(url, app) {
  const head = Number(appSql(app, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head';").trim());
  const probe = await request(`${url}/api/sync/events?entities=todos&since=${head}&mode=poll`, { timeout: 60_000 });
  // Nothing new: the poll waited and ended on its own.
  assert.equal(probe.status, 200, probe.text());
  assert.match(probe.headers['content-type'], /^text\/event-stream/);
  assert.equal(probe.headers['content-encoding'], undefined, 'the event stream must not be compressed');

  // Where the server buffers (mod_fcgid's defaults, mod_cgid), even the headers arrive only
  // when the poll ends: commit while the request waits, then read. The cursor makes the
  // event due whichever comes first.
  const s = openStream(`${url}/api/sync/events?entities=todos&since=${head}&mode=poll`);
  await sleep(500);
  appSql(app, "INSERT INTO todos (title) VALUES ('news');");
  const started = Date.now();
  await s.response;
  await s.waitFor(/id: \d+\ndata: \{[^\n]*"entity":"todos"/, 30_000);
  while (!s.ended() && Date.now() - started < 10_000) await sleep(20);
  assert.ok(s.ended(), 'a poll answer ends once it has sent its events');
  assert.ok(Date.now() - started < 10_000, 'the poll answer did not wait out its timer once it had news');
  const ids = parseSse(s.text()).filter((e) => e.event === 'message').map((e) => Number(e.id));
  assert.deepEqual(ids, [head + 1], s.text());
  s.close();
}

/** sync-events streaming: events arrive while the response stays open. */
export async function checkEventsStream(url, app) {
  const head = Number(appSql(app, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head';").trim());
  const s = openStream(`${url}/api/sync/events?entities=todos&since=${head}`, { headers: { 'accept-encoding': 'gzip' } });
  const res = await s.response;
  try {
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^text\/event-stream/);
    assert.equal(res.headers['content-encoding'], undefined, 'the event stream must not be compressed');
    await s.waitFor(/retry: \d+/, 5_000); // the first bytes get through at once
    for (let i = 1; i <= 3; i++) {
      const t0 = Date.now();
      appSql(app, `INSERT INTO todos (title) VALUES ('live ${i}');`);
      await s.waitFor(new RegExp(`(^|\n)id: ${head + i}\ndata: [^\n]*"entity":"todos"`), 5_000);
      assert.ok(Date.now() - t0 < 3000, `event ${i} took ${Date.now() - t0} ms`);
    }
    assert.ok(!s.ended(), 'a streaming response stays open between events');
  } finally {
    s.close();
  }
}

export { bin, sleep };
