// sync-push run as plain CGI: one request per process, the way mod_cgi runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeApp, runCgi, sql } from '../harness/rhtmx.mjs';

const BUILD = process.env.RHTMX_BUILD ?? path.resolve('build');
const EXAMPLE_RESOLVER = path.join(BUILD, 'examples/resolver/librhtmx-resolver-example.so');

const push = (app, body, { entity = 'todos', headers = {}, ...opts } = {}) => runCgi('sync-push', {
  config: app.config, method: 'POST', path: `/${entity}`,
  body: typeof body === 'string' ? body : JSON.stringify(body),
  headers: { 'Content-Type': 'application/json', ...headers },
  ...opts,
});
const pull = (app, since) => runCgi('sync-pull', { config: app.config, path: '/todos', query: `since=${since}` }).json();
const dump = (app) => sql(app.db, '.dump');
const log = (app) => sql(app.db, 'SELECT entity_id AS id, action, version, client_id FROM _rhtmx_sync_log ORDER BY version;', { json: true });

const change = (mutation_id, action, id, data, client_version = 0) => (
  { mutation_id, action, ...(id === undefined ? {} : { id }), ...(data ? { data } : {}), client_version });

test('create, update and delete: the documented answer, logged by the triggers with the client id', () => {
  const app = makeApp();
  sql(app.db, "INSERT INTO todos (title) VALUES ('from the shell');");
  const r = push(app, { client_id: 'c-7f3a', changes: [
    change('m-0001', 'create', 'tmp-1a2b', { title: 'milk' }),
    change('m-0002', 'update', 1, { done: 1 }, 1),
    change('m-0003', 'delete', 8, null, 1),
  ] });
  assert.equal(r.status, 200, r.text());
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.headers['cache-control'], 'no-store');
  // Exactly the documented shape, integer keys as integers.
  assert.equal(r.text(), '{"version":3,"applied":[2,1,8],"ids":{"tmp-1a2b":2},"conflicts":[],"rejected":[]}\n');
  assert.deepEqual(sql(app.db, 'SELECT id, title, done FROM todos ORDER BY id;', { json: true }),
    [{ id: 1, title: 'from the shell', done: 1 }, { id: 2, title: 'milk', done: 0 }]);
  assert.deepEqual(log(app), [
    { id: 1, action: 'create', version: 1, client_id: null },
    { id: 2, action: 'create', version: 2, client_id: 'c-7f3a' },
    { id: 1, action: 'update', version: 3, client_id: 'c-7f3a' },
  ]);
  // A client recognises its own echoes in a pull.
  const p = pull(app, 1);
  assert.deepEqual(p.changes.map((c) => [c.id, c.client_id]), [[2, 'c-7f3a'], [1, 'c-7f3a']]);
  // The shell's next write is not attributed to the client.
  sql(app.db, "UPDATE todos SET title = 'again' WHERE id = 2;");
  assert.equal(log(app).at(-1).client_id, null);
});

test('a retried batch is applied once and answered the same', () => {
  const app = makeApp();
  const batch = { client_id: 'c-retry', changes: [
    change('m1', 'create', 'tmp-1', { title: 'once' }),
    change('m2', 'update', 'tmp-1', { done: 1 }),
    change('m3', 'create', null, { title: null }),
  ] };
  const first = push(app, batch);
  assert.equal(first.status, 200);
  const before = dump(app);
  for (let i = 0; i < 3; i++) {
    const again = push(app, batch);
    assert.equal(again.status, 200);
    assert.equal(again.text(), first.text());
    assert.equal(dump(app), before, 'a replay wrote something');
  }
  assert.equal(sql(app.db, "SELECT count(*) FROM todos WHERE title = 'once';").trim(), '1');
  assert.equal(sql(app.db, "SELECT count(*) FROM _rhtmx_sync_log WHERE client_id = 'c-retry';").trim(), '2');
  // The same mutation ids from another client are that client's own.
  const other = push(app, { ...batch, client_id: 'c-other' });
  assert.deepEqual(other.json().ids, { 'tmp-1': 2 });
});

test('one bad change among good ones: rejected with a reason, the rest applies', () => {
  const app = makeApp({ schema: `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL,
      done INTEGER NOT NULL DEFAULT 0, slug TEXT UNIQUE);` });
  const r = push(app, { client_id: 'c1', changes: [
    change('g1', 'create', 'tmp-a', { title: 'good', slug: 'a' }),
    change('b1', 'create', 'tmp-b', { title: 'bad', colour: 'red' }),
    change('b2', 'create', 'tmp-c', { done: 1 }),
    change('b3', 'create', 'tmp-d', { title: 'dup', slug: 'a' }),
    change('b4', 'update', 42, { done: 1 }),
    change('g2', 'update', 'tmp-a', { done: 1 }),
    change('g3', 'delete', 43),
  ] });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json(), {
    version: 2, applied: [1, 1, 43], ids: { 'tmp-a': 1 }, conflicts: [],
    rejected: [
      { mutation_id: 'b1', id: 'tmp-b', code: 'unknown_column', reason: "unknown column 'colour' in todos" },
      { mutation_id: 'b2', id: 'tmp-c', code: 'constraint', reason: 'NOT NULL constraint failed: todos.title' },
      { mutation_id: 'b3', id: 'tmp-d', code: 'constraint', reason: 'UNIQUE constraint failed: todos.slug' },
      { mutation_id: 'b4', id: 42, code: 'not_found', reason: 'no todos with this id (it may have been deleted)' },
    ],
  });
  assert.equal(sql(app.db, 'SELECT group_concat(title) FROM todos;').trim(), 'good');
  assert.equal(log(app).length, 2);
});

test('a conflict is reported with the server row and the decision (last-write-wins by the server clock)', () => {
  const app = makeApp();
  push(app, { client_id: 'a', changes: [change('1', 'create', 'tmp-1', { title: 'first' })] });
  const seen = pull(app, 0).version; // the client's cursor
  sql(app.db, "UPDATE todos SET title = 'shell' WHERE id = 1;");
  const r = push(app, { client_id: 'b', changes: [change('1', 'update', 1, { title: 'browser' }, seen)] });
  // The push reached the server after the shell's write: it is the later write.
  assert.deepEqual(r.json().conflicts, [{ mutation_id: '1', id: 1, strategy: 'last-write-wins',
    decision: 'client', server: { id: 1, title: 'browser', done: 0 }, version: 2 }]);
  assert.deepEqual(r.json().applied, [1]);
});

test('merge: both sides\' edits to different fields survive', () => {
  const app = makeApp({ config: { entities: [{ name: 'todos', strategy: 'merge' }] } });
  sql(app.db, "INSERT INTO todos (title) VALUES ('buy milk');");
  const seen = pull(app, 0).version;
  sql(app.db, 'UPDATE todos SET done = 1 WHERE id = 1;');
  const r = push(app, { client_id: 'b', changes: [
    change('1', 'update', 1, { id: 1, title: 'buy oat milk', done: 0 }, seen)] });
  assert.deepEqual(r.json().conflicts, [{ mutation_id: '1', id: 1, strategy: 'merge',
    decision: 'merged', server: { id: 1, title: 'buy oat milk', done: 1 }, version: 2 }]);
  assert.deepEqual(sql(app.db, 'SELECT title, done FROM todos;', { json: true }), [{ title: 'buy oat milk', done: 1 }]);
});

test('custom: the example resolver, loaded from the shared object the config names', () => {
  assert.ok(fs.existsSync(EXAMPLE_RESOLVER), `${EXAMPLE_RESOLVER} was not built`);
  const app = makeApp({ config: {
    entities: [{ name: 'todos', strategy: 'custom' }],
    push: { resolver: EXAMPLE_RESOLVER } } });
  sql(app.db, "INSERT INTO todos (title) VALUES ('water plants');");
  const seen = pull(app, 0).version;
  sql(app.db, 'UPDATE todos SET done = 1 WHERE id = 1;'); // done on the server
  // Offline, the client renamed it and un-did it: the resolver keeps it done.
  const r = push(app, { client_id: 'b', changes: [change('1', 'update', 1, { title: 'water all plants', done: 0 }, seen)] });
  assert.equal(r.status, 200, r.text());
  assert.deepEqual(r.json().conflicts, [{ mutation_id: '1', id: 1, strategy: 'custom', decision: 'merged',
    server: { id: 1, title: 'water all plants', done: 1 }, version: 2 }]);
  // A delete of a todo the server has done is refused by the resolver.
  const d = push(app, { client_id: 'b', changes: [change('2', 'delete', 1, null, seen)] });
  assert.equal(d.json().conflicts[0].decision, 'server');
  assert.equal(sql(app.db, 'SELECT count(*) FROM todos;').trim(), '1');
});

test('custom: a program built on the library registers its resolver (no shared object)', () => {
  const exe = path.join(BUILD, 'examples/resolver/push-with-resolver');
  assert.ok(fs.existsSync(exe), `${exe} was not built`);
  const app = makeApp({ config: { entities: [{ name: 'todos', strategy: 'custom' }] } });
  sql(app.db, "INSERT INTO todos (title) VALUES ('water plants');");
  const linked = (body) => runCgi(path.relative(process.env.RHTMX_BIN ?? path.resolve('build/cgi-bin'), exe), {
    config: app.config, method: 'POST', path: '/todos', body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json' } });
  const seen = pull(app, 0).version;
  sql(app.db, 'UPDATE todos SET done = 1 WHERE id = 1;');
  const change1 = change('1', 'update', 1, { title: 'water all plants', done: 0 }, seen);
  // The shipped sync-push has no resolver for this config ...
  assert.equal(push(app, { client_id: 'b', changes: [change1] }).status, 500);
  // ... the program with one linked in resolves the conflict.
  const r = linked({ client_id: 'b', changes: [change1] });
  assert.equal(r.status, 200, r.text());
  assert.deepEqual(r.json().conflicts, [{ mutation_id: '1', id: 1, strategy: 'custom', decision: 'merged',
    server: { id: 1, title: 'water all plants', done: 1 }, version: 2 }]);
});

test('custom: a resolver that cannot be loaded is a 500 that changes nothing', () => {
  const app = makeApp({ config: { entities: [{ name: 'todos', strategy: 'custom' }],
    push: { resolver: 'missing-resolver.so' } } });
  sql(app.db, "INSERT INTO todos (title) VALUES ('x');");
  push(app, { client_id: 'warm', changes: [] }); // installs the triggers
  const before = dump(app);
  const r = push(app, { client_id: 'b', changes: [change('1', 'update', 1, { title: 'y' }, 0)] });
  assert.equal(r.status, 500);
  assert.equal(r.json().error.code, 'config');
  assert.match(r.stderr, /missing-resolver\.so/);
  assert.equal(dump(app), before);
  // Named nowhere: the same, with a message that says what to do.
  const none = makeApp({ config: { entities: [{ name: 'todos', strategy: 'custom' }] } });
  const n = push(none, { client_id: 'b', changes: [change('1', 'create', null, { title: 'y' })] });
  assert.equal(n.status, 500);
  assert.match(n.stderr, /no resolver is registered or named by push\.resolver/);
});

test('errors have the contract shape and status, and change nothing', () => {
  const app = makeApp({ config: { push: { max_body_bytes: 1024, max_changes: 2 } } });
  push(app, { client_id: 'warm', changes: [] });
  const before = dump(app);
  const ok = { client_id: 'c', changes: [change('1', 'create', null, { title: 't' })] };
  const cases = [
    [{ method: 'GET' }, ok, 405, 'method_not_allowed', /GET is not allowed/],
    [{ method: 'PUT' }, ok, 405, 'method_not_allowed', /PUT/],
    [{ headers: { 'Content-Type': 'text/plain' } }, ok, 415, 'unsupported_media_type', /application\/json/],
    [{ headers: { 'Content-Type': 'application/jsonx' } }, ok, 415, 'unsupported_media_type', /application\/json/],
    [{ headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }, 'client_id=c', 415, 'unsupported_media_type', /Content-Type/],
    [{ headers: { 'Content-Type': '' } }, ok, 415, 'unsupported_media_type', /Content-Type/],
    [{ entity: 'nope' }, ok, 404, 'not_found', /unknown entity 'nope'/],
    [{}, JSON.stringify({ ...ok, pad: 'x'.repeat(2000) }), 413, 'too_large', /over the limit of 1024/],
    [{}, { client_id: 'c', changes: [1, 2, 3] }, 413, 'too_large', /3 changes in one push is over the limit of 2/],
    [{}, '{"client_id":"c","changes":[', 400, 'bad_request', /invalid JSON/],
    [{}, '{"client_id":"c","changes":[]}{}', 400, 'bad_request', /invalid JSON/],
    [{}, { client_id: 'c', changes: [{ ...ok.changes[0], client_version: '0' }] }, 400, 'bad_request', /client_version/],
    [{}, { client_id: 'c', changes: [ok.changes[0], { ...ok.changes[0], data: 'x' }] }, 400, 'bad_request', /changes\[0\]|changes\[1\]/],
  ];
  for (const [opts, body, status, code, msg] of cases) {
    const r = push(app, body, opts);
    assert.equal(r.status, status, `${JSON.stringify(opts)}: ${r.text()}`);
    const b = r.json();
    assert.deepEqual(Object.keys(b), ['error']);
    assert.equal(b.error.code, code);
    assert.match(b.error.message, msg);
    assert.equal(dump(app), before, `${JSON.stringify(opts)} changed the database`);
  }
  assert.equal(push(app, ok, { method: 'GET' }).headers.allow, 'GET, HEAD, POST, OPTIONS');
  // Content-Type with parameters and in another case is still JSON.
  assert.equal(push(app, ok, { headers: { 'Content-Type': 'Application/JSON; charset=utf-8' } }).status, 200);
});

test('auth: a token is required, its entities and the origin are checked, per-user rows stay per user', async () => {
  const { makeTokenApp } = await import('../harness/token.mjs');
  const app = makeTokenApp({
    schema: `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER, body TEXT);
             INSERT INTO notes (user_id, body) VALUES (7, 'user 7''s note');`,
    config: { entities: ['todos', { name: 'notes', owner_column: 'user_id' }] },
  });
  const auth = (sub, extra) => ({ Authorization: `Bearer ${app.token(sub, extra)}` });
  const body = { client_id: 'c', changes: [change('1', 'create', 'tmp-1', { title: 't' })] };
  push(app, { client_id: 'warm', changes: [] }, { headers: auth('42') });
  const before = dump(app);

  const none = push(app, body);
  assert.equal(none.status, 401);
  assert.match(none.headers['www-authenticate'], /^Bearer/);
  const forged = push(app, body, { headers: { Authorization: `Bearer ${app.token('42').slice(0, -2)}xx` } });
  assert.equal(forged.status, 401);
  const scoped = push(app, body, { headers: auth('42', { entities: ['notes'] }) });
  assert.equal(scoped.status, 403);
  const crossSite = push(app, body, { headers: { ...auth('42'), Origin: 'http://evil.example', Host: '127.0.0.1:8080' } });
  assert.equal(crossSite.status, 403);
  assert.equal(dump(app), before, 'a refused push changed the database');

  const sameSite = push(app, body, { headers: { ...auth('42'), Origin: 'http://127.0.0.1:8080', Host: '127.0.0.1:8080' } });
  assert.equal(sameSite.status, 200, sameSite.text());

  const notes = push(app, { client_id: 'c', changes: [
    change('n1', 'create', 'tmp-n', { body: 'mine' }),
    change('n2', 'update', 1, { body: 'taken over' }, 99),
    change('n3', 'create', 'tmp-m', { body: 'for 7', user_id: 7 }),
  ] }, { entity: 'notes', headers: auth('42') });
  assert.equal(notes.status, 200, notes.text());
  assert.deepEqual(notes.json().applied, [2, 3]);
  assert.deepEqual(notes.json().rejected.map((r) => [r.mutation_id, r.code]), [['n2', 'forbidden']]);
  // A create is the caller's whatever it names as the owner.
  assert.deepEqual(sql(app.db, 'SELECT id, user_id, body FROM notes ORDER BY id;', { json: true }),
    [{ id: 1, user_id: 7, body: "user 7's note" }, { id: 2, user_id: 42, body: 'mine' }, { id: 3, user_id: 42, body: 'for 7' }]);
});
