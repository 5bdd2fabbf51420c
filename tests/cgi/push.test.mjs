// sync-push run as plain CGI: one request per process, the way mod_cgi runs it. Every case
// runs on both backends (SQLite and PostgreSQL), the app writing with its own SQL in
// between (the sqlite3 shell, psql): creates with temporary ids, idempotency, rejections,
// every conflict strategy and the custom resolver, owner rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCgi } from '../harness/rhtmx.mjs';
import { BACKENDS, backendsForFile } from '../harness/backends.mjs';

const on = backendsForFile({ underValgrind: true });

const BUILD = process.env.RHTMX_BUILD ?? path.resolve('build');
const EXAMPLE_RESOLVER = path.join(BUILD, 'examples/resolver/librhtmx-resolver-example.so');

const push = (app, body, { entity = 'todos', headers = {}, ...opts } = {}) => runCgi('sync-push', {
  config: app.config, method: 'POST', path: `/${entity}`,
  body: typeof body === 'string' ? body : JSON.stringify(body),
  headers: { 'Content-Type': 'application/json', ...headers },
  ...opts,
});
const pull = (app, since) => runCgi('sync-pull', { config: app.config, path: '/todos', query: `since=${since}` }).json();
const dump = (app) => app.dump();
/** The log's entries (its entity_id is the key as text on PostgreSQL: compared as numbers). */
const log = (app) => app.rows('SELECT entity_id AS id, action, version, client_id FROM _rhtmx_sync_log ORDER BY version')
  .map((e) => ({ ...e, id: Number(e.id) }));

const change = (mutation_id, action, id, data, client_version = 0) => (
  { mutation_id, action, ...(id === undefined ? {} : { id }), ...(data ? { data } : {}), client_version });

for (const backend of BACKENDS) {
  const skip = on.skip(backend);

  test(`create, update and delete: the documented answer, logged by the triggers with the client id (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    app.exec("INSERT INTO todos (title) VALUES ('from the shell');");
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
    assert.deepEqual(app.rows('SELECT id, title, done FROM todos ORDER BY id;'),
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
    app.exec("UPDATE todos SET title = 'again' WHERE id = 2;");
    assert.equal(log(app).at(-1).client_id, null);
  });

  test(`a retried batch is applied once and answered the same (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
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
    assert.equal(app.exec("SELECT count(*) FROM todos WHERE title = 'once';").trim(), '1');
    assert.equal(app.exec("SELECT count(*) FROM _rhtmx_sync_log WHERE client_id = 'c-retry';").trim(), '2');
    // The same mutation ids from another client are that client's own: a new row.
    const other = push(app, { ...batch, client_id: 'c-other' });
    const id = other.json().ids['tmp-1'];
    assert.notEqual(id, 1);
    assert.equal(app.exec(`SELECT title FROM todos WHERE id = ${Number(id)};`).trim(), 'once');
  });

  test(`one bad change among good ones: rejected with a reason, the rest applies (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { schema: `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL,
        done INTEGER NOT NULL DEFAULT 0, slug TEXT UNIQUE);` });
    const r = push(app, { client_id: 'c1', changes: [
      change('g1', 'create', 'tmp-a', { title: 'good', slug: 'a' }),
      change('b1', 'create', 'tmp-b', { title: 'bad', colour: 'red' }),
      change('b2', 'create', 'tmp-c', { done: 1 }),
      change('b3', 'create', 'tmp-d', { title: 'dup', slug: 'a' }),
      change('b4', 'update', 42, { done: 1 }),
      change('b5', 'update', 'abc', { done: 1 }),
      change('g2', 'update', 'tmp-a', { done: 1 }),
      change('g3', 'delete', 43),
    ] });
    assert.equal(r.status, 200);
    // A violated constraint is explained in the database's own words.
    const words = backend === 'sqlite'
      ? ['NOT NULL constraint failed: todos.title', 'UNIQUE constraint failed: todos.slug']
      : [/null value in column "title".*violates not-null constraint/, /duplicate key value violates unique constraint/];
    const answer = r.json();
    answer.rejected.forEach((x, i) => {
      if (x.code !== 'constraint') return;
      const want = words.shift();
      if (typeof want === 'string') assert.equal(x.reason, want);
      else assert.match(x.reason, want);
      answer.rejected[i].reason = '(the database says why)';
    });
    assert.deepEqual(answer, {
      version: 2, applied: [1, 1, 43], ids: { 'tmp-a': 1 }, conflicts: [],
      rejected: [
        { mutation_id: 'b1', id: 'tmp-b', code: 'unknown_column', reason: "unknown column 'colour' in todos" },
        { mutation_id: 'b2', id: 'tmp-c', code: 'constraint', reason: '(the database says why)' },
        { mutation_id: 'b3', id: 'tmp-d', code: 'constraint', reason: '(the database says why)' },
        { mutation_id: 'b4', id: 42, code: 'not_found', reason: 'no todos with this id (it may have been deleted)' },
        { mutation_id: 'b5', id: 'abc', code: 'bad_change', reason: answer.rejected[4]?.reason },
      ],
    });
    assert.equal(app.exec('SELECT title FROM todos;').trim(), 'good');
    assert.equal(log(app).length, 2);
  });

  test(`a conflict is reported with the server row and the decision (last-write-wins by the server clock) (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    push(app, { client_id: 'a', changes: [change('1', 'create', 'tmp-1', { title: 'first' })] });
    const seen = pull(app, 0).version; // the client's cursor
    app.exec("UPDATE todos SET title = 'shell' WHERE id = 1;");
    const r = push(app, { client_id: 'b', changes: [change('1', 'update', 1, { title: 'browser' }, seen)] });
    // The push reached the server after the shell's write: it is the later write.
    assert.deepEqual(r.json().conflicts, [{ mutation_id: '1', id: 1, strategy: 'last-write-wins',
      decision: 'client', server: { id: 1, title: 'browser', done: 0 }, version: 2 }]);
    assert.deepEqual(r.json().applied, [1]);
  });

  test(`merge: both sides' edits to different fields survive (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { config: { entities: [{ name: 'todos', strategy: 'merge' }] } });
    app.exec("INSERT INTO todos (title) VALUES ('buy milk');");
    const seen = pull(app, 0).version;
    app.exec('UPDATE todos SET done = 1 WHERE id = 1;');
    const r = push(app, { client_id: 'b', changes: [
      change('1', 'update', 1, { id: 1, title: 'buy oat milk', done: 0 }, seen)] });
    assert.deepEqual(r.json().conflicts, [{ mutation_id: '1', id: 1, strategy: 'merge',
      decision: 'merged', server: { id: 1, title: 'buy oat milk', done: 1 }, version: 2 }]);
    assert.deepEqual(app.rows('SELECT title, done FROM todos;'), [{ title: 'buy oat milk', done: 1 }]);
  });

  // A conflict: the client pulled, the app changed the row, the client pushes an edit made before.
  for (const [strategy, decision, row] of [
    ['last-write-wins', 'client', { id: 1, title: 'client', done: 1 }],
    ['server-wins', 'server', { id: 1, title: 'server', done: 1 }],
    ['client-wins', 'client', { id: 1, title: 'client', done: 1 }],
    ['merge', 'merged', { id: 1, title: 'client', done: 1 }],
  ]) {
    test(`conflicts under ${strategy}: the decision, the row and the answer (${backend})`, { skip }, async () => {
      const app = await on.app(backend, { config: { entities: [{ name: 'todos', strategy }] } });
      app.exec("INSERT INTO todos (title, done) VALUES ('base', 0);");
      const seen = pull(app, 0).version;
      app.exec("UPDATE todos SET title = 'server', done = 1 WHERE id = 1;");
      const r = push(app, { client_id: 'c-1', changes: [change('m-1', 'update', 1, { title: 'client' }, seen)] });
      assert.equal(r.status, 200, r.text());
      assert.deepEqual(r.json().conflicts, [{ mutation_id: 'm-1', id: 1, strategy, decision, server: row, version: 2 }]);
      assert.deepEqual(app.rows('SELECT id, title, done FROM todos'), [row]);
    });
  }

  test(`custom: the example resolver, loaded from the shared object the config names (${backend})`, { skip }, async () => {
    assert.ok(fs.existsSync(EXAMPLE_RESOLVER), `${EXAMPLE_RESOLVER} was not built`);
    const app = await on.app(backend, { config: {
      entities: [{ name: 'todos', strategy: 'custom' }],
      push: { resolver: EXAMPLE_RESOLVER } } });
    app.exec("INSERT INTO todos (title) VALUES ('water plants');");
    const seen = pull(app, 0).version;
    app.exec('UPDATE todos SET done = 1 WHERE id = 1;'); // done on the server
    // Offline, the client renamed it and un-did it: the resolver keeps it done.
    const r = push(app, { client_id: 'b', changes: [change('1', 'update', 1, { title: 'water all plants', done: 0 }, seen)] });
    assert.equal(r.status, 200, r.text());
    assert.deepEqual(r.json().conflicts, [{ mutation_id: '1', id: 1, strategy: 'custom', decision: 'merged',
      server: { id: 1, title: 'water all plants', done: 1 }, version: 2 }]);
    // A delete of a todo the server has done is refused by the resolver.
    const d = push(app, { client_id: 'b', changes: [change('2', 'delete', 1, null, seen)] });
    assert.equal(d.json().conflicts[0].decision, 'server');
    assert.equal(app.exec('SELECT count(*) FROM todos;').trim(), '1');
  });

  test(`custom: a program built on the library registers its resolver (no shared object) (${backend})`, { skip }, async () => {
    const exe = path.join(BUILD, 'examples/resolver/push-with-resolver');
    assert.ok(fs.existsSync(exe), `${exe} was not built`);
    const app = await on.app(backend, { config: { entities: [{ name: 'todos', strategy: 'custom' }] } });
    app.exec("INSERT INTO todos (title) VALUES ('water plants');");
    const linked = (body) => runCgi(path.relative(process.env.RHTMX_BIN ?? path.resolve('build/cgi-bin'), exe), {
      config: app.config, method: 'POST', path: '/todos', body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json' } });
    const seen = pull(app, 0).version;
    app.exec('UPDATE todos SET done = 1 WHERE id = 1;');
    const change1 = change('1', 'update', 1, { title: 'water all plants', done: 0 }, seen);
    // The shipped sync-push has no resolver for this config ...
    assert.equal(push(app, { client_id: 'b', changes: [change1] }).status, 500);
    // ... the program with one linked in resolves the conflict.
    const r = linked({ client_id: 'b', changes: [change1] });
    assert.equal(r.status, 200, r.text());
    assert.deepEqual(r.json().conflicts, [{ mutation_id: '1', id: 1, strategy: 'custom', decision: 'merged',
      server: { id: 1, title: 'water all plants', done: 1 }, version: 2 }]);
  });

  test(`custom: a resolver that cannot be loaded is a 500 that changes nothing (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { config: { entities: [{ name: 'todos', strategy: 'custom' }],
      push: { resolver: 'missing-resolver.so' } } });
    app.exec("INSERT INTO todos (title) VALUES ('x');");
    push(app, { client_id: 'warm', changes: [] }); // installs the triggers
    const before = dump(app);
    const r = push(app, { client_id: 'b', changes: [change('1', 'update', 1, { title: 'y' }, 0)] });
    assert.equal(r.status, 500);
    assert.equal(r.json().error.code, 'config');
    assert.match(r.stderr, /missing-resolver\.so/);
    assert.equal(dump(app), before);
    // Named nowhere: the same, with a message that says what to do.
    const none = await on.app(backend, { config: { entities: [{ name: 'todos', strategy: 'custom' }] } });
    const n = push(none, { client_id: 'b', changes: [change('1', 'create', null, { title: 'y' })] });
    assert.equal(n.status, 500);
    assert.match(n.stderr, /no resolver is registered or named by push\.resolver/);
  });

  test(`errors have the contract shape and status, and change nothing (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { config: { push: { max_body_bytes: 1024, max_changes: 2 } } });
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

  test(`auth: a token is required, its entities and the origin are checked, per-user rows stay per user (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { token: true,
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
    assert.deepEqual(app.rows('SELECT id, user_id, body FROM notes ORDER BY id;'),
      [{ id: 1, user_id: 7, body: "user 7's note" }, { id: 2, user_id: 42, body: 'mine' }, { id: 3, user_id: 42, body: 'for 7' }]);
    // Nor can the caller hand its own row to another user.
    const handed = push(app, { client_id: 'c', changes: [change('n4', 'update', 2, { user_id: 7 }, 99)] },
      { entity: 'notes', headers: auth('42') });
    assert.deepEqual(handed.json().rejected.map((r) => [r.mutation_id, r.code]), [['n4', 'forbidden']]);
    // A pull as 42 has 42's rows only.
    const pulled = runCgi('sync-pull', { config: app.config, path: '/notes', query: 'since=0', headers: auth('42') }).json();
    assert.deepEqual(pulled.changes.map((c) => c.data), [{ id: 2, user_id: 42, body: 'mine' }, { id: 3, user_id: 42, body: 'for 7' }]);
  });
}
