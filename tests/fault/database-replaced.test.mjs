// The database file replaced or moved under running FastCGI processes, as an
// operator restoring a backup does: `mv app.db* elsewhere/` and a copy of
// another file into place. Every program must notice: reads come from the file
// now at the configured path, and no write is ever acknowledged into a file
// that is no longer there. The old code kept the moved file open in sync-pull
// and sync-push: stale pulls, and pushes answered 200 that exist only in the
// moved file's -wal.
//
// Three moments: between requests (the next request opens the new file), with
// a push in the middle of its transaction (its commit is refused with 503 and
// the client's retry lands in the new file), and with no file at the path at
// all (refused until one is back). Each ends with the integrity check, the
// change log compared with the table, and every acknowledged write found in the
// file it was acknowledged for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import { makeApp, sql, bin, startLighttpd, openEvents, logShows } from '../harness/rhtmx.mjs';
import { assertIntact } from '../harness/fault.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Move db and its -wal and -shm into folder to (which is made). */
function moveAway(db, to) {
  fs.mkdirSync(to, { recursive: true });
  for (const suffix of ['', '-wal', '-shm']) {
    if (fs.existsSync(db + suffix)) fs.renameSync(db + suffix, path.join(to, path.basename(db) + suffix));
  }
  return path.join(to, path.basename(db));
}

function titles(db) {
  return sql(db, 'SELECT title FROM todos ORDER BY id;', { json: true }).map((r) => r.title);
}

function client(srv) {
  const push = async (body) => {
    try {
      const r = await fetch(`${srv.url}/api/sync/todos`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
      return { status: r.status, headers: r.headers, text: await r.text() };
    } catch (e) { return { status: 0, text: String(e) }; }
  };
  const pull = async () => {
    const r = await fetch(`${srv.url}/api/sync/todos?since=0`);
    return { status: r.status, text: await r.text() };
  };
  return { push, pull };
}

const batch = (tag, n = 1) => JSON.stringify({
  client_id: 'c-mv',
  changes: Array.from({ length: n }, (_, i) => ({
    mutation_id: `${tag}-${i}`, action: 'create', id: `tmp-${tag}-${i}`, data: { title: n === 1 ? tag : `${tag} ${i} ${'x'.repeat(300)}` }, client_version: 0,
  })),
});

test('database replaced between requests: pulls read the new file, pushes land in it, the stream resyncs', async () => {
  const app = makeApp({ tag: 'replace' });
  sql(app.db, "INSERT INTO todos (title) VALUES ('before');");
  execFileSync(bin('rhtmx-sync'), ['init', '--config', app.config], { stdio: 'ignore' });
  const backup = path.join(app.dir, 'backup.db');
  sql(app.db, `.backup '${backup}'`);
  const srv = await startLighttpd(app, { procs: { 'sync-push': 2, 'sync-pull': 2 } });
  const { push, pull } = client(srv);
  let stream;
  try {
    for (const t of ['a1', 'a2', 'a3', 'a4']) assert.equal((await push(batch(t))).status, 200);
    for (let i = 0; i < 4; i++) assert.equal((await pull()).status, 200); // every process has the file open
    stream = await openEvents(`${srv.url}/api/sync/events?since=0`);
    await stream.take((i) => Number(i.id) === 5);

    // The operator restores the backup: the old files go aside, the copy comes in.
    const moved = moveAway(app.db, path.join(app.dir, 'old'));
    fs.copyFileSync(backup, app.db);

    const acknowledged = [];
    for (const t of ['b1', 'b2', 'b3', 'b4']) {
      const r = await push(batch(t));
      assert.equal(r.status, 200, `${r.text}\n${srv.errorLog()}`);
      acknowledged.push(t);
    }
    for (let i = 0; i < 4; i++) {
      const p = await pull();
      assert.equal(p.status, 200, `${p.text}\n${srv.errorLog()}`);
      assert.deepEqual(JSON.parse(p.text).changes.map((c) => c.data.title), ['before', ...acknowledged], 'a stale pull');
    }
    await stream.take((i) => i.event === 'resync');
    await logShows(srv.errorLog, /sync-push: .*app\.db was moved or replaced/);
    await logShows(srv.errorLog, /sync-pull: .*app\.db was moved or replaced/);
    assertIntact(app.db, ['before', ...acknowledged]);
    assert.deepEqual(titles(app.db), ['before', ...acknowledged]);
    // What was acknowledged before the move is in the file that was moved, and only that.
    assertIntact(moved, ['before', 'a1', 'a2', 'a3', 'a4']);
    assert.deepEqual(titles(moved), ['before', 'a1', 'a2', 'a3', 'a4']);
  } finally {
    stream?.close();
    await srv.stop();
  }
});

test('database moved away in the middle of a push transaction: the commit is refused, the retry lands in the new file', async (t) => {
  const N = 5000;
  const app = makeApp({ tag: 'replace-mid', config: { push: { max_changes: N, max_body_bytes: 8 << 20 } } });
  sql(app.db, "INSERT INTO todos (title) VALUES ('before');");
  execFileSync(bin('rhtmx-sync'), ['init', '--config', app.config], { stdio: 'ignore' });
  const backup = path.join(app.dir, 'backup.db');
  sql(app.db, `.backup '${backup}'`);
  const srv = await startLighttpd(app);
  const { push } = client(srv);
  /** 1 if someone holds the write lock of db (a BEGIN IMMEDIATE without waiting is refused). */
  const lockHeld = (db) => new Promise((resolve) => {
    execFile('sqlite3', ['-bail', db, 'BEGIN IMMEDIATE; ROLLBACK;'], (err, _o, stderr) => resolve(!!err && /locked|busy/i.test(stderr)));
  });
  try {
    assert.equal((await push(batch('warm'))).status, 200);
    let refused = null, tag, moved;
    for (let a = 0; a < 4 && !refused; a++) {
      tag = `mid${a}`;
      if (a > 0) { // the previous attempt committed first: start again from the backup
        fs.rmSync(path.join(app.dir, 'old'), { recursive: true, force: true });
        moved = moveAway(app.db, path.join(app.dir, 'old'));
        fs.copyFileSync(backup, app.db);
        assert.equal((await push(batch(`warm${a}`))).status, 200);
      }
      const answer = push(batch(tag, N));
      let over = false;
      answer.then(() => { over = true; });
      while (!over && !(await lockHeld(app.db))) await sleep(2);
      if (over) continue;
      // The push is inside its transaction: the operator swaps the files now.
      fs.rmSync(path.join(app.dir, 'old'), { recursive: true, force: true });
      moved = moveAway(app.db, path.join(app.dir, 'old'));
      fs.copyFileSync(backup, app.db);
      const r = await answer;
      if (r.status === 200) {
        // It committed before the move: then it is in the moved file, whole.
        assert.equal(sql(moved, `SELECT count(*) FROM todos WHERE title LIKE '${tag} %';`).trim(), String(N));
        continue;
      }
      refused = r;
    }
    assert.ok(refused, 'no move landed inside a push transaction in 4 attempts');
    t.diagnostic(`the push was refused with ${refused.status}: ${refused.text}`);
    assert.equal(refused.status, 503, refused.text);
    assert.equal(JSON.parse(refused.text).error.code, 'busy');
    assert.ok(refused.headers.get('retry-after'));
    await logShows(srv.errorLog, /was moved or replaced while this process had it open: nothing was committed/);
    // Nothing of the batch in the moved file, nor in the new one yet.
    assert.equal(sql(moved, `SELECT count(*) FROM todos WHERE title LIKE '${tag} %';`).trim(), '0');
    assert.equal(sql(app.db, `SELECT count(*) FROM todos WHERE title LIKE '${tag} %';`).trim(), '0');
    // The client retries: all of it, once, in the file now at the path.
    const again = await push(batch(tag, N));
    assert.equal(again.status, 200, again.text);
    assert.equal(JSON.parse(again.text).applied.length, N);
    assert.equal(sql(app.db, `SELECT count(*) FROM todos WHERE title LIKE '${tag} %';`).trim(), String(N));
    assertIntact(app.db, ['before']);
    assertIntact(moved, ['before']);
  } finally {
    await srv.stop();
  }
});

test('database moved away with nothing in its place: pushes are refused until a file is back, then land in it', async () => {
  const app = makeApp({ tag: 'moved' });
  sql(app.db, "INSERT INTO todos (title) VALUES ('before');");
  const srv = await startLighttpd(app);
  const { push, pull } = client(srv);
  try {
    assert.equal((await push(batch('a1'))).status, 200);
    assert.equal((await pull()).status, 200);
    const moved = moveAway(app.db, path.join(app.dir, 'old'));
    const r = await push(batch('lost'));
    assert.ok(r.status >= 500, `a push with no database at the path answered ${r.status}: ${r.text}`);
    assert.ok((await pull()).status >= 500, 'a pull with no database at the path');
    assert.equal(sql(moved, "SELECT count(*) FROM todos WHERE title = 'lost';").trim(), '0', 'written into the moved file');
    // The operator puts it back: the retry lands, once.
    for (const suffix of ['', '-wal', '-shm']) {
      if (fs.existsSync(moved + suffix)) fs.renameSync(moved + suffix, app.db + suffix);
    }
    const ok = await push(batch('lost'));
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(JSON.parse((await pull()).text).changes.map((c) => c.data.title), ['before', 'a1', 'lost']);
    assertIntact(app.db, ['before', 'a1', 'lost']);
  } finally {
    await srv.stop();
  }
});
