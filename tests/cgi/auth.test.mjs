// Auth through the real sync-pull (as plain CGI): tokens from the header or the
// cookie, every kind of refusal in the error shape, entity restrictions, and
// per-user rows: user A's token never sees user B's rows. Every case runs on both backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { runCgi } from '../harness/rhtmx.mjs';
import { mintToken, claims, now } from '../harness/token.mjs';
import { BACKENDS, backendsForFile } from '../harness/backends.mjs';

const on = backendsForFile();

const OWNED = `
CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, user_id TEXT);
CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT);
`;
const ownedConfig = { entities: [{ name: 'todos', owner_column: 'user_id' }, 'tags'] };

const pull = (app, { token, cookie, query = 'since=0', path = '/todos', headers = {}, ...opts } = {}) =>
  runCgi('sync-pull', {
    config: app.config, path, query, ...opts,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(cookie ? { Cookie: cookie } : {}),
      ...headers,
    },
  });

function assertRefused(r, status, code, msg) {
  assert.equal(r.status, status, r.text());
  assert.deepEqual(Object.keys(r.json()), ['error']);
  assert.equal(r.json().error.code, code);
  if (msg) assert.match(r.json().error.message, msg);
  assert.equal(r.headers['cache-control'], 'no-store');
}

for (const backend of BACKENDS) {
  const skip = on.skip(backend);

  test(`token mode: no token is a 401 with a Bearer challenge, before anything else is revealed (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { token: true });
    for (const path of ['/todos', '/no_such_entity', '/todos/1']) {
      const r = pull(app, { path });
      assertRefused(r, 401, 'unauthorized', /token is required/);
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="rhtmx-sync"');
    }
    // A token in the query string is not a token (URLs end up in logs).
    const r = pull(app, { query: `since=0&token=${app.token('1')}` });
    assert.equal(r.status, 401);
  });

  test(`a valid token works from the Authorization header and from the cookie (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { token: true });
    app.exec("INSERT INTO todos (title) VALUES ('shared');");
    const t = app.token('alice');
    for (const opts of [
      { token: t },
      { cookie: `rhtmx_sync=${t}` },
      { cookie: `theme=dark; rhtmx_sync=${t}; lang=en` },
      { cookie: `rhtmx_sync=${t}`, headers: { Authorization: 'Basic YWxpY2U6cHc=' } },
    ]) {
      const r = pull(app, opts);
      assert.equal(r.status, 200, `${JSON.stringify(opts)}: ${r.text()}`);
      assert.equal(r.json().changes.length, 1);
    }
    // A configured cookie name replaces the default.
    const named = await on.app(backend, { token: true, config: { auth: { cookie: 'myapp_sync' } } });
    assert.equal(pull(named, { cookie: `myapp_sync=${named.token('a')}` }).status, 200);
    assert.equal(pull(named, { cookie: `rhtmx_sync=${named.token('a')}` }).status, 401);
  });

  test(`bad tokens: each refused with 401 invalid_token and its reason (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { token: true });
    const cases = [
      ['expired', mintToken(app.secret, { sub: 'a', exp: now() - 3600 }), /expired/],
      ['not yet valid', mintToken(app.secret, claims('a', { nbf: now() + 3600 })), /not valid yet/],
      ['no exp', mintToken(app.secret, { sub: 'a' }), /"exp"/],
      ['no sub', mintToken(app.secret, { exp: now() + 60 }), /"sub"/],
      ['numeric sub', mintToken(app.secret, { sub: 42, exp: now() + 60 }), /"sub"/],
      ['another secret', mintToken('x'.repeat(44), claims('a')), /signature/],
      ['alg none', mintToken(app.secret, claims('a'), { header: { alg: 'none' } }).replace(/\.[^.]*$/, '.'), /./],
      ['alg HS512', mintToken(app.secret, claims('a'), { header: { alg: 'HS512' } }), /HS256/],
      ['garbage', 'not-a-token', /three/],
      ['huge', 'a'.repeat(5000), /longer than 4096/],
    ];
    for (const [what, token, msg] of cases) {
      for (const opts of [{ token }, { cookie: `rhtmx_sync=${token}` }]) {
        const r = pull(app, opts);
        assertRefused(r, 401, 'unauthorized', msg);
        assert.match(r.headers['www-authenticate'], /^Bearer realm="rhtmx-sync", error="invalid_token"$/, what);
      }
    }
    // A tampered payload under a valid signature: user 'a' claims to be 'admin'.
    const good = app.token('a');
    const evil = app.token('admin').split('.')[1];
    const [h, , s] = good.split('.');
    assertRefused(pull(app, { token: `${h}.${evil}.${s}` }), 401, 'unauthorized', /signature/);
  });

  test(`a token limited to some entities gets 403 for the others (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { token: true, schema: OWNED, config: ownedConfig });
    const t = app.token('alice', { entities: ['tags'] });
    assert.equal(pull(app, { token: t, path: '/tags' }).status, 200);
    assertRefused(pull(app, { token: t, path: '/todos' }), 403, 'forbidden', /entity 'todos'/);
    // Unknown entities are still 404 for an authenticated user.
    assertRefused(pull(app, { token: t, path: '/nope' }), 404, 'not_found');
  });

  test(`owner isolation: each user's pull holds only their own rows, deletes included (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { token: true, schema: OWNED, config: ownedConfig });
    app.exec(`INSERT INTO todos (title, user_id) VALUES ('a1', 'alice'), ('b1', 'bob'), ('a2', 'alice'),
                 ('nobody', NULL), ('b2', 'bob'), ('mallory?', 'alice ');
                 INSERT INTO tags (label) VALUES ('shared');`);
    const alice = app.token('alice'), bob = app.token('bob');
    const titles = (r) => r.json().changes.map((c) => c.data?.title ?? `deleted ${c.id}`);

    const a0 = pull(app, { token: alice });
    assert.deepEqual(titles(a0), ['a1', 'a2']);
    const b0 = pull(app, { token: bob });
    assert.deepEqual(titles(b0), ['b1', 'b2']);
    assert.deepEqual(titles(pull(app, { token: app.token('carol') })), []);
    // The entity without owner_column is shared.
    assert.equal(pull(app, { token: bob, path: '/tags' }).json().changes.length, 1);

    // Incremental pulls: updates and deletes of bob's rows never reach alice.
    const v = a0.json().version;
    app.exec(`UPDATE todos SET title = 'b1 edited' WHERE title = 'b1';
                 DELETE FROM todos WHERE title = 'b2';
                 UPDATE todos SET title = 'a1 edited' WHERE title = 'a1';
                 DELETE FROM todos WHERE title = 'a2';`);
    const a1 = pull(app, { token: alice, query: `since=${v}` }).json();
    assert.deepEqual(a1.changes.map((c) => [c.action, c.data?.title ?? null]),
      [['update', 'a1 edited'], ['delete', null]]);
    // Each device resumes from its own cursor (a user's view is built at their first pull).
    const b1 = pull(app, { token: bob, query: `since=${b0.json().version}` }).json();
    assert.deepEqual(b1.changes.map((c) => [c.action, c.data?.title ?? null]),
      [['update', 'b1 edited'], ['delete', null]]);
    assert.ok(!JSON.stringify(a1).includes('b1'));
    // Paging does not leak either: every page of alice's is hers.
    app.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
                 INSERT INTO todos (title, user_id) SELECT 'x' || i, CASE i % 2 WHEN 0 THEN 'alice' ELSE 'bob' END FROM n;`);
    let since = 0, seen = 0;
    for (;;) {
      const page = pull(app, { token: alice, query: `since=${since}&limit=7` }).json();
      for (const c of page.changes) { assert.equal(c.data.user_id, 'alice'); seen++; }
      since = page.version;
      if (!page.has_more) break;
    }
    assert.equal(seen, 26); // a1 edited + 25 even rows
  });

  test(`owner isolation with an INTEGER owner column (user ids as numbers, sub as a string) (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { token: true,
      schema: 'CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT, user_id INTEGER);',
      config: { entities: [{ name: 'todos', owner_column: 'user_id' }] },
    });
    app.exec("INSERT INTO todos (title, user_id) VALUES ('mine', 42), ('theirs', 7);");
    const r = pull(app, { token: app.token('42') }).json();
    assert.deepEqual(r.changes.map((c) => c.data.title), ['mine']);
  });

  test(`auth mode "none" refuses per-user entities instead of serving every row to everyone (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { schema: OWNED, config: ownedConfig });
    app.exec("INSERT INTO todos (title, user_id) VALUES ('private', 'alice'); INSERT INTO tags (label) VALUES ('t');");
    const r = pull(app);
    assertRefused(r, 500, 'config');
    assert.doesNotMatch(r.text(), /private/);
    assert.match(r.stderr, /entity 'todos' has owner_column 'user_id' but auth mode is "none"/);
    assert.equal(pull(app, { path: '/tags' }).status, 200, 'shared entities keep working');
  });

  test(`a bad secret file is a config error (500), never an open door (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { token: true });
    const t = app.token('a');
    const cases = [
      [() => fs.chmodSync(app.secretFile, 0o644), /readable or writable by everyone/],
      [() => { fs.writeFileSync(app.secretFile, 'short\n'); fs.chmodSync(app.secretFile, 0o600); }, /shorter than 32 bytes/],
      [() => fs.writeFileSync(app.secretFile, ''), /is empty/],
      [() => fs.unlinkSync(app.secretFile), /No such file/],
    ];
    for (const [breakIt, msg] of cases) {
      breakIt();
      const r = pull(app, { token: t });
      assertRefused(r, 500, 'config');
      assert.doesNotMatch(r.json().error.message, /secret/);
      assert.match(r.stderr, msg);
      assert.ok(r.stderr.includes(app.config), r.stderr);
    }
  });

  test(`client.js stays public in token mode (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { token: true });
    const r = runCgi('client-js', { config: app.config, path: '' });
    assert.equal(r.status, 200);
  });

  test(`request limits apply before auth, for every endpoint (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { token: true });
    assertRefused(pull(app, { query: 'x='.padEnd(2000, 'y') }), 414, 'bad_request', /longer than 1024/);
    assertRefused(pull(app, { headers: { 'X-Big': 'z'.repeat(9000) } }), 431, 'bad_request', /HTTP_X_BIG/);
    assertRefused(pull(app, { token: 'a'.repeat(9000) }), 431, 'bad_request', /HTTP_AUTHORIZATION/);
    const js = runCgi('client-js', { config: app.config, query: 'v='.padEnd(1100, '1') });
    assert.equal(js.status, 414);
  });
}
