// Shared helpers for the cgi and server tests: real binaries, real SQLite files
// made with the real sqlite3 shell, real web servers on loopback ports.
//
// Every process a helper starts is stopped by the same helper, by pid; a
// sanitizer report on any executable's stderr fails the test that ran it.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import assert from 'node:assert/strict';

export const BIN = process.env.RHTMX_BIN ?? path.resolve('build/cgi-bin');
export const SOURCE = process.env.RHTMX_SOURCE ?? path.resolve('.');
export const CORPORA = process.env.RHTMX_CORPORA ?? path.resolve(SOURCE, 'tests/corpora');
const TMP = process.env.RHTMX_TEST_TMP ?? '/tmp/rhtmx-test';

export const bin = (name) => (path.isAbsolute(name) ? name : path.join(BIN, name));

/** A fresh, empty folder for one test. */
export function tmpdir(tag = 't') {
  fs.mkdirSync(TMP, { recursive: true });
  return fs.mkdtempSync(path.join(TMP, `${tag}-`));
}

/** Run SQL with the sqlite3 shell (the way a PHP developer or an operator would). */
export function sql(db, statements, { json = false } = {}) {
  const args = json ? ['-json', db] : ['-batch', db];
  // .timeout: wait for the write lock like a real app does, instead of failing
  // with "database is locked" while a FastCGI process installs triggers.
  const out = execFileSync('sqlite3', [...args], { input: `.timeout 10000\n${statements}`, encoding: 'utf8' });
  return json ? (out.trim() ? JSON.parse(out) : []) : out;
}

/**
 * A database and a config file in a fresh folder.
 * schema: SQL run first; config: object merged over the defaults.
 */
export function makeApp({ schema = DEFAULT_SCHEMA, config = {}, tag = 'app' } = {}) {
  const dir = tmpdir(tag);
  const db = path.join(dir, 'app.db');
  sql(db, schema);
  const cfg = { database: 'app.db', entities: ['todos'], auth: { mode: 'none' }, ...config };
  const configPath = path.join(dir, 'rhtmx-sync.json');
  fs.writeFileSync(configPath, JSON.stringify(cfg, null, 2));
  return { dir, db, config: configPath, cfg };
}

export const DEFAULT_SCHEMA = `
CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
`;

/**
 * Wait (up to ms) until log() matches re, then assert it. A program's stderr reaches
 * the web server's error log through a pipe the server reads in its own time, so a
 * line can arrive after the answer it goes with.
 */
export async function logShows(log, re, ms = 5000) {
  const until = Date.now() + ms;
  while (!re.test(log()) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assert.match(log(), re);
}

/** Fail when an executable's stderr carries a sanitizer or valgrind report. */
export function assertSanitizerClean(stderr, what) {
  assert.ok(!/ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/.test(stderr),
    `${what}: sanitizer report:\n${stderr}`);
  // valgrind -q prints nothing but its findings, each line as ==pid== ...
  assert.ok(!/^==\d+== /m.test(stderr), `${what}: valgrind report:\n${stderr}`);
}

/**
 * The command line that runs program prog as CGI: its path, behind
 * RHTMX_CGI_WRAPPER when that is set (scripts/test.sh runs the cgi tests a
 * second time with RHTMX_CGI_WRAPPER='valgrind --error-exitcode=99 ...').
 */
export function cgiCommand(prog) {
  const wrapper = process.env.RHTMX_CGI_WRAPPER ? process.env.RHTMX_CGI_WRAPPER.split(' ').filter(Boolean) : [];
  return [...wrapper, bin(prog)];
}

/** True when the cgi programs run under valgrind (slow: tests may run a sample of a corpus). */
export const UNDER_VALGRIND = /valgrind/.test(process.env.RHTMX_CGI_WRAPPER ?? '');

/** Parse a CGI response ("Status: ...\r\nHeaders\r\n\r\nbody"). */
export function parseCgi(buf) {
  const text = buf.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end >= 0, `no header/body separator in CGI output: ${JSON.stringify(text.slice(0, 200))}`);
  const headers = {};
  let status = 200;
  for (const line of text.slice(0, end).split('\r\n')) {
    const i = line.indexOf(':');
    const name = line.slice(0, i).toLowerCase();
    const value = line.slice(i + 1).trim();
    if (name === 'status') status = parseInt(value, 10);
    else headers[name] = headers[name] ? `${headers[name]}, ${value}` : value;
  }
  const body = buf.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
  return { status, headers, body, text: () => body.toString('utf8'), json: () => JSON.parse(body.toString('utf8')) };
}

/** The shared libraries an ELF file names as needed (readelf -d), in order. */
export function neededLibs(file) {
  return [...execFileSync('readelf', ['-d', file], { encoding: 'utf8' })
    .matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

/**
 * Run an executable once as plain CGI.
 * opts: config (path), method, path (PATH_INFO), query, body (string|Buffer),
 * headers ({'Content-Type': ...} become HTTP_* / CONTENT_TYPE), env (extra),
 * wrapper (argv to run the program under instead of RHTMX_CGI_WRAPPER's).
 */
export function runCgi(prog, opts = {}) {
  const body = opts.body === undefined ? null : Buffer.from(opts.body);
  const env = {
    PATH: process.env.PATH,
    ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? '',
    UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? '',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_METHOD: opts.method ?? 'GET',
    PATH_INFO: opts.path ?? '',
    QUERY_STRING: opts.query ?? '',
    SCRIPT_NAME: `/api/sync`,
    REMOTE_ADDR: '127.0.0.1',
    ...(opts.config ? { RHTMX_SYNC_CONFIG: opts.config } : {}),
    ...(body ? { CONTENT_LENGTH: String(body.length) } : {}),
  };
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    const name = k.toUpperCase().replace(/-/g, '_');
    if (name === 'CONTENT_TYPE' || name === 'CONTENT_LENGTH') env[name] = v;
    else env[`HTTP_${name}`] = v;
  }
  Object.assign(env, opts.env ?? {});
  const argv = opts.wrapper ? [...opts.wrapper, bin(prog)] : cgiCommand(prog);
  const r = spawnSync(argv[0], argv.slice(1), { env, input: body ?? '', maxBuffer: 256 << 20, timeout: UNDER_VALGRIND ? 300_000 : 60_000 });
  const stderr = r.stderr.toString();
  assertSanitizerClean(stderr, prog);
  assert.equal(r.status, 0, `${prog} exited with ${r.status} (signal ${r.signal}); stderr:\n${stderr}`);
  return { ...parseCgi(r.stdout), stderr };
}

/** { uid, gid } of a system user (for servers that must not run as root), or null if none. */
export function systemUser(name = 'www-data') {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  if (!line) return null;
  const [, , uid, gid] = line.split(':');
  return { uid: parseInt(uid, 10), gid: parseInt(gid, 10) };
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Wait until something listens on port. */
export async function waitForPort(port, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Pids of the processes whose parent is pid. */
export function childrenOf(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = parseInt(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1], 10);
      if (ppid === pid) out.push(parseInt(d, 10));
    } catch { /* gone */ }
  }
  return out;
}

const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
/** A zombie has exited; once its parent is gone nobody may reap it here (this container's
 *  init leaves <defunct> children of pid 1), so stopPid does not count one as stuck. */
const zombie = (pid) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch { return false; }
};

/** Stop pid with signal (SIGTERM; SIGKILL after ms), and wait for it and the given pids to be gone. */
export async function stopPid(pid, { also = [], ms = 5000, signal = 'SIGTERM' } = {}) {
  const all = [pid, ...also];
  for (const p of all) { try { process.kill(p, signal); } catch { /* gone */ } }
  const deadline = Date.now() + ms;
  // Waits for zombies too: a parent that is still there (node, for what it spawned) reaps
  // its child within this loop, and callers check with kill(pid, 0) afterwards.
  while (all.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  const stuck = all.filter((p) => alive(p) && !zombie(p));
  for (const p of stuck) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  return stuck;
}

/**
 * Start a real lighttpd on a free loopback port serving the four executables
 * the way lighttpd/rhtmx-sync.conf does (FastCGI by default, or mod_cgi with
 * cgi: true). procs: FastCGI processes per program ({ 'sync-push': 3 }; 1 each
 * by default). user: { uid, gid } to run lighttpd and its children as (its own
 * folder is handed to that user; the app's files are the caller's business).
 * maxConnections: server.max-connections (server.max-fds is twice it: each
 * open stream holds a client and a FastCGI connection). workers > 1: that many
 * lighttpd worker processes (server.max-worker), each with those limits, all in
 * front of the same FastCGI children; lighttpd then runs in its own process
 * group, since its master signals its whole group when it stops. Returns { url, port, dir, stop(), errorLog() }. stop() kills it by
 * pid and fails if any FastCGI child outlives it.
 */
export async function startLighttpd(app, { cgi = false, extra = '', docroot = null, env = {}, procs = {}, user = null, maxConnections = 4096, workers = 1 } = {}) {
  const port = await freePort();
  const dir = tmpdir('lighttpd');
  const www = docroot ?? path.join(dir, 'www');
  fs.mkdirSync(www, { recursive: true });
  const confPath = path.join(dir, 'lighttpd.conf');
  const environment = { RHTMX_SYNC_CONFIG: app.config, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? '', ...env };
  const envConf = Object.entries(environment).map(([k, v]) => `"${k}" => "${v}"`).join(', ');
  const fcgi = (prog, procs = 1) => `( "${prog}" => ( "bin-path" => "${bin(prog)}", "socket" => "${dir}/${prog}.sock",
      "max-procs" => ${procs}, "check-local" => "disable", "bin-environment" => ( ${envConf} ) ) )`;
  const route = (prefix, prog) => cgi
    ? `alias.url += ( "${prefix}" => "${bin(prog)}" )\n  cgi.assign = ( "" => "" )`
    : `fastcgi.server = ( "${prefix}" => ${fcgi(prog, procs[prog] ?? 1)} )`;
  fs.writeFileSync(confPath, `
server.document-root = "${www}"
server.bind = "127.0.0.1"
server.port = ${port}
server.errorlog = "${dir}/error.log"
server.modules += ( "mod_alias", "mod_setenv", "mod_fastcgi", "mod_cgi" )
server.stream-response-body = 2
server.max-connections = ${maxConnections}
server.max-fds = ${maxConnections * 2}
${workers > 1 ? `server.max-worker = ${workers}` : ''}
mimetype.assign = ( ".html" => "text/html", ".js" => "text/javascript", ".css" => "text/css" )
${cgi ? `cgi.x-sendfile = "disable"\nsetenv.add-environment = ( ${envConf} )` : ''}
$HTTP["url"] =~ "^/api/sync/(client|sw)\\.js$" {
  ${route('/api/sync', 'client-js')}
}
else $HTTP["url"] =~ "^/api/sync/events" {
  ${route('/api/sync/events', 'sync-events')}
}
else $HTTP["url"] =~ "^/api/sync/" {
  $HTTP["request-method"] == "POST" {
    ${route('/api/sync', 'sync-push')}
  }
  else {
    ${route('/api/sync', 'sync-pull')}
  }
}
${extra}
`);
  if (user) execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, dir]);
  const proc = spawn('/usr/sbin/lighttpd', ['-D', '-f', confPath], { stdio: ['ignore', 'pipe', 'pipe'], detached: workers > 1, ...(user ?? {}) });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  try {
    await waitForPort(port);
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`${e.message}\n${output}\n${readIf(path.join(dir, 'error.log'))}`);
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    url, port, dir, pid: proc.pid,
    // FastCGI children inherit lighttpd's stderr (our pipe); CGI stderr goes to error.log.
    errorLog: () => readIf(path.join(dir, 'error.log')) + output,
    async stop() {
      const kids = childrenOf(proc.pid);
      const stuck = await stopPid(proc.pid, { also: kids });
      assert.deepEqual(stuck, [], `processes outlived lighttpd: ${stuck.join(', ')}`);
      await new Promise((r) => setTimeout(r, 50)); // let the pipes drain
      assertSanitizerClean(readIf(path.join(dir, 'error.log')) + output, 'lighttpd children');
    },
  };
}

function readIf(p) { try { return fs.readFileSync(p, 'utf8'); } catch { return ''; } }

/**
 * Open a Server-Sent Events response (GET url) and parse it as it arrives.
 * Resolves once the status and headers are in: { status, headers, items, take(), ended, close() }.
 * items: every block so far, in order, each { comments: [...], event, id, data, retry, t }
 *   (event is 'message' when a block has data but no event field; t = ms since open).
 * take(pred, ms): the first item after the previous take() for which pred(item) holds;
 *   rejects when the response ends or ms pass first.
 * ended: a promise resolving when the response is over (either side).
 * onItem(item): called as each block is parsed (benchmarks time receipts with it).
 */
export function openEvents(url, { headers = {}, agent = false, onItem = null } = {}) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const req = http.get(url, { headers, agent }, (res) => {
      const items = [];
      let pending = '';
      let done = false;
      let next = 0;
      const waiters = new Set();
      const wake = () => { for (const w of waiters) w(); };
      const block = (text) => {
        const item = { comments: [], t: Date.now() - start };
        const data = [];
        for (const line of text.split('\n')) {
          if (line.startsWith(':')) { item.comments.push(line.slice(1).trim()); continue; }
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (field === 'data') data.push(value);
          else if (field === 'event' || field === 'id' || field === 'retry') item[field] = value;
        }
        if (data.length) {
          item.data = data.join('\n');
          item.event ??= 'message';
        }
        items.push(item);
        if (onItem) onItem(item);
      };
      res.setEncoding('utf8');
      res.on('data', (d) => {
        pending += d.replace(/\r\n?/g, '\n');
        let i;
        while ((i = pending.indexOf('\n\n')) >= 0) {
          block(pending.slice(0, i));
          pending = pending.slice(i + 2);
        }
        wake();
      });
      const finish = () => { done = true; wake(); };
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
      const ended = new Promise((r) => { if (done) r(); else waiters.add(() => { if (done) r(); }); });
      resolve({
        status: res.statusCode, headers: res.headers, items, ended,
        isDone: () => done,
        take(pred, ms = 10_000) {
          return new Promise((ok, fail) => {
            const check = () => {
              for (; next < items.length; next++) {
                if (pred(items[next])) { cleanup(); ok(items[next++]); return; }
              }
              if (done) { cleanup(); fail(new Error(`response ended first; got ${JSON.stringify(items)}`)); }
            };
            const timer = setTimeout(() => { cleanup(); fail(new Error(`nothing matched within ${ms} ms; got ${JSON.stringify(items)}`)); }, ms);
            const cleanup = () => { clearTimeout(timer); waiters.delete(check); };
            waiters.add(check);
            check();
          });
        },
        close() { req.destroy(); res.destroy(); },
      });
    });
    req.on('error', reject);
  });
}
