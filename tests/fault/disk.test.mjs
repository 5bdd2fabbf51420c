// A database the programs cannot write: a read-only file (the server runs as an
// unprivileged user, as on a host) and a full disk (a small tmpfs this test
// mounts and unmounts). A push gets a clear 5xx in the error shape and writes
// nothing, not even part of its batch; the same FastCGI processes keep serving
// pulls and streams; and once the operator fixes the cause, the same sync-push
// process applies the client's retry exactly once, no restart needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { makeApp, sql, bin, tmpdir, startLighttpd, openEvents, childrenOf, systemUser, logShows } from '../harness/rhtmx.mjs';
import { assertIntact } from '../harness/fault.mjs';

const N = 1000;

/** A digest of the database's content (schema and rows, not the files' bytes). */
const digest = (db) => crypto.createHash('sha256')
  .update(execFileSync('sqlite3', ['-batch', db, '.dump'], { maxBuffer: 256 << 20 })).digest('hex');

const batch = (tag, n = N, pad = 'x'.repeat(200)) => JSON.stringify({
  client_id: 'c-disk',
  changes: Array.from({ length: n }, (_, i) => ({ mutation_id: `${tag}-${i}`, action: 'create', id: `tmp-${tag}-${i}`,
    data: { title: `${tag} ${i} ${pad}` }, client_version: 0 })),
});

/** The pid of the one FastCGI process of prog under srv. */
function pidOf(srv, prog) {
  const pids = childrenOf(srv.pid).filter((p) => {
    try { return fs.readlinkSync(`/proc/${p}/exe`).endsWith(`/${prog}`); } catch { return false; }
  });
  assert.equal(pids.length, 1, `one ${prog} process`);
  return pids[0];
}

function client(srv) {
  const push = async (body) => {
    const r = await fetch(`${srv.url}/api/sync/todos`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
    return { status: r.status, headers: r.headers, text: await r.text() };
  };
  /** Every change after since, all pages. */
  const pull = async (since = 0) => {
    const changes = [];
    for (;;) {
      const r = await fetch(`${srv.url}/api/sync/todos?since=${since}&limit=1000`);
      assert.equal(r.status, 200, `pull: ${r.status}`);
      const p = await r.json();
      changes.push(...p.changes);
      since = p.version;
      if (!p.has_more) return { changes, version: since };
    }
  };
  return { push, pull };
}

/** An event stream from the start of the log gets to version v. */
async function streamSees(srv, v) {
  const s = await openEvents(`${srv.url}/api/sync/events?since=0`);
  try {
    assert.equal(s.status, 200);
    await s.take((i) => i.event === 'message' && Number(i.id) === v);
  } finally {
    s.close();
  }
}

/** A refused push: 5xx in the error shape, not a busy answer the client would just repeat blindly. */
function assertServerError(r, what) {
  assert.equal(r.status, 500, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.deepEqual(JSON.parse(r.text), { error: { code: 'database', message: "server error (details in the server's error log)" } });
}

test('read-only database file: push answers 500 and writes nothing, reads go on, a chmod heals it', async (t) => {
  const user = systemUser();
  if (!user || process.getuid() !== 0) {
    t.skip('needs root and a www-data user (a read-only file is writable for root)');
    return;
  }
  const app = makeApp({ tag: 'readonly' });
  sql(app.db, "INSERT INTO todos (title) VALUES ('one'), ('two');");
  execFileSync(bin('rhtmx-sync'), ['init', '--config', app.config], { stdio: 'ignore' });
  execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, app.dir]);
  fs.chmodSync(app.db, 0o444);
  const before = digest(app.db);

  const srv = await startLighttpd(app, { user });
  const { push, pull } = client(srv);
  try {
    assert.deepEqual((await pull()).changes.map((c) => c.data.title), ['one', 'two']);
    await streamSees(srv, 2);

    const body = batch('ro');
    const r = await push(body);
    assertServerError(r, 'push to a read-only file');
    await logShows(srv.errorLog, /sync-push: warning: .*app\.db is not writable by this process/);
    await logShows(srv.errorLog, /POST \/api\/sync\/todos: .*attempt to write a readonly database/);
    const pushPid = pidOf(srv, 'sync-push'), pullPid = pidOf(srv, 'sync-pull');
    assertServerError(await push(body), 'the retry');
    assert.equal(digest(app.db), before, 'a refused push changed the database');

    // The same processes keep serving reads, streams too.
    assert.equal((await pull()).changes.length, 2);
    assert.equal(pidOf(srv, 'sync-pull'), pullPid);
    assert.equal(pidOf(srv, 'sync-push'), pushPid);
    await streamSees(srv, 2);

    // The operator fixes the permissions (SQLite gave the -shm file the database's
    // mode, so: chmod 644 app.db*): the same sync-push applies the retry, once.
    for (const f of fs.readdirSync(app.dir).filter((n) => n.startsWith('app.db'))) fs.chmodSync(path.join(app.dir, f), 0o644);
    const ok = await push(body);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(JSON.parse(ok.text).applied.length, N);
    assert.equal(pidOf(srv, 'sync-push'), pushPid);
    assert.equal((await push(body)).text, ok.text);
    assert.equal(sql(app.db, "SELECT count(*) FROM _rhtmx_sync_log WHERE data LIKE '%\"ro %';").trim(), String(N));
    assert.equal((await pull()).changes.length, 2 + N);
    assertIntact(app.db, ['one', 'two']); // and the batch's N, counted above
  } finally {
    await srv.stop();
  }
});

test('read-only folder: SQLite cannot even read a WAL database whose -wal and -shm it may not create; a clear 500 until chmod, then the same processes serve', async (t) => {
  const user = systemUser();
  if (!user || process.getuid() !== 0) {
    t.skip('needs root and a www-data user');
    return;
  }
  const app = makeApp({ tag: 'rofolder' });
  sql(app.db, "INSERT INTO todos (title) VALUES ('one'), ('two');");
  execFileSync(bin('rhtmx-sync'), ['init', '--config', app.config], { stdio: 'ignore' });
  // init leaves the -wal (emptied) and -shm in place; a database uploaded on its own has neither.
  assert.equal(fs.statSync(`${app.db}-wal`).size, 0);
  fs.rmSync(`${app.db}-wal`);
  fs.rmSync(`${app.db}-shm`);
  execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, app.dir]);
  fs.chmodSync(app.dir, 0o555);
  // Read without creating -wal and -shm (root could, and would spoil the setup).
  const frozen = () => digest(`file:${app.db}?immutable=1`);
  const before = frozen();

  const srv = await startLighttpd(app, { user });
  const { push, pull } = client(srv);
  try {
    const body = batch('rf', 10);
    for (const r of [await fetch(`${srv.url}/api/sync/todos?since=0`).then(async (x) => ({ status: x.status, headers: x.headers, text: await x.text() })),
      await push(body)]) {
      assert.equal(r.status, 500, r.text);
      assert.deepEqual(JSON.parse(r.text).error.code, 'config');
    }
    await logShows(srv.errorLog, /sync-pull: .*attempt to write a readonly database \(its folder is not writable by this process/);
    await logShows(srv.errorLog, /sync-push: .*its folder is not writable/);
    assert.equal(frozen(), before);
    assert.ok(!fs.existsSync(`${app.db}-wal`));

    // The operator makes the folder writable: the running processes pick it up.
    const pushPid = pidOf(srv, 'sync-push'), pullPid = pidOf(srv, 'sync-pull');
    fs.chmodSync(app.dir, 0o755);
    assert.equal((await pull()).changes.length, 2);
    const ok = await push(body);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(JSON.parse(ok.text).applied.length, 10);
    assert.deepEqual([pidOf(srv, 'sync-push'), pidOf(srv, 'sync-pull')], [pushPid, pullPid]);

    // With the -wal and -shm in place, a folder made read-only changes nothing.
    fs.chmodSync(app.dir, 0o555);
    const more = await push(batch('rf2', 10));
    assert.equal(more.status, 200, more.text);
    assert.equal((await pull()).changes.length, 22);
    assertIntact(app.db, ['one', 'two']); // and the 20 pushed, counted above
  } finally {
    fs.chmodSync(app.dir, 0o755);
    await srv.stop();
  }
});

test('disk full: push answers 500 and writes nothing, the database stays intact, reads go on; space back, the retry applies once', async (t) => {
  if (process.getuid() !== 0) {
    t.skip('mounting a small tmpfs needs root');
    return;
  }
  const mnt = tmpdir('diskfull');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m,mode=0755', 'tmpfs', mnt]);
  } catch (e) {
    t.skip(`cannot mount a tmpfs here: ${e.message}`);
    return;
  }
  let srv;
  try {
    const app = makeApp({ tag: 'diskfull' });
    // The app's files move onto the small file system.
    for (const f of ['app.db', 'rhtmx-sync.json']) fs.copyFileSync(path.join(app.dir, f), path.join(mnt, f));
    const small = { ...app, dir: mnt, db: path.join(mnt, 'app.db'), config: path.join(mnt, 'rhtmx-sync.json') };
    sql(small.db, "INSERT INTO todos (title) VALUES ('one'), ('two');");
    srv = await startLighttpd(small);
    const { push, pull } = client(srv);
    const first = await push(batch('warm', 10));
    assert.equal(first.status, 200, first.text);

    // Fill the file system to the last byte, then give back 128 KB: the batch
    // (about 600 KB of pages) runs out of space part way through its writes.
    const filler = path.join(mnt, 'filler');
    const fd = fs.openSync(filler, 'w');
    const chunk = Buffer.alloc(64 << 10, 0x55);
    let filled = 0;
    for (let size = chunk.length; size > 0; size >>= 1) {
      for (;;) {
        try { filled += fs.writeSync(fd, chunk, 0, size); } catch (e) { if (e.code === 'ENOSPC') break; throw e; }
      }
    }
    fs.ftruncateSync(fd, filled - (128 << 10));
    fs.closeSync(fd);
    const walBefore = fs.statSync(`${small.db}-wal`).size;
    const before = digest(small.db);
    const rows = (await pull()).changes.length;

    const body = batch('full');
    const r = await push(body);
    assertServerError(r, 'push to a full disk');
    await logShows(srv.errorLog, /POST \/api\/sync\/todos: .*database or disk is full/);
    t.diagnostic(`the -wal grew by ${fs.statSync(`${small.db}-wal`).size - walBefore} bytes before the disk was full`);
    const pushPid = pidOf(srv, 'sync-push'), pullPid = pidOf(srv, 'sync-pull');
    assertServerError(await push(body), 'the retry on a full disk');
    assert.equal(sql(small.db, 'PRAGMA integrity_check;').trim(), 'ok');
    assert.equal(digest(small.db), before, 'a failed push left part of its batch');
    assert.equal((await pull()).changes.length, rows);
    assert.equal(pidOf(srv, 'sync-pull'), pullPid);
    await streamSees(srv, rows); // one create each so far: the head is the row count

    // Space again: the same sync-push applies the retry, exactly once.
    fs.unlinkSync(filler);
    const ok = await push(body);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(JSON.parse(ok.text).applied.length, N);
    assert.equal(pidOf(srv, 'sync-push'), pushPid);
    assert.equal((await push(body)).text, ok.text);
    assert.equal(sql(small.db, "SELECT count(*) FROM _rhtmx_sync_log WHERE data LIKE '%\"full %';").trim(), String(N));
    assert.equal((await pull()).changes.length, rows + N);
    assertIntact(small.db, ['one', 'two']); // and the batches, counted above
    await srv.stop();
    srv = null;
  } finally {
    if (srv) await srv.stop();
    try {
      execFileSync('umount', [mnt]);
    } catch {
      execFileSync('umount', ['-l', mnt]);
    }
    fs.rmdirSync(mnt);
  }
});
