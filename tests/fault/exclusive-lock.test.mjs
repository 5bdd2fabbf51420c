// Another connection holds the database with PRAGMA locking_mode=EXCLUSIVE (an
// operator's sqlite3 shell, a PHP script that set it): nobody else can read or
// write until it lets go. Every request (pull, push, an event poll) waits for
// the database within one bound
// (DB_BUSY_TIMEOUT_MS, 10 s, for the whole request: opening, checks and its own
// statements together), then answers 503 "busy" with Retry-After. The old code
// gave each statement the full busy timeout, and the WAL switch's retry loop
// counted only its own naps: a pull waited over a minute, a push 44 s.
//
// The client's message says busy and nothing of SQLite's text or the path.
//
// Then the lock goes: the client's retries apply, the database is intact, the
// change log matches the table, and every acknowledged write is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { assertIntact } from '../harness/fault.mjs';
import { makeApp, sql, bin, cgiCommand, parseCgi, assertSanitizerClean, startLighttpd, UNDER_VALGRIND } from '../harness/rhtmx.mjs';

const BOUND_MS = 10_000; // DB_BUSY_TIMEOUT_MS
// What may come on top of the bound: starting the process (under valgrind too)
// and answering. The old code took 44 s and more.
const SLACK_MS = UNDER_VALGRIND ? 15_000 : 8_000;

/** 1 if another connection keeps db from being read (a read without waiting is refused). */
function locked(db) {
  try {
    execFileSync('sqlite3', ['-bail', db, 'SELECT count(*) FROM todos;'], { stdio: ['ignore', 'pipe', 'pipe'] });
    return false;
  } catch (e) {
    if (/locked|busy/i.test(String(e.stderr))) return true;
    throw e;
  }
}

/** A sqlite3 shell holding db in exclusive locking mode until release() is called. */
async function holdExclusive(db) {
  const p = spawn('sqlite3', ['-batch', db], { stdio: ['pipe', 'ignore', 'inherit'] });
  const exited = new Promise((r) => p.on('close', r));
  const release = async () => { p.stdin.end(); await exited; };
  // .timeout: the probe below (another connection, opened every 20 ms) may hold
  // a shared lock at the moment the shell asks for its exclusive one; without a
  // busy timeout the shell's one read fails then and never takes the lock.
  p.stdin.write('.timeout 10000\nPRAGMA locking_mode = EXCLUSIVE;\nSELECT count(*) FROM todos;\n');
  const until = Date.now() + 10_000;
  while (!locked(db)) {
    if (Date.now() > until) {
      p.kill('SIGKILL');
      await exited;
      assert.fail('the shell did not take the lock');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { release };
}

/** One request to prog as plain CGI, timed. */
function cgi(app, prog, { method = 'GET', query = '', body = null, pathInfo = '/todos' } = {}) {
  const [cmd, ...args] = cgiCommand(prog);
  const env = {
    PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? '', UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? '',
    GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', REQUEST_METHOD: method, PATH_INFO: pathInfo,
    QUERY_STRING: query, SCRIPT_NAME: '/api/sync', RHTMX_SYNC_CONFIG: app.config,
    ...(body ? { CONTENT_TYPE: 'application/json', CONTENT_LENGTH: String(Buffer.byteLength(body)) } : {}),
  };
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    // A program that waits far beyond the bound is stopped: the assertions then say how long.
    const p = spawn(cmd, args, { env, timeout: BOUND_MS + SLACK_MS + 5000, killSignal: 'SIGKILL' });
    const out = [];
    let err = '';
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('close', (code, signal) => {
      if (signal === 'SIGKILL') {
        resolve({ status: 0, headers: {}, text: `killed after ${Date.now() - t0} ms`, ms: Date.now() - t0 });
        return;
      }
      try {
        assertSanitizerClean(err, prog);
        assert.equal(code, 0, err);
        const r = parseCgi(Buffer.concat(out));
        resolve({ status: r.status, headers: r.headers, text: r.text(), ms: Date.now() - t0 });
      } catch (e) { reject(e); }
    });
    p.stdin.end(body ?? '');
  });
}

const change = (tag) => JSON.stringify({
  client_id: 'c-lock', changes: [{ mutation_id: tag, action: 'create', id: `tmp-${tag}`, data: { title: tag }, client_version: 0 }],
});

/** 503 busy in the error shape, with Retry-After, within the bound. */
function assertBusy(r, what) {
  assert.equal(r.status, 503, `${what}: ${r.status} ${r.text}`);
  const retry = typeof r.headers.get === 'function' ? r.headers.get('retry-after') : r.headers['retry-after'];
  assert.match(String(retry), /^[1-9][0-9]*$/, `${what}: Retry-After`);
  const { error } = JSON.parse(r.text);
  assert.equal(error.code, 'busy');
  // SQLite's words and the database's path are for the log, never the client.
  assert.doesNotMatch(error.message, /locked|sqlite|\.db\b|database busy/i, `${what}: message ${error.message}`);
  assert.ok(r.ms >= BOUND_MS - 500, `${what}: gave up after ${r.ms} ms, before the bound`);
  assert.ok(r.ms < BOUND_MS + SLACK_MS, `${what}: waited ${r.ms} ms`);
}

test('an exclusive lock, plain CGI: pull, push and events answer 503 with Retry-After within the one bound; released, the retry applies', async () => {
  const app = makeApp({ tag: 'lock-cgi' });
  sql(app.db, "INSERT INTO todos (title) VALUES ('before');");
  execFileSync(bin('rhtmx-sync'), ['init', '--config', app.config], { stdio: 'ignore' });
  const lock = await holdExclusive(app.db);
  let held = true;
  try {
    const [pull, push, events] = await Promise.all([
      cgi(app, 'sync-pull', { query: 'since=0' }),
      cgi(app, 'sync-push', { method: 'POST', body: change('cgi-1') }),
      cgi(app, 'sync-events', { query: 'since=0&mode=poll', pathInfo: '' }),
    ]);
    assertBusy(pull, 'pull');
    assertBusy(push, 'push');
    assertBusy(events, 'events');
    await lock.release();
    held = false;
    const again = await cgi(app, 'sync-push', { method: 'POST', body: change('cgi-1') });
    assert.equal(again.status, 200, again.text);
    assert.equal(JSON.parse(again.text).applied.length, 1);
    const p = await cgi(app, 'sync-pull', { query: 'since=0' });
    assert.deepEqual(JSON.parse(p.text).changes.map((c) => c.data.title), ['before', 'cgi-1']);
    assertIntact(app.db, ['before', 'cgi-1']);
  } finally {
    if (held) await lock.release();
  }
});

// An exclusive-mode connection cannot take the database while another has it
// open (in WAL mode every open connection holds a shared lock on the file), so
// the lock comes first and the FastCGI processes meet it while opening it.
test('an exclusive lock, FastCGI behind lighttpd: pull, push and events answer 503 with Retry-After within the bound, opening included; released, they serve', async () => {
  const app = makeApp({ tag: 'lock-fcgi' });
  sql(app.db, "INSERT INTO todos (title) VALUES ('before');");
  execFileSync(bin('rhtmx-sync'), ['init', '--config', app.config], { stdio: 'ignore' });
  let lock = await holdExclusive(app.db);
  const srv = await startLighttpd(app);
  const req = async (method, body, where = method === 'GET' ? '/todos?since=0' : '/todos') => {
    const t0 = Date.now();
    try {
      const r = await fetch(`${srv.url}/api/sync${where}`, {
        method, body, headers: body ? { 'Content-Type': 'application/json' } : {},
        signal: AbortSignal.timeout(BOUND_MS + SLACK_MS + 5000),
      });
      return { status: r.status, headers: r.headers, text: await r.text(), ms: Date.now() - t0 };
    } catch (e) {
      return { status: 0, headers: new Headers(), text: String(e), ms: Date.now() - t0 };
    }
  };
  try {
    const [pull, push, events] = await Promise.all([req('GET'), req('POST', change('fcgi-1')), req('GET', null, '/events?since=0&mode=poll')]);
    assertBusy(pull, 'pull');
    assertBusy(push, 'push');
    assertBusy(events, 'events');
    await lock.release();
    lock = null;
    const again = await req('POST', change('fcgi-1'));
    assert.equal(again.status, 200, again.text);
    const p = await req('GET');
    assert.equal(p.status, 200, p.text);
    assert.deepEqual(JSON.parse(p.text).changes.map((c) => c.data.title), ['before', 'fcgi-1']);
    assertIntact(app.db, ['before', 'fcgi-1']);
  } finally {
    if (lock) await lock.release();
    await srv.stop();
  }
});
