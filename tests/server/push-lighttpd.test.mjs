// sync-push behind a real lighttpd: as one long-lived FastCGI process, and as plain
// CGI (a process per request) under concurrent load with the database's shell (sqlite3,
// psql) writing too. Each case on SQLite and on PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startLighttpd, childrenOf, CORPORA, logShows } from '../harness/rhtmx.mjs';
import { BACKENDS, TODOS, useBackends } from '../harness/backends.mjs';

const backends = useBackends();

const BUILD = process.env.RHTMX_BUILD ?? path.resolve('build');
const EXAMPLE_RESOLVER = path.join(BUILD, 'examples/resolver/librhtmx-resolver-example.so');
const CORPUS = path.join(CORPORA, 'jsontestsuite/test_parsing');

const post = async (srv, body, { entity = 'todos', type = 'application/json' } = {}) => {
  const r = await fetch(`${srv.url}/api/sync/${entity}`, {
    method: 'POST', body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    headers: type ? { 'Content-Type': type } : {},
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, json: () => JSON.parse(text) };
};
const change = (mutation_id, action, id, data, client_version = 0) => (
  { mutation_id, action, ...(id === undefined ? {} : { id }), ...(data ? { data } : {}), client_version });
const pushPids = (srv) => childrenOf(srv.pid).filter((p) => {
  try { return fs.readlinkSync(`/proc/${p}/exe`).endsWith('/sync-push'); } catch { return false; }
});

function rssKb(pid) {
  return parseInt(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1], 10);
}

for (const backend of BACKENDS) {
  const skip = backends.skip(backend);

  test(`push through lighttpd + FastCGI: contract, retries, bad bodies, one process throughout (${backend})`, { skip }, async () => {
    const app = await backends.app(backend, { ...TODOS, config: { push: { max_body_bytes: 262144 } } });
    app.exec("INSERT INTO todos (title) VALUES ('from the shell');");
    // ASan keeps freed memory in quarantine, which would read as growth.
    const asan = `${process.env.ASAN_OPTIONS ?? ''}:quarantine_size_mb=0:thread_local_quarantine_size_kb=0`;
    const srv = await startLighttpd(app, { env: { ASAN_OPTIONS: asan } });
    try {
      const batch = { client_id: 'c-1', changes: [
        change('m1', 'create', 'tmp-1', { title: 'milk' }),
        change('m2', 'update', 1, { done: 1 }, 1),
        change('m3', 'create', 'tmp-2', { title: 'bad', colour: 'red' }),
        change('m4', 'delete', 99),
      ] };
      const r = await post(srv, batch);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.deepEqual(r.json(), { version: 3, applied: [2, 1, 99], ids: { 'tmp-1': 2 }, conflicts: [],
        rejected: [{ mutation_id: 'm3', id: 'tmp-2', code: 'unknown_column', reason: "unknown column 'colour' in todos" }] });

      // The retry (the answer was lost on the way): same answer, nothing written twice.
      const before = app.dump();
      const again = await post(srv, batch);
      assert.equal(again.text, r.text);
      assert.equal(app.dump(), before);

      // A pull sees the push's changes with the client's id on them.
      const p = await (await fetch(`${srv.url}/api/sync/todos?since=1`)).json();
      assert.deepEqual(p.changes.map((c) => [c.id, c.action, c.client_id]), [[2, 'create', 'c-1'], [1, 'update', 'c-1']]);

      // Wrong type, too big, malformed: refused, nothing changed.
      assert.equal((await post(srv, batch, { type: 'text/plain' })).status, 415);
      assert.equal((await post(srv, batch, { type: null })).status, 415);
      const big = await post(srv, { ...batch, pad: 'x'.repeat(270000) });
      assert.equal(big.status, 413);
      assert.equal(big.json().error.code, 'too_large');
      assert.equal((await fetch(`${srv.url}/api/sync/todos`, { method: 'PUT', body: '{}' })).status, 405);

      // Every JSONTestSuite file through the same long-lived process.
      const files = fs.readdirSync(CORPUS).filter((f) => f.endsWith('.json'));
      assert.ok(files.length >= 300);
      for (const f of files) {
        const x = await post(srv, fs.readFileSync(path.join(CORPUS, f)));
        assert.equal(x.status, 400, `${f}: ${x.status} ${x.text}`);
      }
      assert.equal(app.dump(), before, 'a refused body changed the database');

      // Still healthy afterwards, and it was one process all along.
      const ok = await post(srv, { client_id: 'c-1', changes: [change('m5', 'create', 'tmp-5', { title: 'after' })] });
      assert.deepEqual(ok.json().ids, { 'tmp-5': 3 });
      const pids = pushPids(srv);
      assert.equal(pids.length, 1);

      // Its memory does not grow per request: batches with conflicts, rejections and replays.
      const round = async (i) => {
        const b = { client_id: `c-${i % 7}`, changes: [
          change(`r${i}`, 'create', `tmp-${i}`, { title: `row ${i}` }),
          change(`u${i}`, 'update', 1, { title: `t${i}` }, 0),
          change(`x${i}`, 'create', null, { nope: 1 }),
        ] };
        const x = await post(srv, b);
        assert.equal(x.status, 200, x.text);
        assert.equal((await post(srv, b)).text, x.text);
      };
      for (let i = 0; i < 100; i++) await round(i);
      const rss0 = rssKb(pids[0]);
      for (let i = 100; i < 400; i++) await round(i);
      const grown = rssKb(pids[0]) - rss0;
      assert.ok(grown < 2048, `RSS grew by ${grown} kB over 600 pushes`);
      assert.deepEqual(pushPids(srv), pids);
    } finally {
      await srv.stop();
    }
  });

  test(`custom resolver under FastCGI: loaded from the config, reloaded when the config changes (${backend})`, { skip }, async () => {
    const app = await backends.app(backend, { ...TODOS, config: { entities: [{ name: 'todos', strategy: 'custom' }], push: { resolver: EXAMPLE_RESOLVER } } });
    app.exec("INSERT INTO todos (title) VALUES ('water plants');");
    const srv = await startLighttpd(app);
    try {
      assert.equal((await post(srv, { client_id: 'warm', changes: [] })).status, 200); // v1: the row, logged at install
      app.exec('UPDATE todos SET done = 1;'); // v2: done on the server after the client's pull
      const r = await post(srv, { client_id: 'b', changes: [change('1', 'update', 1, { title: 'water all plants', done: 0 }, 1)] });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.json().conflicts, [{ mutation_id: '1', id: 1, strategy: 'custom', decision: 'merged',
        server: { id: 1, title: 'water all plants', done: 1 }, version: 2 }]);

      // The operator points the config at a file that is not there: 500, nothing written ...
      const cfg = JSON.parse(fs.readFileSync(app.config, 'utf8'));
      fs.writeFileSync(app.config, JSON.stringify({ ...cfg, push: { resolver: 'gone.so' } }));
      const before = app.dump();
      const bad = await post(srv, { client_id: 'b', changes: [change('2', 'update', 1, { title: 'x' }, 1)] });
      assert.equal(bad.status, 500);
      assert.equal(bad.json().error.code, 'config');
      assert.equal(app.dump(), before);
      // ... and back: the same process picks it up again.
      fs.writeFileSync(app.config, JSON.stringify(cfg));
      const good = await post(srv, { client_id: 'b', changes: [change('3', 'update', 1, { title: 'y', done: 0 }, 1)] });
      assert.equal(good.status, 200, good.text);
      assert.equal(good.json().conflicts[0].server.done, 1);
      assert.equal(pushPids(srv).length, 1);
      await logShows(srv.errorLog, /gone\.so/);
    } finally {
      await srv.stop();
    }
  });

  /** The database's shell (sqlite3, psql) writing the same table, ten rows a process, until
   *  stop.done. */
  async function shellWriter(app, stop) {
    let n = 0;
    for (let round = 0; !stop.done || round < 2; round++) {
      let script = '';
      for (let i = 0; i < 10; i++) script += `INSERT INTO todos (title) VALUES ('shell ${round}.${i}');\n`;
      await app.execAsync(script);
      n += 10;
    }
    return n;
  }

  test(`push through lighttpd + plain CGI: concurrent clients and a shell writer (${backend})`, { skip }, async () => {
    const app = await backends.app(backend, TODOS);
    const srv = await startLighttpd(app, { cgi: true });
    try {
      assert.equal((await post(srv, { client_id: 'warm', changes: [] })).status, 200);
      const stop = { done: false };
      const writer = shellWriter(app, stop);
      const clients = Array.from({ length: 5 }, (_, c) => (async () => {
        let version = 0, applied = 0;
        for (let b = 0; b < 6; b++) {
          const changes = [0, 1, 2].map((i) => change(`m${b}.${i}`, 'create', `tmp-${b}.${i}`, { title: `c${c} ${b}.${i}` }, version));
          const body = { client_id: `c${c}`, changes };
          const [r, retry] = await Promise.all([post(srv, body), post(srv, body)]);
          assert.equal(r.status, 200, r.text);
          assert.doesNotMatch(r.text, /locked/);
          assert.equal(retry.text, r.text);
          version = r.json().version;
          applied += r.json().applied.length;
        }
        return applied;
      })());
      const applied = await Promise.all(clients);
      stop.done = true;
      const shellRows = await writer;

      assert.deepEqual(applied, [18, 18, 18, 18, 18]);
      const counts = app.rows("SELECT coalesce(client_id, 'shell') AS who, count(*) AS n FROM _rhtmx_sync_log GROUP BY who ORDER BY who;");
      assert.deepEqual(counts, [0, 1, 2, 3, 4].map((c) => ({ who: `c${c}`, n: 18 })).concat([{ who: 'shell', n: shellRows }]));
      const versions = app.rows('SELECT version FROM _rhtmx_sync_log ORDER BY id;').map((r) => r.version);
      versions.forEach((v, i) => assert.equal(v, i + 1));
      assert.equal(app.exec("SELECT count(DISTINCT title) FROM todos WHERE title LIKE 'c%';").trim(), '90');
    } finally {
      await srv.stop();
    }
  });
}
