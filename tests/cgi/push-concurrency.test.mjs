// Concurrent pushes: several sync-push processes at once (plain CGI, one process per
// request), each batch also retried, while the app's SQL shell (sqlite3, psql) writes the
// same table. On both backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cgiCommand, parseCgi, assertSanitizerClean, UNDER_VALGRIND } from '../harness/rhtmx.mjs';
import { BACKENDS, backendsForFile } from '../harness/backends.mjs';

const on = backendsForFile();

// Under valgrind (scripts/test.sh's second pass) a process costs over a second
// of CPU: fewer clients and batches, the same checks.
const CLIENTS = UNDER_VALGRIND ? 3 : 6;
const BATCHES = UNDER_VALGRIND ? 3 : 8;

/** Run a program with input, asynchronously: { code, stdout (Buffer), stderr }. */
function run(argv, { env, input }) {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0], argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [], err = [];
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => err.push(d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }));
    p.stdin.end(input);
  });
}

/** One push as plain CGI, in its own process. */
async function pushCgi(app, body) {
  const env = {
    PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? '', UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? '',
    GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'POST', PATH_INFO: '/todos', SCRIPT_NAME: '/api/sync',
    CONTENT_TYPE: 'application/json', CONTENT_LENGTH: String(Buffer.byteLength(body)), RHTMX_SYNC_CONFIG: app.config,
  };
  const r = await run(cgiCommand('sync-push'), { env, input: body });
  assertSanitizerClean(r.stderr, 'sync-push');
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /locked|busy/i, 'the push waited out a lock it should have waited for');
  const res = parseCgi(r.stdout);
  assert.doesNotMatch(res.text(), /locked/i, 'database is locked reached a client');
  assert.equal(res.status, 200, `${res.text()}\n${r.stderr}`);
  return res;
}

/** A client: BATCHES batches of creates, updates and deletes of its own rows, each sent twice. */
async function client(app, name) {
  let version = 0;
  const live = [], answers = [];
  for (let b = 0; b < BATCHES; b++) {
    const changes = [];
    for (let i = 0; i < 3; i++) {
      changes.push({ mutation_id: `m-${b}-${i}`, id: `tmp-${b}-${i}`, action: 'create',
        data: { title: `${name} ${b}.${i}` }, client_version: version });
    }
    if (live.length > 0) {
      changes.push({ mutation_id: `m-${b}-u`, id: live[b % live.length], action: 'update',
        data: { title: `${name} ${b} renamed` }, client_version: version });
      // An update of a row created earlier in this very batch, by its temporary id.
      changes.push({ mutation_id: `m-${b}-t`, id: `tmp-${b}-0`, action: 'update',
        data: { done: 1 }, client_version: version });
    }
    if (live.length > 3) {
      changes.push({ mutation_id: `m-${b}-d`, id: live.shift(), action: 'delete', client_version: version });
    }
    const body = JSON.stringify({ client_id: name, changes });
    // The first attempt and a retry race each other (a timeout on a slow network).
    const [first, retry] = await Promise.all([pushCgi(app, body), pushCgi(app, body)]);
    assert.equal(retry.text(), first.text(), 'a retried batch got another answer');
    const a = first.json();
    assert.deepEqual(a.rejected, []);
    assert.equal(Object.keys(a.ids).length, 3);
    live.push(...Object.values(a.ids));
    answers.push(a);
    version = a.version;
  }
  return answers;
}

/** The app's SQL shell, writing the same table in short transactions until told to stop. */
async function shell(app, stop) {
  let statements = 0;
  for (let round = 0; !stop.done || round < 3; round++) {
    let script = app.shell.prelude;
    for (let i = 0; i < 10; i++) {
      script += `INSERT INTO todos (title) VALUES ('shell ${round}.${i}');\n`;
      script += 'UPDATE todos SET done = 1 - done WHERE id = (SELECT max(id) FROM todos);\n';
    }
    const r = await run(app.shell.argv, { env: process.env, input: script });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    statements += 20;
  }
  return statements;
}

for (const backend of BACKENDS) test(`pushes from several processes and the app's SQL shell: each change logged once, versions strictly increase (${backend})`, { skip: on.skip(backend) }, async () => {
  const app = await on.app(backend);
  app.exec("INSERT INTO todos (title) VALUES ('seed');");
  await pushCgi(app, JSON.stringify({ client_id: 'warm-up', changes: [] })); // installs the triggers

  const stop = { done: false };
  const writer = shell(app, stop);
  const names = Array.from({ length: CLIENTS }, (_, i) => `client-${i}`);
  let results;
  try {
    results = await Promise.all(names.map((n) => client(app, n)));
  } finally {
    stop.done = true; // a failed push must end the shell's loop too, not leave it to the timeout
  }
  const shellStatements = await writer;

  // Every change a push applied is in the log exactly once, stamped with its client.
  const byClient = Object.fromEntries(app.rows('SELECT client_id, count(*) AS n FROM _rhtmx_sync_log GROUP BY client_id;')
    .map((r) => [r.client_id ?? 'shell', r.n]));
  names.forEach((n, i) => {
    const applied = results[i].reduce((s, a) => s + a.applied.length, 0);
    assert.equal(byClient[n], applied, `${n}: log rows vs applied changes`);
  });
  // The shell's writes too, and none of them got a client's id (1 for the seed row).
  assert.equal(byClient.shell, shellStatements + 1);

  // The shell really wrote in between the pushes, not before or after them all.
  const span = app.rows(`SELECT (SELECT min(version) FROM _rhtmx_sync_log WHERE client_id IS NULL AND version > 1) AS s0,
    (SELECT max(version) FROM _rhtmx_sync_log WHERE client_id IS NULL) AS s1,
    (SELECT min(version) FROM _rhtmx_sync_log WHERE client_id IS NOT NULL) AS c0,
    (SELECT max(version) FROM _rhtmx_sync_log WHERE client_id IS NOT NULL) AS c1;`)[0];
  assert.ok(span.s0 < span.c1 && span.c0 < span.s1, `no interleaving: ${JSON.stringify(span)}`);

  // Versions: strictly increasing in log order, no gaps, head at the last one.
  const versions = app.rows('SELECT version FROM _rhtmx_sync_log ORDER BY id;').map((r) => r.version);
  versions.forEach((v, i) => assert.equal(v, i + 1, `log row ${i + 1} has version ${v}`));
  assert.equal(app.exec("SELECT value FROM _rhtmx_sync_state WHERE key = 'head';").trim(), String(versions.length));

  // Each create made exactly one row; each mutation was stored once.
  const dup = app.rows("SELECT title, count(*) AS n FROM todos WHERE title LIKE 'client-%' GROUP BY title HAVING count(*) > 1");
  assert.deepEqual(dup, []);
  const creates = app.exec("SELECT count(*) FROM _rhtmx_sync_log WHERE action = 'create' AND client_id LIKE 'client-%';").trim();
  assert.equal(creates, String(CLIENTS * BATCHES * 3));
  const stored = results.reduce((s, r) => s + r.reduce((t, a) => t + a.applied.length + a.conflicts.filter((c) => c.decision === 'server').length, 0), 0);
  assert.equal(app.exec("SELECT count(*) FROM _rhtmx_sync_mutations WHERE client_id LIKE 'client-%';").trim(), String(stored));
  // SQLite's triggers read the client id from a table the push fills and empties; PostgreSQL's
  // from a transaction-local setting, gone with the transaction.
  if (backend === 'sqlite') assert.equal(app.exec('SELECT client_id IS NULL FROM _rhtmx_sync_context;').trim(), '1');
});
