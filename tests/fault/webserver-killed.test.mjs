// The web server killed with SIGKILL: it cannot stop its FastCGI processes, so
// they must notice on their own that it is gone and exit (lib/parent.c), not
// live on re-parented to init with the database open. Behind lighttpd (which
// starts the programs itself) and Apache + mod_fcgid (whose process manager
// starts them), with a push acknowledged and an event stream open at the kill:
// every FastCGI process is gone within seconds, the database is intact, the
// change log matches the table, and every acknowledged write is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { makeApp, startLighttpd, openEvents, childrenOf } from '../harness/rhtmx.mjs';
import { startApache, descendantsOf, processesIn, request } from '../harness/apache.mjs';
import { assertIntact } from '../harness/fault.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const alive = (pid) => {
  try { return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] !== 'Z'; } catch { return false; }
};
const exeOf = (pid) => { try { return fs.readlinkSync(`/proc/${pid}/exe`); } catch { return '?'; } };

/** Wait up to ms for every pid to be gone; returns those still alive. */
async function gone(pids, ms) {
  const until = Date.now() + ms;
  while (pids.some(alive) && Date.now() < until) await sleep(50);
  return pids.filter(alive);
}

const push = (url, tag) => ({
  url: `${url}/api/sync/todos`,
  body: JSON.stringify({ client_id: 'c-kill', changes: [{ mutation_id: tag, action: 'create', id: `tmp-${tag}`, data: { title: tag }, client_version: 0 }] }),
});

test('lighttpd killed with SIGKILL: every FastCGI process it started exits on its own', async () => {
  const app = makeApp({ tag: 'kill-lighttpd' });
  const srv = await startLighttpd(app, { procs: { 'sync-push': 2, 'sync-pull': 2 } });
  let stream, kids = [];
  try {
    const acknowledged = [];
    for (const tag of ['one', 'two', 'three']) {
      const p = push(srv.url, tag);
      const r = await fetch(p.url, { method: 'POST', body: p.body, headers: { 'Content-Type': 'application/json' } });
      assert.equal(r.status, 200, await r.text());
      acknowledged.push(tag);
    }
    assert.equal((await fetch(`${srv.url}/api/sync/todos?since=0`)).status, 200);
    assert.equal((await fetch(`${srv.url}/api/sync/client.js`)).status, 200);
    stream = await openEvents(`${srv.url}/api/sync/events?since=0`);
    assert.equal(stream.status, 200);
    await stream.take((i) => i.event === 'message' && Number(i.id) === 3);

    kids = childrenOf(srv.pid);
    const programs = kids.map(exeOf).map((e) => e.split('/').pop()).sort();
    assert.deepEqual(programs, ['client-js', 'sync-events', 'sync-pull', 'sync-pull', 'sync-push', 'sync-push']);
    process.kill(srv.pid, 'SIGKILL');
    const left = await gone(kids, 10_000);
    assert.deepEqual(left.map((p) => `${p} ${exeOf(p)}`), [], 'FastCGI processes outlived lighttpd');
    await stream.ended;
    assertIntact(app.db, acknowledged);
  } finally {
    stream?.close();
    for (const p of kids.filter(alive)) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    await srv.stop();
  }
});

test('Apache + mod_fcgid killed with SIGKILL: every program mod_fcgid started exits on its own', async () => {
  const app = makeApp({ tag: 'kill-apache', config: { events: { poll_wait: 3 } } });
  const srv = await startApache(app, { fcgid: 'recommended' });
  const server = [srv.pid, ...descendantsOf(srv.pid)];
  try {
    const acknowledged = [];
    for (const tag of ['one', 'two']) {
      const p = push(srv.url, tag);
      const r = await request(p.url, { method: 'POST', body: p.body, headers: { 'Content-Type': 'application/json' } });
      assert.equal(r.status, 200, r.text());
      acknowledged.push(tag);
    }
    assert.equal((await request(`${srv.url}/api/sync/todos?since=0`)).status, 200);
    assert.equal((await request(`${srv.url}/api/sync/client.js`)).status, 200);
    assert.equal((await request(`${srv.url}/api/sync/events?since=0&mode=poll`)).status, 200);
    const programs = processesIn(srv.folder);
    assert.deepEqual([...new Set(programs.map(exeOf).map((e) => e.split('/').pop()))].sort(),
      ['client-js', 'sync-events', 'sync-pull', 'sync-push']);

    const before = descendantsOf(srv.pid);
    process.kill(srv.pid, 'SIGKILL');
    const left = await gone(programs, 10_000);
    assert.deepEqual(left.map((p) => `${p} ${exeOf(p)}`), [], 'programs outlived Apache');
    assert.deepEqual(processesIn(srv.folder), []);
    // Apache's own children (workers, mod_fcgid's process manager) are its business;
    // they are cleaned up below either way.
    server.push(...before);
    assertIntact(app.db, acknowledged);
  } finally {
    for (const p of [...new Set([...server, ...descendantsOf(srv.pid)])]) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    for (const p of processesIn(srv.folder)) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  }
});
