// Hostile values through the real sync-push and sync-pull (plain CGI): bytes that are not
// UTF-8, integers beyond 64 bits, a NUL in a member name, non-finite and hard-to-print
// reals. Whatever a client sends or the app stores, an answer is valid JSON in valid
// UTF-8, a value comes back exactly as stored, and no error echoes raw input bytes.
// Every case runs on both backends but the last: PostgreSQL stores no text that is not
// UTF-8.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, runCgi, sql, UNDER_VALGRIND, DEFAULT_SCHEMA } from '../harness/rhtmx.mjs';
import { BACKENDS, backendsForFile } from '../harness/backends.mjs';

const on = backendsForFile();

const push = (app, body, entity = 'todos') => runCgi('sync-push', {
  config: app.config, method: 'POST', path: `/${entity}`,
  body, headers: { 'Content-Type': 'application/json' },
});
const pull = (app, since = 0, entity = 'todos') =>
  runCgi('sync-pull', { config: app.config, path: `/${entity}`, query: `since=${since}` });
const dump = (app) => app.dump();

/** The body as text, failing the test if it is not valid UTF-8. */
const utf8 = (r) => new TextDecoder('utf-8', { fatal: true }).decode(r.body);

/** A push body (a Buffer) with `data` spliced in as raw bytes. */
const createWith = (data, mutation = 'm-1') => Buffer.concat([
  Buffer.from(`{"client_id":"c-1","changes":[{"mutation_id":"${mutation}","action":"create",` +
    '"id":"tmp-1","client_version":0,"data":'),
  Buffer.isBuffer(data) ? data : Buffer.from(data), Buffer.from('}]}')]);

for (const backend of BACKENDS) {
  const skip = on.skip(backend);

  test(`invalid UTF-8 in a pushed string is refused (400) and never echoed (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    assert.equal(push(app, '{"client_id":"warm","changes":[]}').status, 200);
    const before = dump(app);
    for (const [what, bytes] of [['overlong', [0xc0, 0xaf]], ['surrogate', [0xed, 0xa0, 0x80]],
      ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]]]) {
      const bad = Buffer.from(bytes);
      // In a value, and in a member name (where it used to come back in "unknown column").
      for (const data of [Buffer.concat([Buffer.from('{"title":"a'), bad, Buffer.from('b"}')]),
        Buffer.concat([Buffer.from('{"ti'), bad, Buffer.from('tle":"x"}')])]) {
        const r = push(app, createWith(data));
        assert.equal(r.status, 400, `${what}: ${r.status} ${r.body.toString('latin1')}`);
        const body = JSON.parse(utf8(r));
        assert.equal(body.error.code, 'bad_request');
        assert.match(body.error.message, /^invalid UTF-8 at byte \d+$/, what);
        assert.equal(r.body.indexOf(bad), -1, `${what}: the raw bytes came back`);
        assert.equal(r.stderr.indexOf(bad.toString('latin1')), -1, `${what}: the raw bytes were logged`);
      }
    }
    // A lone surrogate escape would be turned into U+FFFD behind the client's back.
    const r = push(app, createWith('{"title":"a\\ud800b"}'));
    assert.equal(r.status, 400);
    assert.match(r.json().error.message, /^a lone surrogate in a \\u escape at byte \d+$/);
    assert.equal(dump(app), before);
  });

  test(`a long unknown column name is quoted whole characters at a time (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    const name = 'é'.repeat(70);
    const r = push(app, createWith(JSON.stringify({ title: 't', [name]: 1 })));
    assert.equal(r.status, 200);
    const a = JSON.parse(utf8(r)); // was cut inside a character: not UTF-8
    assert.equal(a.rejected[0].code, 'unknown_column');
    assert.equal(a.rejected[0].reason, `unknown column '${'é'.repeat(32)}...' in todos`);
  });

  test(`an integer beyond 64 bits is refused the same way on both sides (${backend})`, { skip }, async () => {
    // done is 64 bits wide on both (an INTEGER in SQLite, a bigint in PostgreSQL).
    const app = await on.app(backend, { sqlite: DEFAULT_SCHEMA,
      postgres: 'CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL, done bigint NOT NULL DEFAULT 0);' });
    assert.equal(push(app, '{"client_id":"warm","changes":[]}').status, 200);
    const before = dump(app);
    const messages = ['9223372036854775808', '-9223372036854775809', '18446744073709551616',
      '-99999999999999999999'].map((n) => {
      const r = push(app, createWith(`{"title":"big","done":${n}}`));
      assert.equal(r.status, 400, `${n}: ${r.text()}`);
      return r.json().error.message;
    });
    assert.deepEqual(new Set(messages), new Set(['integer out of range (-2^63 to 2^63-1) at byte 130']));
    assert.equal(dump(app), before); // -2^63 used to be written in place of the negative ones
    // The bounds themselves are integers like any other.
    for (const n of ['9223372036854775807', '-9223372036854775808']) {
      const r = push(app, createWith(`{"title":"edge","done":${n}}`, `m${n}`));
      assert.equal(r.status, 200, r.text());
      assert.deepEqual(r.json().rejected, []);
      const id = r.json().ids['tmp-1'];
      assert.equal(app.exec(`SELECT CAST(done AS TEXT) FROM todos WHERE id = ${id};`).trim(), n);
      const change = pull(app).text().match(new RegExp(`"data":\\{"id":${id},[^}]*\\}`))[0];
      assert.ok(change.endsWith(`"done":${n}}`), change);
    }
  });

  test(`a NUL inside a member name is refused, not cut to another column (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    assert.equal(push(app, '{"client_id":"warm","changes":[]}').status, 200);
    const before = dump(app);
    const r = push(app, createWith('{"title\\u0000x":"t"}'));
    assert.equal(r.status, 400, r.text());
    assert.equal(r.json().error.message, '\\u0000 in a member name at byte 115');
    assert.equal(dump(app), before); // used to write the column "title"
    // In a value it is data like any other character, where the database can hold it.
    const ok = push(app, createWith('{"title":"a\\u0000b"}', 'm-2'));
    assert.equal(ok.status, 200);
    if (backend === 'sqlite') {
      assert.deepEqual(ok.json().rejected, []);
      const id = ok.json().ids['tmp-1'];
      assert.equal(pull(app).json().changes.find((c) => c.id === id).data.title, 'a\u0000b');
      return;
    }
    // PostgreSQL's text cannot hold it: refused, never cut to "a" (as a text parameter was).
    assert.deepEqual(ok.json().rejected.map((x) => [x.mutation_id, x.code, x.reason]),
      [['m-2', 'bad_change', "column 'title': \\u0000 cannot be stored in PostgreSQL text"]]);
    assert.equal(app.exec('SELECT count(*) FROM todos;').trim(), '0');
    // Nor is a key with one cut to another row's key.
    app.exec("INSERT INTO todos (id, title) VALUES (7, 'seven');");
    const v = pull(app).json().version;
    const key = push(app, '{"client_id":"c-1","changes":[{"mutation_id":"m-3","action":"update","id":"7\\u0000x",' +
      `"data":{"title":"not seven"},"client_version":${v}}]}`);
    assert.equal(key.status, 200, key.text());
    assert.deepEqual(key.json().rejected.map((x) => [x.mutation_id, x.code]), [['m-3', 'bad_change']]);
    assert.equal(app.exec('SELECT title FROM todos WHERE id = 7;').trim(), 'seven');
  });

  // v has no type in SQLite (it keeps what it is given); a double precision in PostgreSQL.
  const realsApp = (b) => on.app(b, {
    sqlite: 'CREATE TABLE m (id INTEGER PRIMARY KEY, r REAL, v);',
    postgres: 'CREATE TABLE m (id integer PRIMARY KEY, r double precision, v double precision);',
    config: { entities: [{ name: 'm', offline_writes: true }] },
  });
  const rowsOf = (r) => Object.fromEntries(JSON.parse(utf8(r)).changes.map((c) => [c.id, c.data]));

  test(`a non-finite REAL never poisons a pull: infinity is 9e999, NaN is null (${backend})`, { skip }, async () => {
    const app = await realsApp(backend);
    // Pushed (with SQLite as a string into a REAL column, converted by affinity; PostgreSQL
    // casts 'Infinity' only), and written by the app's own SQL.
    const first = backend === 'sqlite' ? { r: '1e999', v: 'x' } : { r: 'Infinity', v: '-Infinity' };
    const r = push(app, JSON.stringify({ client_id: 'c-1', changes: [
      { mutation_id: 'm1', action: 'create', id: 1, data: first, client_version: 0 }] }), 'm');
    assert.equal(r.status, 200, r.text());
    assert.deepEqual(r.json().rejected, []);
    app.exec(backend === 'sqlite'
      ? 'INSERT INTO m VALUES (2, -1e999, 1e999); INSERT INTO m VALUES (3, 1e999 - 1e999, 0);'
      : "INSERT INTO m VALUES (2, '-Infinity', 'Infinity'); INSERT INTO m VALUES (3, 'NaN', 0);");
    const p = pull(app, 0, 'm');
    assert.equal(p.status, 200);
    assert.match(utf8(p), /"r":9e999/);
    assert.deepEqual(rowsOf(p), { // JSON.parse took the page: it was "Inf" before
      1: { id: 1, r: Infinity, v: backend === 'sqlite' ? 'x' : -Infinity },
      2: { id: 2, r: -Infinity, v: Infinity }, 3: { id: 3, r: null, v: 0 } });
    // What a client pulled can be pushed back as it came: 9e999 is infinity again.
    const back = push(app, '{"client_id":"c-2","changes":[{"mutation_id":"b1","action":"update","id":3,' +
      '"data":{"r":9e999,"v":-9e999},"client_version":0}]}', 'm');
    assert.equal(back.status, 200, back.text());
    assert.deepEqual(back.json().rejected, []);
    assert.equal(app.exec(backend === 'sqlite' ? 'SELECT r = 1e999 AND v = -1e999 FROM m WHERE id = 3;'
      : "SELECT r = 'Infinity' AND v = '-Infinity' FROM m WHERE id = 3;").trim(), backend === 'sqlite' ? '1' : 't');
    assert.deepEqual(rowsOf(pull(app, 0, 'm'))[3], { id: 3, r: Infinity, v: -Infinity });
  });

  // Pulls write each value with jsonw (C's printf, exact on every platform), so the reals come
  // back exactly in both passes; they used to be printed by SQLite's printf, whose digits are
  // exact only where its long double is wider than a double (x86-64, not valgrind). The seal,
  // which copies rows into the log for conflict merges, still prints with SQLite's printf.
  test(`REAL values round-trip exactly through push, the change log and pull (${backend})`, { skip }, async () => {
    const app = await realsApp(backend);
    const values = [0.30000000000000004, 0.1, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE,
      2.2250738585072014e-308, 1e99, 1.0000000000000002, 123456789.12345678, 9007199254740993, 1e300, -2.5e-7];
    const r = push(app, JSON.stringify({ client_id: 'c-1', changes: values.map((x, i) => (
      { mutation_id: `m${i}`, action: 'create', id: i + 1, data: { r: x }, client_version: 0 })) }), 'm');
    assert.equal(r.status, 200, r.text());
    assert.deepEqual(r.json().rejected, []);
    // Rows written by the app (here the shell) through the log and pull.
    app.exec('INSERT INTO m VALUES (100, 0.30000000000000004, 1.7976931348623157e308);');
    const rows = rowsOf(pull(app, 0, 'm'));
    values.forEach((x, i) => assert.equal(rows[i + 1].r, x, `${x} came back as ${rows[i + 1].r}`));
    assert.deepEqual(rows[100], { id: 100, r: 0.30000000000000004, v: Number.MAX_VALUE });
    // The log holds the row too: PostgreSQL's trigger as jsonb (exact), SQLite's sealed by the
    // pull with SQLite's printf (exact on x86-64 only).
    const logged = app.exec(`SELECT data FROM _rhtmx_sync_log WHERE entity_id = ${backend === 'sqlite' ? 100 : "'100'"};`).trim();
    if (backend === 'postgres') assert.deepEqual(JSON.parse(logged), { id: 100, r: 0.30000000000000004, v: Number.MAX_VALUE });
    else if (UNDER_VALGRIND) assert.match(logged, /^\{"id":100,"r":0\.30000000000000004,"v":1\.7976931348623\d+e\+308\}$/);
    else assert.equal(logged, '{"id":100,"r":0.30000000000000004,"v":1.79769313486231562234e+308}');
  });
}

// PostgreSQL refuses text that is not UTF-8 on input: an app cannot store it there.
test('text the app stored that is not UTF-8 still gives valid JSON, repaired with U+FFFD (sqlite)', () => {
  const app = makeApp();
  sql(app.db, "INSERT INTO todos (title) VALUES (CAST(x'61c0af62eda080f4908080' AS TEXT));");
  const p = pull(app, 0);
  assert.equal(p.status, 200);
  const [c] = JSON.parse(utf8(p)).changes; // the raw bytes used to be sent as they were
  assert.equal(c.data.title, 'a\ufffd\ufffdb' + '\ufffd'.repeat(7));
  // A conflict answer carries the server's row too.
  const r = push(app, JSON.stringify({ client_id: 'c-1', changes: [
    { mutation_id: 'u1', action: 'update', id: 1, data: { done: 1 }, client_version: 0 }] }));
  assert.equal(r.status, 200);
  const a = JSON.parse(utf8(r));
  assert.equal(a.conflicts.length, 1);
  assert.equal(a.conflicts[0].server.title, c.data.title);
});

for (const backend of BACKENDS) {
  test(`values keep their JSON types: integers, reals, text, NULL, bytes as hex (${backend})`, { skip: on.skip(backend) }, async () => {
    const app = await on.app(backend, {
      sqlite: `CREATE TABLE todos (id TEXT PRIMARY KEY, n INTEGER, r REAL, t TEXT, b BLOB, z TEXT);
               INSERT INTO todos VALUES ('k1', -42, 2.0, 'é "q"', x'0aff', NULL), ('k2', 9007199254740993, -1.25, '', x'', NULL);`,
      postgres: `CREATE TABLE todos (id text PRIMARY KEY, n bigint, r double precision, t text, b bytea, z text);
                 INSERT INTO todos VALUES ('k1', -42, 2.0, 'é "q"', '\\x0aff', NULL), ('k2', 9007199254740993, -1.25, '', '\\x', NULL);`,
    });
    const text = utf8(pull(app, 0));
    assert.match(text, /"data":\{"id":"k1","n":-42,"r":2\.0,"t":"é \\"q\\"","b":"0AFF","z":null\}/);
    // Reals exactly representable in binary: SQLite's own printf writes others differently
    // under valgrind (its long double is emulated there).
    assert.match(text, /"n":9007199254740993,"r":-1\.25,"t":"","b":"","z":null/);
  });
}
