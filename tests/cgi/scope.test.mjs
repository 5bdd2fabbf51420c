// Sync rules (an entity's "scope"), through the real sync-pull and sync-push as plain
// CGI: hostile expressions refused when the config loads, pulls that list exactly the
// rows in a user's scope, and rows that leave or enter the scope (a membership changed
// or deleted, a row moved between lists, an owner changed, a user added to a list)
// arriving as deletes and creates on the next incremental pull; every push case.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runCgi, sql, bin, assertSanitizerClean } from '../harness/rhtmx.mjs';
import { makeTokenApp } from '../harness/token.mjs';

const SCHEMA = `
CREATE TABLE lists (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE list_members (list_id INTEGER NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (list_id, user_id));
CREATE TABLE todos (id INTEGER PRIMARY KEY, list_id INTEGER NOT NULL, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT, body TEXT);
INSERT INTO lists (id, name) VALUES (1, 'home'), (2, 'work'), (3, 'secret');
INSERT INTO list_members VALUES (1, 'alice'), (1, 'bob'), (2, 'alice'), (3, 'carol');
INSERT INTO todos (id, list_id, title) VALUES (10, 1, 'milk'), (11, 1, 'bread'), (20, 2, 'report'), (30, 3, 'gift');
`;
const MEMBER = 'list_id IN (SELECT list_id FROM list_members WHERE user_id = :user)';

function makeShared(entities = [{ name: 'todos', scope: MEMBER }], extra = {}) {
  return makeTokenApp({ schema: SCHEMA, config: { entities, ...extra } });
}

const pull = (app, user, since = 0, { entity = 'todos', token } = {}) => runCgi('sync-pull', {
  config: app.config, path: `/${entity}`, query: `since=${since}`,
  headers: { Authorization: `Bearer ${token ?? app.token(user)}` },
});
const pullOk = (app, user, since, opts) => {
  const r = pull(app, user, since, opts);
  assert.equal(r.status, 200, r.text());
  return r.json();
};
const ids = (answer) => answer.changes.map((c) => [c.id, c.action]);
const push = (app, user, changes, { entity = 'todos' } = {}) => {
  const r = runCgi('sync-push', {
    config: app.config, method: 'POST', path: `/${entity}`,
    body: JSON.stringify({ client_id: `c-${user}`, changes }),
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${app.token(user)}` },
  });
  assert.equal(r.status, 200, r.text());
  return r.json();
};

test('a full sync lists exactly the rows in the user\'s scope', () => {
  const app = makeShared();
  assert.deepEqual(ids(pullOk(app, 'alice')), [[10, 'create'], [11, 'create'], [20, 'create']]);
  assert.deepEqual(ids(pullOk(app, 'bob')), [[10, 'create'], [11, 'create']]);
  assert.deepEqual(ids(pullOk(app, 'carol')), [[30, 'create']]);
  assert.deepEqual(ids(pullOk(app, 'mallory')), []);
  const a = pullOk(app, 'alice');
  assert.deepEqual(a.changes[0].data, { id: 10, list_id: 1, title: 'milk', done: 0 });
});

test('a member removed from a list (membership updated): its rows arrive as deletes', () => {
  const app = makeShared();
  const first = pullOk(app, 'bob');
  sql(app.db, "UPDATE list_members SET user_id = 'dave' WHERE list_id = 1 AND user_id = 'bob';");
  const next = pullOk(app, 'bob', first.version);
  assert.deepEqual(ids(next).sort(), [[10, 'delete'], [11, 'delete']]);
  assert.equal(next.changes[0].data, undefined);
  // Told once: the pull after that has nothing.
  assert.deepEqual(ids(pullOk(app, 'bob', next.version)), []);
  // Alice, still a member, is told nothing about it.
  const a = pullOk(app, 'alice');
  sql(app.db, "DELETE FROM list_members WHERE user_id = 'dave';");
  assert.deepEqual(ids(pullOk(app, 'alice', a.version)), []);
});

test('a deleted membership row: the list\'s rows arrive as deletes, other lists stay', () => {
  const app = makeShared();
  const first = pullOk(app, 'alice');
  sql(app.db, "DELETE FROM list_members WHERE list_id = 2 AND user_id = 'alice';");
  const next = pullOk(app, 'alice', first.version);
  assert.deepEqual(ids(next), [[20, 'delete']]);
  assert.deepEqual(ids(pullOk(app, 'alice')), [[10, 'create'], [11, 'create']]);
});

test('a user added to a list: its rows arrive as creates, with their data', () => {
  const app = makeShared();
  const first = pullOk(app, 'bob');
  sql(app.db, "INSERT INTO list_members VALUES (2, 'bob');");
  const next = pullOk(app, 'bob', first.version);
  assert.deepEqual(ids(next), [[20, 'create']]);
  assert.deepEqual(next.changes[0].data, { id: 20, list_id: 2, title: 'report', done: 0 });
});

test('a row moved between lists: a delete for who lost it, a create for who gained it, an update for who kept it', () => {
  const app = makeShared();
  const b = pullOk(app, 'bob');
  const c = pullOk(app, 'carol');
  const a = pullOk(app, 'alice');
  sql(app.db, 'UPDATE todos SET list_id = 3 WHERE id = 10;');
  assert.deepEqual(ids(pullOk(app, 'bob', b.version)), [[10, 'delete']]);
  const cn = pullOk(app, 'carol', c.version);
  assert.deepEqual(ids(cn), [[10, 'create']]);
  assert.equal(cn.changes[0].data.list_id, 3);
  assert.deepEqual(ids(pullOk(app, 'alice', a.version)), [[10, 'delete']]);
  // Moved from list 3 to list 2: alice (member of 2) gets it back.
  const a2 = pullOk(app, 'alice', a.version);
  sql(app.db, 'UPDATE todos SET list_id = 2 WHERE id = 10;');
  assert.deepEqual(ids(pullOk(app, 'alice', a2.version)), [[10, 'create']]);
  // An edit inside the scope is an update.
  const a3 = pullOk(app, 'alice', a2.version);
  sql(app.db, "UPDATE todos SET title = 'oat milk' WHERE id = 10;");
  const a4 = pullOk(app, 'alice', a3.version);
  assert.deepEqual(ids(a4), [[10, 'update']]);
  assert.equal(a4.changes[0].data.title, 'oat milk');
});

test('a deleted row arrives as a delete only for users who could see it', () => {
  const app = makeShared();
  const a = pullOk(app, 'alice');
  const c = pullOk(app, 'carol');
  sql(app.db, 'DELETE FROM todos WHERE id = 20;');
  assert.deepEqual(ids(pullOk(app, 'alice', a.version)), [[20, 'delete']]);
  assert.deepEqual(ids(pullOk(app, 'carol', c.version)), []);
});

test('owner_column: a row handed to another owner arrives as a delete for the old one (the known limit is gone)', () => {
  const app = makeShared([{ name: 'notes', owner_column: 'owner' }]);
  sql(app.db, "INSERT INTO notes (id, owner, body) VALUES (1, 'alice', 'a'), (2, 'bob', 'b');");
  const a = pullOk(app, 'alice', 0, { entity: 'notes' });
  const b = pullOk(app, 'bob', 0, { entity: 'notes' });
  assert.deepEqual(ids(a), [[1, 'create']]);
  sql(app.db, "UPDATE notes SET owner = 'bob' WHERE id = 1;");
  assert.deepEqual(ids(pullOk(app, 'alice', a.version, { entity: 'notes' })), [[1, 'delete']]);
  const bn = pullOk(app, 'bob', b.version, { entity: 'notes' });
  assert.deepEqual(ids(bn), [[1, 'create']]);
  assert.equal(bn.changes[0].data.owner, 'bob');
});

test('a scope reading a claim of the token: :claim.NAME', () => {
  const app = makeShared([{ name: 'lists', scope: 'name = :claim.team' }]);
  const r = pull(app, 'x', 0, { entity: 'lists', token: app.token('x', { team: 'work' }) });
  assert.equal(r.status, 200, r.text());
  assert.deepEqual(ids(r.json()), [[2, 'create']]);
  const none = pull(app, 'x', 0, { entity: 'lists', token: app.token('y') });
  assert.deepEqual(ids(none.json()), []);
  // Other claims for the same user: the view is rebuilt, and an old cursor resyncs.
  const again = pull(app, 'x', r.json().version, { entity: 'lists', token: app.token('x', { team: 'home' }) });
  assert.equal(again.status, 410, again.text());
  assert.equal(again.json().error.code, 'resync_required');
});

test('hostile or broken scopes are refused when the config loads, with one log line naming the entity', () => {
  const cases = [
    ['DELETE', "DELETE FROM lists", /scope does not compile/],
    ['DELETE in a subquery', "1 AND (SELECT count(*) FROM (DELETE FROM lists RETURNING 1))", /scope (refused|does not compile)/],
    ['; DROP', "1); DROP TABLE lists; SELECT (1", /scope refused: .*(parentheses|second statement)/],
    ['; DROP inside', "list_id = 1; DROP TABLE lists", /scope does not compile/],
    ['ATTACH', "1); ATTACH DATABASE 'attached.db' AS other; SELECT (1", /scope refused: it contains unbalanced parentheses/],
    ['ATTACH inside', "list_id = 1; ATTACH DATABASE 'attached.db' AS other", /scope does not compile/],
    ['another database', "EXISTS (SELECT 1 FROM temp.sqlite_temp_master)", /scope refused: it reads 'sqlite_temp_master'/],
    ['load_extension', "load_extension('/tmp/x.so') IS NULL", /load_extension\(\), which may have side effects/],
    ['unknown column', "no_such_column = :user", /scope does not compile: no such column: no_such_column/],
    ['a comment', "1 /* ) OR (1 */", /scope refused: it contains a comment/],
    ['our own tables', "EXISTS (SELECT 1 FROM _rhtmx_sync_log)", /scope refused: it reads '_rhtmx_sync_log'/],
    ['a pragma', "EXISTS (SELECT 1 FROM pragma_table_info('lists'))", /scope refused/],
    ['another parameter', "list_id = :list", /unknown parameter :list/],
  ];
  for (const [what, scope, re] of cases) {
    const app = makeShared([{ name: 'todos', scope }]);
    const r = pull(app, 'alice');
    assert.equal(r.status, 500, `${what}: ${r.text()}`);
    assert.equal(r.json().error.code, 'config', what);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
    assert.match(lines[0], /entity 'todos'/, what);
    assert.match(lines[0], re, what);
    // Nothing of it ran.
    assert.equal(sql(app.db, 'SELECT count(*) FROM lists;').trim(), '3', what);
    assert.ok(!fs.existsSync(path.join(app.dir, 'attached.db')), what);
  }
});

test('a scope needs auth mode "token"', () => {
  const app = makeTokenApp({ schema: SCHEMA, config: { entities: [{ name: 'todos', scope: MEMBER }] }, auth: { mode: 'none' } });
  const r = runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0' });
  assert.equal(r.status, 500);
  assert.match(r.stderr, /entity 'todos' has a "scope", which needs auth mode "token"/);
});

test('push: outside the scope, or moving a row out of it, is rejected as forbidden; the rest of the batch applies', () => {
  const app = makeShared();
  const seen = pullOk(app, 'bob').version; // as a client would: what it pulled last
  const c = (mutation_id, action, id, data) => ({ mutation_id, action, id, ...(data ? { data } : {}), client_version: seen });
  const r = push(app, 'bob', [
    c('m1', 'create', 40, { list_id: 3, title: 'not my list' }),      // create outside
    c('m2', 'update', 30, { title: 'peek' }),                          // update of a row outside
    c('m3', 'delete', 30),                                             // delete of a row outside
    c('m4', 'update', 10, { list_id: 3 }),                             // moves a row out
    c('m5', 'create', 30, { list_id: 1, title: 'steal' }),             // create over a row outside
    c('m6', 'update', 11, { title: 'rye bread' }),                     // fine
    c('m7', 'create', 41, { list_id: 1, title: 'eggs' }),              // fine
    c('m8', 'delete', 10),                                             // fine
  ]);
  assert.deepEqual(r.applied, [11, 41, 10]);
  assert.deepEqual(r.rejected.map((x) => [x.mutation_id, x.code]),
    [['m1', 'forbidden'], ['m2', 'forbidden'], ['m3', 'forbidden'], ['m4', 'forbidden'], ['m5', 'forbidden']]);
  assert.deepEqual(sql(app.db, 'SELECT id, list_id, title FROM todos ORDER BY id;', { json: true }), [
    { id: 11, list_id: 1, title: 'rye bread' }, { id: 20, list_id: 2, title: 'report' },
    { id: 30, list_id: 3, title: 'gift' }, { id: 41, list_id: 1, title: 'eggs' },
  ]);
  // A create without an id (the server assigns it) outside the scope is refused too.
  const t = push(app, 'bob', [c('m9', 'create', 'tmp-1', { list_id: 2, title: 'x' })]);
  assert.deepEqual(t.rejected.map((x) => x.code), ['forbidden']);
  assert.equal(sql(app.db, "SELECT count(*) FROM todos WHERE title = 'x';").trim(), '0');
});

test('a WITHOUT ROWID table with text keys: the view is numbered all the same', () => {
  const app = makeTokenApp({
    schema: `${SCHEMA}
      CREATE TABLE cards (code TEXT PRIMARY KEY, list_id INTEGER NOT NULL, body TEXT) WITHOUT ROWID;
      INSERT INTO cards VALUES ('b', 1, 'x'), ('a', 1, 'y'), ('z', 2, 'z'), ('q', 3, 'w');`,
    config: { entities: [{ name: 'cards', key: 'code', scope: MEMBER }] },
  });
  const first = pullOk(app, 'alice', 0, { entity: 'cards' });
  assert.deepEqual(ids(first).sort(), [['a', 'create'], ['b', 'create'], ['z', 'create']]);
  assert.equal(new Set(first.changes.map((c) => c.version)).size, 3, 'one version each');
  sql(app.db, "DELETE FROM list_members WHERE list_id = 1 AND user_id = 'alice';");
  assert.deepEqual(ids(pullOk(app, 'alice', first.version, { entity: 'cards' })).sort(), [['a', 'delete'], ['b', 'delete']]);
});

test('compaction: entries of rows that left a view go with the horizon, a user away for the retention loses the view and resyncs', () => {
  const app = makeShared([{ name: 'todos', scope: MEMBER }], { retention: { days: 1 } });
  const a = pullOk(app, 'alice');
  const b = pullOk(app, 'bob');
  sql(app.db, 'UPDATE todos SET list_id = 3 WHERE id = 20;');
  const a1 = pullOk(app, 'alice', a.version);
  assert.deepEqual(ids(a1), [[20, 'delete']]);
  const left = () => Number(sql(app.db, 'SELECT count(*) FROM _rhtmx_sync_view WHERE NOT visible;').trim());
  assert.equal(left(), 1);
  // A tombstone after that, old enough to go; and bob has not pulled for two days.
  sql(app.db, `DELETE FROM todos WHERE id = 30;
               UPDATE _rhtmx_sync_log SET created_at = '2000-01-01T00:00:00.000Z';
               UPDATE _rhtmx_sync_viewers SET seen = strftime('%s', 'now') - 2 * 86400 WHERE viewer = 'bob';`);
  const r = spawnSync(bin('rhtmx-sync'), ['compact', '--config', app.config], { encoding: 'utf8', env: { ...process.env, RHTMX_SYNC_CONFIG: '' } });
  assertSanitizerClean(r.stderr, 'rhtmx-sync');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(left(), 0, 'the delete alice was told of is forgotten');
  assert.deepEqual(sql(app.db, 'SELECT viewer FROM _rhtmx_sync_viewers ORDER BY viewer;', { json: true }).map((x) => x.viewer), ['alice']);
  // Bob's device comes back: its cursor is below his rebuilt view, so it resyncs, and the
  // full sync lists exactly his rows.
  const again = pull(app, 'bob', b.version);
  assert.equal(again.status, 410, again.text());
  assert.equal(again.json().error.code, 'resync_required');
  assert.deepEqual(ids(pullOk(app, 'bob')), [[10, 'create'], [11, 'create']]);
});

test('a table the scope reads, rebuilt by the app (its triggers gone with it): they are made again, and a membership change still arrives', () => {
  const app = makeShared();
  const a = pullOk(app, 'alice');
  const deps = () => sql(app.db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE '_rhtmx_sync_todos_dep_%';").trim();
  assert.equal(deps(), '3');
  // The 12-step rebuild of SQLite's ALTER TABLE documentation: new table, copy, drop, rename.
  sql(app.db, `BEGIN;
    CREATE TABLE list_members_new (list_id INTEGER NOT NULL, user_id TEXT NOT NULL, since TEXT, PRIMARY KEY (list_id, user_id));
    INSERT INTO list_members_new (list_id, user_id) SELECT list_id, user_id FROM list_members;
    DROP TABLE list_members;
    ALTER TABLE list_members_new RENAME TO list_members;
    COMMIT;`);
  assert.equal(deps(), '0');
  const a1 = pullOk(app, 'alice', a.version); // notices, and makes them again
  assert.equal(deps(), '3');
  sql(app.db, "DELETE FROM list_members WHERE list_id = 2 AND user_id = 'alice';");
  assert.deepEqual(ids(pullOk(app, 'alice', a1.version)).filter(([, act]) => act === 'delete'), [[20, 'delete']]);
});
